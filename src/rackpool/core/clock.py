"""Time, injectable so tests control it instead of sleeping."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Protocol

from rackpool.core.errors import TemporaryError


class Clock(Protocol):
    def now(self) -> float: ...

    def monotonic(self) -> float: ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._t = start

    def now(self) -> float:
        return self._t

    def monotonic(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        self._t += seconds


class Timeout(TemporaryError):
    """A wait ran past its deadline."""


def iterate_timeout(
    timeout: float,
    purpose: str,
    interval: float = 0.05,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[int]:
    """Yield attempt numbers until ``timeout`` seconds pass, then raise Timeout."""
    deadline = time.monotonic() + timeout
    attempt = 0
    while time.monotonic() < deadline:
        attempt += 1
        yield attempt
        sleep(interval)
    raise Timeout(f"timed out after {timeout:.1f}s waiting for {purpose}")


def wait_for(
    predicate: Callable[[], object], timeout: float, purpose: str, interval: float = 0.05
) -> object:
    """Poll ``predicate`` until it returns something truthy; return that value."""
    for _ in iterate_timeout(timeout, purpose, interval):
        value = predicate()
        if value:
            return value
    raise AssertionError("unreachable")  # pragma: no cover
