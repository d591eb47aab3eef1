"""Bounded thread pools that keep blocking work off a daemon's event loop.

The shared mechanism of every API daemon (the region, the pool): the event loop only
accepts connections and moves bytes; a route handler wrapped by ``offload`` runs in a
worker thread of a named, bounded pool, database, file and CPU-heavy work included, and
``run`` sends one blocking call there. The daemon owns its pools, sized by its config,
and closes them when it stops.

A handler is an ``async def`` that may ``await request.body()``/``request.stream()``;
each worker thread runs it on its own small event loop, and the request's ``receive``
is bridged back to the server's loop, so request bodies still stream (an image upload
is written chunk by chunk in the worker, never buffered on the loop). A handler that
waits (sleeps, long-polls) holds its worker meanwhile: wait on the server's loop and
``run`` each blocking step instead.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message

T = TypeVar("T")
Endpoint = Callable[[Request], Awaitable[Response]]


class Workers:
    """Named thread pools: ``sizes`` maps a pool's name to its number of threads."""

    def __init__(self, sizes: Mapping[str, int], prefix: str) -> None:
        self._pools: dict[str, ThreadPoolExecutor] = {
            kind: ThreadPoolExecutor(n, thread_name_prefix=f"{prefix}-{kind}")
            for kind, n in sizes.items()
        }
        self._local = threading.local()
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()

    async def run(self, kind: str, fn: Callable[..., T], *args: Any) -> T:
        """Run the blocking ``fn(*args)`` in the ``kind`` pool and await its result."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pools[kind], functools.partial(fn, *args))

    def offload(self, endpoint: Endpoint, kind: str) -> Endpoint:
        """Wrap a route handler so all of it runs in a worker thread of the ``kind`` pool."""
        pool = self._pools[kind]

        @functools.wraps(endpoint)
        async def offloaded(request: Request) -> Response:
            main = asyncio.get_running_loop()
            receive = request.receive

            async def on_main() -> Message:
                return await receive()

            async def bridged() -> Message:
                return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(on_main(), main))

            inner = Request(request.scope, bridged)
            # The handler sees the request's context (its log ids, see core.logs).
            context = contextvars.copy_context()
            return await main.run_in_executor(
                pool, context.run, self._run_coroutine, endpoint, inner
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
