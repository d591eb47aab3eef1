"""Errors of the pool part.

RackpoolError (core)
├── ConfigError (core)          bad pool config
├── TemporaryError (core)
│   └── LaunchError             one launch attempt failed; retry (maybe elsewhere)
│       ├── QuotaError          cloud said "Quota exceeded": abort + relaunch, not a failure
│       ├── LaunchTimeout       boot or launch timeout
│       ├── KeyscanError        no SSH host keys from the node before the deadline
│       └── ProviderUnavailable the provider's API cannot be reached
└── PermanentError (core)
    ├── NotFound (core)
    │   ├── UnknownNode
    │   └── UnknownRequest
    ├── Conflict (core)
    │   ├── InvalidTransition  e.g. releasing a node that is not in use
    │   ├── StaleWrite         store compare-and-set lost a race
    │   └── LockLost           this launcher no longer holds the lock it worked under
    └── Unauthorized (core)     bad or missing API token
"""

from __future__ import annotations

from rackpool.core.errors import Conflict, NotFound, TemporaryError


class LaunchError(TemporaryError):
    """A launch attempt failed. ``kind`` names it for metrics and log classification."""

    kind = "error"


class QuotaError(LaunchError):
    kind = "quota"

    def __init__(self, message: str) -> None:
        if "Quota exceeded" not in message:
            message = f"Quota exceeded: {message}"
        super().__init__(message)


class LaunchTimeout(LaunchError):
    kind = "timeout"


class KeyscanError(LaunchError):
    kind = "keyscan"


class ProviderUnavailable(LaunchError):
    kind = "unavailable"


class UnknownNode(NotFound):
    pass


class UnknownRequest(NotFound):
    pass


class InvalidTransition(Conflict):
    pass


class StaleWrite(Conflict):
    pass


class LockLost(Conflict):
    """This launcher no longer holds the lock of the record it works on: its session
    ended (a stall past ``session-timeout``, a partition) or another launcher took the
    work over (the node's ``launch_epoch`` moved on). Nothing more may be sent or
    written for it; the new owner resumes from the record."""
