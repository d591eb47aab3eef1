"""``rackpool pool serve``: the launcher loop plus its HTTP API in one process.

Discovery: when the config has ``state-dir``, the daemon writes ``STATE_DIR/pool.json``
(mode 0600: ``url``, ``token``, ``pid``) once it listens, and removes it on a clean exit;
``rackpool node ... --state-dir STATE_DIR`` reads it.

Several daemons may share one store (``store: {zookeeper: ...}``): give each its own
``state-dir`` (or none); any of them serves the whole pool's API.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import uvicorn

from rackpool.core import files
from rackpool.pool.api import api_workers, create_app
from rackpool.pool.config import PoolConfig, load
from rackpool.pool.launcher import Launcher
from rackpool.pool.store import open_store

log = logging.getLogger("rackpool.pool.daemon")

DISCOVERY_FILE = "pool.json"


def _setup_logging(level: str) -> None:
    try:
        from rackpool.core.logs import setup_logging
    except ImportError:  # pragma: no cover - older core
        logging.basicConfig(level=level)
        return
    setup_logging("pool", json=not sys.stderr.isatty(), level=level)


def write_discovery(state_dir: str, url: str, token: str) -> Path:
    return files.write_discovery(state_dir, DISCOVERY_FILE, url=url, token=token)


def bind(config: PoolConfig) -> socket.socket:
    family = socket.AF_INET6 if ":" in config.api.listen else socket.AF_INET
    # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (else Nagle
    # plus delayed ACK add 40 ms to every keep-alive response).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((config.api.listen, config.api.port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _remove_if_ours(path: Path) -> None:
    """Remove a discovery file unless another daemon (same state-dir) rewrote it."""
    try:
        if json.loads(path.read_text()).get("pid") != os.getpid():
            return
    except (OSError, ValueError):
        return
    path.unlink(missing_ok=True)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(config_path: str, level: str = "INFO") -> int:
    config = load(config_path)
    token = config.api.resolve_token()
    _setup_logging(level)
    faulthandler.register(signal.SIGUSR2, all_threads=True)
    sock = bind(config)
    host, port = sock.getsockname()[:2]
    url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    store = open_store(config)
    try:
        launcher = Launcher(config, store, info={"url": url})
    except BaseException:
        store.close()
        raise
    workers = api_workers(launcher)
    server = uvicorn.Server(
        uvicorn.Config(create_app(launcher, token, workers), log_level="warning", lifespan="off")
    )
    launcher.start()
    discovery = write_discovery(config.state_dir, url, token) if config.state_dir else None
    log.info("pool %s serving at %s", config.pool_name, url, extra={"event": "pool_started"})
    # uvicorn re-raises the SIGTERM it caught once it has shut down; with the default
    # action that would kill us before the cleanup below (pool.json left naming a dead pid).
    signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.run(sockets=[sock])
    finally:
        launcher.stop()
        workers.close()
        store.close()  # ZooKeeper: our locks and registration go at once, not at expiry
        if discovery is not None:
            _remove_if_ours(discovery)
        log.info("pool stopped", extra={"event": "pool_stopped"})
    return 0
