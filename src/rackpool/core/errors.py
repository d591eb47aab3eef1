"""Errors shared by every part.

RackpoolError
├── ConfigError            bad config file or CLI argument (permanent)
├── TemporaryError         worth retrying later (timeouts, unavailable backend)
└── PermanentError         retrying will not help
    ├── BadRequest         400, names the field
    ├── Unauthorized       401
    ├── Forbidden          403
    │   └── QuotaExceeded  403, message contains "Quota exceeded"
    ├── NotFound           404
    ├── Conflict           409
    └── OverLimit          413
"""

from __future__ import annotations


class RackpoolError(Exception):
    """Base of every rackpool error."""

    code = 500
    fault = "computeFault"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigError(RackpoolError):
    """A config file or argument is invalid; ``problems`` lists each with its path."""

    code = 400
    fault = "badRequest"

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class TemporaryError(RackpoolError):
    """A failure that may go away if retried."""

    code = 503
    fault = "serviceUnavailable"


class PermanentError(RackpoolError):
    """A failure that retrying will not fix."""


class BadRequest(PermanentError):
    code = 400
    fault = "badRequest"


class Unauthorized(PermanentError):
    code = 401
    fault = "unauthorized"


class Forbidden(PermanentError):
    code = 403
    fault = "forbidden"


class QuotaExceeded(Forbidden):
    """Over a project quota; nodepool treats this as 'aborted', not failed."""

    def __init__(self, message: str) -> None:
        if "Quota exceeded" not in message:
            message = f"Quota exceeded: {message}"
        super().__init__(message)


class NotFound(PermanentError):
    code = 404
    fault = "itemNotFound"


class Conflict(PermanentError):
    code = 409
    fault = "conflict"


class OverLimit(PermanentError):
    code = 413
    fault = "overLimit"
