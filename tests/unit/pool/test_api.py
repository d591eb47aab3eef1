"""The REST API and nodepool-style endpoints, over HTTP against the real app."""

from __future__ import annotations

from starlette.testclient import TestClient

from rackpool.pool.api import create_app

from .conftest import fake_provider, pool_config

AUTH = {"Authorization": "Bearer secret-token"}


def test_request_wait_release_and_read_endpoints(make_launcher) -> None:
    la = make_launcher(pool_config([fake_provider("f1")], [{"name": "small", "min-ready": 1}]))
    la.start()
    http = TestClient(create_app(la, "secret-token"))
    r = http.post("/api/requests", json={"labels": ["small"], "requestor": "zuul"}, headers=AUTH)
    assert r.status_code == 201
    rid = r.json()["id"]
    req = http.get(f"/api/requests/{rid}", params={"wait": 10}, headers=AUTH).json()
    assert req["state"] == "fulfilled"
    node = req["nodes"][0]
    assert set(node) >= {"interface_ip", "port", "username", "host_keys", "provider", "region",
                         "az", "label"}  # fmt: skip
    rows = http.get("/node-list", headers={"Accept": "application/json"}).json()
    row = next(x for x in rows if x["id"] == node["id"])
    assert row["state"] == "in-use" and row["label"] == ["small"] and row["provider"] == "f1"
    assert set(row) >= {"server_id", "public_ipv4", "ipv6", "age", "locked", "AZ",
                        "connection_port", "launcher", "allocated_to", "hold_job", "comment"}  # fmt: skip
    reqs = http.get("/request-list.json").json()
    assert {"id", "relative_priority", "state", "requestor", "node_types", "nodes",
            "declined_by"} <= set(reqs[0])  # fmt: skip
    assert http.get("/label-list.json").json() == [{"label": "small"}]
    assert http.get("/ready").text == "OK"
    assert "default" not in http.get("/node-list").text  # plain table for humans
    r = http.post(f"/api/nodes/{node['id']}/release", headers=AUTH)
    assert r.json()["state"] == "used"
    metrics = http.get("/metrics").text
    assert "rackpool_pool_launch_seconds_bucket" in metrics
    assert 'rackpool_pool_provider_in_service{provider="f1"} 1.0' in metrics


def test_errors_in_openstack_fault_shape(make_launcher) -> None:
    la = make_launcher(pool_config([fake_provider("f1")], [{"name": "small"}]))
    http = TestClient(create_app(la, "secret-token"))
    assert http.post("/api/requests", json={"labels": ["small"]}).status_code == 401
    r = http.post("/api/requests", json={"labels": []}, headers=AUTH)
    assert r.status_code == 400 and "labels" in r.json()["badRequest"]["message"]
    r = http.get("/api/requests/nope", headers=AUTH)
    assert r.status_code == 404 and "itemNotFound" in r.json()
    r = http.post("/api/nodes/0000000042/release", headers=AUTH)
    assert r.status_code == 404
    r = http.post("/api/providers/f1/explode", headers=AUTH)
    assert r.status_code == 400
    assert http.post("/api/providers/f1/pause", headers=AUTH).json()["paused"] is True
