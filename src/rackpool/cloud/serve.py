"""Running a region controller: as the main process, or in a thread for tests."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import threading
from pathlib import Path

import uvicorn

from rackpool.cloud.api.app import build_app
from rackpool.cloud.config import RegionConfig
from rackpool.cloud.region import Region
from rackpool.core.clock import Clock
from rackpool.core.errors import ConfigError

log = logging.getLogger("rackpool.cloud.serve")


def bind(host: str, port: int) -> socket.socket:
    # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (else Nagle
    # plus delayed ACK add 40 ms to every keep-alive response, as in the pool's bind).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"listen: cannot bind {host}:{port}: {exc.strerror}") from exc
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


def _uvicorn(region: Region) -> uvicorn.Server:
    cfg = uvicorn.Config(
        build_app(region), log_config=None, access_log=False, lifespan="on", timeout_keep_alive=30
    )
    return uvicorn.Server(cfg)


def write_ready(path: str | Path, config: RegionConfig, url: str) -> None:
    p = Path(path)
    tmp = p.with_suffix(".tmp")
    tmp.write_text(json.dumps({"region": config.region, "url": url, "pid": os.getpid()}))
    os.replace(tmp, p)


def run(config: RegionConfig, ready_file: str | None = None) -> None:
    """Serve a region until SIGINT/SIGTERM."""
    region = Region.open(config)
    sock = bind(config.listen.host, config.listen.port)
    host, port = sock.getsockname()
    url = config.public_url or f"http://{host}:{port}"
    if ready_file:
        write_ready(ready_file, config, url)
    log.info("region %s serving at %s", config.region, url, extra={"region": config.region})
    try:
        _uvicorn(region).run(sockets=[sock])
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
