"""Errors of the host agent and its virt drivers.

RackpoolError (core)
├── TemporaryError (core)
│   ├── ControllerUnavailable   the region controller did not answer; retry later
│   └── HostNetworkBusy         a host-level network object is being set up elsewhere
└── PermanentError (core)
    ├── ControllerRejected      the controller answered 4xx (bad token, unknown host)
    │   └── IncompatibleController  it does not serve this agent's API version: exit
    ├── DriverError             a virt driver could not do what was asked
    │   ├── SpawnError          an instance could not be started (report ERROR)
    │   └── DriverUnavailable   the backend (runc, libvirt) is missing or unusable
    └── ImageError              an image could not be fetched or failed its checksum
"""

from __future__ import annotations

from rackpool.core.errors import PermanentError, TemporaryError


class ControllerUnavailable(TemporaryError):
    """The controller could not be reached or answered 5xx."""


class HostNetworkBusy(TemporaryError):
    """A bridge or veth is half set up by another agent; try again."""


class ControllerRejected(PermanentError):
    """The controller answered with a client error; ``status`` is the HTTP code."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class IncompatibleController(ControllerRejected):
    """The controller does not serve the agent API version this agent speaks (it is
    older, or newer beyond what it still serves); the agent refuses to run against it.
    The operator fixes it (upgrade one end): ``rackpool agent`` exits 2."""

    code = 406

    def __init__(self, message: str) -> None:
        super().__init__(message, 406)


class DriverError(PermanentError):
    """A virt driver operation failed."""


class SpawnError(DriverError):
    """An instance could not be started; the message becomes the server's fault."""


class SpawnCancelled(SpawnError):
    """The spawn was stopped because its server was deleted meanwhile (not a fault)."""


class DriverUnavailable(DriverError):
    """The driver's backend is not usable on this machine."""


class ImageError(PermanentError):
    """An image could not be fetched, verified or unpacked."""
