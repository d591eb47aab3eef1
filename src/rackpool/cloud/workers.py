"""Bounded thread pools that keep blocking work off a region's event loop.

The event loop only accepts connections and moves bytes; every request handler runs in
a worker thread (database, file and CPU-heavy work included), as do the in-process fake
hosts' calls and the host health check. The one exception is ``GET /``, which touches
nothing but the config and answers on the loop. Three pools, so a busy tenant cannot
starve the hosts: ``api`` serves tenants and admins, ``agent`` serves the rest of the
host boundary (agent reports and pulls over HTTP, fake hosts, ``check_down``, the
heartbeat flush), and ``heartbeat`` serves heartbeats alone (over HTTP and from fake
hosts). A heartbeat only reads the database (cloud/heartbeats.py), so it is never
queued behind server creates, nor behind reports waiting for the write lock, into a
false "host down".

A handler is an ``async def`` that may ``await request.body()``/``request.stream()``;
each worker thread runs it on its own small event loop, and the request's ``receive``
is bridged back to the server's loop, so request bodies still stream (an image upload
is written chunk by chunk in the worker, never buffered on the loop).
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

T = TypeVar("T")
Kind = Literal["api", "agent", "heartbeat"]
Endpoint = Callable[[Request], Awaitable[Response]]


class RegionWorkers:
    def __init__(
        self, api_threads: int, agent_threads: int, region: str = "", heartbeat_threads: int = 2
    ) -> None:
        sizes = {"api": api_threads, "agent": agent_threads, "heartbeat": heartbeat_threads}
        self._pools: dict[str, ThreadPoolExecutor] = {
            kind: ThreadPoolExecutor(n, thread_name_prefix=f"region-{region}-{kind}")
            for kind, n in sizes.items()
        }
        self._local = threading.local()
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()

    async def run(self, kind: Kind, fn: Callable[..., T], *args: Any) -> T:
        """Run the blocking ``fn(*args)`` in the ``kind`` pool and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pools[kind], functools.partial(fn, *args))

    def offload(self, endpoint: Endpoint, kind: Kind) -> Endpoint:
        """Wrap a route handler so all of it runs in a worker thread of the ``kind`` pool."""

        @functools.wraps(endpoint)
        async def offloaded(request: Request) -> Response:
            main = asyncio.get_running_loop()
            receive = request.receive

            async def on_main() -> Message:
                return await receive()

            async def bridged() -> Message:
                return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(on_main(), main))

            inner = Request(request.scope, bridged)
            return await main.run_in_executor(
                self._pools[kind], self._run_coroutine, endpoint, inner
            )

        return offloaded

    def _run_coroutine(self, endpoint: Endpoint, request: Request) -> Response:
        loop: asyncio.AbstractEventLoop | None = getattr(self._local, "loop", None)
        if loop is None:
            loop = asyncio.new_event_loop()
            self._local.loop = loop
            with self._lock:
                self._loops.append(loop)
        return loop.run_until_complete(endpoint(request))

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for loop in self._loops:
                loop.close()
            self._loops.clear()
