from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.functional.web.helpers import Dashboard, start


@pytest.fixture(scope="module")
def dash(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    d = start(tmp_path_factory.mktemp("web"))
    try:
        yield d
    finally:
        d.up.stop()
        left = d.up.leftovers()
        d.up.kill_leftovers()
        assert not left, left
