"""Benchmark: real VMs through the region API, against the container driver in the same run.

Prints, each as soon as it is measured (a later failure does not lose the earlier ones):
- the image build, cold (``--cold``: a fresh cache directory) and cached;
- POST /servers → first SSH login verified against the console's host keys, for one
  container-driver server and (``--parallel N``) N at once, then the same for libvirt VMs
  (domain type as the probe chose: kvm, or qemu = TCG; KVM is "not measured" where the
  probe found it unusable), with the VM/container ratio (wall times swing with the
  shared machine's load: compare ratios);
- qemu's RSS per idle VM (after cloud-init finished) next to what the guest counts as used;
- the load average at start and end (the machine is shared).
Needs root, ./dev's packages, libvirtd (started when not running).

    .venv/bin/python bench/vm_ready.py [--parallel 4] [--cold]

Figures and the load they were taken under: docs/images.md, "Figures".
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.container_region import KEY_NAME, container_region  # noqa: E402
from tests.support.vm_region import VmRack, vm_region  # noqa: E402

from rackpool.agent.virt.libvirt.adapter import parse_host_keys  # noqa: E402
from rackpool.core.clock import wait_for  # noqa: E402
from rackpool.deploy.images import DEFAULT_CACHE, build_image, debian_cloud  # noqa: E402


def vm_ready(rack: VmRack, name: str) -> tuple[float, Any]:
    """Seconds from the create call to the first verified SSH login; the server."""
    t0 = time.monotonic()
    server, keys = rack.boot(name)
    wait_for(lambda: rack.login(server, keys, "true").returncode == 0, 600, f"ssh {name}",
             interval=0.5)  # fmt: skip
    return time.monotonic() - t0, server


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def container_ready(rack: Any, tmp: Path, name: str) -> float:
    """Seconds from the create call to the first verified SSH login, container driver."""
    conn = rack.region.connect()
    t0 = time.monotonic()
    server = conn.compute.create_server(name=name, image_id="host", flavor_id="1",
                                        key_name=KEY_NAME, networks="auto")  # fmt: skip
    server = conn.compute.wait_for_server(server, wait=300, interval=0.05)
    keys = parse_host_keys(conn.compute.get_server_console_output(server)["output"])
    address = server.access_ipv4 or server.addresses["public"][0]["addr"]
    wait_for(lambda: rack.login(address, keys, "true", tmp).returncode == 0, 120, f"ssh {name}",
             interval=0.05)  # fmt: skip
    return time.monotonic() - t0


def containers(tmp: Path, parallel: int) -> tuple[float, list[float]]:
    """POST -> SSH for one container, then for ``parallel`` at once (same rack)."""
    with container_region(tmp, "198.18.246.0/24", name="ct") as rack:
        one = container_ready(rack, tmp, "ct-1")
        many: list[float] = []
        if parallel:
            with ThreadPoolExecutor(parallel) as pool:
                many = list(pool.map(lambda i: container_ready(rack, tmp, f"ct-p{i}"),
                                     range(parallel)))  # fmt: skip
        return one, many


def idle_memory(rack: VmRack, server: Any, keys: list[str]) -> tuple[float, float]:
    """(qemu RSS, memory the guest itself uses) in MiB, once cloud-init is done."""
    done = lambda: "status: done" in rack.login(server, keys, "cloud-init status").stdout  # noqa: E731
    wait_for(done, 600, "cloud-init finished", interval=2)
    time.sleep(10)  # idle: nothing left to run in the guest
    r = rack.login(server, keys, "grep -E '^(MemTotal|MemAvailable):' /proc/meminfo")
    info = {line.split(":")[0]: int(line.split()[1]) for line in r.stdout.splitlines()}
    guest = (info["MemTotal"] - info["MemAvailable"]) / 1024
    return rss_mb(rack.qemu_pid(server.id)), guest


def _spread(values: list[float], unit: str = "s") -> str:
    return f"median {statistics.median(values):.1f} {unit}, max {max(values):.1f} {unit}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parallel", type=int, default=0, help="also boot N VMs (and N containers) "
                    "at once")  # fmt: skip
    ap.add_argument("--cold", action="store_true", help="time a cold image build (~2 min)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    recipe = debian_cloud()
    tmp = Path(tempfile.mkdtemp(prefix="rp-vmbench-"))
    print(f"work dir {tmp} (agent logs; removed after a successful run)", file=sys.stderr)
    load0 = os.getloadavg()
    out(f"load average at start         {load0[0]:.2f} ({os.cpu_count()} CPUs, shared)")
    if args.cold:
        t = time.monotonic()
        build_image(recipe, "qcow2", tmp / "cold-cache", progress=lambda m: None)
        out(f"image build cold              {time.monotonic() - t:.0f} s")
        shutil.rmtree(tmp / "cold-cache")
    else:
        out("image build cold              not measured (--cold)")
    t = time.monotonic()
    build_image(recipe, "qcow2", DEFAULT_CACHE, progress=lambda m: None)
    out(f"image build cached            {time.monotonic() - t:6.2f} s")
    ct, ct_many = containers(tmp / "ct", args.parallel)
    out(f"POST -> SSH, 1 container      {ct:6.2f} s")
    if ct_many:
        out(f"POST -> SSH, {len(ct_many)} containers      {_spread(ct_many)}")
    with vm_region(tmp / "vm", cidr="198.18.247.0/24", name="bv") as rack:
        domain_type = rack.region.region.hosts.list_hosts()[0]["driver"].split("-")[-1]
        tcg = domain_type != "kvm"
        out(f"domain type                   {domain_type}"
            f"{'  (TCG: KVM unusable here, the probe guest did not boot under KVM)' if tcg else ''}")  # fmt: skip
        one, server = vm_ready(rack, "bench-1")
        out(f"POST -> SSH, 1 VM             {one:6.1f} s   (VM / container = {one / ct:.0f}x)")
        out("KVM (POST -> SSH, 1 VM)       " + ("the line above" if not tcg else "not measured"))
        keys = list(parse_host_keys(rack.conn.compute.get_server_console_output(server)["output"]))
        rss, guest = idle_memory(rack, server, keys)
        out(f"qemu RSS per idle VM          {rss:6.0f} MiB (m1.medium: 2 GiB, 2 vCPUs); the guest "
            f"counts {guest:.0f} MiB in use, the other {rss - guest:.0f} MiB are its page cache, "
            "qemu itself and (TCG) the translation cache")  # fmt: skip
        rack.conn.compute.delete_server(server)
        rack.conn.compute.wait_for_delete(server, wait=180)
        wait_for(lambda: not rack.qemu_alive(server.id), 300, "domain destroyed")
        if args.parallel:
            with ThreadPoolExecutor(args.parallel) as pool:
                many = list(t for t, _ in pool.map(lambda i: vm_ready(rack, f"bench-p{i}"),
                                                   range(args.parallel)))  # fmt: skip
            ratio = statistics.median(many) / statistics.median(ct_many)
            out(f"POST -> SSH, {len(many)} VMs at once    {_spread(many)}   "
                f"(VM / container = {ratio:.0f}x)")  # fmt: skip
        else:
            out("POST -> SSH, N VMs at once    not measured (--parallel N)")
    load = os.getloadavg()
    out(f"load average at end           {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    shutil.rmtree(tmp)


def out(line: str) -> None:
    """Each figure as soon as it is measured: a later failure does not lose it."""
    print(line, flush=True)


if __name__ == "__main__":
    main()
