"""A small client for the pool's REST API (what the CLI and other tools use)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from rackpool.core.errors import (
    BadRequest,
    ConfigError,
    Conflict,
    NotFound,
    RackpoolError,
    TemporaryError,
    Unauthorized,
)

_BY_CODE: dict[int, type[RackpoolError]] = {
    400: BadRequest,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
}


class PoolClient:
    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout
        )

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.TransportError as exc:
            raise TemporaryError(f"pool API at {self.url} not reachable: {exc}") from exc
        if resp.status_code >= 400:
            try:
                fault = next(iter(resp.json().values()))
                message = str(fault["message"])
            except (ValueError, StopIteration, KeyError, TypeError, AttributeError):
                message = resp.text[:200]
            raise _BY_CODE.get(resp.status_code, TemporaryError)(message)
        return resp.json()

    def request(
        self, labels: list[str], priority: int = 100, requestor: str = ""
    ) -> dict[str, Any]:
        body = {"labels": labels, "priority": priority, "requestor": requestor}
        return dict(self._call("POST", "/api/requests", json=body))

    def get_request(self, request_id: str, wait: float = 0) -> dict[str, Any]:
        params = {"wait": str(wait)} if wait else None
        timeout = httpx.Timeout(wait + 30)
        return dict(
            self._call("GET", f"/api/requests/{request_id}", params=params, timeout=timeout)
        )

    def wait(self, request_id: str, timeout: float) -> dict[str, Any]:
        """Wait up to ``timeout`` seconds for the request to be fulfilled or failed."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            req = self.get_request(request_id, wait=max(0.0, min(left, 60.0)))
            if req["state"] in ("fulfilled", "failed") or left <= 0:
                return req

    def nodes(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/nodes"))

    def release(self, node_id: str) -> dict[str, Any]:
        return dict(self._call("POST", f"/api/nodes/{node_id}/release"))

    def hold(self, node_id: str, comment: str = "") -> dict[str, Any]:
        return dict(self._call("POST", f"/api/nodes/{node_id}/hold", json={"comment": comment}))

    def providers(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/providers"))

    def launchers(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/launchers"))

    def set_paused(self, name: str, paused: bool) -> dict[str, Any]:
        action = "pause" if paused else "resume"
        return dict(self._call("POST", f"/api/providers/{name}/{action}"))


def discover(
    state_dir: str | None = None, url: str | None = None, token: str | None = None
) -> PoolClient:
    """A client from --url/--token, or from STATE_DIR/pool.json (--state-dir or
    RACKPOOL_STATE_DIR). The token may also come from RACKPOOL_POOL_TOKEN."""
    url = url or os.environ.get("RACKPOOL_POOL_URL")
    token = token or os.environ.get("RACKPOOL_POOL_TOKEN")
    if url:
        if not token:
            raise ConfigError("--url needs --token (or RACKPOOL_POOL_TOKEN)")
        return PoolClient(url, token)
    state_dir = state_dir or os.environ.get("RACKPOOL_STATE_DIR")
    if not state_dir:
        raise ConfigError(
            "where is the pool? pass --state-dir DIR (as given to rackpool up), "
            "set RACKPOOL_STATE_DIR, or pass --url and --token"
        )
    path = Path(state_dir) / "pool.json"
    try:
        info = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: not found; is a pool running with state-dir {state_dir}?"
        ) from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: unreadable: {exc}") from exc
    return PoolClient(str(info["url"]), token or str(info["token"]))
