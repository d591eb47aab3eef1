"""Every region API response carries a request id, and every request is logged once."""

from __future__ import annotations

import io
import json
import logging
import re
import uuid
from collections.abc import Iterator

import pytest
from tests.functional.cloud.conftest import Raw
from tests.support.region import RegionHandle

from rackpool.core.clock import iterate_timeout
from rackpool.core.logs import JsonFormatter

REQ = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """The JSON lines the region logs while the test runs."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("cloud"))
    logger = logging.getLogger("rackpool.cloud")
    old = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(handler)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old)


def _request_lines(stream: io.StringIO, request_id: str) -> list[dict[str, object]]:
    """The request's line: written once the response is sent, so maybe just after."""
    for _ in iterate_timeout(5, "the request's log line"):
        logged = [json.loads(x) for x in stream.getvalue().splitlines() if x.strip()]
        found = [
            x
            for x in logged
            if x.get("request_id") == request_id and x.get("event") == "api_request"
        ]
        if found:
            return found
    return []


def test_compute_response_ids_and_one_info_line(raw: Raw, lines: io.StringIO) -> None:
    r = raw.get("/compute/v2.1/flavors?token=hunter2hunter2")
    assert r.status_code == 200
    rid = r.headers["x-openstack-request-id"]
    assert REQ.match(rid) and r.headers["x-compute-request-id"] == rid
    [line] = _request_lines(lines, rid)
    assert line["level"] == "INFO" and line["method"] == "GET" and line["status"] == 200
    assert line["path"] == "/compute/v2.1/flavors" and "hunter2" not in json.dumps(line)
    assert isinstance(line["duration_ms"], float) and line["project"]


def test_other_apis_have_only_the_openstack_header(raw: Raw) -> None:
    r = raw.get("/image/v2/images")
    assert REQ.match(r.headers["x-openstack-request-id"])
    assert "x-compute-request-id" not in r.headers


def test_a_global_request_id_is_recorded_if_valid(raw: Raw, lines: io.StringIO) -> None:
    mine = f"req-{uuid.uuid4()}"
    r = raw.get("/compute/v2.1/flavors", headers={"X-Openstack-Request-Id": mine})
    rid = r.headers["x-openstack-request-id"]
    assert rid != mine  # the local id is the region's own, as in Nova
    [line] = _request_lines(lines, rid)
    assert line["global_request_id"] == mine
    r = raw.get("/compute/v2.1/flavors", headers={"X-Openstack-Request-Id": "req-'; DROP"})
    [line] = _request_lines(lines, r.headers["x-openstack-request-id"])
    assert "global_request_id" not in line


def test_refusals_are_warnings_with_their_message(raw: Raw, lines: io.StringIO) -> None:
    body = {"server": {"name": "x", "imageRef": "host", "flavorRef": "nope"}}
    r = raw.post("/compute/v2.1/servers", json=body)
    assert r.status_code == 400
    [line] = _request_lines(lines, r.headers["x-openstack-request-id"])
    assert line["level"] == "WARNING" and "flavorRef" in str(line["message"])
    assert "nope" not in json.dumps({k: v for k, v in line.items() if k != "message"})


def test_health_is_debug(region: RegionHandle, raw: Raw, lines: io.StringIO) -> None:
    r = raw.get("/")
    [line] = _request_lines(lines, r.headers["x-openstack-request-id"])
    assert line["level"] == "DEBUG"
