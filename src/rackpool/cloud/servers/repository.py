"""The ``servers`` table as typed values: what the API shows and the agent is given."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from sqlalchemy import Connection, insert, select

from rackpool.cloud.db.engine import next_server_seqs
from rackpool.cloud.db.schema import servers


@dataclass(frozen=True)
class Server:
    """One row of ``servers`` (a server not yet deleted, or on its way out)."""

    id: str
    seq: int
    project_id: str
    user_id: str
    name: str
    hostname: str
    status: str
    task_state: str | None
    deleted: bool
    host: str | None
    flavor_id: str
    vcpus: int
    ram: int
    disk: int
    image_id: str
    key_name: str | None
    public_key: str | None
    address: str | None
    mac: str | None
    availability_zone: str | None
    metadata: dict[str, str]
    user_data: str | None
    config_drive: bool
    security_groups: list[str]
    fault_message: str | None
    fault_code: int | None
    fault_at: float | None
    host_keys: list[str]
    console_log: str
    created_at: float
    updated_at: float
    launched_at: float | None
    request_id: str | None
    global_request_id: str | None

    @classmethod
    def from_row(cls, row: Any) -> Server:
        values = {f.name: row[f.name] for f in fields(cls)}
        values["deleted"] = bool(values["deleted"])
        values["config_drive"] = bool(values["config_drive"])
        values["metadata"] = dict(values["metadata"] or {})
        values["security_groups"] = list(values["security_groups"] or [])
        values["host_keys"] = list(values["host_keys"] or [])
        return cls(**values)


def insert_servers(conn: Connection, drafts: list[Server]) -> list[Server]:
    """Insert ``drafts`` (their ``seq`` is ignored) with fresh sequence numbers, in order;
    the servers as stored."""
    seqs = next_server_seqs(conn, len(drafts))
    stored = [replace(d, seq=seq) for d, seq in zip(drafts, seqs, strict=True)]
    if stored:
        conn.execute(insert(servers), [asdict(s) for s in stored])
    return stored


def get(conn: Connection, server_id: str, cond: Any = None) -> Server | None:
    q = select(servers).where(servers.c.id == server_id)
    if cond is not None:
        q = q.where(cond)
    row = conn.execute(q).mappings().first()
    return None if row is None else Server.from_row(row)
