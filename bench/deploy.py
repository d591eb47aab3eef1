"""Deploy figures on test hosts: scratch and no-change deploys, a rolling upgrade.

    .venv/bin/python bench/deploy.py [--workdir DIR] [--keep]

Boots the e2e rack (tests/support/deploy_rack.py: controller ``ctl``, compute hosts
``c1`` and ``c2`` with the container driver, ``svc`` with the pool and the ops index) and
prints:

* seconds to deploy the rack from scratch, and again with no change (changed=0);
* a rolling upgrade A → B (``--upgrade --batch 1``): total seconds and, per host, when
  ``/opt/rackpool/current`` moved to B (polled over SSH every 0.5 s), so the time each
  host took in the rollout;
* while it runs: the region API probed every 100 ms (``GET /``, 1 s timeout); seconds
  during which it refused or did not answer (goal: under 5 s), and a client requesting,
  using and releasing pool nodes (goal: 0 failed requests).

Needs root (test hosts are runc system containers). Uses slot /26 of 198.19.100.0/24
like the tests; the Debian rootfs and the wheelhouse are cached under /var/cache/rackpool.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from tests.support.deploy_rack import Churn, Rack, deploy_rack  # noqa: E402


class Prober:
    """``GET url`` every ``interval`` s; the seconds during which it failed."""

    def __init__(self, url: str, interval: float = 0.1) -> None:
        self.url, self.interval = url, interval
        self.stop = threading.Event()
        self.probes = 0
        self.failures = 0
        self.down_seconds = 0.0
        self.longest = 0.0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Prober:
        self._thread.start()
        return self

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        down_since: float | None = None
        with httpx.Client(timeout=1.0, trust_env=False) as http:
            while not self.stop.is_set():
                t = time.monotonic()
                try:
                    ok = http.get(self.url).status_code < 500
                except httpx.HTTPError:
                    ok = False
                self.probes += 1
                now = time.monotonic()
                if ok and down_since is not None:
                    self.longest = max(self.longest, now - down_since)
                    self.down_seconds += now - down_since
                    down_since = None
                elif not ok:
                    self.failures += 1
                    down_since = t if down_since is None else down_since
                self.stop.wait(max(0.0, self.interval - (time.monotonic() - t)))
        if down_since is not None:
            self.down_seconds += time.monotonic() - down_since


class Switches:
    """When each host's ``/opt/rackpool/current`` points at ``version`` (seconds since start)."""

    def __init__(self, rack: Rack, version: str) -> None:
        self.rack, self.version = rack, version
        self.t0 = time.monotonic()
        self.at: dict[str, float] = {}
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self.stop.is_set() and len(self.at) < len(self.rack.hosts.names):
            for name in self.rack.hosts.names:
                if name not in self.at:
                    try:
                        if self.rack.running_version(name) == self.version:
                            self.at[name] = time.monotonic() - self.t0
                    except Exception:  # noqa: BLE001 (not deployed yet, ssh hiccup)
                        pass
            self.stop.wait(0.5)

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(10)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", help="keep everything here (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the work dir afterwards")
    args = ap.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="rp-deploybench-"))
    ok = False
    try:
        with deploy_rack(work) as rack:
            a, b = rack.versions[0], rack.versions[1]
            rack.write_inventory(rack.inventory())
            scratch = rack.deploy()
            print(f"deploy from scratch (4 hosts): {scratch.seconds:.1f} s, rc={scratch.rc}",
                  flush=True)  # fmt: skip
            if scratch.rc != 0:
                print(scratch.stdout[-3000:], scratch.stderr[-2000:])
                return 1
            again = rack.deploy()
            print(f"deploy again, no change: {again.seconds:.1f} s, rc={again.rc}, "
                  f"changed={again.summary['changed']}", flush=True)  # fmt: skip

            churn = Churn(rack, max_cycles=200, max_seconds=900)
            client = threading.Thread(target=churn.run, daemon=True)
            client.start()
            rack.write_inventory(rack.inventory(version=b))
            probe = Prober(rack.region_url + "/").start()
            switches = Switches(rack, b)
            up = rack.deploy("--upgrade", "--batch", "1")
            switches.finish()
            probe.finish()
            churn.stop.set()
            client.join(300)
            print(f"rolling upgrade {a} -> {b} (--batch 1): {up.seconds:.1f} s, rc={up.rc}")
            last = 0.0
            for name, at in sorted(switches.at.items(), key=lambda kv: kv[1]):
                print(f"  {name}: on {b} at {at:.1f} s (+{at - last:.1f} s)")
                last = at
            print(f"region API during the upgrade: {probe.probes} probes every 100 ms, "
                  f"{probe.failures} failed, refused/unanswered for {probe.down_seconds:.1f} s "
                  f"in all (longest {probe.longest:.1f} s; goal < 5 s)")  # fmt: skip
            print(f"pool client during the upgrade: {churn.done} nodes requested, used over "
                  f"SSH and released; {len(churn.failed)} failed requests (goal 0); "
                  f"{churn.api_retries} pool API calls retried while it restarted")  # fmt: skip
            for f in churn.failed[:5]:
                print(f"  failed: {f}")
            ok = up.rc == 0
    finally:
        if args.keep or not ok:
            print(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
