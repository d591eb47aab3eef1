"""Session-wide test helpers shared by every part.

Under CI (``CI=true``) a skip is a failure: a test that would skip for a missing
package, binary or root did not run, and a green CI must prove the whole suite ran.
Opt-in suites (``-m heavy``) are deselected, not skipped, so they do not count.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root (kernel namespaces, cgroups)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


def _skip_reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_skip_under_ci(report: pytest.TestReport | pytest.CollectReport, what: str) -> None:
    if not (CI and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = _skip_reason(report.longrepr)
    report.outcome = "failed"
    report.longrepr = (
        f"{what} skipped under CI=true ({reason}): everything a test needs must be "
        "installed by ./dev, and CI runs as root"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome: Any = yield
    _fail_skip_under_ci(outcome.get_result(), item.nodeid)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome: Any = yield
    _fail_skip_under_ci(outcome.get_result(), collector.nodeid)


@pytest.fixture(autouse=True)
def _pytest_never_left_a_subreaper() -> Iterator[None]:
    """No test may leave pytest adopting orphans it will never reap.

    The container driver makes its process a child subreaper while open (an agent reaps
    its instances' inits). Left set in pytest after a test, the inits of agents killed
    by later tests are adopted by pytest and stay zombies, which those tests then see as
    an instance "left behind" (two agent tests failed in full CI runs only, this way).
    """
    from rackpool.agent.virt.container.adapter import is_subreaper

    assert not is_subreaper(), "an earlier test or fixture left pytest a child subreaper"
    yield
    assert not is_subreaper(), "this test left pytest a child subreaper"
