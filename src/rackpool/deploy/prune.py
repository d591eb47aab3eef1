"""On a host: remove old rackpool virtualenvs, keeping the current one and the previous N.

``python -m rackpool.deploy.prune --root /opt/rackpool --keep N [--protect V]... [--dry-run]``
(run by the deploy, ``rackpool_common/tasks/prune.yml``, with the deployed version's
Python after the host converged). Each deploy installs ``/opt/rackpool/<version>/``
beside the old ones so ``--rollback`` can return to them; without pruning a daily
deploy fills the disk.

Kept, whatever their age:

- the version ``current`` points at;
- every ``--protect`` version (the deploy passes the one it deploys, the last deployed
  and the rollback target from its ``versions.yaml``);
- every version a running process uses (a file of its directory is mapped by a
  process: ``/proc/*/maps``, e.g. a controller instance still serving during a
  handover, or an agent not restarted yet);
- the ``keep`` most recently installed others (install time: the mtime of the
  version's ``.installed`` marker, so a rollback to an old version does not make a
  newer one look old). Protected and in-use versions count among them when they are
  recent; older ones are kept on top.

Only directories holding a ``.installed`` marker that names them are candidates (an
unfinished install is left for the next deploy, which redoes it); their wheels in
``dist/`` go with them, and wheelhouses (``wheelhouse/<hash>[.tar]``) other than the
newest ``keep + 1`` and the one in use are removed. Prints one JSON line
``{"removed": [...], "kept": [...], "wheelhouses_removed": [...]}``; exit 2 with one line
for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

MARKER = ".installed"


@dataclass
class Plan:
    keep: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)
    wheelhouses_remove: list[str] = field(default_factory=list)


def installed(root: Path) -> dict[str, float]:
    """Installed versions under ``root`` → install time (their marker's mtime)."""
    out: dict[str, float] = {}
    for d in root.iterdir():
        if d.is_symlink() or not d.is_dir():
            continue
        marker = d / MARKER
        try:
            named = marker.read_text().strip()
            mtime = marker.stat().st_mtime
        except OSError:
            continue
        if named == d.name:
            out[d.name] = mtime
    return out


def current(root: Path) -> str | None:
    link = root / "current"
    try:
        return Path(os.readlink(link)).name if link.is_symlink() else None
    except OSError:
        return None


def in_use(root: Path, proc: Path = Path("/proc")) -> set[str]:
    """Versions under ``root`` whose files a running process has mapped."""
    prefix = str(root.resolve()) + "/"
    used: set[str] = set()
    for pid in proc.iterdir():
        if not pid.name.isdigit():
            continue
        try:
            maps = (pid / "maps").read_text()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        for line in maps.splitlines():
            parts = line.split(None, 5)  # address perms offset dev inode [path]
            path = parts[5].strip() if len(parts) == 6 else ""
            if path.startswith(prefix):
                used.add(path[len(prefix) :].split("/", 1)[0])
    return used


def plan(
    versions: dict[str, float],
    keep: int,
    protect: set[str],
    wheelhouses: dict[str, float],
    current: str | None = None,
) -> Plan:
    """What to keep and remove: ``current``, the ``keep`` most recently installed
    others, and anything in ``protect`` even if older."""
    p = Plan()
    others = sorted((v for v in versions if v != current), key=lambda v: (-versions[v], v))
    newest = set(others[:keep])
    p.keep = sorted(v for v in versions if v == current or v in newest or v in protect)
    p.remove = [v for v in others if v not in newest and v not in protect]
    recent = sorted(wheelhouses, key=lambda h: -wheelhouses[h])
    p.wheelhouses_remove = recent[keep + 1 :]
    return p


def wheelhouses(root: Path) -> dict[str, float]:
    """Unpacked wheelhouses ``<root>/wheelhouse/<hash>`` → their mtime."""
    wh = root / "wheelhouse"
    if not wh.is_dir():
        return {}
    return {
        d.name: d.stat().st_mtime
        for d in wh.iterdir()
        if d.is_dir() and not d.is_symlink() and not d.name.endswith(".tmp")
    }


def prune(
    root: Path,
    keep: int,
    protect: set[str],
    dry_run: bool = False,
    proc: Path = Path("/proc"),
    wheelhouse_in_use: str | None = None,
) -> Plan:
    versions = installed(root)
    safe = set(protect) | in_use(root, proc)
    cur = current(root)
    houses = wheelhouses(root)
    if wheelhouse_in_use:
        houses.pop(wheelhouse_in_use, None)
    p = plan(versions, keep, safe, houses, cur)
    if wheelhouse_in_use:
        p.wheelhouses_remove = [h for h in p.wheelhouses_remove if h != wheelhouse_in_use]
    if dry_run:
        return p
    for v in p.remove:
        # the marker goes first: a prune cut short leaves no half-removed "installed" venv
        (root / v / MARKER).unlink(missing_ok=True)
        shutil.rmtree(root / v)
        for whl in (root / "dist").glob(f"rackpool-{v}-*.whl"):
            whl.unlink(missing_ok=True)
    for h in p.wheelhouses_remove:
        shutil.rmtree(root / "wheelhouse" / h)
        (root / "wheelhouse" / f"{h}.tar").unlink(missing_ok=True)
    return p


def _keep_count(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError("must be at least 1 (the rollback target)")
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rackpool.deploy.prune")
    ap.add_argument("--root", required=True, help="where the versions live (/opt/rackpool)")
    ap.add_argument("--keep", type=_keep_count, required=True,
                    help="previous versions to keep besides the current one")  # fmt: skip
    ap.add_argument("--protect", action="append", default=[], help="never remove this version")
    ap.add_argument("--wheelhouse", help="the wheelhouse hash this deploy uses (kept)")
    ap.add_argument("--dry-run", action="store_true", help="only print what would go")
    args = ap.parse_args(argv)
    root = Path(args.root)
    if not root.is_dir():
        print(f"prune: --root {root} is not a directory", file=sys.stderr)
        return 2
    protect = {v for v in args.protect if v}
    p = prune(root, args.keep, protect, args.dry_run, wheelhouse_in_use=args.wheelhouse)
    print(json.dumps({"removed": p.remove, "kept": p.keep,
                      "wheelhouses_removed": p.wheelhouses_remove,
                      "dry_run": args.dry_run}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
