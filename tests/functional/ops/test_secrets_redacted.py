"""No planted secret reaches the public index, whichever way the line comes in.

The ops daemon runs as a user starts it; the planted corpus (``tests/data/secrets``)
arrives as a build log it ships from a file, and as the same build log pushed through
``POST /api/push`` — the first part in one request, the private keys one line per
request. Then everything the index returns to a search, and every file it stores, is
searched for every planted value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.support.ops import OpsProcess

from rackpool.core.clock import wait_for

DATA = Path(__file__).resolve().parents[2] / "data" / "secrets"
_MARK = re.compile("«([^»]*)»")
BUILD = {
    "build_uuid": "b-planted",
    "build_name": "tempest-full",
    "build_status": "FAILURE",
    "project": "openstack/nova",
    "tags": ["console"],
    "filename": "job-output.txt",
}


def _planted() -> tuple[list[str], list[str]]:
    raw = (DATA / "planted.txt").read_text().splitlines()
    return [_MARK.sub(r"\1", line) for line in raw], [
        s for line in raw for s in _MARK.findall(line)
    ]


@pytest.fixture
def ops(tmp_path: Path) -> Iterator[dict[str, Any]]:
    logs = tmp_path / "logs"
    logs.mkdir()
    daemon = OpsProcess(tmp_path, [f"{logs}/*.txt"], log_path=logs / "ops.log")
    daemon.start()
    try:
        yield {**daemon.info, "logs": logs, "index": tmp_path / "index"}
    finally:
        daemon.stop()


def _search(url: str, q: str, page: int = 1) -> dict[str, Any]:
    resp = httpx.get(f"{url}/api/search", params={"q": q, "size": 1000, "page": page})
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    return body


def test_no_planted_secret_is_stored_or_returned(ops: dict[str, Any]) -> None:
    url, auth = ops["url"], {"Authorization": f"Bearer {ops['push_token']}"}
    lines, secrets = _planted()
    (ops["logs"] / "job-output.txt").write_text("\n".join(lines) + "\n")

    first_key = next(i for i, line in enumerate(lines) if "BEGIN" in line)
    body = {"fields": BUILD, "lines": lines[:first_key]}
    assert httpx.post(f"{url}/api/push", json=body, headers=auth).status_code == 202
    for i in range(first_key, len(lines)):  # one line per request, as a live log streams
        body = {"fields": BUILD, "lines": [lines[i]], "first_line": i + 1}
        assert httpx.post(f"{url}/api/push", json=body, headers=auth).status_code == 202

    shipped = sum(1 for line in lines if line.strip())
    wait_for(lambda: _search(url, "*")["total"] >= shipped + len(lines), 30, "every line indexed")
    assert _search(url, "build_uuid:b-planted")["total"] == len(lines)
    assert _search(url, 'message:"END OPENSSH PRIVATE KEY"')["total"] == 2

    # everything a reader can get back
    result = _search(url, "*")
    returned = [result]
    for page in range(2, result["total"] // 1000 + 2):
        returned.append(_search(url, "*", page))
    text = httpx.Response(200, json=returned).text
    assert [s for s in secrets if s in text] == []
    # nothing a search for a secret's words finds
    for secret in secrets:
        for word in re.findall(r"[A-Za-z0-9]{8,}", secret)[:2]:
            assert _search(url, f'message:"{word}"')["total"] == 0, secret
    # nothing stored on disk, as written or as index tokens
    stored = b"".join(p.read_bytes() for p in ops["index"].rglob("*") if p.is_file()).lower()
    assert [s for s in secrets if s.lower().encode() in stored] == []
