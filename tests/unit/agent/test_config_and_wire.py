"""Agent config validation, wire parsing and console parsing."""

from __future__ import annotations

import base64

import pytest

from rackpool.agent.client import parse_instance
from rackpool.agent.config import AgentConfig
from rackpool.agent.virt.base import LocalImage
from rackpool.agent.virt.container.boot import boot_script, parse_host_keys
from rackpool.agent.virt.container.bundle import oci_config
from rackpool.agent.virt.fake import FakeConfig, FakeDriver
from rackpool.cli.config import detect_kind
from rackpool.core.config import parse_model
from rackpool.core.errors import ConfigError

GOOD = {"controller": {"url": "http://127.0.0.1:1", "token": "tok-secret-value"}, "host": {"name": "h1"},
        "state_dir": "/tmp/x"}  # fmt: skip


def test_config_errors_name_the_yaml_path():
    bad = {**GOOD, "network": {"bridge": "far-too-long-bridge-name"}, "drvier": "fake"}
    with pytest.raises(ConfigError) as exc:
        parse_model(bad, AgentConfig, "agent.yaml")
    text = str(exc.value)
    assert "network.bridge" in text and "drvier: unknown option" in text
    assert detect_kind(GOOD) == "agent"
    cfg = parse_model(GOOD, AgentConfig, "agent.yaml")
    assert cfg.driver == "container" and "tok-secret-value" not in repr(cfg)


WIRE = {
    "id": "i1", "name": "n1", "hostname": "n1", "project_id": "p", "status": "BUILD",
    "desired": "running",
    "image": {"id": "host", "name": "host", "builtin": "host", "file_url": "/x"},
    "flavor": {"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1},
    "network": {"address": "198.18.0.5", "prefix": 16, "gateway": "198.18.0.1",
                "mac": "fa:16:3e:00:00:05"},
    "keys": ["ssh-ed25519 AAAA k"], "user_data": base64.b64encode(b"#!/bin/sh\n").decode(),
    "metadata": {"b": "2", "a": "1"},
}  # fmt: skip


def test_parse_instance_decodes_user_data_and_freezes():
    spec = parse_instance(WIRE)
    assert spec.user_data == b"#!/bin/sh\n"
    assert spec.flavor.ram_mb == 512 and spec.network.address == "198.18.0.5"
    assert spec.metadata == (("a", "1"), ("b", "2"))
    with pytest.raises(KeyError):
        parse_instance({k: v for k, v in WIRE.items() if k != "flavor"})


def test_host_keys_parsed_from_cloud_init_style_console():
    console = (
        "noise\n-----BEGIN SSH HOST KEY KEYS-----\n"
        "ssh-ed25519 AAAAC3 root@n1\necdsa-sha2-nistp256 AAAAE2 root@n1\n"
        "-----END SSH HOST KEY KEYS-----\n"
    )
    assert parse_host_keys(console) == ("ssh-ed25519 AAAAC3", "ecdsa-sha2-nistp256 AAAAE2")
    assert parse_host_keys("no keys yet") == ()
    script = boot_script("cloud", ["ed25519", "rsa; rm -rf /"])
    assert "rm -rf" not in script and "BEGIN SSH HOST KEY FINGERPRINTS" in script


def test_oci_config_carries_flavor_limits():
    cfg = oci_config(rootfs="/r", hostname="n1", netns_path="/run/netns/x", init_binary="/i",
                     boot_script="/b", cgroups_path="/rackpool/h/i", limits=True, vcpus=2,
                     ram_mb=512)  # fmt: skip
    res = cfg["linux"]["resources"]
    assert res["memory"]["limit"] == 512 * 2**20
    assert res["cpu"]["quota"] == 2 * res["cpu"]["period"]
    assert {"type": "network", "path": "/run/netns/x"} in cfg["linux"]["namespaces"]


def test_fake_driver_spawns_thousands():
    d = FakeDriver(FakeConfig())
    spec = parse_instance(WIRE)
    for i in range(2000):
        s = parse_instance({**WIRE, "id": f"i{i}"})
        d.spawn(s, LocalImage("host", "host"), spec.flavor, spec.network, (), None)
    assert len(d.list()) == 2000
    assert "BEGIN SSH HOST KEY KEYS" in d.console_log("i7")
    d.destroy("i7")
    assert len(d.list()) == 1999
