"""Bad pool configs get errors that name the YAML path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from rackpool.cli import main
from rackpool.core.errors import ConfigError
from rackpool.pool.config import load

GOOD = """
state-dir: /tmp/x
api: {token: abcdefgh12}
labels:
  - name: default
    min-ready: 1
providers:
  - name: r1
    driver: openstack
    cloud: rackpool-r1
    region-name: r1
    pools:
      - name: main
        max-servers: 10
        labels:
          - name: default
            cloud-image: host
            flavor-name: m1.tiny
  - name: s
    driver: static
    pools: [{nodes: [{name: 127.0.0.1, labels: [default]}]}]
"""


def problems(tmp_path: Path, text: str) -> str:
    p = tmp_path / "pool.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError) as exc:
        load(p)
    return str(exc.value)


def test_good_config_loads_and_validates_via_cli(tmp_path: Path, capsys) -> None:
    p = tmp_path / "pool.yaml"
    p.write_text(GOOD)
    cfg = load(p)
    assert cfg.providers[0].name == "r1" and cfg.labels[0].min_ready == 1
    assert main(["config", "validate", str(p)]) == 0
    assert "valid pool config" in capsys.readouterr().out


def test_typo_and_missing_option_name_their_path(tmp_path: Path) -> None:
    text = GOOD.replace("max-servers: 10", "max-server: 10").replace(
        "flavor-name: m1.tiny", "flavor: m1.tiny"
    )
    msg = problems(tmp_path, text)
    assert "providers[0].openstack.pools[0].max-server: unknown option" in msg
    assert (
        "providers[0].openstack.pools[0].labels[0].flavor-name: required option is missing" in msg
    )


def test_undeclared_label_and_unknown_driver(tmp_path: Path) -> None:
    msg = problems(tmp_path, GOOD.replace("labels: [default]", "labels: [gpu]"))
    assert "providers[1].pools[0].nodes[0].labels: label 'gpu' is not declared" in msg
    msg = problems(tmp_path, GOOD.replace("driver: static", "driver: ec2"))
    assert "providers[1]" in msg and "'openstack', 'static', 'fake'" in msg


def test_bad_values_and_yaml(tmp_path: Path, capsys) -> None:
    msg = problems(tmp_path, GOOD.replace("min-ready: 1", "min-ready: -2"))
    assert "labels[0].min-ready: Input should be greater than or equal to 0" in msg
    msg = problems(tmp_path, "labels: [\n")
    assert "invalid YAML" in msg
    p = tmp_path / "bad.yaml"
    p.write_text(GOOD.replace("driver: static", "driver: ec2"))
    assert main(["config", "validate", str(p)]) == 1
    assert "providers[1]" in capsys.readouterr().out


def test_store_section_zookeeper_or_sqlite(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not checked here, only readable\n")
    zk = (
        "store:\n  zookeeper:\n    hosts: 10.0.0.5:2181,10.0.0.6:2181\n    chroot: /rackpool/ci\n"
        f"    tls: {{ca: {ca}, cert: {ca}, key: {ca}}}\n    session-timeout: 5\n"
    )
    p = tmp_path / "pool.yaml"
    p.write_text(GOOD + zk)
    cfg = load(p)
    assert cfg.zookeeper is not None and cfg.zookeeper.chroot == "/rackpool/ci"
    assert cfg.zookeeper.tls is not None and cfg.zookeeper.session_timeout == 5
    p.write_text(GOOD + "store: /var/lib/pool.sqlite\n")  # a file: SQLite, as before
    assert load(p).store_path() == "/var/lib/pool.sqlite" and load(p).zookeeper is None
    assert load(tmp_path / "pool.yaml").zookeeper is None

    bad = GOOD + (
        "store:\n  zookeeper:\n    hosts: 10.0.0.5\n    chroot: rackpool\n"
        f"    tls: {{ca: {tmp_path}/missing.pem, cert: {ca}}}\n    session-timeout: 0\n"
    )
    msg = problems(tmp_path, bad)
    assert "store.zookeeper.hosts: Value error, '10.0.0.5' is not host:port" in msg
    assert "store.zookeeper.chroot: Value error, 'rackpool': an absolute znode path" in msg
    assert "store.zookeeper.tls: Value error, give cert and key together" in msg
    assert "store.zookeeper.session-timeout: Input should be greater than or equal to 1" in msg
    msg = problems(
        tmp_path, GOOD + f"store: {{zookeeper: {{hosts: 'h:1', tls: {{ca: {tmp_path}/x}}}}}}\n"
    )
    assert "store.zookeeper.tls.ca: Value error, cannot read" in msg
    msg = problems(tmp_path, GOOD + "store: {sqlite: a.db, zookeeper: {hosts: 'h:1'}}\n")
    assert "store: Value error, give exactly one of sqlite: FILE or zookeeper:" in msg
