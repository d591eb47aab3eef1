"""The dashboard in Debian's Chromium (driven by Playwright) against a fake-driver
``rackpool up`` with planted activity: every page renders, a search from the box
finds the planted line, links lead on, no page holds a secret. Screenshots of every
page are saved under the test's tmp dir."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright
from tests.functional.web.helpers import PROBE_NODE, PROBE_WORD, Dashboard, start

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    d = start(tmp_path_factory.mktemp("web-browser"))
    try:
        yield d
    finally:
        d.up.stop()
        d.up.kill_leftovers()


def test_every_page_in_chromium(dash: Dashboard, tmp_path: Path) -> None:
    shots = tmp_path / "screenshots"
    shots.mkdir()
    secrets = dash.secrets()
    seen: dict[str, str] = {}

    def visit(page: Page, name: str) -> str:
        html = page.content()
        seen[f"{name} ({page.url})"] = html
        page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
        return html

    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=ARGS, headless=True,
            viewport={"width": 1200, "height": 900},
        )  # fmt: skip
        try:
            page = browser.new_page()
            page.set_default_timeout(15_000)

            page.goto(dash.url + "/")
            assert page.locator("h1").inner_text() == "Overview"
            assert page.locator("svg[aria-label^='Nodes by provider and state']").count() == 1
            assert page.get_by_role("cell", name="in service").count() >= 1
            visit(page, "overview")

            page.get_by_role("link", name="Nodes", exact=True).click()
            page.wait_for_url("**/nodes")
            assert page.locator("tbody tr").count() >= 1
            visit(page, "nodes")
            page.get_by_role("link", name="Requests", exact=True).click()
            page.wait_for_url("**/requests")
            assert page.get_by_role("cell", name="web-test").count() == 1
            visit(page, "requests")
            page.get_by_role("link", name="Labels", exact=True).click()
            assert page.get_by_role("cell", name="default", exact=True).count() == 1
            visit(page, "labels")

            # a search typed into the box finds the planted line, highlighted
            page.get_by_role("link", name="Log search", exact=True).click()
            page.get_by_label("Query (Lucene subset)").fill(PROBE_WORD)
            page.get_by_label("Since").select_option("1h")
            page.get_by_role("button", name="Search").click()
            page.wait_for_url(re.compile(rf".*/search\?q={PROBE_WORD}.*"))
            assert page.locator("mark", has_text=PROBE_WORD).count() == 1
            assert "1 line(s) match" in page.get_by_role("status").inner_text()
            visit(page, "search")

            # its context link shows the lines around it; its id link searches the id
            page.locator("tbody tr").first.get_by_role("link").first.click()
            page.wait_for_url("**/context/**")
            assert page.locator("strong", has_text=PROBE_WORD).count() == 1
            visit(page, "context")
            page.get_by_role("link", name=PROBE_NODE).first.click()
            page.wait_for_url("**/search?q=node_id*")
            assert (
                page.get_by_label("Query (Lucene subset)").input_value()
                == f'node_id:"{PROBE_NODE}"'
            )
            assert "1 line(s) match" in page.get_by_role("status").inner_text()

            page.get_by_role("link", name="Known bugs", exact=True).click()
            page.wait_for_url("**/bugs")
            graph = page.locator("#bug-rackpool-quota-exceeded ~ figure svg").first
            assert "by outcome, last 10 days: launch_failed 1" in (
                graph.get_attribute("aria-label") or ""
            )
            assert page.locator("#uncategorized").count() == 1
            visit(page, "bugs")

            # readable on a phone: no page wider than the screen (wide tables scroll in place)
            page.set_viewport_size({"width": 390, "height": 844})
            for name, path in (("overview-phone", "/"), ("bugs-phone", "/bugs")):
                page.goto(dash.url + path)
                assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
                visit(page, name)
        finally:
            browser.close()

    for where, html in seen.items():
        for what, value in secrets.items():
            assert value not in html, f"{where} shows the {what}"
    assert len(list(shots.glob("*.png"))) == len(seen) == 9
