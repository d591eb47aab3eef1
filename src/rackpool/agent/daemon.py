"""The agent daemon: register, heartbeat, pull, converge through the driver, report.

One control thread runs ``tick()`` every ``poll_interval``; spawns and destroys run in
a bounded thread pool owned by the agent. Stopping the agent never touches instances:
a restarted agent re-registers and reconciles (adopts what runs, removes what should
not, reports what vanished).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import rackpool
from rackpool.agent.client import ControllerClient, parse_instance
from rackpool.agent.config import AgentConfig
from rackpool.agent.errors import (
    ControllerRejected,
    ControllerUnavailable,
    HostNetworkBusy,
    IncompatibleController,
    SpawnCancelled,
)
from rackpool.agent.images import ImageCache, fetch_failure
from rackpool.agent.reconcile import plan, request_ids
from rackpool.agent.virt.base import InstanceState, VirtDriver
from rackpool.agent.virt.factory import make_driver
from rackpool.core.errors import ConfigError, RackpoolError
from rackpool.core.logs import log_context

log = logging.getLogger("rackpool.agent.daemon")

CONSOLE_REFRESH = 2.0  # seconds between console log re-reports of one instance
# This host's own credential, as its first registration returned it (docs/agent-api.md).
CREDENTIAL_FILE = "host-credential"
SYS_CLASS_NET = Path("/sys/class/net")


class Agent:
    def __init__(
        self,
        config: AgentConfig,
        driver: VirtDriver | None = None,
        client: ControllerClient | None = None,
    ) -> None:
        self.config = config
        self.host = config.host.name
        self.state_dir = Path(config.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._credential_file = self.state_dir / CREDENTIAL_FILE
        stored = self._stored_credential()
        self.client = client or ControllerClient(
            config.controller.url,
            stored or config.controller.token.get_secret_value(),
            config.controller.timeout,
        )
        if stored and client is not None:
            client.set_token(stored)
        self.driver = driver or make_driver(config)
        self.images = ImageCache(self.state_dir / "images", self.client)
        self._pool = ThreadPoolExecutor(config.spawn_workers, thread_name_prefix="agent-work")
        self._busy: set[str] = set()
        self._reported: set[str] = set()
        self._console_sent: dict[str, tuple[int, float]] = {}
        # instance id → the ids of its create call, from the last pull (for log lines)
        self._request_ids: dict[str, dict[str, str]] = {}
        self._lock = threading.Lock()
        # A heartbeat lists the driver's instances and sends the list with no report in
        # between: a list taken before a spawn finished, arriving after that spawn's ACTIVE
        # report, would tell the controller the new instance is gone (docs/agent-api.md).
        self._report_gate = threading.Lock()
        self._registered = False
        self._heartbeat_interval = 2.0
        self._last_heartbeat = 0.0
        self.stop_event = threading.Event()
        self._extra = {"host": self.host}

    # -- lifecycle -----------------------------------------------------------------------
    def run(self) -> None:
        """Run until ``stop()``; instances keep running afterwards."""
        log.info("agent starting (driver %s)", self.driver.name, extra=self._extra)
        backoff = self.config.poll_interval
        while not self.stop_event.is_set():
            try:
                self.tick()
                backoff = self.config.poll_interval
            except (ControllerUnavailable, HostNetworkBusy) as exc:
                backoff = min(max(backoff * 2, 0.5), 10.0)
                log.warning("retrying in %.1fs: %s", backoff, exc, extra=self._extra)
            except (IncompatibleController, ConfigError) as exc:
                # not worth retrying: the operator upgrades one end or fixes this host's
                # config (instances keep running)
                log.error("refusing to run: %s", exc, extra=self._extra)
                raise
            except ControllerRejected as exc:
                if exc.status == 401 and self._forget_credential():
                    continue  # register again with the configured token at once
                backoff = min(max(backoff * 2, 0.5), 10.0)
                log.error("tick failed: %s", exc, extra=self._extra)
            except RackpoolError as exc:
                backoff = min(max(backoff * 2, 0.5), 10.0)
                log.error("tick failed: %s", exc, extra=self._extra)
            self.stop_event.wait(backoff)
        log.info("agent stopping; instances keep running", extra=self._extra)

    def stop(self) -> None:
        self.stop_event.set()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.driver.close()
        self.client.close()

    # -- one round -----------------------------------------------------------------------
    def tick(self) -> None:
        if not self._registered:
            self.register()
        now = time.monotonic()
        beat = now - self._last_heartbeat >= self._heartbeat_interval
        if beat:
            self.heartbeat()
            if not self._registered:
                return
        actual = {i.id: i for i in self.driver.list()}
        if beat:
            self._refresh_consoles(actual, now)
        try:
            desired = self.client.pull(self.host)
        except ControllerRejected as exc:
            if exc.status == 404:
                self._registered = False
                return
            raise
        self._request_ids = {str(e["id"]): request_ids(e) for e in desired if "id" in e}
        with self._lock:
            busy = set(self._busy)
        p = plan(desired, actual, busy, self._reported)
        for entry in p.spawn:
            self._submit(entry["id"], self._spawn, entry)
        for iid in p.destroy:
            self._submit(iid, self._destroy, iid, True)
        for iid in p.orphans:
            log.info("removing instance unknown to the controller", extra=self._ex(iid))
            self._submit(iid, self._destroy, iid, False)
        for iid in p.cancel:
            if self.driver.cancel_spawn(iid):
                log.info("deleted while it boots: cancelling the spawn", extra=self._ex(iid))
        for iid in p.active:
            self._report_active(iid, actual[iid])
        for iid, fault in p.vanished:
            log.warning("%s", fault, extra=self._ex(iid))
            self._report(iid, {"status": "ERROR", "fault": fault})
            self._reported.add(iid)
        for iid in p.deleted:
            self._report(iid, {"status": "DELETED"})

    def register(self) -> None:
        """Register (again); first make sure the controller serves our agent API version."""
        self.client.check_version()
        self._check_network_config()
        cap = self.driver.capacity()
        h = self.config.host
        resp = self.client.register(
            {
                "name": self.host,
                "availability_zone": h.availability_zone,
                "driver": self.driver.name,
                "vcpus": h.vcpus or cap.vcpus,
                "ram_mb": h.ram_mb or cap.ram_mb,
                "disk_gb": h.disk_gb or cap.disk_gb,
                "version": rackpool.__dict__.get("__version__", "0.1.0"),
            }
        )
        if resp.get("credential"):
            self._store_credential(str(resp["credential"]))
        self._heartbeat_interval = float(resp.get("heartbeat_interval") or 2.0)
        self._setup_network(resp.get("network") or {})
        self._registered = True
        self._reported.clear()  # after (re-)registering, report every running instance again
        log.info("registered with %s", self.config.controller.url, extra=self._extra)

    # -- this host's credential ---------------------------------------------------------
    def _stored_credential(self) -> str | None:
        try:
            return self._credential_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    def _store_credential(self, secret: str) -> None:
        """Keep the credential the controller issued (0600 from creation) and use it."""
        tmp = self._credential_file.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        os.replace(tmp, self._credential_file)
        self.client.set_token(secret)
        log.info("stored this host's credential", extra=self._extra)

    def _forget_credential(self) -> bool:
        """After a 401 for the stored credential (the controller's database was replaced,
        or an admin issued a new one): drop it and present the configured token again.
        False when there was none to drop."""
        if self._stored_credential() is None:
            return False
        log.warning(
            "the controller refused this host's stored credential; registering again with "
            "the configured token", extra=self._extra,
        )  # fmt: skip
        self._credential_file.unlink(missing_ok=True)
        self.client.set_token(self.config.controller.token.get_secret_value())
        self._registered = False
        return True

    def _check_network_config(self) -> None:
        """Refuse, before registering, a host network this host cannot build: a host that
        registered and then failed to join its NIC would look healthy to the controller
        (and to a deploy's health gate) while no instance on it could be reached."""
        uplink = self.config.network.uplink
        if self.driver.name == "fake" or not uplink:
            return
        if not (SYS_CLASS_NET / uplink).exists():
            have = sorted(p.name for p in SYS_CLASS_NET.iterdir() if p.name != "lo")
            raise ConfigError(
                f"network.uplink: this host has no interface {uplink!r}; set it to one of "
                f"{', '.join(have) or '(none)'} or leave it out"
            )

    def _setup_network(self, net: dict[str, Any]) -> None:
        if self.driver.name == "fake":
            return
        from rackpool.agent.hostnet import ensure_host_network

        n = self.config.network
        ensure_host_network(
            n.bridge,
            n.switch,
            net.get("gateway") if n.switch_gateway else None,
            net.get("prefix") if n.switch_gateway else None,
            n.uplink,
        )

    def heartbeat(self) -> None:
        """Tell the controller this host lives and what its driver runs (it faults the rest)."""
        with self._report_gate:
            seen = [
                {"id": i.id, "running": i.running, **({"detail": i.detail} if i.detail else {})}
                for i in self.driver.list()
            ]
            try:
                resp = self.client.heartbeat(self.host, seen)
            except ControllerRejected as exc:
                if exc.status != 404:
                    raise
                log.warning("controller forgot this host; registering again", extra=self._extra)
                self._registered = False
                return
        self._last_heartbeat = time.monotonic()
        for iid in resp.get("unknown") or ():
            log.info("removing instance the controller does not know here", extra=self._ex(iid))
            self._submit(str(iid), self._destroy, str(iid), False)

    # -- work items ----------------------------------------------------------------------
    def _ex(self, iid: str) -> dict[str, str]:
        """``extra=`` for a line about one instance: its id and its create call's ids."""
        return {"host": self.host, "instance_id": iid, **self._request_ids.get(iid, {})}

    def _submit(self, iid: str, fn: Any, *args: Any) -> None:
        with self._lock:
            if iid in self._busy:
                return
            self._busy.add(iid)
        fut: Future[None] = self._pool.submit(fn, *args)
        fut.add_done_callback(lambda _f: self._done(iid))

    def _done(self, iid: str) -> None:
        with self._lock:
            self._busy.discard(iid)

    def _spawn(self, entry: dict[str, Any]) -> None:
        iid = str(entry["id"])
        # lines the image cache and the driver log while spawning carry the ids too
        with log_context(host=self.host, instance_id=iid, **request_ids(entry)):
            self._spawn_in_context(iid, entry)

    def _spawn_in_context(self, iid: str, entry: dict[str, Any]) -> None:
        log.info("spawning instance %s", iid, extra=self._ex(iid))
        try:
            spec = parse_instance(entry)
            try:
                image = self.images.prepare(spec.image, self.driver.image_form)
            except RackpoolError as exc:
                raise fetch_failure(spec.image.id, exc) from exc
            state = self.driver.spawn(
                spec, image, spec.flavor, spec.network, spec.keys, spec.user_data
            )
        except SpawnCancelled:  # deleted while it booted; the driver removed what it made
            log.info("instance %s destroyed before it finished booting", iid, extra=self._ex(iid))
            self._reported.discard(iid)
            self._report(iid, {"status": "DELETED"})
            return
        except (KeyError, TypeError, ValueError, RackpoolError) as exc:
            fault = exc.message if isinstance(exc, RackpoolError) else f"bad instance spec: {exc}"
            log.warning("spawn failed: %s", fault, extra=self._ex(iid))
            self._report(iid, {"status": "ERROR", "fault": fault[:2000]})
            self._reported.add(iid)
            return
        self._report_active(iid, state)

    def _report_active(self, iid: str, state: InstanceState) -> None:
        log.info("instance %s running; reporting ACTIVE", iid, extra=self._ex(iid))
        console = self.driver.console_log(iid)
        self._report(
            iid,
            {"status": "ACTIVE", "host_keys": list(state.host_keys), "console_log": console},
        )
        self._reported.add(iid)
        self._console_sent[iid] = (len(console), time.monotonic())

    def _refresh_consoles(self, actual: dict[str, InstanceState], now: float) -> None:
        """Re-send console logs that grew (user_data output) so clients see them."""
        for iid, (size, at) in list(self._console_sent.items()):
            state = actual.get(iid)
            if state is None:
                self._console_sent.pop(iid, None)
                continue
            if now - at < CONSOLE_REFRESH or iid in self._busy:
                continue
            console = self.driver.console_log(iid)
            if len(console) != size:
                self._report(iid, {"status": "ACTIVE", "console_log": console})
            self._console_sent[iid] = (len(console), now)

    def _destroy(self, iid: str, report: bool) -> None:
        with log_context(host=self.host, instance_id=iid, **self._request_ids.get(iid, {})):
            self._destroy_in_context(iid, report)

    def _destroy_in_context(self, iid: str, report: bool) -> None:
        try:
            self.driver.destroy(iid)
        except RackpoolError as exc:
            log.error("destroy failed: %s", exc, extra=self._ex(iid))
            return
        log.info("instance %s destroyed", iid, extra=self._ex(iid))
        self._console_sent.pop(iid, None)
        self._reported.discard(iid)
        if report:
            self._report(iid, {"status": "DELETED"})

    def _report(self, iid: str, body: dict[str, Any]) -> None:
        try:
            with self._report_gate:
                self.client.report(iid, {"host": self.host, **body})
        except ControllerRejected as exc:
            if exc.status == 404 and body.get("status") != "DELETED":
                log.info("controller does not know this instance; removing", extra=self._ex(iid))
                self._submit(iid, self._destroy, iid, False)
            elif exc.status != 404:
                log.error("report rejected: %s", exc, extra=self._ex(iid))
        except ControllerUnavailable as exc:
            log.warning("report failed, will retry: %s", exc, extra=self._ex(iid))
            self._reported.discard(iid)
