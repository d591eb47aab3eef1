"""Errors of the host agent and its virt drivers.

RackpoolError (core)
├── TemporaryError (core)
│   ├── ControllerUnavailable   the region controller did not answer; retry later
│   └── HostNetworkBusy         a host-level network object is being set up elsewhere
└── PermanentError (core)
    ├── ControllerRejected      the controller answered 4xx (bad token, unknown host)
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


class DriverError(PermanentError):
    """A virt driver operation failed."""


class SpawnError(DriverError):
    """An instance could not be started; the message becomes the server's fault."""


class DriverUnavailable(DriverError):
    """The driver's backend is not usable on this machine."""


class ImageError(PermanentError):
    """An image could not be fetched, verified or unpacked."""
