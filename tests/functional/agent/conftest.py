"""Fixtures for agent functional tests: a private rack network and container drivers.

Each test session gets its own bridge names and the test subnet 198.19.250.0/24
(gateway on the session's switch), removed again at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from rackpool.core.instance import FlavorSpec, ImageSpec, InstanceSpec, NetworkSpec

TEST_GATEWAY = "198.19.250.1"
TEST_PREFIX = 24


@pytest.fixture(scope="session")
def rack_net() -> Iterator[dict[str, str]]:
    from rackpool.agent.hostnet import ensure_host_network, remove_host_network

    tag = f"{os.getpid() % 100000}"
    names = {"bridge": f"rpt{tag}a", "bridge2": f"rpt{tag}b", "switch": f"rpt{tag}s"}
    ensure_host_network(names["bridge"], names["switch"], TEST_GATEWAY, TEST_PREFIX)
    ensure_host_network(names["bridge2"], names["switch"], TEST_GATEWAY, TEST_PREFIX)
    try:
        yield names
    finally:
        remove_host_network(names["bridge2"])
        remove_host_network(names["bridge"], names["switch"])


_counter = iter(range(10, 250))


def make_spec(
    name: str,
    keys: tuple[str, ...],
    user_data: bytes | None = None,
    ram_mb: int = 256,
    vcpus: int = 1,
) -> InstanceSpec:
    n = next(_counter)
    iid = f"t{os.getpid()}-{n}"
    return InstanceSpec(
        id=iid,
        name=name,
        hostname=name,
        image=ImageSpec(id="host", name="host", builtin="host"),
        flavor=FlavorSpec("f1", "t.small", vcpus, ram_mb, 1),
        network=NetworkSpec(
            f"198.19.250.{n}", TEST_PREFIX, TEST_GATEWAY, f"fa:16:3e:00:01:{n:02x}"
        ),
        keys=keys,
        user_data=user_data,
    )


@pytest.fixture
def container_driver_factory(tmp_path: Path, rack_net: dict[str, str]) -> Iterator[object]:
    """Build container drivers on private state dirs; destroy what they ran afterwards.

    A driver makes its process (here pytest) a child subreaper while it is open; closing
    every driver puts the flag back (see the autouse check in tests/conftest.py).
    """
    from rackpool.agent.virt.container import ContainerConfig, ContainerDriver

    made: list[ContainerDriver] = []

    def make(host: str = "h1", bridge: str | None = None) -> ContainerDriver:
        d = ContainerDriver(
            ContainerConfig(), tmp_path / f"state-{host}", host, bridge or rack_net["bridge"]
        )
        made.append(d)
        return d

    try:
        yield make
    finally:
        for d in made:
            try:
                for inst in d.list():
                    d.destroy(inst.id)
            finally:
                d.close()
