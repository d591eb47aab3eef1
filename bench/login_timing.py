"""Does login time reveal whether a user exists? POST /identity/v3/auth/tokens with a
wrong password for a real user, and for a user that does not exist, alternating.

Run: .venv/bin/python bench/login_timing.py [--rounds 40]
Prints the median time of each and their ratio; target: the ratio within 0.9-1.1 (both
spend one scrypt check: an unknown user is checked against a dummy hash).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.region import running_region  # noqa: E402


def login(client: httpx.Client, user: str) -> float:
    body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": user, "domain": {"name": "Default"}, "password": "wrong-password-123"}}},
        "scope": {"project": {"name": "ci", "domain": {"name": "Default"}}}}}  # fmt: skip
    t0 = time.perf_counter()
    r = client.post("/identity/v3/auth/tokens", json=body)
    took = time.perf_counter() - t0
    assert r.status_code == 401, r.text
    return took


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_region(Path(tmp), fake_hosts=[]) as r:
        client = httpx.Client(base_url=r.url, timeout=30)
        login(client, "ci")  # warm up
        known: list[float] = []
        unknown: list[float] = []
        for n in range(args.rounds):
            known.append(login(client, "ci"))
            unknown.append(login(client, f"no-such-user-{n}"))
        mk, mu = statistics.median(known), statistics.median(unknown)
        print(f"wrong password, existing user: median {mk * 1000:.1f} ms")
        print(f"unknown user:                  median {mu * 1000:.1f} ms")
        print(f"ratio unknown/existing: {mu / mk:.2f} (target 0.9-1.1)")


if __name__ == "__main__":
    main()
