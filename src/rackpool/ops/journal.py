"""The systemd journal as a log source: what daemons wrote before their logging was set up.

On a deployed host a daemon's own lines go to its JSON log file, but what it writes to
stderr before that (a crash at start, a Python traceback) and systemd's own lines about
its unit (started, "Main process exited, status=1/FAILURE", restarts) are only in the
journal. :class:`JournalSource` reads them with ``journalctl -o json --after-cursor``
for the units matching ``units`` (``rackpool-*``) and turns each entry into a line of
the index:

* ``host``: the shipper's host name; ``component``: the daemon, from the unit's name
  (``rackpool-agent.service`` is ``agent``, ``rackpool-controller@<version>.service``
  is ``cloud``, as the controller names its own lines); ``unit``: the unit;
* ``level`` from ``PRIORITY`` (0–2 CRITICAL, 3 ERROR, 4 WARNING, 5–6 INFO, 7 DEBUG);
* ``ts`` from ``__REALTIME_TIMESTAMP``; ``message`` from ``MESSAGE`` (bytes that are not
  UTF-8, which journalctl prints as a list of numbers, are decoded with replacement);
* ``pid``, ``logger`` (``journal``; ``systemd`` for the service manager's lines),
  ``source`` ``journal#<seqnum id>`` and ``seq`` the entry's sequence number, both from
  its cursor: unique, so an entry read twice is stored once.

Lines are redacted as the files' are (one stream redactor per unit, for a PEM key
written line by line). The cursor of the last entry the index committed is saved
(0600) only after that commit, so a restart resumes after it: none lost, none doubled.

journalctl is run once per poll, at most every ``interval`` seconds, and stopped after
``max_lines`` entries (the next poll goes on from there). Reading the system journal
needs root or the ``systemd-journal`` group.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rackpool.core.clock import Clock, SystemClock
from rackpool.core.files import write_private
from rackpool.core.logs import iso_utc
from rackpool.ops.config import ShipperConfig
from rackpool.ops.index import LogDoc
from rackpool.ops.ingest import StreamRedactor, doc_from_fields

log = logging.getLogger(__name__)
_LEVELS = ("CRITICAL", "CRITICAL", "CRITICAL", "ERROR", "WARNING", "INFO", "INFO", "DEBUG")
_CURSOR = re.compile(r"(?:^|;)s=([0-9a-f]+);i=([0-9a-f]+)(?:;|$)")
_UNIT_TYPES = frozenset({"service", "scope", "socket", "timer", "mount", "slice", "path"})
_COMPONENTS = {"controller": "cloud"}  # unit name -> the component its own lines carry
MAX_MESSAGE = 64 * 1024  # characters kept of one entry's message


@dataclass(frozen=True)
class Entry:
    """One journal entry as the index stores it, and the cursor to resume after it."""

    cursor: str
    doc: LogDoc


def level(priority: Any) -> str:
    try:
        p = int(priority)
    except (TypeError, ValueError):
        return "INFO"
    return _LEVELS[p] if 0 <= p <= 7 else "INFO"


def component(unit: str) -> str:
    """``rackpool-agent.service`` → ``agent``; ``rackpool-controller@1.0.service`` →
    ``cloud``; another unit keeps its name without the type suffix."""
    base, dot, kind = unit.rpartition(".")
    name = base if dot and kind in _UNIT_TYPES else unit
    name = name.split("@", 1)[0]
    if name.startswith("rackpool-") and len(name) > len("rackpool-"):
        name = name[len("rackpool-") :]
        return _COMPONENTS.get(name, name)
    return name or "journal"


def message(value: Any) -> str:
    if isinstance(value, list) and all(isinstance(b, int) and 0 <= b < 256 for b in value):
        text = bytes(value).decode("utf-8", errors="replace")
    elif isinstance(value, str):
        text = value
    elif value is None:
        text = ""  # journalctl prints fields over its size limit as null without --all
    else:
        text = str(value)
    return text[:MAX_MESSAGE]


def parse_cursor(cursor: str) -> tuple[str, int] | None:
    """(sequence-number id, sequence number) from a journal cursor."""
    m = _CURSOR.search(cursor)
    return (m.group(1), int(m.group(2), 16)) if m else None


def entry_fields(raw: Mapping[str, Any], host: str) -> dict[str, Any] | None:
    """The index fields of one ``journalctl -o json`` entry; None if it has no cursor."""
    unit = raw.get("UNIT") or raw.get("_SYSTEMD_UNIT") or raw.get("USER_UNIT") or ""
    unit = unit if isinstance(unit, str) else ""
    try:
        ts = int(raw["__REALTIME_TIMESTAMP"]) / 1e6
    except (KeyError, TypeError, ValueError):
        return None
    fields: dict[str, Any] = {
        "ts": iso_utc(ts),
        "level": level(raw.get("PRIORITY")),
        "component": component(unit) if unit else "journal",
        "logger": "systemd" if raw.get("_PID") == "1" else "journal",
        "message": message(raw.get("MESSAGE")),
        "host": host,
        "unit": unit,
    }
    pid = raw.get("_PID")
    if isinstance(pid, str) and pid.isdigit():
        fields["pid"] = int(pid)
    return fields


def journal_source(
    shipper: ShipperConfig, checkpoint: str, host: str, clock: Clock | None = None
) -> JournalSource | None:
    """The source ``shipper.journal`` asks for (None if it asks for none); its cursor is
    kept beside the ``checkpoint`` file unless ``journal.cursor`` says where."""
    j = shipper.journal
    if j is None:
        return None
    cursor = j.cursor or str(Path(checkpoint).parent / "journal-cursor.json")
    return JournalSource(
        j.units,
        cursor,
        host=host,
        directory=j.directory,
        interval=j.interval,
        fields=shipper.fields,
        clock=clock,
    )


class JournalSource:
    """Entries of ``units`` from the journal (``directory``: a journal directory instead
    of the system's), as index documents, after the saved cursor."""

    def __init__(
        self,
        units: list[str],
        cursor_file: str | Path,
        *,
        host: str,
        directory: str | None = None,
        interval: float = 2.0,
        fields: Mapping[str, Any] | None = None,
        clock: Clock | None = None,
        journalctl: str = "journalctl",
    ) -> None:
        self.units = units
        self.cursor_file = Path(cursor_file)
        self.host = host
        self.directory = directory
        self.interval = interval
        self.fields = dict(fields or {})
        self.clock = clock or SystemClock()
        self.journalctl = journalctl
        self.cursor = self._load()  # the last entry read (committed or on its way)
        self._last_run = float("-inf")
        self._full = False  # the last run stopped at max_lines: more is waiting
        self._streams: dict[str, StreamRedactor] = {}
        self._trouble: str | None = None
        self.on_trouble: Callable[[str | None], None] | None = None  # told when it changes

    # -- the cursor -------------------------------------------------------------------

    def _load(self) -> str | None:
        try:
            data = json.loads(self.cursor_file.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning(
                "journal cursor %s unreadable (%s): reading the journal from its start; "
                "entries already indexed are stored once",
                self.cursor_file,
                exc,
                extra={"event": "journal_cursor_lost"},
            )
            return None
        cursor = data.get("cursor") if isinstance(data, dict) else None
        return cursor if isinstance(cursor, str) and cursor else None

    def commit(self, cursor: str) -> None:
        """The index stored every entry up to ``cursor``: resume after it next time."""
        write_private(self.cursor_file, json.dumps({"cursor": cursor}))

    def rewind(self) -> None:
        """Storing failed: read again from the last committed cursor."""
        self.cursor = self._load()
        self._full = True

    # -- reading ----------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [self.journalctl, "-o", "json", "--all", "--no-pager", "--quiet"]
        if self.directory:
            cmd += ["--directory", self.directory]
        if self.cursor:
            cmd += ["--after-cursor", self.cursor]
        for unit in self.units:
            cmd += ["--unit", unit]
        return cmd

    def due(self) -> bool:
        return self._full or self.clock.monotonic() - self._last_run >= self.interval

    def read(self, max_lines: int) -> list[Entry]:
        """Up to ``max_lines`` entries after the cursor (none if not due or on trouble)."""
        if not self.due():
            return []
        self._last_run = self.clock.monotonic()
        entries: list[Entry] = []
        try:
            proc = subprocess.Popen(  # noqa: S603 - a fixed program, our arguments
                self.command(),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
            )
        except OSError as exc:
            self._report(f"cannot run {self.journalctl}: {exc}")
            return []
        assert proc.stdout is not None and proc.stderr is not None
        try:
            for line in proc.stdout:
                entry = self._entry(line)
                if entry is not None:
                    entries.append(entry)
                    if len(entries) >= max_lines:
                        break
        finally:
            self._full = len(entries) >= max_lines
            if proc.poll() is None:
                proc.terminate()
            try:
                _, err = proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                _, err = proc.communicate()
        text = " ".join(err.decode("utf-8", "replace").split())
        if proc.returncode not in (0, -15) and not entries:
            if "No data available" in text:  # no entry of these units (yet): nothing to do
                self._recovered()
                return []
            self._report(f"{self.journalctl} exited {proc.returncode}: {text[:300]}")
            return []
        self._recovered()
        if entries:
            self.cursor = entries[-1].cursor
        return entries

    def docs(self, entries: list[Entry]) -> Iterator[LogDoc]:
        yield from (e.doc for e in entries)

    def _entry(self, line: bytes) -> Entry | None:
        try:
            raw = json.loads(line)
        except ValueError:
            return None
        if not isinstance(raw, dict):
            return None
        cursor = raw.get("__CURSOR")
        place = parse_cursor(cursor) if isinstance(cursor, str) else None
        fields = entry_fields(raw, self.host)
        if place is None or fields is None:
            return None
        assert isinstance(cursor, str)
        unit = fields["unit"]
        stream = self._streams.setdefault(unit, StreamRedactor())
        doc = doc_from_fields(
            fields,
            source=f"journal#{place[0]}",
            seq=place[1],
            now=self.clock.now(),
            defaults=self.fields,
            stream=stream,
        )
        return Entry(cursor, doc)

    def _report(self, trouble: str) -> None:
        if trouble != self._trouble:
            if self.on_trouble is not None:
                self.on_trouble(trouble)
            log.warning(
                "reading the journal: %s; trying again every %gs",
                trouble,
                self.interval,
                extra={"event": "journal_failed"},
            )
        self._trouble = trouble

    def _recovered(self) -> None:
        if self._trouble is not None:
            log.info("reading the journal again", extra={"event": "journal_recovered"})
            self._trouble = None
            if self.on_trouble is not None:
                self.on_trouble(None)
