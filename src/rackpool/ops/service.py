"""``rackpool ops serve``: index, shipper, classifier and REST API in one daemon.

Once the API listens, the daemon writes ``<state_dir>/ops.json`` (mode 0600)::

    {"url": "http://127.0.0.1:PORT", "push_token": "...", "pid": 1234}

which is how ``rackpool logs|bugs … --state-dir DIR`` finds it; the file is removed
on a clean exit.
"""

from __future__ import annotations

import logging
import secrets
import signal
import socket
import threading
from pathlib import Path

import uvicorn

from rackpool.core.clock import Clock, SystemClock, wait_for
from rackpool.core.files import write_discovery
from rackpool.core.logs import setup_logging
from rackpool.ops.api import ApiDeps, build_app
from rackpool.ops.classify import Classifier
from rackpool.ops.config import OpsConfig
from rackpool.ops.failures import FailureStore
from rackpool.ops.index.sqlite import SqliteIndex
from rackpool.ops.journal import journal_source
from rackpool.ops.shipper import CheckpointFile, Shipper
from rackpool.ops.signatures import builtin_dir, load_signatures
from rackpool.ops.tokens import load_or_create_secret, secret_file

log = logging.getLogger(__name__)
STATE_FILE = "ops.json"


def _every(stop: threading.Event, interval: float, fn: object) -> None:
    assert callable(fn)
    while not stop.wait(interval):
        try:
            fn()
        except Exception:
            log.exception("periodic ops task failed")


def _retention(index: SqliteIndex, store: FailureStore, config: OpsConfig, clock: Clock) -> None:
    index.expire()
    store.prune(clock.now() - config.classifier.keep_days * 86400)


def write_state(state_dir: str, url: str, token: str) -> Path:
    return write_discovery(state_dir, STATE_FILE, url=url, push_token=token)


def ingest_secret(config: OpsConfig) -> str:
    """What signs the hosts' ingest tokens: ``api.ingest_secret``, else the one kept in
    ``<index.path>/ingest.secret`` (made on first use)."""
    if config.api.ingest_secret is not None:
        return config.api.ingest_secret.get_secret_value()
    return load_or_create_secret(secret_file(config.index.path))


def run(config: OpsConfig, *, stop: threading.Event | None = None) -> int:
    """Run until SIGTERM/SIGINT (or ``stop`` is set); returns an exit code."""
    setup_logging("ops", json=config.log.json_lines, path=config.log.path, level=config.log.level)
    stop = stop or threading.Event()
    clock = SystemClock()
    dirs: list[str | Path] = [builtin_dir()] if config.signatures.builtin else []
    dirs += config.signatures.dirs
    signatures = load_signatures(dirs)
    index = SqliteIndex(
        config.index.path,
        max_age_days=config.index.max_age_days,
        max_bytes=config.index.max_bytes,
        clock=clock,
    )
    store = FailureStore(Path(config.index.path) / "failures.db")
    classifier = Classifier(
        index, store, signatures, clock=clock, window=config.classifier.window_hours * 3600
    )
    checkpoint = config.shipper.checkpoint or str(Path(config.index.path) / "shipper.json")
    shipper = Shipper(
        index,
        config.shipper.globs(config.log.path),
        CheckpointFile(checkpoint),
        fields=config.shipper.fields,
        journal=journal_source(config.shipper, checkpoint, socket.gethostname(), clock),
    )
    token = config.api.push_token or secrets.token_urlsafe(24)
    deps = ApiDeps(
        index,
        store,
        classifier,
        token,
        clock,
        config.api.max_body_bytes,
        ingest_secret=ingest_secret(config),
    )
    app = build_app(deps)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.api.listen,
            port=config.api.port,
            log_config=None,
            access_log=False,
            lifespan="off",
        )
    )
    # uvicorn leaves signals alone off the main thread; this thread handles them.
    threads = [
        threading.Thread(target=server.run, name="ops-api", daemon=True),
        threading.Thread(
            target=shipper.run,
            args=(stop, config.shipper.poll_interval),
            name="ops-shipper",
            daemon=True,
        ),
        threading.Thread(
            target=classifier.run,
            args=(stop, config.classifier.interval),
            name="ops-classifier",
            daemon=True,
        ),
        threading.Thread(
            target=_every,
            args=(stop, 300.0, lambda: _retention(index, store, config, clock)),
            name="ops-retention",
            daemon=True,
        ),
    ]
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    state_path: Path | None = None
    try:
        for t in threads:
            t.start()
        wait_for(lambda: server.started or not threads[0].is_alive(), 30, "the ops API to listen")
        if not server.started:
            log.error("the ops API failed to start")
            return 1
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        url = f"http://{host}:{port}"
        if config.state_dir:
            state_path = write_state(config.state_dir, url, token)
        log.info(
            "ops API listening on %s (search: %s/api/search?q=...)",
            url,
            url,
            extra={"event": "ops_started"},
        )
        print(f"rackpool ops: search at {url}/api/search?q=", flush=True)
        stop.wait()
        return 0
    finally:
        stop.set()
        server.should_exit = True
        for t in threads:
            t.join(timeout=10)
        if state_path is not None:
            state_path.unlink(missing_ok=True)
        shipper.close()
        index.close()
        store.close()
