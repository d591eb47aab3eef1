"""The region's network as Neutron clients see it: one shared network, one subnet, a port
per server.

Nothing here is stored: the network and subnet come from ``network:`` in region.yaml and
a port is the address a server holds (``servers.address``/``mac``). Ids are derived, so
they stay stable across restarts and several controllers agree on them without a table:
the network and subnet ids are UUIDv5 of the region name, and a port's id is its
server's id with fixed bits flipped (version and variant bits kept), so either id finds
the other.

A port lives and dies with its server: it is gone as soon as its server is (a deleted
server's address is released once its host confirms, but nobody sees the port meanwhile),
and deleting the port of a live server is a conflict (delete the server).
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select

from rackpool.cloud.config import RegionConfig
from rackpool.cloud.db.schema import servers
from rackpool.cloud.identity import AuthContext
from rackpool.core.errors import Conflict, NotFound

NETWORK_NAME = "public"
_NS = uuid.UUID("6f1d6a0e-3b47-5f4c-9a51-7d1f4e8b2c90")
# Flips bits of a server UUID into its port's UUID and back; leaves version and variant.
_PORT_MASK = uuid.UUID("a5a5a5a5-a5a5-0a5a-25a5-a5a5a5a5a5a5").int
PORT_STATUS = {"ACTIVE": "ACTIVE", "BUILD": "BUILD"}  # anything else: DOWN


class PortNotFound(NotFound):
    pass


class PortInUse(Conflict):
    pass


@dataclass(frozen=True)
class Subnet:
    id: str
    network_id: str
    cidr: str
    gateway_ip: str
    pool_start: str
    pool_end: str


@dataclass(frozen=True)
class Network:
    id: str
    name: str
    subnet: Subnet


@dataclass(frozen=True)
class Port:
    id: str
    network_id: str
    subnet_id: str
    project_id: str
    device_id: str
    device_owner: str
    mac_address: str
    ip_address: str
    status: str
    host: str | None
    created_at: float
    updated_at: float


def port_id(server_id: str) -> str:
    return str(uuid.UUID(int=uuid.UUID(server_id).int ^ _PORT_MASK))


def server_id_of(port_id_: str) -> str | None:
    try:
        return str(uuid.UUID(int=uuid.UUID(port_id_).int ^ _PORT_MASK))
    except ValueError:
        return None


def region_network(config: RegionConfig) -> Network:
    net = ipaddress.ip_network(config.network.cidr)
    gateway = str(config.network.gateway)
    first, last = net.network_address + 1, net.broadcast_address - 1
    start = first + 1 if str(first) == gateway else first
    end = last - 1 if str(last) == gateway else last
    nid = str(uuid.uuid5(_NS, f"{config.region}/network/{NETWORK_NAME}"))
    sid = str(uuid.uuid5(_NS, f"{config.region}/subnet/{NETWORK_NAME}"))
    subnet = Subnet(sid, nid, str(net), gateway, str(start), str(end))
    return Network(nid, NETWORK_NAME, subnet)


class PortService:
    """Read the ports of a region's servers, scoped to the caller's project."""

    def __init__(self, engine: Engine, config: RegionConfig) -> None:
        self._engine = engine
        self.network = region_network(config)

    def _port(self, r: Any) -> Port:
        net = self.network
        return Port(
            id=port_id(r["id"]),
            network_id=net.id,
            subnet_id=net.subnet.id,
            project_id=r["project_id"],
            device_id=r["id"],
            device_owner=f"compute:{r['availability_zone'] or 'nova'}",
            mac_address=r["mac"] or "",
            ip_address=r["address"],
            status=PORT_STATUS.get(r["status"], "DOWN"),
            host=r["host"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
        )

    def _query(self, ctx: AuthContext) -> Any:
        cols = (
            servers.c.id, servers.c.project_id, servers.c.availability_zone, servers.c.mac,
            servers.c.address, servers.c.status, servers.c.host,
            servers.c.created_at, servers.c.updated_at,
        )  # fmt: skip
        q = select(*cols).where(servers.c.address.is_not(None), servers.c.deleted.is_(False))
        if not ctx.is_cloud_admin:
            q = q.where(servers.c.project_id == ctx.project_id)
        return q

    def list_ports(self, ctx: AuthContext, device_ids: list[str] | None = None) -> list[Port]:
        """Every port the caller may see (admin: all projects), ordered by id."""
        q = self._query(ctx)
        if device_ids:
            q = q.where(servers.c.id.in_(device_ids))
        with self._engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        return sorted((self._port(r) for r in rows), key=lambda p: p.id)

    def get_port(self, ctx: AuthContext, pid: str) -> Port:
        sid = server_id_of(pid)
        if sid is not None:
            with self._engine.connect() as conn:
                row = conn.execute(self._query(ctx).where(servers.c.id == sid)).mappings().first()
            if row is not None:
                return self._port(row)
        raise PortNotFound(f"Port {pid} could not be found.")

    def delete_port(self, ctx: AuthContext, pid: str) -> None:
        port = self.get_port(ctx, pid)  # a deleted server's port is already gone: 404
        raise PortInUse(
            f"Unable to complete operation on port {pid}: it is the port of server "
            f"{port.device_id} ({port.ip_address}) and is removed with it; delete the server."
        )

    def count_ports(self, project_id: str) -> int:
        q = select(func.count()).where(
            servers.c.address.is_not(None),
            servers.c.deleted.is_(False),
            servers.c.project_id == project_id,
        )
        with self._engine.connect() as conn:
            return int(conn.execute(q).scalar() or 0)
