"""The libvirt driver against libvirt's built-in ``test:///default`` hypervisor.

``test:///default`` keeps its domains in memory for as long as a connection to it is
open, so the tests open ONE connection (module fixture) and hand it to every driver
object: a second ``LibvirtDriver`` on the same state dir and connection stands in for
the agent after a restart. Disks are real: a tiny qcow2 base image made with qemu-img
(qemu-img comes with Debian's qemu-utils, which ./dev installs).
Real guests under qemu:///system: tests/e2e/test_vm_boot.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rackpool.agent.errors import SpawnError
from rackpool.agent.virt.base import LocalImage
from rackpool.agent.virt.libvirt.config import LibvirtConfig
from rackpool.core.instance import FlavorSpec, ImageSpec, InstanceSpec, NetworkSpec

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed")

from rackpool.agent.virt.libvirt import configdrive  # noqa: E402
from rackpool.agent.virt.libvirt.adapter import LibvirtDriver  # noqa: E402

BRIDGE = "rpbtest0"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOfakefakefakefakefakefakefakefakefakefake t@x"
TEST_CONFIG = LibvirtConfig(uri="test:///default", domain_type="test")


@pytest.fixture(scope="module")
def conn() -> Iterator[Any]:
    c = libvirt.open("test:///default")
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
def base_image(tmp_path: Path) -> LocalImage:
    path = tmp_path / "base.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "16M"], check=True)
    return LocalImage("img-1", "disk", str(path))


@pytest.fixture
def driver(conn: Any, tmp_path: Path) -> Iterator[LibvirtDriver]:
    d = LibvirtDriver(TEST_CONFIG, tmp_path / "state", "h1", BRIDGE, conn=conn)
    try:
        yield d
    finally:
        for state in d.list():
            d.destroy(state.id)
        d.close()


_n = iter(range(10, 250))


def spec(name: str = "vm1", user_data: bytes | None = b"#!/bin/sh\necho hi\n") -> InstanceSpec:
    n = next(_n)
    return InstanceSpec(
        id=f"lv{os.getpid()}-{n}",
        name=name,
        hostname=f"{name}.example",
        image=ImageSpec(id="img-1", name="img"),
        flavor=FlavorSpec("f1", "t.small", 2, 384, 1),
        network=NetworkSpec(f"198.19.251.{n}", 24, "198.19.251.1", f"fa:16:3e:00:02:{n:02x}"),
        keys=(KEY,),
        user_data=user_data,
        metadata=(("role", "test"),),
    )


def do_spawn(d: LibvirtDriver, s: InstanceSpec, image: LocalImage) -> None:
    d.spawn(s, image, s.flavor, s.network, s.keys, s.user_data)


def test_domain_xml(driver: LibvirtDriver, conn: Any, base_image: LocalImage) -> None:
    s = spec()
    do_spawn(driver, s, base_image)
    root = ET.fromstring(conn.lookupByName(f"rackpool-{s.id}").XMLDesc(0))
    assert root.findtext("name") == f"rackpool-{s.id}"
    mem = root.find("memory")
    assert mem is not None and int(mem.text or 0) == 384 * 1024  # libvirt reports KiB
    assert root.findtext("vcpu") == "2"
    inst = driver.base / s.id
    disks = {d.find("target").get("dev"): d for d in root.findall("devices/disk")}  # type: ignore[union-attr]
    disk = disks.get("vda")
    assert disk is not None
    assert disk.find("source").get("file") == str(inst / "disk.qcow2")  # type: ignore[union-attr]
    assert disk.find("target").get("bus") == "virtio"  # type: ignore[union-attr]
    cdrom = disks.get("vdb")  # the config drive: a read-only virtio disk
    assert cdrom is not None and cdrom.find("readonly") is not None
    assert cdrom.find("source").get("file") == str(inst / "config.iso")  # type: ignore[union-attr]
    iface = root.find("devices/interface[@type='bridge']")
    assert iface is not None
    assert iface.find("mac").get("address") == s.network.mac  # type: ignore[union-attr]
    assert iface.find("source").get("bridge") == BRIDGE  # type: ignore[union-attr]
    serial = root.find("devices/serial[@type='file']/source")
    assert serial is not None and serial.get("path") == str(inst / "console.log")
    info = subprocess.run(
        ["qemu-img", "info", "--output=json", str(inst / "disk.qcow2")],
        capture_output=True,
        check=True,
    )
    assert json.loads(info.stdout)["backing-filename"] == base_image.path


def test_lifecycle(driver: LibvirtDriver, base_image: LocalImage) -> None:
    s = spec()
    state = driver.spawn(s, base_image, s.flavor, s.network, s.keys, s.user_data)
    assert state.running
    assert [(i.id, i.running) for i in driver.list()] == [(s.id, True)]
    assert driver.console_log(s.id) == ""
    driver.destroy(s.id)
    assert driver.list() == []
    assert not (driver.base / s.id).exists()
    driver.destroy(s.id)  # idempotent


def test_a_spawn_after_an_interrupted_one_starts_clean(
    driver: LibvirtDriver, conn: Any, base_image: LocalImage
) -> None:
    """An agent killed mid-spawn left a directory, or a domain defined but not started:
    the next spawn of that instance removes both and makes a working instance."""
    half = spec()
    (driver.base / half.id).mkdir(parents=True)
    (driver.base / half.id / "disk.qcow2").write_bytes(b"half-written")
    do_spawn(driver, half, base_image)
    assert [(i.id, i.running) for i in driver.list()] == [(half.id, True)]
    assert (driver.base / half.id / "disk.qcow2").read_bytes()[:4] == b"QFI\xfb"
    conn.lookupByName(f"rackpool-{half.id}").destroy()  # defined, not running
    do_spawn(driver, half, base_image)
    assert [(i.id, i.running) for i in driver.list()] == [(half.id, True)]


def test_adoption_by_a_fresh_driver(
    driver: LibvirtDriver, conn: Any, base_image: LocalImage
) -> None:
    s = spec()
    do_spawn(driver, s, base_image)
    # not ours: the test driver's own "test" domain, and a look-alike without our metadata
    conn.defineXML(
        "<domain type='test'><name>rackpool-stranger</name><memory>65536</memory>"
        "<os><type>hvm</type></os></domain>"
    )
    try:
        again = LibvirtDriver(TEST_CONFIG, driver.state_dir, "h1", BRIDGE, conn=conn)
        assert [(i.id, i.running) for i in again.list()] == [(s.id, True)]
        again.destroy(s.id)
        assert driver.list() == []
    finally:
        conn.lookupByName("rackpool-stranger").undefine()
    assert conn.lookupByName("test").isActive()


def test_config_drive_contents(driver: LibvirtDriver, base_image: LocalImage) -> None:
    s = spec("web-1")
    do_spawn(driver, s, base_image)
    iso = driver.base / s.id / "config.iso"
    assert configdrive.volume_label(iso) == "config-2"
    files = configdrive.read_iso(iso)
    meta = json.loads(files["openstack/latest/meta_data.json"])
    assert meta["uuid"] == s.id
    assert meta["name"] == "web-1"
    assert meta["hostname"] == "web-1-example"
    assert list(meta["public_keys"].values()) == [KEY]
    assert meta["availability_zone"] == "nova"
    assert meta["meta"] == {"role": "test"}
    net = json.loads(files["openstack/latest/network_data.json"])
    assert net["links"][0]["ethernet_mac_address"] == s.network.mac
    (n,) = net["networks"]
    assert (n["type"], n["ip_address"], n["netmask"]) == (
        "ipv4",
        s.network.address,
        "255.255.255.0",
    )
    assert n["routes"] == [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "198.19.251.1"}]
    assert files["openstack/latest/user_data"] == s.user_data


def test_no_user_data_file_without_user_data(driver: LibvirtDriver, base_image: LocalImage) -> None:
    s = spec(user_data=None)
    do_spawn(driver, s, base_image)
    files = configdrive.read_iso(driver.base / s.id / "config.iso")
    assert "openstack/latest/user_data" not in files


def test_failed_spawn_cleans_up(driver: LibvirtDriver, tmp_path: Path) -> None:
    s = spec()
    missing = LocalImage("img-x", "disk", str(tmp_path / "missing.qcow2"))
    with pytest.raises(SpawnError):
        do_spawn(driver, s, missing)
    assert driver.list() == []
    assert not (driver.base / s.id).exists()


def test_capacity(driver: LibvirtDriver) -> None:
    cap = driver.capacity()
    assert cap.vcpus > 0 and cap.ram_mb > 0 and cap.disk_gb > 0


def test_factory_builds_the_libvirt_driver(tmp_path: Path) -> None:
    from rackpool.agent.config import AgentConfig
    from rackpool.agent.virt.factory import make_driver

    config = AgentConfig.model_validate(
        {
            "controller": {"url": "http://127.0.0.1:9", "token": "x" * 16},
            "host": {"name": "h1"},
            "state_dir": str(tmp_path),
            "driver": "libvirt",
            "libvirt": {"uri": "test:///default", "domain_type": "test"},
        }
    )
    d = make_driver(config)
    try:
        assert d.name == "libvirt-test" and d.image_form == "disk"
        assert d.list() == []
    finally:
        d.close()


class _VanishingDomain:
    """A real domain that "another thread" destroys just before its state is read."""

    def __init__(self, dom: Any) -> None:
        self._dom = dom

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dom, name)

    def isActive(self) -> int:  # noqa: N802 - libvirt's name
        self._dom.destroy()
        self._dom.undefine()
        return int(self._dom.isActive())  # raises: no such domain


class _RacingConn:
    """The real connection; the victim's domain vanishes while the driver looks at it."""

    def __init__(self, conn: Any, victim: str) -> None:
        self._conn, self._victim = conn, victim

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def listAllDomains(self, flags: int) -> list[Any]:  # noqa: N802 - libvirt's name
        doms = self._conn.listAllDomains(flags)
        return [_VanishingDomain(d) if d.name() == self._victim else d for d in doms]


def test_a_domain_destroyed_while_listing_is_just_gone(
    driver: LibvirtDriver, conn: Any, base_image: LocalImage
) -> None:
    # the agent died of an uncaught "Domain not found" when a delete raced its tick
    s = spec()
    do_spawn(driver, s, base_image)
    racing = LibvirtDriver(
        TEST_CONFIG, driver.state_dir, "h1", BRIDGE, conn=_RacingConn(conn, f"rackpool-{s.id}")
    )
    assert racing.list() == []
    driver.destroy(s.id)
