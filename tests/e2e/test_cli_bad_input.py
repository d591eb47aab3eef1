"""Every ``rackpool`` command, run as a user runs it, answers nonsense arguments and bad
files with one line on stderr and exit status 2: never a traceback, never a hang."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BAD_FILES = {
    "missing": None,
    "directory": "DIR",
    "fifo": "FIFO",  # reading it would block forever
    "binary": b"\x00\xff\xfe\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
    "empty": b"",
    "not-yaml": b"key: [unclosed\n  - : : :\n",
    "a-list": b"- 1\n- 2\n",
    "deep": b"[" * 5000 + b"]" * 5000,
    "wrong-types": b"region: 12\nagent_token: 7\nlisten: nope\nindex: 3\nproviders: 5\n",
    # "billion laughs": 14 lines whose aliases nest into 9**14 strings
    "alias-bomb": (
        b'a: &a ["l","l","l","l","l","l","l","l","l"]\n'
        + b"".join(
            f"{n}: &{n} [{','.join(['*' + p] * 9)}]\n".encode()
            for p, n in zip("abcdefghijklm", "bcdefghijklmn", strict=True)
        )
        + b"region: *n\n"
    ),
}
FILE_COMMANDS = {
    "cloud-serve": ["cloud", "serve", "--config", "{f}"],
    "cloud-admin": ["cloud", "admin", "--config", "{f}", "project", "list"],
    "agent": ["agent", "--config", "{f}"],
    "pool-serve": ["pool", "serve", "--config", "{f}"],
    "ops-serve": ["ops", "serve", "--config", "{f}"],
    "ops-ship": ["ops", "ship", "--config", "{f}"],
    "ops-ship-token": ["ops", "ship-token", "--config", "{f}", "c1"],
    "bugs-check": ["bugs", "check", "{f}", "--url", "http://127.0.0.1:9"],
    "config-validate": ["config", "validate", "{f}"],
}
NONSENSE = {
    "no-command": [],
    "unknown-command": ["frobnicate"],
    "unknown-option": ["pool", "serve", "--config", "x", "--bogus"],
    "missing-action": ["cloud"],
    "missing-config": ["cloud", "serve"],
    "ship-missing-config": ["ops", "ship"],
    "ship-token-missing-host": ["ops", "ship-token", "--config", "o.yaml"],
    "int-not-int": ["node", "request", "default", "--priority", "high"],
    "float-not-float": ["node", "request", "default", "--timeout", "soon"],
    "limit-not-int": ["logs", "search", "x", "--limit", "1e999"],
    "bad-choice": ["config", "validate", "f.yaml", "--kind", "toaster"],
    "bad-role": ["cloud", "admin", "--config", "r.yaml", "role", "add", "u", "p", "god"],
    "up-regions": ["up", "--regions", "many"],
    "up-regions-zero": ["up", "--regions", "0", "--state-dir", "{tmp}/upstate"],
    "down-no-state": ["down", "--state-dir", "{tmp}/nowhere"],
    "no-pool-known": ["node", "list", "--state-dir", "{tmp}/nowhere"],
}


def _bad_file(tmp: Path, kind: str) -> str:
    path = tmp / f"bad-{kind}.yaml"
    content = BAD_FILES[kind]
    if content == "DIR":
        path.mkdir()
    elif content == "FIFO":
        os.mkfifo(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    return str(path)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RACKPOOL_")}
    return subprocess.run(
        [sys.executable, "-m", "rackpool.cli", *argv],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip


def _assert_one_line_error(r: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in r.stderr + r.stdout, r.stderr
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rackpool: error: "), r.stderr


def _file_cases() -> list[object]:
    """Every command with a few kinds, and every kind with cloud serve, by default;
    the whole table with ``-m heavy``."""
    cases: list[object] = []
    for command in FILE_COMMANDS:
        for kind in BAD_FILES:
            quick = command == "cloud-serve" or kind in ("missing", "binary", "fifo")
            marks = () if quick else (pytest.mark.heavy,)
            cases.append(pytest.param(command, kind, marks=marks, id=f"{command}-{kind}"))
    return cases


@pytest.mark.parametrize(("command", "kind"), _file_cases())
def test_bad_file(tmp_path: Path, command: str, kind: str) -> None:
    path = _bad_file(tmp_path, kind)
    argv = [a.replace("{f}", path) for a in FILE_COMMANDS[command]]
    r = _run(argv)
    if command == "config-validate" and kind == "wrong-types":
        # a readable config with problems: the report lists each (stdout), status 1
        assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr, r.stdout
        return
    _assert_one_line_error(r)


@pytest.mark.parametrize("case", list(NONSENSE))
def test_nonsense_arguments(tmp_path: Path, case: str) -> None:
    _assert_one_line_error(_run([a.replace("{tmp}", str(tmp_path)) for a in NONSENSE[case]]))
