"""The region's thread pools (the shared mechanism is core/workers.py).

The event loop only accepts connections and moves bytes; every request handler runs in
a worker thread (database, file and CPU-heavy work included), as do the in-process fake
hosts' calls and the host health check. The one exception is ``GET /``, which touches
nothing but the config and answers on the loop. Three pools, so a busy tenant cannot
starve the hosts: ``api`` serves tenants and admins, ``agent`` serves the rest of the
host boundary (agent reports and pulls over HTTP, fake hosts, ``check_down``, the
heartbeat flush), and ``heartbeat`` serves heartbeats alone (over HTTP and from fake
hosts). A heartbeat only reads the database (cloud/heartbeats.py), so it is never
queued behind server creates, nor behind reports waiting for the write lock, into a
false "host down".
"""

from __future__ import annotations

from typing import Literal

from rackpool.core.workers import Workers

Kind = Literal["api", "agent", "heartbeat"]


class RegionWorkers(Workers):
    def __init__(
        self, api_threads: int, agent_threads: int, region: str = "", heartbeat_threads: int = 2
    ) -> None:
        sizes = {"api": api_threads, "agent": agent_threads, "heartbeat": heartbeat_threads}
        super().__init__(sizes, f"region-{region}")
