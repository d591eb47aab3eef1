"""Benchmark: time from ``POST /servers`` to a successful SSH login, and memory per instance.

Starts a region controller (loopback, random port) and two container-driver agents on
this machine, then boots 1 server, then 20 at once, each verified end to end: ACTIVE,
host keys from the console log, ``ssh`` with StrictHostKeyChecking=yes. Needs root.

    sudo .venv/bin/python bench/node_ready.py [--count 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.functional.agent.agents import AgentProcess  # noqa: E402
from tests.functional.agent.helpers import known_hosts, make_keypair, ssh  # noqa: E402
from tests.support.region import AGENT_TOKEN, running_region  # noqa: E402

from rackpool.agent.hostnet import remove_host_network  # noqa: E402
from rackpool.core.clock import wait_for  # noqa: E402

CIDR = "198.19.230.0/24"


def ready_time(conn: Any, tmp: Path, key: Path, flavor: str, name: str) -> float:
    """Seconds from the create call to the first verified SSH login."""
    t0 = time.monotonic()
    server = conn.compute.create_server(
        name=name, image_id="host", flavor_id=flavor, key_name="bench", networks="auto"
    )
    for _ in range(3000):
        s = conn.compute.get_server(server.id)
        if s.status == "ERROR":
            raise RuntimeError(f"{name} failed: {s.fault}")
        if s.status == "ACTIVE":
            console = conn.compute.get_server_console_output(s)["output"]
            if "-----END SSH HOST KEY KEYS-----" in console:
                block = console.split("-----BEGIN SSH HOST KEY KEYS-----")[1].split("-----END")[0]
                keys = [" ".join(x.split()[:2]) for x in block.strip().splitlines()]
                addr = s.access_ipv4 or next(iter(s.addresses.values()))[0]["addr"]
                known = known_hosts(tmp / f"known-{name}", addr, keys)
                if ssh(addr, key, known, "true").returncode == 0:
                    return time.monotonic() - t0
        time.sleep(0.02)
    raise RuntimeError(f"{name} not ready after many attempts")


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, round(q * (len(v) - 1)))]


def _pss_kb(pid: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def memory_per_instance() -> tuple[float, float, float, int]:
    """Mean cgroup usage, process RSS and PSS per instance in MiB, and the count."""
    usage = rss = pss = n = 0
    for host in ("b-h1", "b-h2"):
        base = Path("/sys/fs/cgroup/memory/rackpool") / host
        for cg in base.iterdir() if base.exists() else []:
            if not cg.is_dir():
                continue
            n += 1
            usage += int((cg / "memory.usage_in_bytes").read_text())
            for pid in (cg / "cgroup.procs").read_text().split():
                pss += _pss_kb(pid) * 1024
                with open(f"/proc/{pid}/statm") as f:
                    rss += int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    mib = float(2**20 * max(n, 1))
    return usage / mib, rss / mib, pss / mib, n


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=20)
    ap.add_argument("--rounds", type=int, default=5, help="single-server rounds")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root (container driver)", file=sys.stderr)
        return 2
    tag = os.getpid() % 100000
    switch = f"rpb{tag}s"
    with tempfile.TemporaryDirectory(prefix="rackpool-bench-") as d:
        tmp = Path(d)
        with running_region(
            tmp, name="b", fake_hosts=[], network={"cidr": CIDR},
            hosts={"heartbeat_interval": 1.0, "heartbeat_timeout": 10, "check_interval": 0.5},
        ) as region:  # fmt: skip
            agents = [
                AgentProcess(
                    tmp / f"b-h{n}",
                    {
                        "controller": {"url": region.url, "token": AGENT_TOKEN},
                        "host": {"name": f"b-h{n}", "vcpus": 64, "ram_mb": 65536, "disk_gb": 500},
                        "state_dir": str(tmp / f"b-h{n}" / "state"),
                        "network": {"bridge": f"rpb{tag}h{n}", "switch": switch},
                        "poll_interval": 0.1,
                    },
                ).start()  # fmt: skip
                for n in (1, 2)
            ]
            try:
                conn = region.connect()
                key, pub = make_keypair(tmp)
                conn.compute.create_keypair(name="bench", public_key=pub)
                flavor = min(conn.compute.flavors(), key=lambda f: (f.vcpus, f.ram)).id
                wait_for(
                    lambda: sum(h["state"] == "up" for h in region.region.hosts.list_hosts()) == 2,
                    30, "agents registered",
                )  # fmt: skip
                singles = []
                for i in range(args.rounds):
                    singles.append(ready_time(conn, tmp, key, flavor, f"single-{i}"))
                    for s in list(conn.compute.servers()):
                        conn.compute.delete_server(s)
                print(f"1 server   ({args.rounds} rounds): p50 {pct(singles, .5):.3f}s "
                      f"p95 {pct(singles, .95):.3f}s max {max(singles):.3f}s")  # fmt: skip
                t0 = time.monotonic()
                with ThreadPoolExecutor(args.count) as pool:
                    many = list(pool.map(
                        lambda i: ready_time(conn, tmp, key, flavor, f"many-{i}"),
                        range(args.count),
                    ))  # fmt: skip
                wall = time.monotonic() - t0
                print(f"{args.count} servers at once: p50 {statistics.median(many):.3f}s "
                      f"p95 {pct(many, .95):.3f}s max {max(many):.3f}s, all ready in {wall:.3f}s")  # fmt: skip
                time.sleep(2)  # let user_data-free instances settle to idle
                usage, rss, pss, n = memory_per_instance()
                print(f"memory per idle instance ({n} instances): cgroup usage {usage:.1f} MiB, "
                      f"RSS {rss:.1f} MiB, PSS {pss:.1f} MiB")  # fmt: skip
            finally:
                for s in list(conn.compute.servers()):
                    conn.compute.delete_server(s)
                wait_for(lambda: not list(tmp.glob("b-h*/state/containers/*")), 60, "cleanup")
                for a in agents:
                    a.stop()
                for n in (1, 2):
                    remove_host_network(f"rpb{tag}h{n}")
                remove_host_network(f"rpb{tag}h1", switch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
