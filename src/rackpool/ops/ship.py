"""``rackpool ops ship``: follow this host's log files and send their lines to the ops API.

The ops index runs on one host; every other host runs this daemon (``shipper.yaml``,
:class:`rackpool.ops.config.ShipConfig`). It is the ops daemon's own :class:`Shipper`
(rotation, restarts, one checkpoint per file, saved only after the lines are committed)
writing to a :class:`RemoteIndex` instead of a local one.

``<state_dir>/shipper.json`` (0600) says how it is doing, for a deploy's health check and
for an operator; it is rewritten when the state changes and removed on a clean exit::

    {"url": "http://ops:8090", "host": "r1-c1", "state": "shipping", "error": null,
     "since": 1733230000.5, "journal_error": null, "pid": 1234}

``state``: ``connecting`` (no answer from the API yet), ``shipping`` (the API took a
batch: the URL and the host's ingest token work), ``retrying`` (the API is unreachable or
failing; nothing is dropped), ``refused`` (the API said no: a wrong token, an ops host
without ``/api/ingest``); ``error`` says why, without secrets. ``journal_error``: why
the journal (``shipper.journal``) cannot be read now (journalctl missing or failing),
else null.

SIGTERM or SIGINT: stop reading, send what was read, save the checkpoint, exit 0.
"""

from __future__ import annotations

import faulthandler
import logging
import signal
import threading
from pathlib import Path

from rackpool.core.clock import Clock, SystemClock
from rackpool.core.files import write_discovery
from rackpool.core.logs import setup_logging
from rackpool.ops.config import ShipConfig
from rackpool.ops.journal import journal_source
from rackpool.ops.remote import RemoteIndex, ShippingStopped
from rackpool.ops.shipper import CheckpointFile, Shipper

log = logging.getLogger(__name__)
STATUS_FILE = "shipper.json"


class Status:
    """``shipper.json``: the state the :class:`RemoteIndex` reports, written on change."""

    def __init__(self, config: ShipConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.path = Path(config.state_dir) / STATUS_FILE
        self.lock = threading.Lock()
        self.state: tuple[str, str | None, float] = ("connecting", None, clock.now())
        self.journal_error: str | None = None

    def set(self, state: str, error: str | None) -> None:
        with self.lock:
            self.state = (state, error, self.clock.now())
            self._write()

    def journal(self, error: str | None) -> None:
        with self.lock:
            self.journal_error = error
            self._write()

    def _write(self) -> None:
        state, error, since = self.state
        write_discovery(
            self.config.state_dir,
            STATUS_FILE,
            url=self.config.ops.url,
            host=self.config.host,
            state=state,
            error=error,
            since=since,
            journal_error=self.journal_error,
        )

    def remove(self) -> None:
        with self.lock:
            self.path.unlink(missing_ok=True)


def checkpoint_path(config: ShipConfig) -> str:
    return config.shipper.checkpoint or str(Path(config.state_dir) / "checkpoint.json")


def run(config: ShipConfig, *, stop: threading.Event | None = None) -> int:
    """Ship until SIGTERM/SIGINT (or ``stop`` is set); returns an exit code."""
    setup_logging(
        "shipper",
        json=config.log.json_lines,
        path=config.log.path,
        level=config.log.level,
        context={"host": config.host},
    )
    for noisy in ("httpx", "httpcore"):  # a line per request would be shipped, and so on
        logging.getLogger(noisy).setLevel(logging.WARNING)
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        faulthandler.register(signal.SIGUSR2, all_threads=True)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    clock = SystemClock()
    status = Status(config, clock)
    status.set("connecting", None)
    ops = config.ops
    remote = RemoteIndex(
        ops.url,
        ops.token.get_secret_value(),
        config.host,
        stop=stop,
        timeout=ops.timeout,
        max_request_bytes=ops.max_request_bytes,
        max_line_bytes=ops.max_line_bytes,
        min_backoff=ops.min_backoff,
        max_backoff=ops.max_backoff,
        log_interval=ops.log_interval,
        clock=clock,
        on_state=status.set,
    )
    journal = journal_source(config.shipper, checkpoint_path(config), config.host, clock)
    if journal is not None:
        journal.on_trouble = status.journal
    shipper = Shipper(
        remote,
        config.shipper.globs(config.log.path),
        CheckpointFile(checkpoint_path(config)),
        fields=config.shipper.fields,
        clock=clock,
        max_lines=config.batch_lines,
        journal=journal,
    )
    log.info(
        "shipper starting: %s to %s as host %s",
        ", ".join(config.shipper.files),
        ops.url,
        config.host,
        extra={"event": "shipper_starting"},
    )
    try:
        try:
            remote.probe()
        except ShippingStopped:
            return 0
        shipper.run(stop, config.shipper.poll_interval)
        return 0
    finally:
        stop.set()
        shipper.close()
        remote.close()
        status.remove()
        log.info("shipper stopped", extra={"event": "shipper_stopped"})
