"""In-process fake hosts: they speak the host boundary (register, heartbeat, pull,
report) like an agent, but their instances are only rows, for tests and benchmarks.

Every call into the controller runs in the region's ``agent`` worker pool (heartbeats
in its ``heartbeat`` pool), never on the event loop it shares with the API, so a busy
API cannot delay a heartbeat.

A build fails with a fault when the server name matches one of ``fail_names`` or
its metadata carries ``rackpool_fake_fault: <message>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from functools import partial
from typing import Any

from rackpool.cloud.config import FakeHost
from rackpool.cloud.hosts import HostService
from rackpool.cloud.workers import RegionWorkers
from rackpool.core.errors import NotFound

log = logging.getLogger("rackpool.cloud.fakehost")


class FakeHostRunner:
    def __init__(
        self,
        spec: FakeHost,
        hosts: HostService,
        heartbeat_interval: float,
        workers: RegionWorkers,
    ) -> None:
        self.spec = spec
        self._hosts = hosts
        self._workers = workers
        self._loop: asyncio.AbstractEventLoop | None = None
        self._interval = heartbeat_interval
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._fail = [re.compile(p) for p in spec.fail_names]
        self.paused = False  # tests: a paused fake host stops heartbeating
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: set[str] = set()  # ids being converged now

    def _enqueue(self, server_id: str) -> None:
        """Called from whichever thread created or deleted the server."""
        if self._loop is None or self._loop.is_closed():
            return  # not running: the next start reconciles by pulling
        self._loop.call_soon_threadsafe(self._queue.put_nowait, server_id)

    def _register(self) -> None:
        s = self.spec
        self._hosts.register(
            {"name": s.name, "availability_zone": s.availability_zone, "driver": "fake",
             "vcpus": s.vcpus, "ram_mb": s.ram_mb, "disk_gb": s.disk_gb}
        )  # fmt: skip

    async def _call(self, fn: Any, *args: Any) -> Any:
        return await self._workers.run("agent", fn, *args)

    async def run(self, stop: asyncio.Event) -> None:
        s = self.spec
        self._loop = asyncio.get_running_loop()
        await self._call(self._register)
        self._hosts.listen(s.name, self._enqueue)
        for inst in await self._call(self._hosts.pull, s.name):  # reconcile after a restart
            self._queue.put_nowait(inst["id"])
        beat = asyncio.create_task(self._heartbeat(stop))
        try:
            while not stop.is_set():
                try:
                    sid = await asyncio.wait_for(self._queue.get(), 0.5)
                except TimeoutError:
                    continue
                spec = await self._call(self._hosts.spec, sid)
                if spec is None:
                    continue
                self._busy.add(sid)
                task = asyncio.create_task(self._converge(spec))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                task.add_done_callback(partial(_forget, self._busy, sid))
        finally:
            beat.cancel()
            for t in list(self._tasks):
                t.cancel()

    async def _heartbeat(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not self.paused:
                try:
                    await self._workers.run("heartbeat", self._hosts.heartbeat, self.spec.name)
                except Exception:
                    await self._call(self._register)
                    await self._call(self._report_running)
                if self._hosts.shared_database:
                    await self._pick_up()
            await asyncio.sleep(self._interval)

    async def _pick_up(self) -> None:
        """Work created or deleted through another controller on the same database
        (which cannot notify this one): pull, as an agent does, and queue what waits."""
        try:
            pending = await self._call(self._hosts.pending, self.spec.name)
        except Exception:  # the next heartbeat tries again
            log.exception("fake host %s: pull failed", self.spec.name)
            return
        for sid in pending:
            if sid not in self._busy:
                self._queue.put_nowait(sid)

    def _report_running(self) -> None:
        """After re-registering, report what still runs here, as a real agent reconciles."""
        for inst in self._hosts.pull(self.spec.name):
            if inst["desired"] == "running" and inst["status"] in ("ACTIVE", "ERROR"):
                self._hosts.report(inst["id"], {"host": self.spec.name, "status": "ACTIVE"})

    async def _converge(self, spec: dict[str, Any]) -> None:
        name = self.spec.name
        if spec["desired"] == "deleted":
            with contextlib.suppress(NotFound):  # already reported (a notice and a pull)
                await self._call(
                    self._hosts.report, spec["id"], {"host": name, "status": "DELETED"}
                )
            return
        if spec["status"] != "BUILD":
            return
        if self.spec.build_delay:
            await asyncio.sleep(self.spec.build_delay)
        current = await self._call(self._hosts.spec, spec["id"])
        if current is None or current["desired"] == "deleted":
            if current is not None:
                await self._call(
                    self._hosts.report, spec["id"], {"host": name, "status": "DELETED"}
                )
            return
        fault = spec["metadata"].get("rackpool_fake_fault")
        if fault is None and any(rx.search(spec["name"]) for rx in self._fail):
            fault = f"Build of instance {spec['id']} aborted: fake host {name} was told to fail"
        if fault:
            body = {"host": name, "status": "ERROR", "fault": fault}
        else:
            console = f"{spec['hostname']} login: (fake instance on {name})\n"
            body = {"host": name, "status": "ACTIVE", "console_log": console}
        await self._call(self._hosts.report, spec["id"], body)


def _forget(busy: set[str], sid: str, _task: asyncio.Task[None]) -> None:
    busy.discard(sid)
