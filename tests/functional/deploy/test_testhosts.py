"""The deploy tests' "bare-metal" hosts: systemd boots, SSH works, runc runs nested inside,
and teardown leaves nothing behind (tests/support/testhosts.py)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.testhosts import CGROUP_PARENT, NETNS_DIR, HostSet, test_hosts

from rackpool.core.clock import wait_for

pytestmark = [pytest.mark.root]

# An instance range of this test's own, inside the host's netns only.
NESTED_GATEWAY = "198.19.109.1"
NESTED_ADDRESS = "198.19.109.2"


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostSet]:
    with test_hosts(tmp_path_factory.mktemp("hosts"), ["h1", "h2"]) as hs:
        hs.instance_network(["h1", "h2"])
        yield hs


def test_hosts_boot_to_running_systemd(hosts: HostSet) -> None:
    for host in hosts.hosts.values():
        proc = host.ssh("systemctl is-system-running --wait", timeout=60)
        assert proc.stdout.strip() == "running", host.ssh("systemctl --failed").stdout
        assert host.ssh("cat /proc/1/comm").stdout.strip() == "systemd"
        assert host.ssh("hostname").stdout.strip() == host.name


def test_each_host_has_its_address_and_own_host_keys(hosts: HostSet) -> None:
    h1, h2 = hosts.hosts["h1"], hosts.hosts["h2"]
    assert h1.address != h2.address
    assert set(h1.host_keys).isdisjoint(h2.host_keys)
    out = h1.ssh("ip -o -4 addr show dev eth0", check=True).stdout
    assert f"{h1.address}/{hosts.prefix}" in out
    # the keys sshd serves are the ones the fixture recorded (StrictHostKeyChecking=yes)
    served = h2.ssh("cat /etc/ssh/ssh_host_ed25519_key.pub", check=True).stdout.split()[:2]
    assert " ".join(served) in h2.host_keys


def test_hosts_reach_each_other_and_the_machine_but_resolve_nothing(hosts: HostSet) -> None:
    h1, h2 = hosts.hosts["h1"], hosts.hosts["h2"]
    assert h1.ssh(f"ping -c1 -W2 {h2.address}").returncode == 0
    assert h2.ssh(f"ping -c1 -W2 {hosts.bridge_address}").returncode == 0
    assert h1.ssh("getent hosts h2", check=True).stdout.split()[0] == h2.address
    # DNS gotcha: no resolver, so a lookup fails at once instead of hanging
    proc = h1.ssh("timeout 5 getent hosts deb.debian.org; echo rc=$?", timeout=20)
    assert "rc=2" in proc.stdout
    assert h1.ssh("ip route show default").stdout.strip() == ""  # no way out


def test_preinstalled_tools(hosts: HostSet) -> None:
    out = hosts.hosts["h1"].ssh(
        "runc --version && tini-static --version && python3 -m venv /tmp/v && "
        "/tmp/v/bin/python -c 'import sys; print(sys.version_info[:2])' && "
        "python3 -c 'import apt' && sudo -n true && echo ok",
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def nested_setup(bridge: str, address: str, gateway: str | None) -> str:
    """Inside a host: an instance netns on ``bridge`` (made, with ``gateway``, if given)."""
    make = (
        f"ip link add {bridge} type bridge\nip addr add {gateway}/24 dev {bridge}\n"
        f"ip link set {bridge} up\n"
        if gateway
        else ""
    )
    return f"""
set -e
d=/var/tmp/nested
rm -rf $d; mkdir -p $d/rootfs/usr $d/rootfs/proc $d/rootfs/dev $d/rootfs/sys $d/rootfs/tmp
for l in bin sbin lib lib64; do ln -s usr/$l $d/rootfs/$l; done
{make}ip netns add inst1
ip link add rpnv1 type veth peer name eth0 netns inst1
ip link set rpnv1 master {bridge} up
ip -n inst1 link set lo up
ip -n inst1 addr add {address}/24 dev eth0
ip -n inst1 link set eth0 up
"""


def _nested_config(ping: str = NESTED_GATEWAY) -> dict[str, Any]:
    def mount(dest: str, typ: str, src: str, opts: list[str]) -> dict[str, object]:
        return {"destination": dest, "type": typ, "source": src, "options": opts}

    caps = ["CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN"]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False,
            "user": {"uid": 0, "gid": 0},
            "args": [
                "/bin/sh",
                "-c",
                "echo nested:$(hostname):$$; ip -o -4 addr show eth0; "
                f"ping -c1 -w5 {ping} >/dev/null && echo gateway-ok",
            ],
            "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"],
            "cwd": "/",
            "capabilities": {k: caps for k in ("bounding", "effective", "permitted")},
        },
        "root": {"path": "rootfs", "readonly": False},
        "hostname": "inst1",
        "mounts": [
            mount("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
            mount("/dev", "tmpfs", "tmpfs", ["nosuid", "mode=755"]),
            mount("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "ro"]),
            mount("/usr", "bind", "/usr", ["rbind", "ro"]),
        ],
        "linux": {
            "namespaces": [
                {"type": "pid"},
                {"type": "mount"},
                {"type": "uts"},
                {"type": "network", "path": "/run/netns/inst1"},
            ],  # fmt: skip
            "cgroupsPath": "/rackpool/nested1",
        },
    }


def test_nested_runc_inside_a_host_on_the_instance_network(hosts: HostSet) -> None:
    """What the container driver does on a compute host: runc in its own netns on the
    host's instance bridge, reachable from the other host and from this machine."""
    h1, h2 = hosts.hosts["h1"], hosts.hosts["h2"]
    address = hosts.instance_address(0).rsplit(".", 1)[0] + ".10"
    h2.ssh("bash -s", input=nested_setup("rpbr0", address, None), check=True)
    config = _nested_config(ping=hosts.instance_gateway)
    config["process"]["args"][-1] += (
        f"; ping -c1 -w5 {h1.instance_address} >/dev/null && echo h1-ok; "
        "timeout 5 python3 -m http.server -b 0.0.0.0 8080 >/dev/null 2>&1; true"
    )
    h2.ssh("cat > /var/tmp/nested/config.json", input=json.dumps(config), check=True)
    run = subprocess.Popen(h2.ssh_argv("cd /var/tmp/nested && runc run nested1"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        # while it runs: this machine and the other host reach the nested instance
        wait_for(lambda: _answers(f"http://{address}:8080/"), 10, "the nested instance")
        assert h1.ssh(f"ping -c1 -W2 {address}").returncode == 0
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
        run.wait()
    assert run.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "nested:inst1:1"  # its own pid and uts namespaces
    assert f"inet {address}/24" in lines[1]
    assert lines[2:4] == ["gateway-ok", "h1-ok"]
    # and its cgroup sat below the host's (it is gone now: runc run deletes on exit)
    assert h2.ssh("runc list -q").stdout.strip() == ""


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _leftovers(hs: HostSet, workdir: Path) -> list[str]:
    found = []
    ids = [h.container_id for h in hs.hosts.values()]
    found += [f"netns {p.name}" for p in NETNS_DIR.glob("*") if p.name in ids]
    mounts = Path("/proc/self/mountinfo").read_text()
    found += [f"mount {line.split()[4]}" for line in mounts.splitlines()
              if str(workdir) in line.split()[4]]  # fmt: skip
    found += [f"link {p.name}" for p in Path("/sys/class/net").iterdir()
              if p.name == hs.bridge or p.name.startswith(f"rpth{hs.slot}")]  # fmt: skip
    for cg in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT}/*"):
        if cg.name in ids:
            found.append(f"cgroup {cg}")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            continue
        if any(f"/{CGROUP_PARENT}/{i}" in cgroups for i in ids):
            found.append(f"process {pid}")
    runc = subprocess.run(["runc", "--root", str(hs.runc_root), "list", "-q"],
                          capture_output=True, text=True, check=False).stdout.split()  # fmt: skip
    found += [f"container {c}" for c in runc if c in ids]
    return found


def test_teardown_leaves_nothing(tmp_path: Path) -> None:
    """A host running a nested container and a process of its own powers off cleanly."""
    with test_hosts(tmp_path, ["t1"]) as hs:
        t1 = hs.hosts["t1"]
        t1.ssh("systemd-run --unit=busy sleep 1000", check=True)
        t1.ssh("bash -s", input=nested_setup("rpnbr0", NESTED_ADDRESS, NESTED_GATEWAY),
               check=True)  # fmt: skip
        t1.ssh("cat > /var/tmp/nested/config.json", input=json.dumps(
            {**_nested_config(), "process": {**_nested_config()["process"],
                                             "args": ["/bin/sleep", "1000"]}}), check=True)  # fmt: skip
        t1.ssh("cd /var/tmp/nested && runc run -d nested1 </dev/null >/dev/null 2>&1",
               check=True)  # fmt: skip
        assert t1.ssh("runc list -q").stdout.split() == ["nested1"]
        assert _leftovers(hs, tmp_path) != []  # the check sees a live host
    assert _leftovers(hs, tmp_path) == []
