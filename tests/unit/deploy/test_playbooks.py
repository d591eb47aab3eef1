"""The shipped playbooks parse (``ansible-playbook --syntax-check`` against an inventory
``rackpool deploy`` wrote), a run's output is read into the summary the CLI prints, and
``rackpool deploy`` turns bad input into one line and exit 2."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from rackpool.cli import main
from rackpool.deploy.ansible_run import PLAYBOOKS, OutputParser, ansible_playbook
from rackpool.deploy.run import DeployOptions, prepare

EXAMPLE = Path(__file__).resolve().parents[3] / "src/rackpool/deploy/examples/inventory.yaml"


@pytest.mark.parametrize("playbook", ["site.yml", "upgrade.yml", "rollback.yml"])
def test_playbook_syntax(tmp_path: Path, playbook: str) -> None:
    try:
        binary = ansible_playbook()
    except Exception as exc:
        pytest.skip(str(exc))
    inv = tmp_path / "inventory.yaml"
    inv.write_text(EXAMPLE.read_text())
    p = prepare(DeployOptions(str(inv), state_dir=str(tmp_path / "st")), build_wheels=False)
    env = dict(os.environ, ANSIBLE_CONFIG=str(p.ansible_dir / "ansible.cfg"))
    proc = subprocess.run(
        [binary, "--syntax-check", "-i", str(p.ansible_dir / "inventory.yml"),
         str(PLAYBOOKS / playbook)],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_role_and_template_ships_in_the_package() -> None:
    roles = {d.name for d in (PLAYBOOKS / "roles").iterdir()}
    assert roles == {"rackpool_common", "rackpool_controller", "rackpool_agent",
                     "rackpool_pool", "rackpool_ops", "rackpool_shipper"}  # fmt: skip
    units = {t.name for t in PLAYBOOKS.glob("roles/*/templates/*.service.j2")}
    assert units == {
        "rackpool-controller@.service.j2",  # one instance per version: the port handover
        *(f"rackpool-{d}.service.j2" for d in ("agent", "pool", "ops", "web", "shipper")),
    }


# What ansible-playbook printed when an upgrade's health gate failed on host c1.
FAILED_RUN = """\
TASK [rackpool_agent : Wait until c1 is registered and heartbeating (instances adopted)] ***
fatal: [c1 -> ctl(198.19.100.2)]: FAILED! =>
    changed: false
    cmd:
    - /opt/rackpool/current/bin/python
    msg: non-zero return code
    rc: 1
    stderr: 'unhealthy: host c1 did not register and heartbeat within 20s: host c1 is
        down, no heartbeat since its agent restarted'
    stderr_lines: <omitted>
    stdout: ''

NO MORE HOSTS LEFT *************************************************************

PLAY RECAP *********************************************************************
c1                         : ok=16   changed=4    unreachable=0    failed=1    skipped=9    rescued=0    ignored=0
c2                         : ok=0    changed=0    unreachable=0    failed=0    skipped=0    rescued=0    ignored=0
ctl                        : ok=18   changed=3    unreachable=0    failed=0    skipped=10   rescued=0    ignored=0
"""


def test_the_output_is_read_into_a_summary_naming_the_failed_host() -> None:
    parser = OutputParser()
    for line in FAILED_RUN.splitlines(keepends=True):
        parser.feed(line)
    result = parser.result(2)
    assert result.summary() == "deploy: ok=34 changed=7 failed=1 unreachable=0"
    assert result.fatal == [(
        "c1",
        "unhealthy: host c1 did not register and heartbeat within 20s: host c1 is down, "
        "no heartbeat since its agent restarted",
    )]  # fmt: skip
    assert result.hosts["c2"]["changed"] == 0
    assert '"changed": 7' in result.as_json("upgrade.yml")


def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "inventory.yaml"
    bad.write_text(EXAMPLE.read_text().replace("address: 198.19.100.11", "address: 'no way'"))
    assert main(["deploy", str(bad), "--state-dir", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "regions[0].hosts[0].address" in err and "Traceback" not in err
    assert main(["deploy", str(tmp_path / "missing.yaml")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert main(["deploy", str(bad), "--drain"]) == 2
    assert "--upgrade only" in capsys.readouterr().err
