"""``rackpool web serve``: the dashboard daemon.

Once it listens it writes ``<state_dir>/web.json`` (mode 0600; ``url`` and ``pid`` only,
no token) — how ``rackpool up`` finds it — and removes it on a clean exit.
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import uvicorn

from rackpool.core.clock import wait_for
from rackpool.core.files import write_discovery
from rackpool.core.logs import setup_logging
from rackpool.web.app import build_app
from rackpool.web.config import WebConfig

log = logging.getLogger("rackpool.web")
STATE_FILE = "web.json"


def write_state(state_dir: str, url: str) -> Path:
    return write_discovery(state_dir, STATE_FILE, url=url)


def run(config: WebConfig, *, stop: threading.Event | None = None) -> int:
    """Serve until SIGTERM/SIGINT (or ``stop`` is set); returns an exit code."""
    setup_logging("web", json=config.log.json_lines, path=config.log.path, level=config.log.level)
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stop = stop or threading.Event()
    server = uvicorn.Server(
        uvicorn.Config(
            build_app(config),
            host=config.listen.host,
            port=config.listen.port,
            log_config=None,
            access_log=False,
            lifespan="on",
        )
    )
    thread = threading.Thread(target=server.run, name="web-http", daemon=True)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    state_path: Path | None = None
    try:
        thread.start()
        wait_for(lambda: server.started or not thread.is_alive(), 30, "the dashboard to listen")
        if not server.started:
            log.error("the dashboard failed to start")
            return 1
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        url = f"http://{host}:{port}"
        if config.state_dir:
            state_path = write_state(config.state_dir, url)
        log.info("dashboard on %s", url, extra={"event": "web_started"})
        print(f"rackpool web: dashboard at {url}/", flush=True)
        stop.wait()
        return 0
    finally:
        stop.set()
        server.should_exit = True
        thread.join(timeout=10)
        if state_path is not None:
            state_path.unlink(missing_ok=True)
