"""On a host with a log shipper: the deploy's health check for it.

``python -m rackpool.deploy.shippercheck --status /var/lib/rackpool/shipper/shipper.json
--timeout 120`` waits until the shipper's status file (written by ``rackpool ops ship``,
removed before each start) says ``shipping``: the ops API took a batch from it, so its URL
and push token work. Exit 0 with the status as one JSON line; otherwise exit 1 with one
line saying what the shipper reported last (``refused``: a wrong token, ``retrying``: the
ops API unreachable, no file: the shipper is not running). If the shipper cannot read
the journal (``journal_error``), that is printed as a warning on stderr: the log files
still reach the index, so it does not fail the check.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any


class Unhealthy(Exception):
    pass


def read_status(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):  # being replaced: read again
        return {}
    return data if isinstance(data, dict) else {}


def wait_shipping(path: Path, timeout: float, interval: float = 0.25) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = read_status(path)
        if status and status.get("state") == "shipping":
            return status
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    if status is None:
        last = f"{path} is missing: the shipper is not running (journalctl -u rackpool-shipper)"
    else:
        last = f"{status.get('state', 'unknown')}: {status.get('error') or 'no answer yet'}"
    url = (status or {}).get("url", "the ops API")
    raise Unhealthy(f"the log shipper did not reach {url} within {timeout:g}s: {last}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m rackpool.deploy.shippercheck")
    ap.add_argument("--status", required=True, help="the shipper's shipper.json")
    ap.add_argument("--timeout", type=float, default=120)
    args = ap.parse_args(argv)
    try:
        status = wait_shipping(Path(args.status), args.timeout)
    except Unhealthy as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(status))
    if status.get("journal_error"):
        print(f"warning: the shipper cannot read the journal: {status['journal_error']}",
              file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
