"""A small client for the ops REST API, and how the CLI finds the daemon."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx

from rackpool.core.errors import BadRequest, NotFound, RackpoolError
from rackpool.ops.errors import OpsNotRunning

STATE_ENV = "RACKPOOL_STATE_DIR"


def discover(state_dir: str | None, url: str | None = None) -> tuple[str, str | None]:
    """(url, push token) from ``--url``, or ``<state dir>/ops.json`` written by the daemon."""
    if url:
        return url.rstrip("/"), None
    directory = state_dir or os.environ.get(STATE_ENV)
    if not directory:
        raise OpsNotRunning(
            f"no ops daemon given: pass --state-dir DIR (or set {STATE_ENV}) or --url URL"
        )
    path = Path(directory) / "ops.json"
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise OpsNotRunning(f"{path}: not found; is 'rackpool ops serve' running?") from None
    except (OSError, ValueError) as exc:
        raise OpsNotRunning(f"{path}: cannot read: {exc}") from exc
    return str(data["url"]).rstrip("/"), data.get("push_token")


class OpsClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url
        self.token = token
        self._http = httpx.Client(base_url=url, timeout=timeout)

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        try:
            resp = self._http.request(method, path, **kw)
        except httpx.HTTPError as exc:
            raise OpsNotRunning(f"cannot reach the ops API at {self.url}: {exc}") from exc
        if resp.status_code >= 400:
            try:
                (fault,) = resp.json().values()
                message = fault["message"]
            except (ValueError, KeyError, TypeError, AttributeError):
                message = resp.text
            cls = {400: BadRequest, 404: NotFound}.get(resp.status_code, RackpoolError)
            raise cls(message)
        return resp.json()

    def search(self, q: str, **params: Any) -> dict[str, Any]:
        params = {k: v for k, v in params.items() if v is not None}
        return dict(self._call("GET", "/api/search", params={"q": q, **params}))

    def context(self, doc_id: str, before: int = 10, after: int = 10) -> dict[str, Any]:
        return dict(
            self._call(
                "GET", f"/api/docs/{doc_id}/context", params={"before": before, "after": after}
            )
        )

    def bugs(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/api/bugs")["bugs"])

    def failures(self, uncategorized: bool = False) -> list[dict[str, Any]]:
        params = {"uncategorized": "true"} if uncategorized else {}
        return list(self._call("GET", "/api/failures", params=params)["failures"])

    def push(self, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return dict(self._call("POST", "/api/push", json=body, headers=headers))

    def close(self) -> None:
        self._http.close()
