"""The controller upgrade hands the API's port over: the region API refuses (almost)
nothing while ``rackpool deploy --upgrade`` moves a controller host from A to B.

One "bare-metal" test host (tests/support/testhosts.py) runs the controller. Deploy A,
deploy again (changed=0), then upgrade to B while a probe opens a new connection to the
API every 50 ms; then roll back to A under the same probe, and deploy A again
(changed=0). The wheels are A built from this checkout and B the same wheel
re-versioned (tests/support/deploy_rack.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.support.deploy_rack import DeployRun, build_wheel, checkout_version, reversion_wheel
from tests.support.testhosts import HostSet, test_hosts

from rackpool.deploy import schema

pytestmark = [pytest.mark.root]

# generous: the goal is < 5 s; the handover should refuse nothing
MAX_REFUSED_SECONDS = 5.0


@dataclass
class Probe:
    """GET / on a new connection every 50 ms; remembers when a request failed."""

    url: str
    interval: float = 0.05
    ok: int = 0
    failures: list[tuple[float, str]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def _run(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(timeout=2, trust_env=False, limits=limits) as http:
            while not self.stop.is_set():
                t = time.monotonic()
                try:
                    good = http.get(self.url + "/").status_code == 200
                    why = "not 200"
                except httpx.HTTPError as exc:
                    good, why = False, f"{type(exc).__name__}: {exc}"
                if good:
                    self.ok += 1
                else:
                    self.failures.append((t, why))
                self.stop.wait(max(0.0, self.interval - (time.monotonic() - t)))

    def __enter__(self) -> Probe:
        self._thread = threading.Thread(target=self._run, name="probe", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def refused_seconds(self) -> float:
        """Time from the first to the last failed probe (+ one interval), 0 if none."""
        if not self.failures:
            return 0.0
        return self.failures[-1][0] - self.failures[0][0] + self.interval


@dataclass
class Controller:
    hosts: HostSet
    workdir: Path
    wheels: Path
    versions: tuple[str, str]

    @property
    def address(self) -> str:
        return self.hosts.hosts["ctl"].address

    @property
    def url(self) -> str:
        return f"http://{self.address}:8774"

    def write_inventory(self, version: str) -> Path:
        h = self.hosts
        data: dict[str, Any] = {
            "version": version,
            "wheel": str(self.wheels),
            "ssh": {"user": "root", "key": str(h.key_path), "known_hosts": str(h.known_hosts)},
            "health": {"timeout": 120},
            "regions": [{
                "name": "r1",
                "controller": {"name": "r1-ctl", "address": self.address},
                "network": {"cidr": h.instance_cidr},
            }],
        }  # fmt: skip
        path = self.workdir / "inventory.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def deploy(self, version: str, *args: str) -> DeployRun:
        inv = self.write_inventory(version)
        argv = ["deploy", str(inv), "--json", "--state-dir", str(self.workdir / "state"), *args]
        t0 = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "rackpool.cli", *argv], capture_output=True, text=True,
            timeout=900, check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        run = DeployRun(argv, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - t0)
        n = len(list(self.workdir.glob("deploy-*.log"))) + 1
        (self.workdir / f"deploy-{n}.log").write_text(
            f"$ rackpool {' '.join(argv)}\nrc={run.rc} {run.seconds:.1f}s\n{run.stdout}\n"
            f"--- stderr\n{run.stderr}"
        )
        assert run.rc == 0, (run.stdout[-3000:], run.stderr[-2000:])
        return run

    def ssh(self, cmd: str) -> str:
        return self.hosts.hosts["ctl"].ssh(cmd, check=False).stdout.strip()

    def unit_state(self, version: str) -> tuple[str, str]:
        unit = f"rackpool-controller@{version}.service"
        return self.ssh(f"systemctl is-active {unit}"), self.ssh(f"systemctl is-enabled {unit}")


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Controller]:
    workdir = tmp_path_factory.mktemp("handover")
    wheels = workdir / "wheels"
    wheels.mkdir()
    a = checkout_version()
    b = f"{a}.post1"
    reversion_wheel(build_wheel(wheels), b)
    with test_hosts(workdir / "hosts", ["ctl"]) as hs:
        yield Controller(hs, workdir, wheels, (a, b))


@pytest.mark.timeout(1800)  # three deploys, an upgrade and a rollback: minutes under load
def test_upgrade_and_rollback_hand_the_port_over(controller: Controller) -> None:
    a, b = controller.versions
    first = controller.deploy(a)
    print(f"first deploy of {a}: {first.seconds:.0f}s")
    again = controller.deploy(a)
    assert again.summary["changed"] == 0, again.stdout[-3000:]
    assert controller.unit_state(a) == ("active", "enabled")

    with Probe(controller.url) as probe:
        up = controller.deploy(a, "--upgrade", "--version", b)
    print(
        f"upgrade {a} -> {b}: {up.seconds:.0f}s; the API refused requests for "
        f"{probe.refused_seconds():.2f}s ({len(probe.failures)} of "
        f"{probe.ok + len(probe.failures)} probes failed: {[why for _, why in probe.failures[:3]]})"
    )
    assert probe.ok > 0
    assert probe.refused_seconds() < MAX_REFUSED_SECONDS, probe.failures[:5]
    assert controller.ssh("readlink /opt/rackpool/current") == f"/opt/rackpool/{b}"
    assert controller.unit_state(b) == ("active", "enabled")
    assert controller.unit_state(a) == ("inactive", "disabled")
    assert controller.ssh("cat /proc/sys/net/ipv4/tcp_migrate_req") == "1"

    with Probe(controller.url) as probe:
        back = controller.deploy(a, "--rollback")
    print(
        f"rollback {b} -> {a}: {back.seconds:.0f}s; the API refused requests for "
        f"{probe.refused_seconds():.2f}s ({len(probe.failures)} failed probes: "
        f"{[why for _, why in probe.failures[:3]]})"
    )
    assert probe.refused_seconds() < MAX_REFUSED_SECONDS, probe.failures[:5]
    assert controller.ssh("readlink /opt/rackpool/current") == f"/opt/rackpool/{a}"
    assert controller.unit_state(a) == ("active", "enabled")
    assert controller.unit_state(b) == ("inactive", "disabled")

    settled = controller.deploy(a)
    assert settled.summary["changed"] == 0, settled.stdout[-3000:]


MIGRATION = b'''"""Only in the test's newer version: a table the rollback must take away."""
import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("rollback_probe", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("rollback_probe")
'''


@pytest.mark.timeout(1800)
def test_rollback_undoes_the_newer_versions_migration(controller: Controller) -> None:
    """Upgrade to a version with one more Alembic migration, roll back: the database is
    at the older version's revision again (the newer version's code downgraded it) and
    the older controller serves."""
    a = controller.versions[0]
    head = schema.head()
    rev = f"{int(head) + 1:04d}"
    newer = f"{a}.post3"
    wheel = next(controller.wheels.glob(f"rackpool-{a}-*.whl"))
    extra = {
        f"rackpool/cloud/migrations/versions/{rev}_rollback_probe.py": MIGRATION.replace(
            b"{rev}", rev.encode()
        ).replace(b"{down}", head.encode())
    }
    reversion_wheel(wheel, newer, extra)

    def revision(version: str) -> str:
        out = controller.ssh(
            f"/opt/rackpool/{version}/bin/python -m rackpool.deploy.schema current "
            f"--config /opt/rackpool/{version}/etc/region.yaml"
        )
        return str(json.loads(out)["current"])

    def tables(version: str) -> str:
        """The region database's tables, read on the host (SQLite, as region.yaml says)."""
        return controller.ssh(
            f"/opt/rackpool/{version}/bin/python - <<'EOF'\n"
            "import yaml, sqlalchemy as sa\n"
            "from rackpool.cloud.config import load_region_config\n"
            f"cfg = load_region_config('/opt/rackpool/{version}/etc/region.yaml')\n"
            "print(sorted(sa.inspect(sa.create_engine(cfg.database_url())).get_table_names()))\n"
            "EOF"
        )

    controller.deploy(a)  # A runs (a no-op if the other test left it so)
    assert revision(a) == head
    up = controller.deploy(a, "--upgrade", "--version", newer)
    assert up.rc == 0
    assert revision(newer) == rev
    assert "rollback_probe" in tables(newer)

    back = controller.deploy(a, "--rollback")
    assert f"Downgrade the database to {head}" in back.stdout, back.stdout[-3000:]
    assert controller.ssh("readlink /opt/rackpool/current") == f"/opt/rackpool/{a}"
    assert revision(a) == head
    assert "rollback_probe" not in tables(a)
    assert controller.unit_state(a) == ("active", "enabled")
    assert controller.unit_state(newer) == ("inactive", "disabled")
    assert httpx.get(controller.url + "/", timeout=10, trust_env=False).status_code == 200
    # and a deploy of A afterwards changes nothing
    settled = controller.deploy(a)
    assert settled.summary["changed"] == 0, settled.stdout[-3000:]
