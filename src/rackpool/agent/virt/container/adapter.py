"""The ``container`` virt driver: one runc system container per instance.

Per instance, under ``<state_dir>/containers/<id>/``: ``record.json`` (what we know),
``console.log`` (the instance's stdout/stderr), ``boot.sh`` and ``config.json`` (the
OCI bundle), ``scratch/`` (tmpfs with the overlay upper layer) and ``rootfs/`` (the
overlay). Outside it: netns ``rp-<id>``, a veth on the host bridge, and cgroups
``/<cgroup_parent>/<host>/<id>`` in every v1 hierarchy (runc creates and removes them).
runc exits after starting an instance, so instances survive the agent; ``list``
finds them again from runc's state and the records.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from rackpool.agent.errors import DriverError, DriverUnavailable, SpawnCancelled, SpawnError
from rackpool.agent.virt.base import Capacity, ImageForm, InstanceState, LocalImage
from rackpool.agent.virt.container import netns, rootfs
from rackpool.agent.virt.container.boot import READY_LINE, boot_script, parse_host_keys
from rackpool.agent.virt.container.bundle import oci_config
from rackpool.agent.virt.container.config import ContainerConfig
from rackpool.agent.virt.container.runc import Runc
from rackpool.agent.virt.detect import detect_capacity
from rackpool.core.clock import Timeout, iterate_timeout
from rackpool.core.instance import FlavorSpec, InstanceSpec, NetworkSpec

log = logging.getLogger("rackpool.agent.virt.container")

CGROUP_ROOT = Path("/sys/fs/cgroup")
CONSOLE_MAX = 256 * 1024
PR_SET_CHILD_SUBREAPER = 36
PR_GET_CHILD_SUBREAPER = 37


class ContainerDriver:
    name = "container"
    image_form: ImageForm = "rootfs"

    def __init__(
        self, config: ContainerConfig, state_dir: str | Path, host: str, bridge: str
    ) -> None:
        if os.geteuid() != 0:
            raise DriverUnavailable("the container driver needs root (namespaces, mounts)")
        runc_bin = shutil.which(config.runc)
        if runc_bin is None:
            raise DriverUnavailable(f"{config.runc} not found; install Debian package runc")
        if not Path(config.init).is_file():
            raise DriverUnavailable(f"{config.init} not found; install Debian package tini")
        self.config = config
        self.host = host
        self.bridge = bridge
        self.state_dir = Path(state_dir).resolve()
        self.base = self.state_dir / "containers"
        self.base.mkdir(parents=True, exist_ok=True)
        self.runc = Runc(runc_bin, self.state_dir / "runc")
        self.runc.version()
        self._spawning: set[str] = set()
        self._cancelled: set[str] = set()  # spawning, and asked to stop (server deleted)
        self._spawning_lock = threading.Lock()
        self._closed = False
        _Subreaper.acquire()

    # -- paths ---------------------------------------------------------------------------
    def _dir(self, instance_id: str) -> Path:
        if "/" in instance_id or instance_id in ("", ".", ".."):
            raise DriverError(f"bad instance id {instance_id!r}")
        return self.base / instance_id

    def cgroup_path(self, instance_id: str) -> str:
        return f"/{self.config.cgroup_parent}/{self.host}/{instance_id}"

    def cgroup_dirs(self, instance_id: str) -> list[Path]:
        rel = self.cgroup_path(instance_id).lstrip("/")
        return [d / rel for d in CGROUP_ROOT.iterdir() if (d / rel).exists()]

    # -- interface -----------------------------------------------------------------------
    def spawn(
        self,
        instance: InstanceSpec,
        image: LocalImage,
        flavor: FlavorSpec,
        network: NetworkSpec,
        keys: tuple[str, ...],
        user_data: bytes | None,
    ) -> InstanceState:
        d = self._dir(instance.id)
        extra = {"host": self.host, "instance_id": instance.id}
        t0 = time.monotonic()
        with self._spawning_lock:
            self._spawning.add(instance.id)
        try:
            self._prepare(d, instance, image, flavor, network, keys, user_data)
            self.runc.run_detached(instance.id, d, d / "console.log")
            self._write_record(d, {**self._record(d), "init_pid": self._init_pid(instance.id)})
            host_keys = self._wait_ready(instance.id, d / "console.log")
        except SpawnCancelled:
            log.info("spawn cancelled (the server was deleted); cleaning up", extra=extra)
            self.destroy(instance.id)
            raise
        except Exception as exc:
            console = self.console_log(instance.id)[-1500:]
            log.warning("spawn failed, cleaning up: %s", exc, extra=extra)
            self.destroy(instance.id)
            raise SpawnError(f"spawn failed: {exc}; console tail: {console[-800:]}") from exc
        finally:
            with self._spawning_lock:
                self._spawning.discard(instance.id)
                self._cancelled.discard(instance.id)
        self._write_record(d, {**self._record(d), "host_keys": list(host_keys)})
        log.info("spawned in %.3fs", time.monotonic() - t0, extra=extra)
        return InstanceState(instance.id, True, host_keys)

    def _prepare(
        self,
        d: Path,
        instance: InstanceSpec,
        image: LocalImage,
        flavor: FlavorSpec,
        network: NetworkSpec,
        keys: tuple[str, ...],
        user_data: bytes | None,
    ) -> None:
        d.mkdir(parents=True, exist_ok=False)
        self._write_record(d, {"id": instance.id, "name": instance.name, "image": image.id})
        (d / "console.log").touch(mode=0o600)
        scratch, root = d / "scratch", d / "rootfs"
        size = max(64, flavor.disk_gb * self.config.scratch_mb_per_disk_gb)
        rootfs.mount_scratch(scratch, size)
        upper = scratch / "upper"
        if image.form == "host":
            lower = "/"
            rootfs.hide(Path("/"), upper, [*self.config.hide_paths, str(self.state_dir)])
        elif image.form == "rootfs" and image.path:
            lower = image.path
        else:
            raise SpawnError(f"image {image.id} is a {image.form}; this driver needs a rootfs")
        note = rootfs.seed(upper, _hostname(instance.hostname), keys, user_data)
        if note:
            with open(d / "console.log", "a") as f:
                f.write(note)
        rootfs.mount_overlay(lower, scratch, root)
        netns_path = netns.plug(instance.id, self.bridge, network)
        (d / "boot.sh").write_text(
            boot_script(self.config.default_user, self.config.host_key_types)
        )
        spec = oci_config(
            rootfs=str(root),
            hostname=_hostname(instance.hostname),
            netns_path=netns_path,
            init_binary=self.config.init,
            boot_script=str(d / "boot.sh"),
            cgroups_path=self.cgroup_path(instance.id),
            limits=self.config.enforce_limits,
            vcpus=flavor.vcpus,
            ram_mb=flavor.ram_mb,
        )
        (d / "config.json").write_text(json.dumps(spec))

    def _wait_ready(self, instance_id: str, console: Path) -> tuple[str, ...]:
        """Wait until sshd listens (it says so on the console) and host keys are printed."""
        for attempt in iterate_timeout(self.config.ready_timeout, "sshd", interval=0.01):
            with self._spawning_lock:
                if instance_id in self._cancelled:
                    raise SpawnCancelled("spawn cancelled: the server was deleted during boot")
            text = console.read_text(errors="replace")
            if READY_LINE in text:
                keys = parse_host_keys(text)
                if keys:
                    return keys
            if attempt % 50 == 0 and not self._running(instance_id):
                raise SpawnError("instance init exited during boot")
        raise AssertionError("unreachable")  # pragma: no cover

    def _init_pid(self, instance_id: str) -> int:
        return self.runc.init_pid(instance_id)

    def _running(self, instance_id: str) -> bool:
        return any(c.id == instance_id and c.status == "running" for c in self.runc.list())

    def cancel_spawn(self, instance_id: str) -> bool:
        """Stop waiting for an instance whose server was deleted while it boots."""
        with self._spawning_lock:
            if instance_id not in self._spawning or instance_id in self._cancelled:
                return False
            self._cancelled.add(instance_id)
            return True

    def destroy(self, instance_id: str) -> None:
        """Remove processes, cgroups, mounts, netns, veth and files; idempotent."""
        d = self._dir(instance_id)
        pids = self._cgroup_pids(instance_id) | {self._record(d).get("init_pid") or 0}
        pids.discard(0)
        # Kill and reap first, so runc deletes a stopped container (no 100 ms poll).
        self.runc.kill(instance_id)
        self._wait_gone(pids)
        self.runc.delete(instance_id)
        self._kill_cgroup_leftovers(instance_id)
        self._wait_gone(pids)
        self._remove_empty_cgroup_parents()
        rootfs.unmount(d / "rootfs")
        rootfs.unmount(d / "scratch")
        netns.unplug(instance_id)
        if d.exists():
            shutil.rmtree(d)
        log.info("destroyed", extra={"host": self.host, "instance_id": instance_id})

    def _cgroup_pids(self, instance_id: str) -> set[int]:
        pids: set[int] = set()
        for cg in self.cgroup_dirs(instance_id):
            with contextlib.suppress(OSError):
                pids.update(int(p) for p in (cg / "cgroup.procs").read_text().split())
        return pids

    def _wait_gone(self, pids: set[int]) -> None:
        """Wait until the killed processes are reaped, so nothing is left when we return."""
        try:
            for _ in iterate_timeout(10, "instance processes to be reaped", interval=0.01):
                for pid in pids:
                    with contextlib.suppress(ChildProcessError):
                        os.waitpid(pid, os.WNOHANG)  # our orphan (we are a subreaper)
                if not any(Path(f"/proc/{p}").exists() for p in pids):
                    return
        except Timeout:
            log.warning("processes not reaped yet: %s", sorted(pids), extra={"host": self.host})

    def _remove_empty_cgroup_parents(self) -> None:
        """rmdir /<cgroup_parent>/<host> and /<cgroup_parent> where no instance uses them."""
        for d in CGROUP_ROOT.iterdir():
            for rel in (f"{self.config.cgroup_parent}/{self.host}", self.config.cgroup_parent):
                with contextlib.suppress(OSError):  # absent, or busy with other instances
                    (d / rel).rmdir()

    def _kill_cgroup_leftovers(self, instance_id: str) -> None:
        """Kill processes still in this instance's cgroups (all started by it), then rmdir."""
        for cg in self.cgroup_dirs(instance_id):
            for _ in iterate_timeout(10, f"cgroup {cg} to empty", interval=0.02):
                pids = (cg / "cgroup.procs").read_text().split()
                if not pids:
                    break
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(int(pid), 9)
            with contextlib.suppress(FileNotFoundError):
                cg.rmdir()

    def list(self) -> list[InstanceState]:
        containers = {c.id: c for c in self.runc.list()}
        ids = {p.name for p in self.base.iterdir() if p.is_dir()} | set(containers)
        out = []
        for iid in sorted(ids):
            c = containers.get(iid)
            rec = self._record(self.base / iid)
            out.append(
                InstanceState(
                    iid,
                    running=c is not None and c.status == "running",
                    host_keys=tuple(rec.get("host_keys", ())),
                    detail=c.status if c else "no container",
                )
            )
        return out

    def console_log(self, instance_id: str) -> str:
        path = self._dir(instance_id) / "console.log"
        try:
            with open(path, "rb") as f:
                f.seek(max(0, path.stat().st_size - CONSOLE_MAX))
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def capacity(self) -> Capacity:
        return detect_capacity(self.state_dir)

    def close(self) -> None:
        """Instances keep running without the agent; the process stops adopting orphans
        once no driver is left in it (see :class:`_Subreaper`)."""
        if not self._closed:
            self._closed = True
            _Subreaper.release()

    # -- records -------------------------------------------------------------------------
    @staticmethod
    def _record(d: Path) -> dict[str, Any]:
        try:
            data = json.loads((d / "record.json").read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _write_record(d: Path, data: dict[str, Any]) -> None:
        tmp = d / "record.json.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(d / "record.json")


class _Subreaper:
    """Adopt orphaned instance inits so we can reap them when they stop.

    runc exits after starting an instance, so its init is re-parented to the nearest
    subreaper: this process while a driver lives in it (we reap only instance inits, by
    PID), PID 1 after the agent exits or restarts. This does not keep instances alive.

    Counted per process: the flag is put back as it was when the last driver closes. A
    process that embeds a driver for a while (``rackpool down``, a test run) and reaps
    nothing else must not stay a subreaper: later orphans of its children (an agent it
    killed) would be adopted by it and stay zombies.
    """

    _lock = threading.Lock()
    _count = 0
    _was = False

    @classmethod
    def acquire(cls) -> None:
        with cls._lock:
            if cls._count == 0:
                cls._was = is_subreaper()
                set_subreaper(True)
            cls._count += 1

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._count -= 1
            if cls._count == 0 and not cls._was:
                set_subreaper(False)


def is_subreaper() -> bool:
    """Whether this process adopts its descendants' orphans (PR_GET_CHILD_SUBREAPER)."""
    libc = ctypes.CDLL(None, use_errno=True)
    flag = ctypes.c_int(0)
    libc.prctl(PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), 0, 0, 0)
    return bool(flag.value)


def set_subreaper(on: bool) -> None:
    """Set or clear PR_SET_CHILD_SUBREAPER for this process.

    A process that embeds the driver only for a while (a test run) clears it again
    afterwards: a subreaper that does not reap turns every later orphan into a zombie.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1 if on else 0, 0, 0, 0)


def _hostname(name: str) -> str:
    clean = "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-")
    return (clean or "instance")[:63]
