"""Benchmark: real VMs through the region API, against the container driver in the same run.

Prints, for the libvirt driver (domain type as its probe chose: kvm, or qemu = TCG):
- POST /servers → first SSH login verified against the console's host keys, for one VM
  and (``--parallel N``) for N at once;
- qemu's RSS per idle VM (after cloud-init finished), i.e. the memory cost per guest;
- the image build, cold (``--cold``: a fresh cache directory, ~2 min) and cached;
and the same POST → SSH for one container-driver server measured in this run, with the
VM/container ratio (wall times swing with the shared machine's load: compare ratios).
Needs root, ./dev's packages, libvirtd (started when not running).

    .venv/bin/python bench/vm_ready.py [--parallel 4] [--cold]

Here (2 cores shared, load ~2-3, TCG; `--cold --parallel 2`, 2026-12-03): POST -> SSH
53.9 s for 1 VM, 92.3 s median for 2 at once, 0.52 s for a container (103x); qemu RSS
687 MiB per idle 2 GiB guest; image build 59 s cold (110 s on first build), cached 0.00 s.
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


def container_ready(tmp: Path) -> float:
    with container_region(tmp, "198.18.246.0/24", name="ct") as rack:
        conn = rack.region.connect()
        t0 = time.monotonic()
        server = conn.compute.create_server(name="ct-1", image_id="host", flavor_id="1",
                                            key_name=KEY_NAME, networks="auto")  # fmt: skip
        server = conn.compute.wait_for_server(server, wait=120, interval=0.05)
        keys = parse_host_keys(conn.compute.get_server_console_output(server)["output"])
        address = server.access_ipv4 or server.addresses["public"][0]["addr"]
        wait_for(lambda: rack.login(address, keys, "true", tmp).returncode == 0, 60, "ssh ct-1",
                 interval=0.05)  # fmt: skip
        return time.monotonic() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parallel", type=int, default=0, help="also boot N VMs at once")
    ap.add_argument("--cold", action="store_true", help="time a cold image build (~2 min)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root")
    recipe = debian_cloud()
    tmp = Path(tempfile.mkdtemp(prefix="rp-vmbench-"))
    print(f"work dir {tmp} (agent logs; removed after a successful run)", file=sys.stderr)
    if args.cold:
        t = time.monotonic()
        build_image(recipe, "qcow2", tmp / "cold-cache", progress=lambda m: None)
        cold = f"{time.monotonic() - t:.0f} s"
    else:
        cold = "not measured (--cold)"
    t = time.monotonic()
    built = build_image(recipe, "qcow2", DEFAULT_CACHE, progress=lambda m: None)
    cached = time.monotonic() - t
    first = built.meta()["seconds"]["total"]
    ct = container_ready(tmp / "ct")
    with vm_region(tmp / "vm", cidr="198.18.247.0/24", name="bv") as rack:
        domain_type = rack.region.region.hosts.list_hosts()[0]["driver"].split("-")[-1]
        one, server = vm_ready(rack, "bench-1")
        time.sleep(20)  # cloud-init's final stage done, guest idle
        rss = rss_mb(rack.qemu_pid(server.id))
        rack.conn.compute.delete_server(server)
        rack.conn.compute.wait_for_delete(server, wait=180)
        wait_for(lambda: not rack.qemu_alive(server.id), 120, "domain destroyed")
        many: list[float] = []
        if args.parallel:
            with ThreadPoolExecutor(args.parallel) as pool:
                many = list(t for t, _ in pool.map(lambda i: vm_ready(rack, f"bench-p{i}"),
                                                   range(args.parallel)))  # fmt: skip
    load = os.getloadavg()
    print(
        f"domain type                 {domain_type}"
        f"{'' if domain_type == 'kvm' else '  (TCG; kvm: not measured, KVM unusable here)'}"
    )
    print(f"POST -> SSH, 1 VM           {one:6.1f} s")
    if many:
        print(
            f"POST -> SSH, {len(many)} VMs at once  median {statistics.median(many):.1f} s, "
            f"max {max(many):.1f} s"
        )
    else:
        print("POST -> SSH, N at once      not measured (--parallel N)")
    print(f"POST -> SSH, 1 container    {ct:6.2f} s   (VM / container = {one / ct:.0f}x)")
    print(f"qemu RSS per idle VM        {rss:6.0f} MiB (flavor m1.medium: 2 GiB, 2 vCPUs)")
    print(f"image build cold            {cold} (first build in this cache: {first:.0f} s)")
    print(f"image build cached          {cached:6.2f} s")
    print(f"load average                {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
