"""The ops part's exceptions; the tree is drawn in ``rackpool.ops``'s docstring."""

from __future__ import annotations

from rackpool.core.errors import BadRequest, ConfigError, RackpoolError, TemporaryError


class OpsError(RackpoolError):
    """Base of every error raised by ``rackpool.ops``."""


class QuerySyntaxError(OpsError, BadRequest):
    """A query uses syntax outside the supported Lucene subset, or is malformed."""

    def __init__(self, message: str, query: str, position: int) -> None:
        pointer = f"\n  {query}\n  {' ' * position}^"
        super().__init__(f"query syntax error at position {position}: {message}{pointer}")
        self.query = query
        self.position = position
        self.reason = message


class QueryTooCostly(OpsError, BadRequest):
    """A wildcard matches too many index terms, or scanning for them takes too long."""


class SignatureError(OpsError, ConfigError):
    """A known-bug signature file cannot be loaded; the message names the file."""

    def __init__(self, message: str) -> None:
        ConfigError.__init__(self, message)


class IndexUnavailable(OpsError, TemporaryError):
    """The log index cannot be opened or queried right now."""


class OpsNotRunning(OpsError, TemporaryError):
    """No running ops daemon was found where the CLI looked for one."""
