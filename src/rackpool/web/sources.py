"""The APIs the dashboard reads, over HTTP like any client.

Errors (one hierarchy)::

    TemporaryError
     └── SourceError (503)      a source is not configured or did not answer
          └── SourceRefused (its status)   the source answered with an error (e.g. a bad query)

Neither message ever carries a token: tokens go only into request headers.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from rackpool.core.errors import TemporaryError
from rackpool.web.config import WebConfig
from rackpool.web.history import History
from rackpool.web.regions import RegionReaders


class SourceError(TemporaryError):
    pass


class SourceRefused(SourceError):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Endpoint:
    url: str
    token: str | None = None


def _discovered(state_dir: str | None, name: str, token_key: str | None) -> Endpoint | None:
    if not state_dir:
        return None
    try:
        data = json.loads((Path(state_dir) / name).read_text())
        token = data.get(token_key) if token_key else None
        return Endpoint(str(data["url"]).rstrip("/"), token)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _fault_message(resp: httpx.Response) -> str:
    """The message of an OpenStack-shaped fault ``{"badRequest": {"message": ...}}``."""
    try:
        body = resp.json()
        (inner,) = body.values()
        return str(inner["message"])
    except (ValueError, TypeError, KeyError, AttributeError):
        return f"HTTP {resp.status_code}"


class Sources:
    """One async HTTP client for every source; URLs are re-read from the discovery
    files on each call, so a restarted daemon on a new port is found again."""

    def __init__(
        self,
        config: WebConfig,
        transport: httpx.AsyncBaseTransport | None = None,
        history: History | None = None,
    ):
        self.config = config
        self.client = httpx.AsyncClient(timeout=config.timeout, transport=transport)
        self.history = history if history is not None else _history(config)
        self.regions = RegionReaders(self.client)

    async def close(self) -> None:
        await self.client.aclose()
        self.history.close()

    def pool(self) -> Endpoint:
        c = self.config.pool
        if c is not None:
            return Endpoint(c.url.rstrip("/"), c.token.get_secret_value())
        found = _discovered(self.config.state_dir, "pool.json", "token")
        if found is None:
            raise SourceError("the pool is not configured or not running (no pool.json)")
        return found

    def ops(self) -> Endpoint:
        c = self.config.ops
        if c is not None:
            return Endpoint(c.url.rstrip("/"))
        found = _discovered(self.config.state_dir, "ops.json", None)
        if found is None:
            raise SourceError("the log index is not configured or not running (no ops.json)")
        return found

    async def _get(self, what: str, ep: Endpoint, path: str, params: Any = None) -> Any:
        headers = {"Accept": "application/json"}
        if ep.token:
            headers["Authorization"] = f"Bearer {ep.token}"
        try:
            resp = await self.client.get(ep.url + path, params=params, headers=headers)
        except httpx.HTTPError as exc:
            raise SourceError(f"{what} at {ep.url} did not answer: {type(exc).__name__}") from exc
        if resp.status_code >= 400:
            raise SourceRefused(f"{what}: {_fault_message(resp)}", resp.status_code)
        if path == "/metrics":
            return resp.text
        return resp.json()

    async def pool_get(self, path: str, params: Any = None) -> Any:
        return await self._get("the pool", self.pool(), path, params)

    async def ops_get(self, path: str, params: Any = None) -> Any:
        return await self._get("the log index", self.ops(), path, params)

    async def region_up(self, url: str) -> bool:
        """Whether a region controller answers its version document (public, no token)."""
        try:
            resp = await self.client.get(url.rstrip("/") + "/")
        except httpx.HTTPError:
            return False
        return resp.status_code < 500


def _history(config: WebConfig) -> History:
    c = config.history
    path = c.path or (
        str(Path(config.state_dir) / "web-history.sqlite") if config.state_dir else None
    )
    return History(
        path,
        interval=c.interval or 15.0,
        raw_hours=c.raw_hours,
        coarse=c.coarse,
        keep_days=c.keep_days,
    )
