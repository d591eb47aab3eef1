"""Every dashboard page rendered by ``rackpool web serve`` (started by ``rackpool up``)
against the real pool, region and ops daemons, with planted activity."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from html import unescape
from pathlib import Path

import httpx
import yaml
from tests.functional.web.helpers import ODD_WORD, PROBE_NODE, PROBE_WORD, QUOTA_NODE, Dashboard
from tests.support import procs

from rackpool.core.clock import wait_for

PAGES = ("/", "/capacity", "/nodes", "/requests", "/labels", "/search?q=*&since=1h", "/bugs")


def text(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", " ", html))


def test_up_prints_the_dashboard_url(dash: Dashboard) -> None:
    assert f"dashboard: {dash.url}/" in dash.up.text().decode()


def test_overview_shows_providers_nodes_requests_regions(dash: Dashboard) -> None:
    r = dash.get("/")
    assert r.status_code == 200
    t = text(r.text)
    for words in ("Providers", "in service", "openstack", "Nodes by state", "answering"):
        assert words in t
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in r.text
    assert "Nodes by provider and state" in r.text and "url(#nodes-solid)" in r.text
    assert '<meta http-equiv="refresh" content="30">' in r.text
    assert '<a href="/nodes?provider=r1">r1</a>' in r.text


def test_nodes_have_nodepools_columns_and_filter_by_url(dash: Dashboard) -> None:
    r = dash.get("/nodes")
    assert r.status_code == 200
    for col in ("ID", "Provider", "Label", "Server ID", "Public IPv4", "State", "Age", "Locked",
                "AZ", "Launcher", "Allocated to", "Hold job", "Comment"):  # fmt: skip
        assert f'<th scope="col">{col}</th>' in r.text
    assert "rackpool-up-launcher" in r.text
    assert 'href="/search?q=node_id%3A%22' in r.text  # each node id links its log lines
    none = dash.get("/nodes?state=no-such-state")
    assert "0 node(s)." in none.text and "Showing only state = no-such-state" in text(none.text)


def test_requests_and_labels(dash: Dashboard) -> None:
    r = dash.get("/requests")
    assert r.status_code == 200 and "web-test" in r.text
    for col in (
        "Request ID",
        "Priority",
        "State",
        "Requestor",
        "Node types",
        "Nodes",
        "Declined by",
    ):
        assert f'<th scope="col">{col}</th>' in r.text
    labels = dash.get("/labels")
    assert ">default<" in labels.text and ">tiny<" in labels.text


def test_search_highlights_hits_and_links_context_and_ids(dash: Dashboard) -> None:
    r = dash.get(f"/search?q={PROBE_WORD}&since=1h")
    assert r.status_code == 200
    assert "1 line(s) match" in r.text
    assert f"<mark>{PROBE_WORD}</mark>" in r.text
    assert f'value="{PROBE_WORD}"' in r.text  # the box keeps the query
    assert f"q=node_id%3A%22{PROBE_NODE}%22" in r.text
    context = re.search(r'href="(/context/[^"]+)"', r.text)
    assert context, r.text
    around = dash.get(unescape(context.group(1)))
    assert around.status_code == 200
    assert f"<strong>{PROBE_WORD} planted line" in around.text
    by_id = dash.get(f'/search?q=node_id:"{PROBE_NODE}"&since=1h')
    assert "1 line(s) match" in by_id.text


def test_search_pages_and_time_range(dash: Dashboard) -> None:
    first = dash.get("/search?q=*&since=1h&size=20")
    assert 'rel="next"' in first.text and "showing 1–20" in first.text
    nxt = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert nxt
    second = dash.get(unescape(nxt.group(1)))
    assert "showing 21–" in second.text and 'rel="prev"' in second.text
    future = dash.get(f"/search?q={PROBE_WORD}&since=15m&until=2000-01-01T00:00:00Z")
    assert "No line matches." in future.text


def test_a_bad_query_is_explained_not_crashed(dash: Dashboard) -> None:
    r = dash.get("/search?q=message:(unclosed")
    assert r.status_code == 400
    assert "Query not accepted" in r.text and 'value="message:(unclosed"' in r.text


def test_known_bugs_with_hourly_graph_and_uncategorized(dash: Dashboard) -> None:
    r = dash.get("/bugs")
    assert r.status_code == 200
    section = r.text.split('id="bug-rackpool-quota-exceeded"', 1)[1].split("</section>", 1)[0]
    # 24 h, 10 days, providers, projects
    assert "<td>1</td><td>1</td><td>r1: 1</td><td>none</td>" in section
    # the graph: the signature's lines per hour, split by outcome (the pool line's event)
    assert "matching lines per hour by outcome, last 10 days: launch_failed 1" in section
    assert "url(#bug" in section and "UTC launch_failed: 1</title>" in section
    sample = re.search(r'href="(/search\?q=[^"]+)"[^>]*>search</a>', section)
    assert sample, section  # a sample hit links to its lines in the search
    assert "1 line(s) match" in dash.get(unescape(sample.group(1))).text
    assert "Quota exceeded" in section and "/context/" in section
    rest = r.text.split('id="uncategorized"', 1)[1]
    assert ODD_WORD in rest and QUOTA_NODE not in rest
    assert re.search(r"Classification rate over 10d: \d+%", rest)
    bug_query = dash.get("/search?q=" + 'message:"Quota exceeded"&since=1h')
    assert "<mark>quota exceeded</mark>" in bug_query.text.lower()


def test_no_page_shows_a_secret(dash: Dashboard) -> None:
    secrets = dash.secrets()
    pages = [*PAGES, "/search?q=password&since=1h", "/search?q=probe&since=1h"]
    seen = 0
    for path in pages:
        html = dash.get(path).text
        seen += len(html)
        for what, value in secrets.items():
            assert value not in html, f"{path} shows the {what}"
    assert seen > 10_000


def _serve(directory: Path, config: dict[str, object]) -> tuple[subprocess.Popen[bytes], str]:
    """``rackpool web serve`` as a user starts it; returns it and its URL (web.json)."""
    directory.mkdir()
    path = directory / "web.yaml"
    path.write_text(yaml.safe_dump({**config, "state_dir": str(directory)}))
    out = directory / "web.out"
    proc = procs.spawn(["web", "serve", "--config", str(path)], out)
    found = directory / "web.json"
    procs.wait_started(proc, found.exists, 30, "rackpool web serve", out)
    return proc, json.loads(found.read_text())["url"]


def test_a_source_that_does_not_answer_is_a_message(tmp_path: Path) -> None:
    closed = {"pool": {"url": "http://127.0.0.1:9", "token": "never-shown-token"},
              "ops": {"url": "http://127.0.0.1:9"}}  # fmt: skip
    proc, url = _serve(tmp_path / "closed", closed)
    try:
        for path in PAGES:
            r = httpx.get(url + path)
            # capacity comes from the dashboard's own history: it still renders
            assert r.status_code == (200 if path == "/capacity" else 503), path
            assert "did not answer" in r.text and "never-shown-token" not in r.text
    finally:
        procs.stop(proc)
    assert proc.returncode == 0
    assert not (tmp_path / "closed" / "web.json").exists()
    proc, url = _serve(tmp_path / "nothing", {})
    try:
        assert "not configured or not running" in httpx.get(url + "/").text
    finally:
        procs.stop(proc)


def _wait_page(dash: Dashboard, path: str, ok: Callable[[str], bool], what: str) -> str:
    """The page once ``ok`` holds for its HTML (the history fills as samples come)."""
    seen: list[str] = []

    def check() -> bool:
        seen[:] = [dash.get(path).text]
        return ok(seen[0])

    wait_for(check, 90, what)
    return seen[0]


def test_overview_plots_health_since_and_hosts(dash: Dashboard) -> None:
    html = _wait_page(
        dash, "/?range=1h", lambda t: re.search(r"Nodes in use by provider: r1 (0\.\d*[1-9]|[1-9])", t) is not None,
        "the fulfilled request's node to show in the in-use plot",
    )  # fmt: skip
    for title in ("Nodes in use by provider", "Launch to ready time (percentiles)",
                  "Launch failures by kind", "Request wait time"):  # fmt: skip
        assert f'aria-label="{title}' in html, title
    # launch→ready and request wait have real points (the min-ready and requested nodes)
    assert re.search(r'aria-label="Launch to ready time \(percentiles\): latest p50 [\d.]+s', html)
    assert re.search(r'aria-label="Request wait time[^"]*: latest p50 [\d.]+s', html)
    t = text(html)
    assert "Since (UTC)" in t and re.search(r"in service\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", t)
    assert "Quota (used / limit, as the pool counts)" in t and "Quota and usage" in t
    # up gives the dashboard its web-reader account (reader role): the hosts are listed
    assert "no reader account configured" not in t and "hosts not read" not in t
    assert "r1-h1" in t and "r1-h2" in t


def test_capacity_share_and_what_the_rack_added(dash: Dashboard) -> None:
    html = _wait_page(
        dash, "/capacity?period=1h", lambda t: "The rack r1 (provider r1) added 100%" in t,
        "node-hours to be counted",
    )  # fmt: skip
    assert 'aria-label="Share of node-hours served: r1 100.0%' in html
    assert 'aria-label="Node-hours served per provider: r1 ' in html
    assert "url(#share-solid)" in html and "rack (our region)" in html
    assert "<strong>1h</strong>" in html and 'href="/capacity?period=10d"' in html


def test_nodes_show_their_global_request_id(dash: Dashboard) -> None:
    html = dash.get("/nodes").text
    assert '<th scope="col">Global request ID</th>' in html
    assert "q=global_request_id%3A%22req-" in html


def test_nodes_and_requests_page_a_big_pool(dash: Dashboard) -> None:
    html = dash.get("/requests?size=100&page=1").text
    assert "<strong>100</strong>" in html and "showing 1–" in html
    assert 'href="/requests?size=500"' in html  # other page sizes keep the filters
    assert 'rel="next"' not in html  # a handful of requests fit one page
