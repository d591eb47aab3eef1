"""One search shows a node's whole story: the request id of the pool's create is on the
pool's, the region's and the host agent's log lines, found through the ops index."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from tests.functional.agent.agents import fake_rack
from tests.support.ops import OpsProcess

from rackpool.core.clock import wait_for
from rackpool.core.logs import JsonFormatter
from rackpool.pool.launcher import Launcher
from rackpool.pool.store import SqliteStore

from .conftest import openstack_provider, pool_config

REQ = re.compile(r"^req-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@contextmanager
def json_log(logger_name: str, component: str, path: Path) -> Iterator[None]:
    """The lines ``logger_name`` logs in this process, as that daemon would write them."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(JsonFormatter(component, {"host": component}))
    logger = logging.getLogger(logger_name)
    old = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)
        handler.close()


def search(ops: OpsProcess, query: str) -> list[dict[str, Any]]:
    resp = httpx.get(f"{ops.url}/api/search", params={"q": query, "size": 200}, timeout=10)
    resp.raise_for_status()
    hits: list[dict[str, Any]] = resp.json()["hits"]
    return hits


def test_one_request_id_shows_the_node_in_pool_region_and_agent_logs(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    with (
        json_log("rackpool.cloud", "cloud", logs / "region.log"),
        json_log("rackpool.pool", "pool", logs / "pool.log"),
        fake_rack(tmp_path, hosts=1, log_format="json") as rack,
    ):
        agent_log = rack.agents["fk-h1"].log_path
        provider = openstack_provider("fk", rack.region.clouds_yaml, "fk")
        la = Launcher(pool_config([provider]), SqliteStore(tmp_path / "pool.sqlite"))
        la.start()
        try:
            req = la.submit(["default"], requestor="ci")
            done = la.run_until(
                lambda: (r := la.store.get_request(req.id)).done and r, 30, "node ready"
            )
            assert done.state == "fulfilled", done.reason
            node = la.store.get_node(done.nodes[0])
        finally:
            la.stop()
        gid = node.global_request_id
        assert REQ.match(gid), gid
        # the region keeps it with the server, and its own id for the create call
        server = rack.admin.compute.get_server(node.external_id)
        assert server.id == node.external_id

        ops = OpsProcess(tmp_path / "ops", [str(logs / "*.log"), str(agent_log)]).start()
        try:
            query = f'global_request_id:"{gid}"'

            def components() -> set[str]:
                return {h.get("component", "") for h in search(ops, query)}

            wait_for(lambda: {"pool", "cloud", "agent"} <= components(), 20, "lines of all three")
            hits = search(ops, query)
        finally:
            ops.stop()

    by_event = {(h.get("component"), h.get("event") or h.get("message")): h for h in hits}
    # the region's line for the create call, with its own request id
    create = next(
        h
        for h in hits
        if h.get("event") == "api_request"
        and h.get("method") == "POST"
        and h.get("path") == "/compute/v2.1/servers"
    )
    rid = create["request_id"]
    assert REQ.match(rid) and rid != gid
    # the pool: the server created (with the region's id for it) and the node ready
    created = by_event[("pool", "server_created")]
    assert created["cloud_request_id"] == rid and created["instance_id"] == node.external_id
    assert ("pool", "node_ready") in by_event
    # the region's and the agent's lines about the instance carry both ids
    about = [h for h in hits if h.get("instance_id") == node.external_id]
    region_msgs = {h["message"] for h in about if h.get("component") == "cloud"}
    agent_msgs = {h["message"] for h in about if h.get("component") == "agent"}
    assert any(m.startswith("instance active on") for m in region_msgs), region_msgs
    assert any("spawning instance" in m for m in agent_msgs), agent_msgs
    assert any("reporting ACTIVE" in m for m in agent_msgs), agent_msgs
    assert all(h["request_id"] == rid for h in about if h.get("component") != "pool")
