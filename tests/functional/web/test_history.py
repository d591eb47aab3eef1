"""The dashboard's history of the pool's /metrics: node-hours, increments across pool
restarts, percentiles, thinning without losing totals, and surviving a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from rackpool.web.history import History, Reading, node_hours, parse_metrics, quantile

T0 = 1_800_000_000.0

METRICS = """\
# TYPE rackpool_pool_nodes gauge
rackpool_pool_nodes{provider="r1",state="in-use"} 2.0
rackpool_pool_nodes{provider="r2",state="ready"} 1.0
# TYPE rackpool_pool_launch_errors counter
rackpool_pool_launch_errors_total{kind="quota",provider="r2"} 3.0
# TYPE rackpool_pool_launch_seconds histogram
rackpool_pool_launch_seconds_bucket{label="a",le="1.0",provider="r1",result="ready"} 1.0
rackpool_pool_launch_seconds_bucket{label="a",le="+Inf",provider="r1",result="ready"} 2.0
rackpool_pool_launch_seconds_bucket{label="a",le="1.0",provider="r1",result="quota"} 5.0
"""


def _reading(nodes: dict[str, float], errors: float = 0.0, ready: float = 0.0) -> Reading:
    return Reading(nodes, {"r2|quota": errors}, {"1.0": ready, "+Inf": ready}, {})


def test_parse_the_pools_metrics() -> None:
    r = parse_metrics(METRICS)
    assert r.nodes == {"r1|in-use": 2.0, "r2|ready": 1.0}
    assert r.errors == {"r2|quota": 3.0}
    assert r.launch == {"1.0": 1.0, "+Inf": 2.0}  # result=ready only


def test_node_hours_and_increments_across_a_pool_restart() -> None:
    h = History(interval=60)
    h.record(_reading({"r1|in-use": 2}, errors=5), T0)
    h.record(_reading({"r1|in-use": 2, "r2|ready": 4}, errors=7), T0 + 60)
    h.record(_reading({"r2|ready": 4}, errors=1), T0 + 120)  # the pool restarted: 1 is new
    h.record(_reading({}, errors=1), T0 + 1000)  # after a gap: not integrated
    whole = h.total(T0, T0 + 1000)
    # r1: 2 nodes for 120 s; r2: 4 nodes for 60 s; the gap counts for nothing
    assert node_hours(whole) == pytest.approx({"r1": 240 / 3600, "r2": 240 / 3600})
    assert whole.errors == {"r2|quota": 3.0}  # 2 before the restart, 1 after
    halves = h.buckets(T0, T0 + 120, 2)
    assert halves[0].nodes == {"r1|in-use": 2.0}
    assert halves[1].nodes == pytest.approx({"r1|in-use": 2.0, "r2|ready": 4.0})


def test_quantiles_like_prometheus() -> None:
    assert quantile(0.5, {"1": 10, "2": 20, "+Inf": 20}) == 1.0
    assert quantile(0.75, {"1": 10, "2": 20, "+Inf": 20}) == 1.5
    assert quantile(0.99, {"1": 0, "+Inf": 4}) == 1.0  # beyond the last finite bucket
    assert quantile(0.5, {}) is None


def test_thinning_keeps_totals_and_a_restart_keeps_history(tmp_path: Path) -> None:
    path = tmp_path / "h.sqlite"
    h = History(path, interval=10, raw_hours=0.5, coarse=600, keep_days=1)
    for i in range(800):  # 8000 s of one node in use, a launch every 100 s
        h.record(_reading({"r1|in-use": 1}, ready=i // 10), T0 + i * 10)
    assert len(h) < 400
    whole = h.total(T0, T0 + 8000)
    assert node_hours(whole)["r1"] == pytest.approx(7990 / 3600)
    assert whole.launch["+Inf"] == 79
    h.close()
    again = History(path, interval=10, raw_hours=0.5, coarse=600, keep_days=1)
    assert node_hours(again.total(T0, T0 + 8000))["r1"] == pytest.approx(7990 / 3600)
    again.record(_reading({"r1|in-use": 1}, ready=0), T0 + 200_000)  # a day later
    assert again.first == T0 + 200_000
    again.close()
