"""Agent API version skew, with real old code (docs/agent-api.md "Versions").

"Old" is this repository at ``OLD_REVISION``, the last revision of agent API 1.0 (before
the version header existed), taken out with ``git archive`` and run as its own
``python -m rackpool.cli`` (PYTHONPATH points at the old tree; the dependencies are the
venv's). So the old agent and the old controller are the code that shipped, not the
new code told to send an older header.

* an old agent (no header: 1.0) registers with the new controller, which builds and
  deletes a server on it, next to a new agent;
* a new agent (1.1) against the old controller refuses to start with one line naming
  both versions, and does not register;
* the new controller answers an agent speaking a version it does not serve with a 406
  naming both versions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from tests.functional.agent.agents import FAST_HOSTS, AgentProcess, fake_agent_config
from tests.support import procs
from tests.support.region import AGENT_TOKEN, RegionHandle, free_port, running_region

from rackpool.core import agentapi
from rackpool.core.clock import wait_for

OLD_REVISION = "f9a03ce8b29fdd28ba31d8d7e977f6ea735eb1ca"  # agent API 1.0, unversioned
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def old_src(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``src/`` of the repository at OLD_REVISION."""
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    probe = subprocess.run(["git", "-C", str(REPO), "cat-file", "-e", f"{OLD_REVISION}^{{commit}}"],
                           capture_output=True, check=False)  # fmt: skip
    if probe.returncode != 0:
        pytest.skip(f"revision {OLD_REVISION[:10]} is not in this clone (a shallow clone?)")
    out = tmp_path_factory.mktemp("old-rackpool")
    archive = subprocess.run(["git", "-C", str(REPO), "archive", OLD_REVISION, "src"],
                             capture_output=True, check=True, timeout=60)  # fmt: skip
    subprocess.run(["tar", "-x", "-C", str(out)], input=archive.stdout, check=True, timeout=60)
    src = out / "src"
    # the old tree is what such a process imports, and it predates the version module
    where = subprocess.run(
        [sys.executable, "-c", "import rackpool, os; print(os.path.dirname(rackpool.__file__))"],
        env=_old_env(src), capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert where == str(src / "rackpool")
    assert not (src / "rackpool/core/agentapi.py").exists()
    return src


def _old_env(src: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(src), "PYTHONUNBUFFERED": "1"}


def _spawn_old(src: Path, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "rackpool.cli", *argv], env=_old_env(src),
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


@pytest.fixture
def region(tmp_path: Path) -> Iterator[RegionHandle]:
    with running_region(tmp_path, "sk", fake_hosts=[], hosts=FAST_HOSTS) as r:
        yield r


def _hosts(region: RegionHandle) -> dict[str, Any]:
    admin = region.connect(admin=True)
    resp = admin.session.get(f"{region.url}/admin/v1/hosts",
                             headers={"X-Auth-Token": admin.auth_token})  # fmt: skip
    return {h["name"]: h for h in resp.json()["hosts"]}


def test_controller_says_which_versions_it_serves(region: RegionHandle) -> None:
    resp = httpx.get(region.url + "/agent/v1/version")
    assert resp.status_code == 200
    assert resp.json()["agent_api"] == {"min": "1.0", "max": "1.1", "header": agentapi.HEADER}


@pytest.mark.parametrize(
    ("sent", "fix"),
    [("2.0", "upgrade the controller first"), ("1.9", "upgrade the controller first"),
     ("0.9", "upgrade the agent"), ("one", "MAJOR.MINOR")],
)  # fmt: skip
def test_agent_speaking_a_version_the_controller_does_not_serve_gets_406(
    region: RegionHandle, sent: str, fix: str
) -> None:
    resp = httpx.post(
        region.url + "/agent/v1/hosts",
        json={"name": "sk-x", "vcpus": 1, "ram_mb": 512, "disk_gb": 1},
        headers={"X-Agent-Token": AGENT_TOKEN, agentapi.HEADER: sent},
    )
    assert resp.status_code == 406
    message = resp.json()["notAcceptable"]["message"]
    assert fix in message
    if sent != "one":
        assert f"agent API {sent} " in message and "1.0 to 1.1" in message
    assert "sk-x" not in _hosts(region)  # nothing registered


def test_old_agent_keeps_working_with_the_new_controller(
    region: RegionHandle, old_src: Path, tmp_path: Path
) -> None:
    old = AgentProcess(tmp_path / "old", fake_agent_config(region.url, "sk-old", tmp_path / "o"))
    old.proc = _spawn_old(old_src, ["agent", "--config", str(old.config_path),
                                    "--log-format", "text"], old.log_path)  # fmt: skip
    new = AgentProcess(tmp_path / "new", fake_agent_config(region.url, "sk-new", tmp_path / "n"))
    new.start()
    try:
        wait_for(lambda: {h: v["state"] for h, v in _hosts(region).items()}
                 == {"sk-old": "up", "sk-new": "up"}, 30, "both agents up")  # fmt: skip
        conn = region.connect()
        flavor = min(conn.compute.flavors(), key=lambda f: (f.vcpus, f.ram))
        admin = region.connect(admin=True)
        servers = []
        for host in ("sk-old", "sk-new"):  # one on each: the scheduler's choice is not ours
            _host_action(region, admin, _other(host), "disable")
            try:
                s = conn.compute.create_server(name=f"on-{host}", image_id="host",
                                               flavor_id=flavor.id, networks="auto")  # fmt: skip
                servers.append(conn.compute.wait_for_server(s, wait=30, interval=0.2))
            finally:
                _host_action(region, admin, _other(host), "enable")
        placed = {admin.compute.get_server(s.id).compute_host for s in servers}
        assert placed == {"sk-old", "sk-new"}
        for s in servers:
            conn.compute.delete_server(s)
        for s in servers:
            conn.compute.wait_for_delete(s, wait=30, interval=0.2)
        assert {h: v["state"] for h, v in _hosts(region).items()} == {"sk-old": "up",
                                                                       "sk-new": "up"}  # fmt: skip
        assert old.running() and new.running()
        assert "Traceback" not in old.log()
    finally:
        old.stop()
        new.stop()


def _other(host: str) -> str:
    return "sk-new" if host == "sk-old" else "sk-old"


def _host_action(region: RegionHandle, admin: Any, host: str, action: str) -> None:
    resp = admin.session.post(f"{region.url}/admin/v1/hosts/{host}/{action}",
                              headers={"X-Auth-Token": admin.auth_token})  # fmt: skip
    assert resp.status_code == 200, resp.text


def test_new_agent_refuses_an_old_controller(old_src: Path, tmp_path: Path) -> None:
    port = free_port()
    state = tmp_path / "old-region"
    state.mkdir()
    config = state / "region.yaml"
    config.write_text(yaml.safe_dump({
        "region": "old", "state_dir": str(state), "agent_token": AGENT_TOKEN,
        "listen": {"host": "127.0.0.1", "port": port}, "hosts": FAST_HOSTS,
    }))  # fmt: skip
    ready, log = state / "ready.json", state / "region.log"
    controller = _spawn_old(old_src, ["cloud", "serve", "--config", str(config),
                                      "--ready-file", str(ready)], log)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    agent = AgentProcess(tmp_path / "new", fake_agent_config(url, "old-h1", tmp_path / "n"))
    try:
        procs.wait_started(controller, ready.exists, 30, "old controller", log)
        assert httpx.get(url + "/agent/v1/version").status_code == 404  # it predates versions
        agent.start()
        assert agent.proc is not None
        code = agent.proc.wait(30)
        errors = [line for line in agent.log().splitlines() if line.startswith("rackpool: error:")]
        assert code == 2
        assert errors == [
            f"rackpool: error: this agent speaks agent API 1.1 but the controller at {url} "
            "serves agent API only 1.0: upgrade the controller first (rolling upgrade: "
            "controller, then agents)"
        ]
        # it never registered: no credential was issued to it
        assert not (tmp_path / "n" / "host-credential").exists()
    finally:
        agent.stop()
        procs.stop(controller)
