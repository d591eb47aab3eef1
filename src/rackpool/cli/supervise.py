"""How ``rackpool up`` runs its daemons: start them, restart the ones that die, stop them all.

StopSignal   installed first thing in ``up``: SIGTERM/SIGINT only set a flag, so no
             signal lands half-way through starting a child; every wait of ``up``
             sleeps through :meth:`StopSignal.sleep`, which raises :class:`Stopping`
             once the flag is set, and ``up`` then stops everything it started.
Daemon       one child process in its own session, its log, its restart backoff: a
             ``rackpool`` daemon, or an engine (PostgreSQL, ZooKeeper, HAProxy) that its
             class in ``localservices`` started and can start again on the same port.
Supervisor   the daemons ``up`` started: :meth:`Supervisor.tick` restarts a dead one
             after a backoff (0.5 s doubling to 30 s; back to 0.5 s once it ran for a
             minute), :meth:`Supervisor.stop_all` stops every one, restarted or not: the
             ``rackpool`` daemons first, then the engines they use.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import NoReturn

log = logging.getLogger("rackpool.up")


class Stopping(BaseException):  # noqa: N818 - a request, like KeyboardInterrupt, not an error
    """SIGTERM or SIGINT arrived: unwind to ``up``'s shutdown."""


class StopSignal:
    """SIGTERM/SIGINT turned into a flag that every wait of ``up`` checks."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int | None = None

    def install(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.signum = self.signum or signum
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        if self._event.is_set():
            raise Stopping

    def sleep(self, seconds: float) -> None:
        """Sleep, but raise :class:`Stopping` as soon as a stop is requested."""
        if self._event.wait(seconds):
            raise Stopping


def say(message: str, level: int = logging.INFO, **extra: object) -> None:
    """Tell the operator on stderr, and ``up``'s own log (``logs/up.jsonl``)."""
    print(f"rackpool up: {message}", file=sys.stderr, flush=True)
    log.log(level, message, extra=extra)


@dataclass
class Daemon:
    name: str
    argv: list[str]
    log: Path
    before_start: Callable[[], None] | None = None  # e.g. drop a dead daemon's discovery file
    spawn: Callable[[], subprocess.Popen[bytes]] | None = None  # an engine's own start
    stop_signal: int = signal.SIGTERM
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    restart_at: float | None = None
    delay: float = 0.0

    def start(self) -> None:
        if self.before_start is not None:
            self.before_start()
        if self.spawn is not None:
            self.proc = self.spawn()
            self.started_at = time.monotonic()
            return
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "rackpool.cli", *self.argv],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,
            )  # fmt: skip
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def engine(self) -> bool:
        return self.spawn is not None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def exit_text(self) -> str:
        code = self.proc.returncode if self.proc is not None else None
        if code is not None and code < 0:
            return f"was killed by {signal.Signals(-code).name}"
        return f"exited with status {code}"


class Supervisor:
    def __init__(
        self, stop: StopSignal, first_delay: float = 0.5, max_delay: float = 30.0,
        stable_after: float = 60.0,
    ) -> None:  # fmt: skip
        self.stop = stop
        self.daemons: list[Daemon] = []
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.stable_after = stable_after

    def start(
        self, name: str, argv: list[str], log_path: Path,
        before_start: Callable[[], None] | None = None,
    ) -> Daemon:  # fmt: skip
        d = Daemon(name, argv, log_path, before_start)
        self.daemons.append(d)  # listed first: a stop from here on stops it
        d.start()
        return d

    def adopt(
        self, name: str, proc: subprocess.Popen[bytes], log_path: Path,
        spawn: Callable[[], subprocess.Popen[bytes]], stop_signal: int = signal.SIGTERM,
    ) -> Daemon:  # fmt: skip
        """Supervise an engine already started (and serving): ``spawn`` restarts it."""
        d = Daemon(name, [], log_path, spawn=spawn, stop_signal=stop_signal, proc=proc)
        d.started_at = time.monotonic()
        self.daemons.append(d)
        return d

    def run(self, interval: float = 0.2) -> NoReturn:
        """Watch until a stop is requested (raises :class:`Stopping`)."""
        while True:
            self.tick()
            self.stop.sleep(interval)

    def tick(self) -> None:
        now = time.monotonic()
        for d in self.daemons:
            if d.restart_at is None and d.proc is not None and not d.alive():
                self._schedule(d, now)
            elif d.restart_at is not None and now >= d.restart_at:
                self._restart(d)

    def _schedule(self, d: Daemon, now: float) -> None:
        ran = now - d.started_at
        d.delay = (
            self.first_delay
            if ran >= self.stable_after or d.delay == 0
            else min(d.delay * 2, self.max_delay)
        )
        d.restart_at = now + d.delay
        say(
            f"{d.name} (pid {d.pid}) {d.exit_text()} after {ran:.1f}s; "
            f"restarting in {d.delay:.1f}s (see {d.log})",
            logging.ERROR, event="daemon_exited", daemon=d.name, pid=d.pid,
        )  # fmt: skip

    def _restart(self, d: Daemon) -> None:
        d.restart_at = None
        d.restarts += 1
        d.start()
        say(
            f"{d.name} restarted (pid {d.pid}, restart {d.restarts})",
            logging.WARNING, event="daemon_restarted", daemon=d.name, pid=d.pid,
        )  # fmt: skip

    def stop_all(self, timeout: float = 15) -> None:
        """Stop the ``rackpool`` daemons, then the engines they use (each group newest
        first: SIGTERM, or the engine's fast-stop signal, wait, SIGKILL what is left)."""
        self._stop([d for d in self.daemons if not d.engine], timeout)
        self._stop([d for d in self.daemons if d.engine], timeout)

    def _stop(self, daemons: list[Daemon], timeout: float) -> None:
        live = [d for d in reversed(daemons) if d.alive()]
        for d in live:
            assert d.proc is not None
            d.proc.send_signal(d.stop_signal)
        deadline = time.monotonic() + timeout
        for d in live:
            assert d.proc is not None
            try:
                d.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{d.name} (pid {d.pid}) ignored SIGTERM for {timeout:.0f}s; killing it")
                d.proc.kill()
                d.proc.wait(5)
