"""Property-based fuzzing of a rackpool HTTP API over real loopback HTTP.

The endpoints come from the app's own Starlette router (``endpoints(app)``), so a new
route is fuzzed without touching the tests. Each example is one request: a route's
method, path parameters (known ids or hostile text), query parameters (hostile
numbers, digits and sizes) and, for POST/PUT/PATCH, a body that is either a valid
template with one field broken, arbitrary JSON, raw bytes, or a huge value; with a
JSON or a wrong Content-Type.

A test checks with ``check(...)``: never a 5xx, an error always in the API's shape,
and its state snapshot (rows that must not appear or change) unchanged unless the
response was 2xx.

    @fuzz_settings()
    @given(req=requests_for(ep, known, templates, headers))
    def test(req): check(client, req, shape, snapshot)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import uvicorn
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from starlette.routing import Route

from rackpool.core.clock import wait_for

# A bigger budget with RACKPOOL_FUZZ_EXAMPLES (the `heavy` tests set their own).
EXAMPLES = int(os.environ.get("RACKPOOL_FUZZ_EXAMPLES", "12"))

NASTY = [
    "１２", "٣", "𝟗", "1e999", "-1e999", "1" + "0" * 400, "-1", "0", "", " ", "null",
    "true", "NaN", "Infinity", "0x10", "1_000", "9223372036854775808", "x" * 5000,
    "\x00", "é", "../..", "%", "a b", "' OR 1=1 --", "(a+)+$", "(" * 50, "*", "\\",
]  # fmt: skip
HUGE: list[Any] = [
    "k" * 1_000_000,  # a 1 MB public key / name
    ["default"] * 100_000,  # 100k security groups, tags, labels
    [{"name": "default"}] * 20_000,
    {f"k{i}": "v" for i in range(20_000)},
    10**400,
    -(10**30),
    1e308,
]
QUERY_NAMES = [
    "limit", "marker", "name", "all_tenants", "status", "visibility", "tag", "owner",
    "sort_key", "sort_dir", "changes-since", "host", "binary", "tenant_id", "usage",
    "device_id", "fixed_ips", "fields", "node_id", "wait", "q", "since", "until", "size",
    "page", "order", "before", "after", "uncategorized", "id", "network_id", "project_id",
]  # fmt: skip
CONTENT_TYPES = [
    "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
    "application/xml", "application/octet-stream", "application/json; charset=utf-8",
    "application/openstack-images-v2.1-json-patch", "", "application/json\x7f",
]  # fmt: skip


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # Starlette's, e.g. /compute/v2.1/servers/{server_id}
    params: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def endpoints(app: Any) -> list[Endpoint]:
    """Every (method, path) the app routes, read from its router."""
    out = []
    for route in app.routes:
        if not isinstance(route, Route):
            continue
        for method in sorted((route.methods or {"GET"}) - {"HEAD"}):
            out.append(Endpoint(method, route.path, tuple(route.param_convertors)))
    return out


class Req:
    """One request; its repr stays short however big its body is."""

    def __init__(
        self, method: str, url: str, headers: dict[str, str], content: bytes | None
    ) -> None:
        self.method, self.url, self.headers, self.content = method, url, headers, content

    def __repr__(self) -> str:
        body = None if self.content is None else self.content[:300]
        return f"Req({self.method} {self.url[:300]} headers={self.headers} body={body!r})"


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(NASTY),
    st.text(max_size=20),
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
text_values = st.one_of(
    st.sampled_from(NASTY), st.text(max_size=30), st.integers(-(10**30), 10**30).map(str)
)


def _mutate(template: Any, data: st.DataObject) -> Any:
    """``template`` with one value (at depth <= 3) replaced, removed or added."""
    body = json.loads(json.dumps(template))
    node, depth = body, 0
    while isinstance(node, dict | list) and node and depth < 3:
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        key = data.draw(st.sampled_from(keys))
        action = data.draw(st.sampled_from(["replace", "descend", "descend", "drop", "add"]))
        if action == "descend" and isinstance(node[key], dict | list) and node[key]:
            node, depth = node[key], depth + 1
            continue
        if action == "drop":
            del node[key]
        elif action == "add" and isinstance(node, dict):
            node[data.draw(st.text(max_size=12))] = data.draw(json_values)
        else:
            node[key] = data.draw(st.one_of(json_values, st.sampled_from(HUGE)))
        break
    return body


def _dumps(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


@st.composite
def requests_for(
    draw: st.DrawFn,
    ep: Endpoint,
    known: dict[str, list[str]],
    templates: dict[str, list[Any]],
    headers: list[dict[str, str]],
) -> Req:
    data = draw(st.data())
    path = ep.path
    for name in ep.params:
        choices = known.get(name, [])
        value = draw(st.sampled_from(choices) | text_values if choices else text_values)
        path = re.sub(r"\{" + name + r"(:[a-z]+)?\}", quote(value, safe="") or "x", path)
    query = draw(
        st.lists(st.tuples(st.sampled_from(QUERY_NAMES) | st.text(max_size=8), text_values),
                 max_size=3)
    )  # fmt: skip
    url = path + ("?" + urlencode(query) if query else "")
    hdrs = dict(draw(st.sampled_from(headers)))
    content: bytes | None = None
    if ep.method in ("POST", "PUT", "PATCH"):
        mode = draw(st.sampled_from(["template"] * 4 + ["valid", "json", "raw", "huge", "none"]))
        tmpl = templates.get(str(ep), [])
        if mode in ("template", "valid") and tmpl:
            base = draw(st.sampled_from(tmpl))
            content = _dumps(base if mode == "valid" else _mutate(base, data))
        elif mode == "raw":
            content = draw(st.binary(max_size=64))
        elif mode == "huge":
            content = _dumps(draw(st.sampled_from(HUGE)))
        elif mode != "none":
            content = _dumps(draw(json_values))
        ctype = draw(st.sampled_from(["application/json"] * 6 + CONTENT_TYPES))
        if ctype and content is not None:
            hdrs["Content-Type"] = ctype
    return Req(ep.method, url, hdrs, content)


def fuzz_settings(examples: int | None = None) -> settings:
    return settings(
        max_examples=examples or EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )


def fault_shape(body: Any, status: int) -> str | None:
    """What is wrong with an OpenStack-style fault body ``{"kind": {"message", "code"}}``."""
    if not isinstance(body, dict) or len(body) != 1:
        return "not a one-key fault object"
    (inner,) = body.values()
    if not isinstance(inner, dict) or not isinstance(inner.get("message"), str):
        return "fault has no message"
    if inner.get("code") != status:
        return f"fault code {inner.get('code')} is not the status {status}"
    return None


def check(
    client: httpx.Client,
    req: Req,
    shape: Callable[[str, Any, int], str | None],
    snapshot: Callable[[], Any] | None = None,
    unchanged: Callable[[Any, Any], bool] = lambda before, after: bool(before == after),
) -> httpx.Response:
    """Send ``req``; fail on a 5xx, a wrongly shaped error, or state changed by a non-2xx."""
    before = snapshot() if snapshot else None
    resp = client.request(req.method, req.url, headers=req.headers, content=req.content)
    # 501 is Nova's answer for what a driver does not implement (hypervisor uptime)
    assert resp.status_code < 500 or resp.status_code == 501, (
        f"{resp.status_code} for {req!r}: {resp.text[:500]}"
    )
    assert "Traceback" not in resp.text, f"traceback in the response to {req!r}"
    if resp.status_code >= 400 and req.method != "HEAD":
        try:
            body = resp.json()
        except ValueError:
            raise AssertionError(f"non-JSON error {resp.status_code} for {req!r}") from None
        problem = shape(req.url, body, resp.status_code)
        assert problem is None, f"{problem}: {resp.status_code} {body} for {req!r}"
    if snapshot is not None and not 200 <= resp.status_code < 300:
        after = snapshot()
        assert unchanged(before, after), (
            f"{resp.status_code} changed state for {req!r}: {resp.text[:300]}"
        )
    return resp


# -- serving an ASGI app on loopback ------------------------------------------------
@dataclass
class Served:
    url: str
    server: uvicorn.Server
    thread: threading.Thread = field(repr=False)


@contextlib.contextmanager
def serve_app(app: Any) -> Iterator[Served]:
    """``app`` under a real uvicorn on a free loopback port, in a thread."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: server.started, 10, "the fuzzed app to serve")
    try:
        yield Served(url, server, thread)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
