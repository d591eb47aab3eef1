"""Named states of the things rackpool manages."""

from __future__ import annotations

from enum import StrEnum


class ServerStatus(StrEnum):
    """Nova server status as clients see it."""

    BUILD = "BUILD"
    ACTIVE = "ACTIVE"
    ERROR = "ERROR"
    DELETED = "DELETED"


class HostState(StrEnum):
    UP = "up"
    DOWN = "down"


class NodeState(StrEnum):
    """Pool node states, named as nodepool names them."""

    BUILDING = "building"
    READY = "ready"
    IN_USE = "in-use"
    USED = "used"
    HOLD = "hold"
    DELETING = "deleting"
    FAILED = "failed"
    ABORTED = "aborted"


class RequestState(StrEnum):
    REQUESTED = "requested"
    PENDING = "pending"
    FULFILLED = "fulfilled"
    FAILED = "failed"
