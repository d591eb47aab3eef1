"""Benchmark secret redaction: how much it catches, what it wrongly hides, what it costs.

    .venv/bin/python bench/redaction.py [--lines 1000000] [--dir /tmp/rackpool-bench]

1. Redaction rate: the planted corpus (``tests/data/secrets/planted.txt``, every line
   holding known secrets marked ``«…»``) goes through the ingest path as a shipped build
   log and as JSON log lines; a secret counts as redacted if no stored field holds it.
2. False-positive rate: the ordinary corpus (``ordinary.txt``: rackpool daemon lines and
   CI build output) plus 100,000 generated daemon lines (``bench/logs.py``'s generator)
   go the same way; a line counts if any stored field differs from the line as written.
3. Ingest rate: ``bench/logs.py``'s pipeline (files → shipper: read, parse, redact,
   analyse → SQLite FTS5 index) over ``--lines`` lines, with redaction on, then with
   it switched off in this same process (the cost of redaction on this machine now),
   and against the figure docs/ops.md gives for the code before this redaction.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from logs import make_lines

import rackpool.ops.ingest as ingest
import rackpool.ops.shipper as shipper_mod
from rackpool.core.secrets import StreamRedactor
from rackpool.ops.index.sqlite import SqliteIndex
from rackpool.ops.shipper import CheckpointFile, Shipper

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "secrets"
DOCUMENTED_LINES_PER_S = 62_000  # docs/ops.md, 1M lines, before this redaction
_MARK = re.compile("«([^»]*)»")


def _docs(lines: list[str]) -> list[dict[str, Any]]:
    """Each line as the index would store it, through the shipper's ingest path."""
    stream = StreamRedactor()
    out = []
    for seq, line in enumerate(lines):
        data: str | bytes = line.encode() if line.startswith("{") else line
        doc = ingest.doc_from_line(data, source="bench", seq=seq, now=0.0, stream=stream)
        out.append(doc.fields)
    return out


def redaction_rate() -> tuple[int, int]:
    raw = (DATA / "planted.txt").read_text().splitlines()
    lines = [_MARK.sub(r"\1", line) for line in raw]
    secrets = [_MARK.findall(line) for line in raw]
    as_json = [orjson.dumps({"message": line, "level": "INFO"}).decode() for line in lines]
    found = total = 0
    for stored in (_docs(lines), _docs(as_json)):
        for fields, planted in zip(stored, secrets, strict=True):
            text = orjson.dumps(fields).decode("unicode_escape")
            total += len(planted)
            found += sum(1 for s in planted if s not in text)
    return found, total


def false_positives() -> tuple[int, int, list[str]]:
    lines = (DATA / "ordinary.txt").read_text().splitlines()
    generated = make_lines(100_000, time.time() - 86400, 86400, random.Random(7))
    lines += [line.decode() for line in generated]
    changed = []
    for line, fields in zip(lines, _docs(lines), strict=True):
        written = orjson.loads(line) if line.startswith("{") else {"message": line}
        if fields != written:
            changed.append(line)
    return len(changed), len(lines), changed


class _NoRedaction:
    open = False

    def redact(self, line: str) -> str:
        return line


@contextmanager
def redaction_off() -> Iterator[None]:
    saved = ingest.may_hold_secret, shipper_mod.StreamRedactor
    ingest.may_hold_secret = lambda text: False  # type: ignore[assignment]
    shipper_mod.StreamRedactor = _NoRedaction  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        ingest.may_hold_secret, shipper_mod.StreamRedactor = saved  # type: ignore[misc]


def ingest_rate(base: Path, n: int) -> tuple[float, float]:
    """Lines per second of wall-clock time, and per second of this process's CPU time
    (both threads; steadier than wall-clock when other work shares the cores)."""
    shutil.rmtree(base, ignore_errors=True)
    (base / "logs").mkdir(parents=True)
    lines = make_lines(n, time.time() - 86400, 86400, random.Random(42))
    per_file = len(lines) // 4 + 1
    for f in range(4):
        chunk = lines[f * per_file : (f + 1) * per_file]
        (base / "logs" / f"daemon{f}.log").write_bytes(b"\n".join(chunk) + b"\n")
    del lines
    index = SqliteIndex(base / "index")
    shipper = Shipper(index, [str(base / "logs" / "*.log")], CheckpointFile(base / "ckpt.json"))
    t0, c0 = time.perf_counter(), time.process_time()
    total = 0
    while added := shipper.poll():
        total += added
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    shipper.close()
    index.close()
    assert total == n, (total, n)
    return total / elapsed, total / cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--dir", default=None)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="rackpool-bench-redaction-"))

    found, total = redaction_rate()
    print(f"redaction:       {found}/{total} planted secrets redacted = {found / total:.1%}")
    fp, lines, changed = false_positives()
    print(f"false positives: {fp}/{lines:,} ordinary lines changed = {fp / lines:.3%}")
    for line in changed[:5]:
        print(f"                 {line[:100]}")

    on, off = [], []  # alternated, so load from elsewhere falls on both alike
    for _ in range(args.repeat):
        on.append(ingest_rate(base, args.lines))
        with redaction_off():
            off.append(ingest_rate(base, args.lines))
    wall_on, wall_off = max(r[0] for r in on), max(r[0] for r in off)
    cpu_on, cpu_off = max(r[1] for r in on), max(r[1] for r in off)
    print(
        f"ingest:          {wall_on:,.0f} lines/s with redaction, {wall_off:,.0f} without "
        f"= {wall_on / wall_off:.2f}x (best of {args.repeat}, {args.lines:,} lines through the "
        "shipper into SQLite FTS5)"
    )
    print(
        f"                 per CPU-second: {cpu_on:,.0f} vs {cpu_off:,.0f} lines "
        f"= {cpu_on / cpu_off:.2f}x"
    )
    print(
        f"                 {wall_on / DOCUMENTED_LINES_PER_S:.2f}x the {DOCUMENTED_LINES_PER_S:,} "
        "lines/s docs/ops.md gives for 1M lines before this redaction (target >= 50,000)"
    )
    if not args.dir:
        shutil.rmtree(base)


if __name__ == "__main__":
    main()
