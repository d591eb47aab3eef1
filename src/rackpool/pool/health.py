"""Provider health: count errors and timeouts, take a sick provider out of service,
probe it back in. Fixes nodepool's slow failover (retries x timeouts per launch)."""

from __future__ import annotations

from rackpool.core.clock import Clock
from rackpool.pool.drivers.common_config import HealthConfig


class Health:
    def __init__(self, config: HealthConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        self.in_service = True
        self.reason = ""
        self.consecutive_errors = 0
        self.errors_total: dict[str, int] = {}
        self.out_since: float | None = None
        self._next_probe = 0.0

    def success(self) -> bool:
        """Record a successful API call; True if this brought the provider back."""
        self.consecutive_errors = 0
        if self.in_service:
            return False
        self.in_service, self.reason, self.out_since = True, "", None
        return True

    def error(self, kind: str, message: str) -> bool:
        """Record an error or timeout; True if this took the provider out of service."""
        self.errors_total[kind] = self.errors_total.get(kind, 0) + 1
        self.consecutive_errors += 1
        if self.in_service and self.consecutive_errors >= self.config.error_threshold:
            self.in_service = False
            self.reason = f"{self.consecutive_errors} consecutive errors, last: {message}"
            self.out_since = self.clock.monotonic()
            self._next_probe = self.out_since + self.config.probe_interval
            return True
        if not self.in_service:
            self._next_probe = self.clock.monotonic() + self.config.probe_interval
        return False

    def probe_due(self) -> bool:
        return not self.in_service and self.clock.monotonic() >= self._next_probe

    def probing(self) -> None:
        self._next_probe = self.clock.monotonic() + self.config.probe_interval
