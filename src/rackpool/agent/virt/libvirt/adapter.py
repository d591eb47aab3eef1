"""The ``libvirt`` virt driver: one KVM guest per instance, booted from a qcow2 overlay.

Per instance, under ``<state_dir>/libvirt/<id>/``: ``disk.qcow2`` (overlay backed by
the cached image), ``config.iso`` (OpenStack config drive, see ``configdrive``) and
``console.log`` (the serial console). The domain is named ``<domain_prefix><id>`` and
carries our metadata element with the instance id, so ``list`` finds our domains
again after an agent restart (libvirtd keeps them running). libvirt is imported only
in this package; its errors become DriverError / SpawnError / DriverUnavailable.

An agent killed while a guest boots (before cloud-init printed its host keys) leaves
the domain running: a new driver does not list such a domain while the boot may still
finish (``ready_timeout`` after its config drive was written), so the agent spawns the
instance again, and ``spawn`` adopts the running domain and waits for its keys instead of
starting a second guest; what a killed spawn left half-made is removed and made anew.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from rackpool.agent.errors import DriverError, DriverUnavailable, SpawnCancelled, SpawnError
from rackpool.agent.virt.base import Capacity, ImageForm, InstanceState, LocalImage
from rackpool.agent.virt.libvirt import configdrive
from rackpool.agent.virt.libvirt.boot import BootFiles, boot_files
from rackpool.agent.virt.libvirt.config import LibvirtConfig
from rackpool.agent.virt.libvirt.domain import (
    METADATA_NS,
    DomainSpec,
    domain_xml,
    instance_id_from_metadata,
)
from rackpool.agent.virt.libvirt.probe import choose_domain_type
from rackpool.core.clock import Timeout, iterate_timeout
from rackpool.core.instance import FlavorSpec, InstanceSpec, NetworkSpec

try:
    import libvirt
except ImportError as exc:  # pragma: no cover - depends on the machine
    raise DriverUnavailable(
        "the libvirt driver needs libvirt-python (pip install libvirt-python; "
        "Debian: python3-libvirt) and libvirtd"
    ) from exc

log = logging.getLogger("rackpool.agent.virt.libvirt")

CONSOLE_MAX = 256 * 1024
QCOW2_MAGIC = b"QFI\xfb"


class LibvirtDriver:
    """``name`` is ``libvirt-<domain type>`` (``libvirt-kvm``, ``libvirt-qemu``): the agent
    registers it as the host's driver, so ``os-hypervisors`` shows it as hypervisor_type."""

    name = "libvirt"
    image_form: ImageForm = "disk"

    def __init__(
        self,
        config: LibvirtConfig,
        state_dir: str | Path,
        host: str,
        bridge: str,
        conn: Any = None,
    ) -> None:
        """Open ``config.uri``, or use ``conn`` (an open libvirt connection; not closed by us)."""
        self.config = config
        self.host = host
        self.bridge = bridge
        self.state_dir = Path(state_dir).resolve()
        self.base = self.state_dir / "libvirt"
        self.base.mkdir(parents=True, exist_ok=True)
        self._owns_conn = conn is None
        if conn is None:
            try:
                conn = libvirt.open(config.uri)
            except libvirt.libvirtError as exc:
                raise DriverUnavailable(f"cannot open libvirt {config.uri}: {exc}") from exc
        self.conn = conn
        self.qemu_img = shutil.which(config.qemu_img)
        if self.qemu_img is None and not self._is_test:
            raise DriverUnavailable(f"{config.qemu_img} not found; install package qemu-utils")
        self.boot_cache = self.state_dir / "libvirt-boot"
        self._boot_lock = threading.Lock()
        self._spawning: set[str] = set()  # instance ids whose spawn runs in this process
        self._cancelled: set[str] = set()  # of those, the ones asked to stop (deleted)
        self._spawning_lock = threading.Lock()
        self.domain_type = config.domain_type
        if self.domain_type == "auto":
            self.domain_type = choose_domain_type(
                self.conn, self.state_dir / "libvirt-probe", config.domain_prefix
            )
        self.name = f"libvirt-{self.domain_type}"

    @property
    def _is_test(self) -> bool:
        return self.config.uri.startswith("test:")

    # -- paths ---------------------------------------------------------------------------
    def _dir(self, instance_id: str) -> Path:
        if "/" in instance_id or instance_id in ("", ".", ".."):
            raise DriverError(f"bad instance id {instance_id!r}")
        return self.base / instance_id

    def domain_name(self, instance_id: str) -> str:
        return f"{self.config.domain_prefix}{instance_id}"

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
        extra = {"host": self.host, "instance_id": instance.id}
        t0 = time.monotonic()
        with self._spawning_lock:
            self._spawning.add(instance.id)
        try:
            if self._running(instance.id) and self._boot_age(instance.id) is not None:
                log.info("adopting the boot in progress of a previous agent", extra=extra)
            else:
                if self._dir(instance.id).exists() or self._lookup(instance.id) is not None:
                    log.info("removing what an interrupted spawn left", extra=extra)
                    self.destroy(instance.id)
                xml = self._prepare(instance, image, flavor, network, keys, user_data)
                dom = self.conn.defineXML(xml)
                dom.create()
            host_keys = self._wait_ready(instance.id)
        except SpawnCancelled:
            log.info("spawn cancelled (the server was deleted); cleaning up", extra=extra)
            self.destroy(instance.id)
            raise
        except Exception as exc:
            console = self.console_log(instance.id)[-800:]
            log.warning("spawn failed, cleaning up: %s", exc, extra=extra)
            self.destroy(instance.id)
            raise SpawnError(f"spawn failed: {exc}; console tail: {console}") from exc
        finally:
            with self._spawning_lock:
                self._spawning.discard(instance.id)
                self._cancelled.discard(instance.id)
        log.info("spawned in %.3fs", time.monotonic() - t0, extra=extra)
        return InstanceState(instance.id, True, host_keys)

    def _boot_age(self, instance_id: str) -> float | None:
        """Seconds since this instance's domain was set up (its config drive written)."""
        try:
            return max(0.0, time.time() - (self._dir(instance_id) / "config.iso").stat().st_mtime)
        except FileNotFoundError:
            return None

    def _booting_elsewhere(self, instance_id: str, running: bool, keys: tuple[str, ...]) -> bool:
        """A guest still booting that no spawn in this process waits for (its agent died)."""
        if not running or keys or self.config.ready_timeout <= 0 or self._is_test:
            return False
        with self._spawning_lock:
            if instance_id in self._spawning:
                return False
        age = self._boot_age(instance_id)
        return age is not None and age < self.config.ready_timeout

    def _prepare(
        self,
        instance: InstanceSpec,
        image: LocalImage,
        flavor: FlavorSpec,
        network: NetworkSpec,
        keys: tuple[str, ...],
        user_data: bytes | None,
    ) -> str:
        """Write disk, config drive and console file; return the domain XML."""
        if image.form != "disk" or not image.path:
            raise SpawnError(f"image {image.id} is a {image.form}; this driver needs a disk")
        d = self._dir(instance.id)
        d.mkdir(parents=True, exist_ok=False)
        (d / "console.log").touch(mode=0o600)
        disk = self._create_disk(d / "disk.qcow2", Path(image.path), flavor.disk_gb)
        boot = self._boot_files(image) if disk is not None else None
        hostname = _hostname(instance.hostname)
        drive = d / "config.iso"
        configdrive.write_iso(
            drive, configdrive.files(instance, hostname, network, keys, user_data)
        )
        return domain_xml(
            DomainSpec(
                name=self.domain_name(instance.id),
                instance_id=instance.id,
                instance_name=instance.name,
                domain_type=self.domain_type,
                machine=self.config.machine,
                emulator=self.config.emulator,
                vcpus=flavor.vcpus,
                ram_mb=flavor.ram_mb,
                disk=str(disk) if disk else None,
                config_drive=str(drive),
                bridge=self.bridge,
                mac=network.mac,
                console_log=str(d / "console.log"),
                kernel=str(boot.kernel) if boot else None,
                initrd=str(boot.initrd) if boot else None,
                cmdline=self.config.kernel_args,
                disk_cache=self.config.disk_cache,
                tb_cache_mb=self.config.tcg_tb_cache_mb,
                run_as_root=self.config.run_as_root and not self._is_test,
            )
        )

    def _boot_files(self, image: LocalImage) -> BootFiles | None:
        """Kernel and initrd when the image is a bare filesystem (direct kernel boot)."""
        assert image.path is not None and self.qemu_img is not None
        with self._boot_lock:  # one extraction per image, however many spawns wait
            return boot_files(image.id, Path(image.path), self.boot_cache, self.qemu_img)

    def _create_disk(self, disk: Path, backing: Path, disk_gb: int) -> Path | None:
        if self.qemu_img is None:
            return None  # only under a test:// URI (checked in __init__)
        fmt = "qcow2" if _is_qcow2(backing) else "raw"
        cmd = [self.qemu_img, "create", "-q", "-f", "qcow2", "-b", str(backing), "-F", fmt]
        cmd.append(str(disk))
        if disk_gb > 0:
            cmd.append(f"{disk_gb}G")
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise SpawnError(f"qemu-img create failed: {proc.stderr.strip()}")
        return disk

    def _wait_ready(self, instance_id: str) -> tuple[str, ...]:
        """Host keys from the console (cloud-init prints them), if ready_timeout > 0.

        A guest that shows none within ready_timeout failed to boot (SpawnError)."""
        if self.config.ready_timeout <= 0 or self._is_test:
            return ()
        # counted from the domain's start: an adopted boot gets what is left of it
        left = max(1.0, self.config.ready_timeout - (self._boot_age(instance_id) or 0.0))
        try:
            for _ in iterate_timeout(left, "guest host keys", interval=0.5):
                with self._spawning_lock:
                    if instance_id in self._cancelled:
                        raise SpawnCancelled("spawn cancelled: the server was deleted during boot")
                keys = parse_host_keys(self.console_log(instance_id))
                if keys:
                    return keys
                if not self._running(instance_id):
                    raise SpawnError("the guest stopped during boot")
        except Timeout as exc:
            raise SpawnError(
                f"no SSH host keys on the console after {self.config.ready_timeout:.0f}s"
            ) from exc
        return ()

    def _lookup(self, instance_id: str) -> Any:
        """The domain, or None when it does not exist."""
        try:
            return self.conn.lookupByName(self.domain_name(instance_id))
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return None
            raise DriverError(f"libvirt lookup of {instance_id}: {exc}") from exc

    def _running(self, instance_id: str) -> bool:
        dom = self._lookup(instance_id)
        try:
            return bool(dom is not None and dom.isActive())
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                return False
            raise DriverError(f"libvirt state of {instance_id}: {exc}") from exc

    def cancel_spawn(self, instance_id: str) -> bool:
        """Stop waiting for a guest whose server was deleted while it boots: its spawn
        destroys it within half a second instead of after the boot (minutes under TCG)."""
        with self._spawning_lock:
            if instance_id not in self._spawning or instance_id in self._cancelled:
                return False
            self._cancelled.add(instance_id)
            return True

    def destroy(self, instance_id: str) -> None:
        """Stop and undefine the domain and remove its files; idempotent."""
        d = self._dir(instance_id)
        dom = self._lookup(instance_id)
        if dom is not None:
            try:
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
            except libvirt.libvirtError as exc:
                if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise DriverError(f"libvirt destroy of {instance_id}: {exc}") from exc
        if d.exists():
            shutil.rmtree(d)
        if self.config.qemu_log_dir and not self._is_test:  # libvirt keeps it after undefine
            (Path(self.config.qemu_log_dir) / f"{self.domain_name(instance_id)}.log").unlink(
                missing_ok=True
            )
        log.info("destroyed", extra={"host": self.host, "instance_id": instance_id})

    def list(self) -> list[InstanceState]:
        try:
            domains = self.conn.listAllDomains(0)
        except libvirt.libvirtError as exc:
            raise DriverError(f"libvirt list: {exc}") from exc
        out = []
        for dom in domains:
            try:
                iid = self._owned_instance_id(dom)
                running = iid is not None and bool(dom.isActive())
            except libvirt.libvirtError as exc:
                # destroyed by another thread since listAllDomains: it is simply gone
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue
                raise DriverError(f"libvirt list: {exc}") from exc
            if iid is None:
                continue
            keys = parse_host_keys(self.console_log(iid))
            if self._booting_elsewhere(iid, running, keys):
                continue  # the agent spawns it again; spawn adopts this boot (see above)
            out.append(
                InstanceState(
                    iid,
                    running=running,
                    host_keys=keys,
                    detail="running" if running else "shut off",
                )
            )
        return sorted(out, key=lambda s: s.id)

    def _owned_instance_id(self, dom: Any) -> str | None:
        """Our instance id if the domain carries our metadata and name prefix, else None."""
        name = dom.name()
        if not name.startswith(self.config.domain_prefix):
            return None
        try:
            md = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)
        except libvirt.libvirtError:
            return None  # same prefix, not made by us: leave it alone
        iid = instance_id_from_metadata(md)
        if iid != name[len(self.config.domain_prefix) :]:
            return None
        return iid

    def console_log(self, instance_id: str) -> str:
        path = self._dir(instance_id) / "console.log"
        try:
            with open(path, "rb") as f:
                f.seek(max(0, path.stat().st_size - CONSOLE_MAX))
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def capacity(self) -> Capacity:
        try:
            info = self.conn.getInfo()  # [model, memory MiB, cpus, mhz, nodes, ...]
        except libvirt.libvirtError as exc:
            raise DriverError(f"libvirt getInfo: {exc}") from exc
        disk = shutil.disk_usage(self.state_dir)
        return Capacity(vcpus=int(info[2]), ram_mb=int(info[1]), disk_gb=disk.total // 1024**3)

    def close(self) -> None:
        """Close our connection; domains keep running under libvirtd."""
        if self._owns_conn:
            try:
                self.conn.close()
            except libvirt.libvirtError as exc:
                log.warning("closing libvirt connection: %s", exc)


def parse_host_keys(console: str) -> tuple[str, ...]:
    """Public host keys (``type base64``) from cloud-init's last KEYS block on the console."""
    begin = console.rfind("-----BEGIN SSH HOST KEY KEYS-----")
    end = console.find("-----END SSH HOST KEY KEYS-----", begin) if begin >= 0 else -1
    if end < 0:
        return ()
    keys = []
    for line in console[begin:end].splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 2 and parts[0].startswith(("ssh-", "ecdsa-", "sk-")):
            keys.append(f"{parts[0]} {parts[1]}")
    return tuple(keys)


def _is_qcow2(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == QCOW2_MAGIC


def _hostname(name: str) -> str:
    clean = "".join(c if c.isalnum() or c == "-" else "-" for c in name).strip("-")
    return (clean or "instance")[:63]
