"""Decide what to do: desired instances (from the controller) vs what the driver runs.

Pure function, no I/O: the daemon executes the plan. The controller owns the state
machine; the agent only reports facts (ACTIVE, ERROR with a fault, DELETED).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rackpool.agent.virt.base import InstanceState


@dataclass(frozen=True)
class Plan:
    spawn: tuple[dict[str, Any], ...] = ()  # wire entries to start
    destroy: tuple[str, ...] = ()  # ids to remove, then report DELETED
    orphans: tuple[str, ...] = ()  # running here but unknown to the controller: remove quietly
    active: tuple[str, ...] = ()  # running and not yet reported by this agent process
    vanished: tuple[tuple[str, str], ...] = ()  # (id, fault) to report as ERROR
    deleted: tuple[str, ...] = ()  # already gone here: just report DELETED
    cancel: tuple[str, ...] = ()  # deleted while busy (e.g. a VM still booting): stop its spawn
    notes: list[str] = field(default_factory=list)


# The ids of the create call that made an instance (docs/agent-api.md, pull): every
# line the agent logs about the instance carries them.
REQUEST_ID_KEYS = ("request_id", "global_request_id")


def request_ids(entry: Mapping[str, Any]) -> dict[str, str]:
    """The create call's request ids a pulled entry carries (absent or odd ones left out)."""
    return {
        k: v
        for k in REQUEST_ID_KEYS
        if isinstance(v := entry.get(k), str) and 0 < len(v) <= 64 and v.isprintable()
    }


def plan(
    desired: Iterable[Mapping[str, Any]],
    actual: Mapping[str, InstanceState],
    busy: frozenset[str] | set[str],
    reported: frozenset[str] | set[str],
) -> Plan:
    spawn: list[dict[str, Any]] = []
    destroy: list[str] = []
    active: list[str] = []
    vanished: list[tuple[str, str]] = []
    deleted: list[str] = []
    cancel: list[str] = []
    known = set()
    for e in desired:
        iid = str(e["id"])
        known.add(iid)
        if iid in busy:
            if e.get("desired") == "deleted":
                cancel.append(iid)
            continue
        have = actual.get(iid)
        if e.get("desired") == "deleted":
            (destroy if have is not None else deleted).append(iid)
        elif have is not None and have.running:
            if iid not in reported or e.get("status") == "BUILD":
                active.append(iid)
        elif have is not None:
            if e.get("status") != "ERROR" and iid not in reported:
                vanished.append((iid, f"instance stopped on host ({have.detail or 'not running'})"))
        elif e.get("status") == "BUILD":
            spawn.append(dict(e))
        elif e.get("status") == "ACTIVE" and iid not in reported:
            vanished.append((iid, "instance vanished from host"))
    orphans = tuple(i for i in actual if i not in known and i not in busy)
    return Plan(
        spawn=tuple(spawn),
        destroy=tuple(destroy),
        orphans=orphans,
        active=tuple(active),
        vanished=tuple(vanished),
        deleted=tuple(deleted),
        cancel=tuple(cancel),
    )
