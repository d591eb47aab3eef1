"""Running a region controller: as the main process, or in a thread for tests.

Port handover (``reuse_port``): the listening socket is bound with SO_REUSEPORT, so a
new controller (an upgrade's next version) can bind the same port and serve while the
old one still does; the old one is then stopped with SIGTERM and the port never refuses
a connection. On SIGTERM uvicorn closes the listener within one tick (0.1 s), finishes
the requests in flight, and exits. While both listen the kernel spreads new connections
across them; connections still queued on the old listener when it closes are moved to
the new one only with ``net.ipv4.tcp_migrate_req=1`` (Linux 5.14+; the deploy sets it on
controller hosts), otherwise they are reset. Both processes must opt in: a listener
bound without SO_REUSEPORT keeps the port to itself (EADDRINUSE for the other).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import uvicorn

from rackpool.cloud.api.app import build_app
from rackpool.cloud.config import RegionConfig
from rackpool.cloud.region import Region
from rackpool.core.clock import Clock
from rackpool.core.errors import ConfigError

log = logging.getLogger("rackpool.cloud.serve")


MIGRATE_REQ = Path("/proc/sys/net/ipv4/tcp_migrate_req")


def bind(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (else Nagle
    # plus delayed ACK add 40 ms to every keep-alive response, as in the pool's bind).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        if not hasattr(socket, "SO_REUSEPORT"):
            sock.close()
            raise ConfigError("listen: --reuse-port needs SO_REUSEPORT (Linux)")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"listen: cannot bind {host}:{port}: {exc.strerror}") from exc
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server that calls ``on_started`` once it accepts connections."""

    def __init__(self, config: uvicorn.Config, on_started: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_started = on_started

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and self._on_started is not None:
            self._on_started()


def _uvicorn(region: Region, on_started: Callable[[], None] | None = None) -> uvicorn.Server:
    cfg = uvicorn.Config(
        build_app(region), log_config=None, access_log=False, lifespan="on", timeout_keep_alive=30
    )
    return _Server(cfg, on_started)


def _migrate_req() -> str:
    try:
        return MIGRATE_REQ.read_text().strip()
    except OSError:
        return "unavailable"


def write_ready(path: str | Path, config: RegionConfig, url: str) -> None:
    p = Path(path)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps({"region": config.region, "url": url, "pid": os.getpid()}))
    os.replace(tmp, p)


def run(config: RegionConfig, ready_file: str | None = None, reuse_port: bool = False) -> None:
    """Serve a region until SIGINT/SIGTERM; ``ready_file`` is written once it serves."""
    region = Region.open(config)
    try:
        sock = bind(config.listen.host, config.listen.port, reuse_port)
    except BaseException:
        region.close()
        raise
    host, port = sock.getsockname()
    url = config.public_url or f"http://{host}:{port}"
    extra = {"region": config.region}
    if reuse_port and _migrate_req() != "1":
        log.warning(
            "listening with SO_REUSEPORT but net.ipv4.tcp_migrate_req is %s: connections "
            "queued on this listener when it closes are reset, not handed over",
            _migrate_req(),
            extra=extra,
        )

    def started() -> None:
        if ready_file:
            write_ready(ready_file, config, url)
        log.info("region %s serving at %s", config.region, url, extra=extra)

    try:
        _uvicorn(region, started).run(sockets=[sock])
    finally:
        region.close()
        sock.close()


class ThreadedRegion:
    """A region controller on a random loopback port in a background thread."""

    def __init__(self, config: RegionConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.region = Region.open(config, clock)
        self._sock = bind(config.listen.host, config.listen.port)
        host, port = self._sock.getsockname()
        self.url = f"http://{host}:{port}"
        self._server = _uvicorn(self.region)
        self._thread = threading.Thread(
            target=self._run, name=f"region-{config.region}", daemon=True
        )

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self) -> ThreadedRegion:
        self._thread.start()
        for _ in range(400):
            if self._server.started:
                return self
            if not self._thread.is_alive():
                raise RuntimeError("region thread died during start-up")
            threading.Event().wait(0.025)
        raise RuntimeError("region did not start within 10s")

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._sock.close()
        self.region.close()
