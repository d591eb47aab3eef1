"""Several launchers on one store (the pool part of issue 10); prints figures.

    .venv/bin/python bench/ha.py [--quick] [--only throughput|takeover ...]

(a) launches+releases per minute through the HTTP API on fake providers, one run each:
    1 launcher on SQLite (the embedded default), and 1, 2 and 3 ``rackpool pool serve``
    processes on one ZooKeeper (Debian's package, started here on loopback); every
    request needs a new server (min-ready 0), clients spread over every launcher;
    printed as requests/min and as a ratio to the SQLite run. Each run also checks the
    invariants of tests/functional/pool/ha.py (0 lost, 0 twice, 0 leaked, max-servers).
(b) time from killing (-9) a launcher that handles pending requests to those requests
    being fulfilled by another launcher, for two ZooKeeper session timeouts (the floor:
    a dead launcher's locks vanish only when ZooKeeper expires its session).
Every loop is bounded in count and time; every process started is stopped by PID.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.functional.pool.ha import Churn, Launchers, check  # noqa: E402
from tests.support.zookeeper import ZooKeeper, start_server, unique_chroot  # noqa: E402

# two providers with room for the clients' concurrency: the launchers' work, not the
# providers' limits, bounds the rate
PROVIDERS = {"f1": (("small", "big"), 16), "f2": (("small",), 16)}
ONE_NODE = (["small"],)


def zk_store(zk: ZooKeeper, session_timeout: float = 4) -> dict[str, Any]:
    return {
        "zookeeper": {
            "hosts": zk.hosts,
            "chroot": unique_chroot("/rackpool-bench"),
            "session-timeout": session_timeout,
        }
    }


def throughput(tmp: Path, store: dict[str, Any], n: int, cycles: int) -> dict[str, Any]:
    pool = Launchers(tmp, store, n, min_ready=0, boot_delay=0.0, providers=PROVIDERS).start()
    try:
        churn = Churn(pool, cycles=cycles, workers=12, label_sets=ONE_NODE, deadline=300)
        churn.run()
        report = check(pool, churn)
        return {"per_min": cycles / churn.seconds * 60, "seconds": churn.seconds, **report}
    finally:
        pool.stop()


def takeover(tmp: Path, zk: ZooKeeper, session_timeout: float, pending: int = 4) -> float:
    pool = Launchers(
        tmp, zk_store(zk, session_timeout), 2, min_ready=0, boot_delay=2.0, providers=PROVIDERS
    ).start()
    try:
        victim = pool.client(0)
        ids = [victim.request(["small"], requestor="bench")["id"] for _ in range(pending)]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # pending: nodes building (2 s boots)
            if all(victim.get_request(rid)["state"] == "pending" for rid in ids):
                break
            time.sleep(0.005)
        me = pool.launcher_id(0)
        held = [rid for rid, who in pool.request_holders(ids).items() if who == me]
        pool.kill(0)
        killed = time.monotonic()
        survivor = pool.client(1)
        for rid in held:  # the victim's own: served once its session expired
            done = survivor.wait(rid, session_timeout + 60)
            assert done["state"] == "fulfilled", done
        served = time.monotonic() - killed
        print(f"    ({len(held)} of {pending} held by the killed launcher)")
        for rid in ids:
            survivor.wait(rid, 60)
            for nid in survivor.get_request(rid)["node_ids"]:
                survivor.release(nid)
        check(pool, extra=ids)
        return served
    finally:
        pool.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer cycles")
    ap.add_argument("--only", nargs="*", choices=["throughput", "takeover"])
    args = ap.parse_args()
    only = set(args.only or ["throughput", "takeover"])
    cycles = 150 if args.quick else 400
    with tempfile.TemporaryDirectory(prefix="rackpool-bench-ha-") as d:
        tmp = Path(d)
        zk = start_server(tmp / "zookeeper")
        try:
            print(f"load average before: {os.getloadavg()[0]:.1f} (2-core machine: CPU-bound)")
            if "throughput" in only:
                runs: list[tuple[str, dict[str, Any]]] = []
                sqlite = {"sqlite": str(tmp / "sqlite" / "pool.sqlite")}
                runs.append(("1 launcher, SQLite", throughput(tmp / "sqlite", sqlite, 1, cycles)))
                for n in (1, 2, 3):
                    r = throughput(tmp / f"zk{n}", zk_store(zk), n, cycles)
                    runs.append((f"{n} launcher{'s' if n > 1 else ''}, ZooKeeper", r))
                base = runs[0][1]["per_min"]
                print(f"\n(a) launches+releases per minute, {cycles} one-node requests, 12 clients")
                for name, r in runs:
                    print(
                        f"  {name:<24} {r['per_min']:8,.0f}/min  x{r['per_min'] / base:4.2f}"
                        f"  ({r['seconds']:.1f} s; lost {r['lost']}, twice "
                        f"{r['nodes_assigned_twice']}, launched twice {r['launched_twice']}, "
                        f"peak servers {r['peak_servers']})"
                    )
            if "takeover" in only:
                print("\n(b) kill -9 a launcher with 4 pending requests -> those it held served")
                for st in (2.0, 10.0):
                    served = takeover(tmp / f"takeover{st:g}", zk, st)
                    print(f"  session-timeout {st:4.1f} s: served after {served:5.2f} s")
            print(f"load average after: {os.getloadavg()[0]:.1f}")
        finally:
            zk.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
