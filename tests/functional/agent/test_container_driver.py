"""The container virt driver alone: real runc, real sshd, real namespaces (needs root)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.functional.agent.conftest import make_spec
from tests.functional.agent.helpers import known_hosts, leftovers, make_keypair, ssh

from rackpool.agent.errors import SpawnError
from rackpool.agent.virt.base import LocalImage
from rackpool.core.clock import wait_for

pytestmark = pytest.mark.root

HOST_IMAGE = LocalImage("host", "host")


def spawn(driver, spec):
    return driver.spawn(spec, HOST_IMAGE, spec.flavor, spec.network, spec.keys, spec.user_data)


def keys_from_console(driver, spec) -> list[str]:
    text = driver.console_log(spec.id)
    block = text.split("-----BEGIN SSH HOST KEY KEYS-----")[1].split("-----END")[0]
    return [" ".join(line.split()[:2]) for line in block.strip().splitlines()]


def test_ssh_login_with_host_key_from_console_runs_user_data(container_driver_factory, tmp_path):
    driver = container_driver_factory()
    key, pub = make_keypair(tmp_path)
    script = b"#!/bin/sh\necho user-data-says-hi\necho done > /root/user-data-ran\n"
    spec = make_spec("node-one", (pub,), user_data=script)
    state = spawn(driver, spec)
    assert state.running

    console = driver.console_log(spec.id)
    assert "-----BEGIN SSH HOST KEY FINGERPRINTS-----" in console
    keys = keys_from_console(driver, spec)
    assert sorted(keys) == sorted(state.host_keys)
    known = known_hosts(tmp_path / "known_hosts", spec.network.address, keys)

    out = ssh(spec.network.address, key, known, "hostname; cat /root/user-data-ran")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["node-one", "done"]
    wait_for(lambda: "user-data-says-hi" in driver.console_log(spec.id), 10, "user_data output")

    # the default user logs in with the same key and has passwordless sudo
    out = ssh(spec.network.address, key, known, "id -un; sudo -n id -u", user="cloud")
    assert out.stdout.split() == ["cloud", "0"], out.stderr

    # a wrong host key is refused: the key really is verified
    other = known_hosts(tmp_path / "wrong", spec.network.address, [keys[0].split()[0] + " AAAA"])
    assert ssh(spec.network.address, key, other, "true").returncode != 0


def test_isolation_reachability_and_limits(container_driver_factory, tmp_path, rack_net):
    driver = container_driver_factory("h1")
    driver2 = container_driver_factory("h2", bridge=rack_net["bridge2"])
    key, pub = make_keypair(tmp_path)
    a, b = make_spec("node-a", (pub,), ram_mb=300, vcpus=2), make_spec("node-b", (pub,))
    spawn(driver, a)
    spawn(driver2, b)  # another host's bridge: traffic crosses the rack switch
    ka = known_hosts(tmp_path / "ka", a.network.address, keys_from_console(driver, a))
    kb = known_hosts(tmp_path / "kb", b.network.address, keys_from_console(driver2, b))

    assert ssh(a.network.address, key, ka, "echo private > /root/a-only").returncode == 0
    out = ssh(b.network.address, key, kb, "ls /root; ls /proc | grep -c '^[0-9]'")
    assert "a-only" not in out.stdout
    assert int(out.stdout.split()[-1]) < 15  # its own few processes, not the host's
    out = ssh(b.network.address, key, kb, f"test -e /proc/{os.getpid()}/cmdline && echo seen")
    assert "seen" not in out.stdout
    out = ssh(b.network.address, key, kb, f"ls {tmp_path} 2>&1 || true")
    assert "state-h1" not in out.stdout  # the agent's state (other instances) is hidden

    probe = f"timeout 5 bash -c 'echo > /dev/tcp/{b.network.address}/22' && echo reachable"
    assert "reachable" in ssh(a.network.address, key, ka, probe).stdout

    cg = Path("/sys/fs/cgroup/memory") / driver.cgroup_path(a.id).lstrip("/")
    assert int((cg / "memory.limit_in_bytes").read_text()) == 300 * 1024 * 1024
    cpu = Path("/sys/fs/cgroup/cpu") / driver.cgroup_path(a.id).lstrip("/")
    assert int((cpu / "cpu.cfs_quota_us").read_text()) == 2 * int(
        (cpu / "cpu.cfs_period_us").read_text()
    )


def test_delete_leaves_nothing_behind(container_driver_factory, tmp_path):
    driver = container_driver_factory()
    key, pub = make_keypair(tmp_path)
    spec = make_spec("node-gone", (pub,), user_data=b"#!/bin/sh\nsleep 600 &\n")
    spawn(driver, spec)
    known = known_hosts(tmp_path / "k", spec.network.address, keys_from_console(driver, spec))
    assert (
        ssh(spec.network.address, key, known, "nohup sleep 700 >/dev/null 2>&1 &").returncode == 0
    )
    assert leftovers(driver.state_dir, spec.id, driver.cgroup_path(spec.id))

    driver.destroy(spec.id)

    assert leftovers(driver.state_dir, spec.id, driver.cgroup_path(spec.id)) == []
    assert [i.id for i in driver.list()] == []
    driver.destroy(spec.id)  # idempotent


def test_instances_outlive_the_driver_and_are_adopted(container_driver_factory, tmp_path):
    driver = container_driver_factory()
    key, pub = make_keypair(tmp_path)
    spec = make_spec("node-kept", (pub,))
    first = spawn(driver, spec)
    del driver  # the agent goes away; nothing holds the instance but its own init

    again = container_driver_factory()  # same host, same state dir: a restarted agent
    [state] = again.list()
    assert state.id == spec.id and state.running and state.host_keys == first.host_keys
    known = known_hosts(tmp_path / "k", spec.network.address, state.host_keys)
    assert ssh(spec.network.address, key, known, "hostname").stdout.strip() == "node-kept"


def test_failed_spawn_cleans_up(container_driver_factory, tmp_path):
    driver = container_driver_factory()
    spec = make_spec("node-bad", ())
    broken = LocalImage("img", "rootfs", str(tmp_path / "empty-rootfs"))
    (tmp_path / "empty-rootfs").mkdir()
    with pytest.raises(SpawnError):
        driver.spawn(spec, broken, spec.flavor, spec.network, (), None)
    assert leftovers(driver.state_dir, spec.id, driver.cgroup_path(spec.id)) == []
