"""Ansible's files in the deploy state dir, and one ``ansible-playbook`` run.

``<state>/ansible/`` holds ``inventory.yml`` (hosts, groups, how to SSH), ``host_vars/``
(each host's rendered configs: private, 0600 in a 0700 dir), ``group_vars/all.yml``
(version, wheel paths, upgrade options) and ``ansible.cfg``. An operator can run the
same thing by hand::

    ANSIBLE_CONFIG=<state>/ansible/ansible.cfg ansible-playbook \\
        -i <state>/ansible/inventory.yml $(rackpool-ansible-dir)/site.yml
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rackpool.core.errors import ConfigError
from rackpool.core.files import write_private
from rackpool.deploy.inventory import Inventory
from rackpool.deploy.render import HostPlan

PLAYBOOKS = Path(__file__).resolve().parent / "ansible"
_RECAP = re.compile(
    r"^(?P<host>\S+)\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+)"
)
_FATAL = re.compile(r"^(fatal|failed): \[(?P<host>[^\]]+)\]")


@dataclass
class Result:
    rc: int
    hosts: dict[str, dict[str, int]] = field(default_factory=dict)
    fatal: list[tuple[str, str]] = field(default_factory=list)  # (host, message)

    def total(self, key: str) -> int:
        return sum(h.get(key, 0) for h in self.hosts.values())

    def summary(self) -> str:
        return (
            f"deploy: ok={self.total('ok')} changed={self.total('changed')} "
            f"failed={self.total('failed')} unreachable={self.total('unreachable')}"
        )

    def as_json(self, playbook: str) -> str:
        return json.dumps(
            {"playbook": playbook, "rc": self.rc,
             **{k: self.total(k) for k in ("ok", "changed", "failed", "unreachable")},
             "hosts": self.hosts,
             "errors": [{"host": h, "message": m} for h, m in self.fatal]},
            sort_keys=True,
        )  # fmt: skip


def ansible_playbook() -> str:
    """``ansible-playbook`` next to this Python (the venv), else on PATH."""
    here = Path(sys.executable).parent / "ansible-playbook"
    if here.exists():
        return str(here)
    found = shutil.which("ansible-playbook")
    if found is None:
        raise ConfigError(
            "ansible-playbook is not installed; pip install 'rackpool[deploy]' (ansible-core)"
        )
    return found


def write_files(
    inv: Inventory, plans: dict[str, HostPlan], extra: dict[str, Any], state: Path
) -> Path:
    """Write Ansible's inventory, host and group vars and config; return the directory."""
    d = state / "ansible"
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    groups: dict[str, dict[str, Any]] = {}
    for p in plans.values():
        for g in p.groups:
            groups.setdefault(g, {"hosts": {}})["hosts"][p.name] = {}
    hosts = {p.name: p.ssh for p in plans.values()}
    doc = {"all": {"hosts": hosts, "children": groups}}
    write_private(d / "inventory.yml", yaml.safe_dump(doc, sort_keys=True))
    hv = d / "host_vars"
    hv.mkdir(mode=0o700, exist_ok=True)
    for old in hv.glob("*.yml"):
        if old.stem not in plans:
            old.unlink()
    for p in plans.values():
        write_private(hv / f"{p.name}.yml", yaml.safe_dump(p.vars, sort_keys=True))
    gv = d / "group_vars"
    gv.mkdir(mode=0o700, exist_ok=True)
    write_private(gv / "all.yml", yaml.safe_dump(extra, sort_keys=True))
    write_private(d / "ansible.cfg", ansible_cfg(inv, state))
    return d


def ansible_cfg(inv: Inventory, state: Path) -> str:
    ssh_args = "-o ControlMaster=auto -o ControlPersist=60s -o ServerAliveInterval=15"
    if not inv.ssh.host_key_checking:
        ssh_args += " -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
    elif inv.ssh.known_hosts:
        ssh_args += f" -o UserKnownHostsFile={Path(inv.ssh.known_hosts).expanduser()}"
    return "\n".join([
        "# written by rackpool deploy; see docs/deploy.md",
        "[defaults]",
        f"roles_path = {PLAYBOOKS / 'roles'}",
        f"host_key_checking = {inv.ssh.host_key_checking}",
        "retry_files_enabled = False",
        "stdout_callback = default",
        "callback_result_format = yaml",
        "display_skipped_hosts = False",
        f"interpreter_python = {inv.python}",
        "forks = 20",
        "timeout = 30",
        "gathering = explicit",
        f"local_tmp = {state / 'ansible' / 'tmp'}",
        "nocows = True",
        "",
        "[ssh_connection]",
        "pipelining = True",
        f"ssh_args = {ssh_args}",
        f"control_path_dir = {state / 'ansible' / 'cp'}",
        "",
    ])  # fmt: skip


def run(
    ansible_dir: Path, playbook: str, *, check: bool = False, limit: str | None = None,
    verbose: int = 0, out: Any = None,
) -> Result:  # fmt: skip
    """Run ``playbook`` and stream its output; the recap parsed into a Result."""
    out = out or sys.stdout
    argv = [ansible_playbook(), "-i", str(ansible_dir / "inventory.yml"), str(PLAYBOOKS / playbook)]
    if check:
        argv += ["--check", "--diff"]
    if limit:
        argv += ["--limit", limit]
    if verbose:
        argv.append("-" + "v" * min(verbose, 4))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ansible_dir / "ansible.cfg"),
               ANSIBLE_FORCE_COLOR="0", PYTHONUNBUFFERED="1")  # fmt: skip
    parser = OutputParser()
    with subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        cwd=str(ansible_dir), start_new_session=True,
    ) as proc:  # fmt: skip
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                out.write(line)
                out.flush()
                parser.feed(line)
        except BaseException:
            proc.terminate()
            raise
        rc = proc.wait()
    return parser.result(rc)


class OutputParser:
    """Reads ``ansible-playbook``'s default output: the PLAY RECAP and each fatal error."""

    _TASK_LINES = ("TASK ", "PLAY ", "RUNNING HANDLER", "NO MORE HOSTS", "ok:", "changed:",
                   "skipping:", "included:", "fatal:", "failed:")  # fmt: skip

    def __init__(self) -> None:
        self._result = Result(rc=0)
        self._in_recap = False
        self._fatal: tuple[str, list[str]] | None = None

    def feed(self, line: str) -> None:
        if self._fatal is not None:
            if line.strip() and not line.startswith(self._TASK_LINES):
                self._fatal[1].append(line.rstrip("\n"))
                return
            self._close()
        if line.startswith("PLAY RECAP"):
            self._in_recap = True
            return
        m = _FATAL.match(line)
        if m:
            self._fatal = (m.group("host").split(" -> ")[0], [line.split("=>", 1)[-1].strip()])
            return
        r = _RECAP.match(line) if self._in_recap else None
        if r:
            self._result.hosts[r.group("host")] = {
                k: int(r.group(k)) for k in ("ok", "changed", "unreachable", "failed")
            }

    def _close(self) -> None:
        if self._fatal is not None:
            host, lines = self._fatal
            self._result.fatal.append((host, _message(lines)))
            self._fatal = None

    def result(self, rc: int) -> Result:
        self._close()
        self._result.rc = rc
        return self._result


def _yaml_value(lines: list[str], key: str) -> str | None:
    """The value of ``key:`` in Ansible's YAML rendering of a result, folded lines joined."""
    for n, line in enumerate(lines):
        stripped = line.lstrip()
        if not stripped.startswith(f"{key}:"):
            continue
        indent = len(line) - len(stripped)
        parts = [stripped[len(key) + 1 :].strip()]
        for more in lines[n + 1 :]:
            if len(more) - len(more.lstrip()) <= indent:
                break
            parts.append(more.strip())
        value = " ".join(p for p in parts if p not in ("|", "|-", ">", ">-"))
        value = value.strip()
        if value.startswith("'") and value.endswith("'"):
            value = value[1:-1].replace("''", "'")  # YAML single-quoted
        return value.strip('"').strip()
    return None


def _message(lines: list[str]) -> str:
    """The reason of a fatal result: its stderr if any, else its ``msg``."""
    for key in ("stderr", "msg"):
        value = _yaml_value(lines, key)
        if value:
            return value[:500]
    text = "\n".join(lines)
    m = re.search(r'"stderr":\s*"([^"]+)"', text) or re.search(r'"msg":\s*"([^"]*)"', text)
    return (m.group(1) if m else (lines[0] if lines else ""))[:500]
