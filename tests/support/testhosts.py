""" "Bare-metal" test hosts: system containers under runc with systemd as PID 1.

Each host has its own root filesystem (an overlay over a cached Debian bookworm rootfs
built with mmdebstrap from Debian's packages), its own named network namespace with a
veth on a bridge on this machine, fresh SSH host keys, root's ``authorized_keys`` holding
a key made by the fixture, and sshd listening. Hosts have no network beyond their
subnet: everything the rackpool roles need is preinstalled (``PACKAGES``).

    with test_hosts(tmp_path, ["ctl", "c1"]) as hs:
        hs.hosts["c1"].ssh("systemctl is-system-running")

Why each choice (../shared/notes/test-hosts.md measured them on these machines):

* runc with systemd as init needs all capabilities but CAP_SYS_RESOURCE (not in this
  machine's bounding set), a writable ``cgroup`` mount in a cgroup namespace, tmpfs on
  ``/run`` and ``/tmp``, no seccomp; ``runc kill ID 37`` (SIGRTMIN+3) powers it off.
  CAP_SYS_MODULE and CAP_SYS_TIME are left out too (a test host must not load kernel
  modules or set the machine's clock), and ``systemd-sysctl`` is masked in the rootfs
  (``/proc/sys`` is writable for the hosts' per-netns ``net.*`` settings; its
  ``kernel.*`` keys are the machine's).
* Nested runc (the ``container`` virt driver's instances) works inside with nothing
  extra; its cgroups land below the host's.
* An empty ``resolv.conf`` and an ``/etc/hosts`` naming every host: the machine's
  nameserver is unreachable from a netns and any DNS lookup would hang.

Several sets can run at once (other tests on this machine): each takes a *slot*, a
/26 of 198.19.100.0/24 held by a lock file for its lifetime — slot 0 is bridge
198.19.100.1, hosts .2, .3, …; slot 1 is bridge .65, hosts .66, … A slot's leftovers
from a run that died (its lock was released by the kernel) are removed before reuse.
Teardown powers every host off, force-kills on a deadline, deletes the containers,
unmounts the overlays, removes netns, veths, bridge and cgroups, and touches nothing
it did not make.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from rackpool.core.clock import Timeout, iterate_timeout

CACHE = Path(os.environ.get("RACKPOOL_TESTHOSTS_CACHE", "/var/cache/rackpool/testhosts"))
RUN_DIR = Path("/run/rackpool-testhosts")
NETNS_DIR = Path("/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_PARENT = "rackpool-testhosts"
NETWORK = ipaddress.ip_network("198.19.100.0/24")
SLOT_PREFIX = 26
MIRROR = os.environ.get("RACKPOOL_TESTHOSTS_MIRROR", "http://deb.debian.org/debian")

# Debian packages preinstalled on every host (hosts cannot reach a mirror):
# base system + sshd (dbus or logind fails and the system is "degraded"); Python for
# Ansible and rackpool's venvs (python3-apt: Ansible's apt module; acl: become_user);
# the container virt driver's needs on a compute host: runc, tini(-static), iproute2,
# util-linux (mount/umount), tar, ssh-keygen/sshd and useradd inside instances of the
# "host" image.
PACKAGES = (
    "systemd", "systemd-sysv", "dbus", "openssh-server", "openssh-client", "python3",
    "python3-venv", "python3-apt", "sudo", "iproute2", "iputils-ping", "procps",
    "util-linux", "runc", "tini", "ca-certificates", "acl", "passwd", "tar",
)  # fmt: skip
DPKG_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*",
                 "/usr/share/locale/*")  # fmt: skip
# Units that would act on the machine or wait for a network the hosts do not have.
MASKED_UNITS = ("systemd-sysctl.service", "apt-daily.timer", "apt-daily-upgrade.timer",
                "e2scrub_all.timer", "fstrim.timer", "systemd-timesyncd.service")  # fmt: skip
SSHD_CONFIG = """\
# rackpool test host: keys made per host by the fixture, no DNS (no resolver here)
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
"""
# A unit or process that ignores SIGTERM must not hold a power-off for 90 s.
SYSTEM_CONF = """\
[Manager]
DefaultTimeoutStopSec=5s
"""
RECIPE_VERSION = 1
HOST_KEY_TYPES = ("ed25519", "ecdsa")

_CAP_NAMES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID",
    "SETUID", "SETPCAP", "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST",
    "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER", "SYS_MODULE", "SYS_RAWIO",
    "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE",
    "AUDIT_CONTROL", "SETFCAP", "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM",
    "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF", "CHECKPOINT_RESTORE",
)  # fmt: skip
_CAPS_LEFT_OUT = {"SYS_RESOURCE", "SYS_MODULE", "SYS_TIME"}
SIGRTMIN_3 = 37  # systemd: power off


class TestHostError(RuntimeError):
    """A test host could not be built, booted or reached."""

    __test__ = False


# -- the rootfs ------------------------------------------------------------------------


def recipe() -> dict[str, Any]:
    """Everything that decides the rootfs's bytes; its hash is the cache key."""
    return {
        "version": RECIPE_VERSION,
        "suite": "bookworm",
        "variant": "minbase",
        "mirror": MIRROR,
        "packages": sorted(PACKAGES),
        "dpkg_excludes": list(DPKG_EXCLUDES),
        "masked": list(MASKED_UNITS),
        "sshd_config": SSHD_CONFIG,
        "system_conf": SYSTEM_CONF,
    }


def recipe_hash() -> str:
    raw = json.dumps(recipe(), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def _run(cmd: Sequence[str], timeout: float = 60, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=timeout, **kw)


def _check(cmd: Sequence[str], timeout: float = 60, **kw: Any) -> str:
    proc = _run(cmd, timeout, **kw)
    if proc.returncode != 0:
        raise TestHostError(f"{' '.join(cmd)}: exit {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def base_rootfs(cache: Path = CACHE) -> Path:
    """The read-only Debian tree every host's overlay sits on; built once per machine.

    ``<cache>/<hash>.tar.zst`` is the cached build (mmdebstrap, ~1 min, the only step
    that needs a Debian mirror); ``<cache>/<hash>.rootfs/`` is it unpacked, the overlays'
    lower layer. Concurrent callers wait on ``<hash>.lock``.
    """
    h = recipe_hash()
    tree, tarball = cache / f"{h}.rootfs", cache / f"{h}.tar.zst"
    if (tree / "etc/os-release").exists():
        return tree
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / f"{h}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (tree / "etc/os-release").exists():
            return tree
        part = cache / f"{h}.rootfs.part"
        if part.exists():
            _rmtree(part)
        if tarball.exists():
            part.mkdir()
            _check(["tar", "--zstd", "-x", "-p", "--numeric-owner", "-f", str(tarball),
                    "-C", str(part)], timeout=300)  # fmt: skip
        else:
            _mmdebstrap(part)
            _configure(part)
            tmp = cache / f"{h}.tar.zst.part"
            _check(["tar", "--zstd", "--numeric-owner", "-C", str(part), "-cf", str(tmp), "."],
                   timeout=600)  # fmt: skip
            tmp.replace(tarball)
        part.replace(tree)
    return tree


def _rmtree(path: Path) -> None:
    _check(["rm", "-rf", "--one-file-system", str(path)], timeout=300)


def _mmdebstrap(out: Path) -> None:
    if shutil.which("mmdebstrap") is None:
        raise TestHostError("mmdebstrap not found: install Debian package mmdebstrap (./dev)")
    cmd = ["mmdebstrap", "--mode=root", "--variant=minbase", "--skip=cleanup/apt/lists",
           f"--include={','.join(PACKAGES)}"]  # fmt: skip
    cmd += [f"--dpkgopt=path-exclude={p}" for p in DPKG_EXCLUDES]
    cmd += ["bookworm", str(out), MIRROR]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "LC_ALL": "C.UTF-8"}
    proc = _run(cmd, timeout=900, env=env)
    if proc.returncode != 0:
        raise TestHostError("mmdebstrap failed:\n" + proc.stderr[-3000:])


def _configure(root: Path) -> None:
    """What every host shares: no baked host keys, sshd settings, masked units."""
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    (root / "etc/ssh/sshd_config.d/rackpool-testhost.conf").write_text(SSHD_CONFIG)
    (root / "etc/systemd/system.conf.d").mkdir(exist_ok=True)
    (root / "etc/systemd/system.conf.d/rackpool-testhost.conf").write_text(SYSTEM_CONF)
    for unit in MASKED_UNITS:
        link = root / "etc/systemd/system" / unit
        link.unlink(missing_ok=True)
        link.symlink_to("/dev/null")
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("localhost\n")
    (root / "etc/resolv.conf").unlink(missing_ok=True)
    (root / "etc/resolv.conf").write_text("")


# -- one host --------------------------------------------------------------------------


@dataclass
class TestHost:
    """One booted host, reachable over SSH as ``user@address:port`` with ``key_path``."""

    __test__ = False

    name: str
    address: str
    netns: str
    container_id: str
    key_path: Path
    known_hosts: Path
    workdir: Path
    host_keys: tuple[str, ...] = ()
    instance_address: str | None = None  # on the instance network, once cabled
    port: int = 22
    user: str = "root"

    @property
    def rootfs(self) -> Path:
        """The host's root as seen from the machine (an overlay; writable)."""
        return self.workdir / "rootfs"

    def ssh_args(self) -> list[str]:
        """``ssh`` options that log in with the fixture's key and check the host's keys."""
        return [
            "-i", str(self.key_path), "-p", str(self.port),
            "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5",
            "-o", "LogLevel=ERROR",
        ]  # fmt: skip

    def ssh_argv(self, cmd: str) -> list[str]:
        return ["ssh", *self.ssh_args(), f"{self.user}@{self.address}", cmd]

    def ssh(
        self, cmd: str, timeout: float = 60, input: str | None = None, check: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` on the host through its sshd (like Ansible does)."""
        proc = subprocess.run(
            self.ssh_argv(cmd), input=input, capture_output=True, text=True, timeout=timeout, check=False,
            stdin=None if input is not None else subprocess.DEVNULL,
        )  # fmt: skip
        if check and proc.returncode != 0:
            raise TestHostError(
                f"{self.name}: {cmd!r} exited {proc.returncode}: {proc.stderr.strip()[-500:]}"
            )
        return proc

    def wait_ssh(self, timeout: float = 30) -> None:
        """Wait until sshd on the host accepts the fixture's key."""
        last = ""
        try:
            for _ in iterate_timeout(timeout, f"ssh to {self.name}", interval=0.05):
                proc = self.ssh("true", timeout=10)
                if proc.returncode == 0:
                    return
                last = proc.stderr.strip()
        except Timeout as exc:
            raise TestHostError(f"{exc}; last error: {last}") from None

    def ip(self, *args: str) -> str:
        """``ip -n NETNS ARGS`` from the machine (routes, addresses inside the host)."""
        return _check(["ip", "-n", self.netns, *args])


# -- the set ---------------------------------------------------------------------------


@dataclass
class _Made:
    """What this set created, so teardown removes exactly that."""

    containers: list[str] = field(default_factory=list)
    mounts: list[Path] = field(default_factory=list)
    netns: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)


class HostSet:
    """Boot ``names`` as test hosts on one bridge; a context manager that tears down."""

    __test__ = False

    def __init__(
        self, workdir: Path, names: Iterable[str], *, boot_timeout: float = 60
    ) -> None:  # fmt: skip
        self.names = list(names)
        if not self.names or len(set(self.names)) != len(self.names):
            raise ValueError(f"host names must be unique and non-empty: {self.names}")
        for n in self.names:
            if not n.replace("-", "").isalnum() or len(n) > 20:
                raise ValueError(f"host name {n!r}: letters, digits and '-', at most 20")
        self.workdir = Path(workdir).resolve()
        self.boot_timeout = boot_timeout
        self.hosts: dict[str, TestHost] = {}
        self.slot = -1
        self._lock: Any = None
        self._made = _Made()
        self.key_path = self.workdir / "id_ed25519"
        self.known_hosts = self.workdir / "known_hosts"
        self.runc_root = RUN_DIR / "runc"
        self.boot_seconds: dict[str, float] = {}
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- addresses ---------------------------------------------------------------------
    @property
    def subnet(self) -> ipaddress.IPv4Network:
        return list(NETWORK.subnets(new_prefix=SLOT_PREFIX))[self.slot]  # type: ignore[return-value]

    @property
    def bridge_address(self) -> str:
        return str(self.subnet.network_address + 1)

    @property
    def prefix(self) -> int:
        return SLOT_PREFIX

    @property
    def bridge(self) -> str:
        return f"rptb{self.slot}"

    def _address(self, index: int) -> str:
        return str(self.subnet.network_address + 2 + index)

    # -- the rack's instance network ---------------------------------------------------
    @property
    def instance_cidr(self) -> str:
        """This set's instance segment: 198.19.(101 + slot).0/24."""
        return f"198.19.{101 + self.slot}.0/24"

    @property
    def instance_gateway(self) -> str:
        return f"198.19.{101 + self.slot}.1"

    def instance_address(self, index: int) -> str:
        """A host's own address on the instance segment: .250 - index (the region's
        allocator hands out instance addresses from the bottom)."""
        return f"198.19.{101 + self.slot}.{250 - index}"

    def instance_network(self, names: Iterable[str], host_bridge: str = "rpbr0") -> None:
        """Cable ``names`` to the rack's instance network, a second L2 segment.

        On this machine: bridge ``rptn<slot>`` with the gateway (``instance_gateway``;
        this machine routes nothing further, so instances have no way out). In each
        host: ``eth1`` on it, enslaved to ``host_bridge`` — the bridge the agent plugs
        instances into — which carries the host's own address there, as a real host's
        bridge would from its OS network config. So instances of every compute host
        share one segment, and every cabled host (a pool host too) reaches them.
        """
        net = ipaddress.ip_network(self.instance_cidr)
        seg = f"rptn{self.slot}"
        if not Path("/sys/class/net", seg).exists():
            _check(["ip", "link", "add", seg, "type", "bridge"])
            self._made.links.append(seg)
            _check(["ip", "addr", "add", f"{self.instance_gateway}/{net.prefixlen}", "dev", seg])
            _check(["ip", "link", "set", seg, "up"])
        for name in names:
            host = self.hosts[name]
            index = self.names.index(name)
            veth = f"rptn{self.slot}" + hashlib.sha1(name.encode()).hexdigest()[:8]
            _check(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth1",
                    "netns", host.netns])  # fmt: skip
            self._made.links.append(veth)
            _check(["ip", "link", "set", veth, "master", seg, "up"])
            batch = (
                f"link add {host_bridge} type bridge\n"
                f"link set eth1 master {host_bridge} up\n"
                f"addr add {self.instance_address(index)}/{net.prefixlen} dev {host_bridge}\n"
                f"link set {host_bridge} up\n"
            )
            _check(["ip", "-n", host.netns, "-batch", "-"], input=batch)
            host.instance_address = self.instance_address(index)

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> HostSet:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def start(self) -> None:
        if os.geteuid() != 0:
            raise TestHostError("test hosts need root (namespaces, mounts, runc)")
        for tool in ("runc", "ip", "ssh", "ssh-keygen"):
            if shutil.which(tool) is None:
                raise TestHostError(f"{tool} not found; ./dev installs it")
        lower = base_rootfs()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._take_slot()
        _check(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rackpool-testhosts",
                "-f", str(self.key_path)])  # fmt: skip
        self._make_bridge()
        for i, name in enumerate(self.names):
            self.hosts[name] = self._prepare(name, self._address(i), lower)
        self.known_hosts.write_text(
            "".join(f"{h.address} {k}\n" for h in self.hosts.values() for k in h.host_keys)
        )
        started = {}
        for host in self.hosts.values():
            started[host.name] = time.monotonic()
            self._run_container(host)
        for host in self.hosts.values():
            self._wait_booted(host)
            self.boot_seconds[host.name] = time.monotonic() - started[host.name]

    def close(self) -> None:
        """Remove everything this set made; safe to call twice and after a failed start."""
        errors: list[str] = []
        for cid in reversed(self._made.containers):
            with _collect(errors, f"container {cid}"):
                self._stop_container(cid)
        self._made.containers.clear()
        for cg in self._made.cgroups:
            with _collect(errors, f"cgroup {cg}"):
                _remove_cgroup(cg)
        self._made.cgroups.clear()
        for mnt in reversed(self._made.mounts):
            with _collect(errors, f"mount {mnt}"):
                _unmount(mnt)
        self._made.mounts.clear()
        for ns in self._made.netns:
            with _collect(errors, f"netns {ns}"):
                if (NETNS_DIR / ns).exists():
                    _check(["ip", "netns", "del", ns])
        self._made.netns.clear()
        for link in reversed(self._made.links):
            with _collect(errors, f"link {link}"):
                _delete_link(link)
        self._made.links.clear()
        if self._lock is not None:
            with contextlib.suppress(OSError):
                (RUN_DIR / f"slot-{self.slot}.json").unlink()
            self._lock.close()
            self._lock = None
        if errors:
            raise TestHostError("teardown left things behind: " + "; ".join(errors))

    # -- steps -------------------------------------------------------------------------
    def _take_slot(self) -> None:
        RUN_DIR.mkdir(parents=True, exist_ok=True)
        slots = len(list(NETWORK.subnets(new_prefix=SLOT_PREFIX)))
        for attempt in iterate_timeout(120, "a free test-host slot", interval=0.5):
            for slot in range(slots):
                f = open(RUN_DIR / f"slot-{slot}.lock", "w")  # noqa: SIM115 (held for the set's life)
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    f.close()
                    continue
                self.slot, self._lock = slot, f
                _clean_dead_slot(slot)
                (RUN_DIR / f"slot-{slot}.json").write_text(
                    json.dumps({"pid": os.getpid(), "workdir": str(self.workdir)})
                )
                return
            del attempt

    def _make_bridge(self) -> None:
        _check(["ip", "link", "add", self.bridge, "type", "bridge"])
        self._made.links.append(self.bridge)
        _check(["ip", "addr", "add", f"{self.bridge_address}/{self.prefix}", "dev", self.bridge])
        _check(["ip", "link", "set", self.bridge, "up"])

    def _prepare(self, name: str, address: str, lower: Path) -> TestHost:
        """Overlay rootfs with per-host identity, netns with a veth on the bridge."""
        cid = f"rpth{self.slot}-{name}"
        work = self.workdir / "hosts" / name
        for d in ("upper", "work", "rootfs"):
            (work / d).mkdir(parents=True)
        root = work / "rootfs"
        _check(["mount", "-t", "overlay", "overlay", "-o",
                f"lowerdir={lower},upperdir={work / 'upper'},workdir={work / 'work'}",
                str(root)])  # fmt: skip
        self._made.mounts.append(root)
        host = TestHost(name=name, address=address, netns=cid, container_id=cid,
                        key_path=self.key_path, known_hosts=self.known_hosts, workdir=work)  # fmt: skip
        host.host_keys = self._identity(host)
        self._plug(host)
        (work / "config.json").write_text(json.dumps(self._oci_config(host)))
        return host

    def _identity(self, host: TestHost) -> tuple[str, ...]:
        root = host.rootfs
        (root / "etc/hostname").write_text(host.name + "\n")
        (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
        (root / "etc/resolv.conf").write_text("")
        lines = ["127.0.0.1 localhost", "::1 localhost ip6-localhost ip6-loopback",
                 f"{self.bridge_address} testhosts-machine"]  # fmt: skip
        lines += [f"{self._address(i)} {n}" for i, n in enumerate(self.names)]
        (root / "etc/hosts").write_text("\n".join(lines) + "\n")
        ssh_dir = root / "root/.ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        pub = Path(f"{self.key_path}.pub").read_text()
        (ssh_dir / "authorized_keys").write_text(pub)
        os.chmod(ssh_dir / "authorized_keys", 0o600)
        keys = []
        for t in HOST_KEY_TYPES:
            path = root / f"etc/ssh/ssh_host_{t}_key"
            _check(["ssh-keygen", "-q", "-t", t, "-N", "", "-C", f"root@{host.name}",
                    "-f", str(path)])  # fmt: skip
            keys.append(" ".join(Path(f"{path}.pub").read_text().split()[:2]))
        return tuple(keys)

    def _plug(self, host: TestHost) -> None:
        veth = f"rpth{self.slot}" + hashlib.sha1(host.name.encode()).hexdigest()[:8]
        _check(["ip", "netns", "add", host.netns])
        self._made.netns.append(host.netns)
        _check(["ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0",
                "netns", host.netns])  # fmt: skip
        self._made.links.append(veth)
        _check(["ip", "link", "set", veth, "master", self.bridge, "up"])
        batch = (
            f"link set lo up\naddr add {host.address}/{self.prefix} dev eth0\nlink set eth0 up\n"
        )
        _check(["ip", "-n", host.netns, "-batch", "-"], input=batch)

    def _oci_config(self, host: TestHost) -> dict[str, Any]:
        caps = _capabilities()
        mnt = _mount
        return {
            "ociVersion": "1.0.2",
            "process": {
                "terminal": False,
                "user": {"uid": 0, "gid": 0},
                "args": ["/sbin/init"],
                "env": [
                    "container=oci",
                    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                ],  # fmt: skip
                "cwd": "/",
                "capabilities": {
                    k: caps for k in ("bounding", "effective", "permitted", "inheritable")
                },  # fmt: skip
                "noNewPrivileges": False,
            },
            "root": {"path": str(host.rootfs), "readonly": False},
            "hostname": host.name,
            "mounts": [
                mnt("/proc", "proc", "proc", ["nosuid", "noexec", "nodev"]),
                mnt("/dev", "tmpfs", "tmpfs", ["nosuid", "strictatime", "mode=755", "size=65536k"]),
                mnt(
                    "/dev/pts",
                    "devpts",
                    "devpts",
                    ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"],
                ),
                mnt("/dev/shm", "tmpfs", "shm", ["nosuid", "nodev", "mode=1777", "size=65536k"]),
                mnt("/dev/mqueue", "mqueue", "mqueue", ["nosuid", "noexec", "nodev"]),
                mnt("/sys", "sysfs", "sysfs", ["nosuid", "noexec", "nodev", "rw"]),
                mnt(
                    "/sys/fs/cgroup",
                    "cgroup",
                    "cgroup",
                    ["nosuid", "noexec", "nodev", "relatime", "rw"],
                ),
                mnt("/run", "tmpfs", "tmpfs", ["nosuid", "nodev", "mode=755", "size=262144k"]),
                mnt("/run/lock", "tmpfs", "tmpfs", ["nosuid", "nodev", "noexec", "size=5120k"]),
                mnt("/tmp", "tmpfs", "tmpfs", ["nosuid", "nodev", "size=1048576k"]),
            ],  # fmt: skip
            "linux": {
                "namespaces": [
                    {"type": "pid"},
                    {"type": "ipc"},
                    {"type": "uts"},
                    {"type": "mount"},
                    {"type": "cgroup"},
                    {"type": "network", "path": str(NETNS_DIR / host.netns)},
                ],  # fmt: skip
                "cgroupsPath": f"/{CGROUP_PARENT}/{host.container_id}",
                "devices": [
                    {
                        "path": "/dev/net/tun",
                        "type": "c",
                        "major": 10,
                        "minor": 200,
                        "fileMode": 0o666,
                        "uid": 0,
                        "gid": 0,
                    },
                    {
                        "path": "/dev/fuse",
                        "type": "c",
                        "major": 10,
                        "minor": 229,
                        "fileMode": 0o666,
                        "uid": 0,
                        "gid": 0,
                    },
                ],  # fmt: skip
                "resources": {"devices": [{"allow": True, "access": "rwm"}]},
                "maskedPaths": [
                    "/proc/kcore",
                    "/proc/keys",
                    "/proc/timer_list",
                    "/proc/sched_debug",
                    "/sys/firmware",
                ],  # fmt: skip
            },
        }

    def _run_container(self, host: TestHost) -> None:
        """``runc run`` in the foreground, our child: it reaps the host's init when it
        exits, so no zombie is left to this machine's PID 1. Its own session, so a
        Ctrl-C on the test run does not reach systemd (SIGINT would mean reboot)."""
        self._made.containers.append(host.container_id)
        self._made.cgroups.append(f"{CGROUP_PARENT}/{host.container_id}")
        with open(host.workdir / "runc.log", "ab") as out:
            self._procs[host.container_id] = subprocess.Popen(
                ["runc", "--root", str(self.runc_root), "run", "--no-new-keyring",
                 "-b", str(host.workdir), host.container_id],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True,
            )  # fmt: skip

    def _wait_booted(self, host: TestHost) -> None:
        proc = self._procs[host.container_id]
        last = ""
        try:
            for _ in iterate_timeout(self.boot_timeout, f"sshd on {host.name}", interval=0.05):
                if proc.poll() is not None:
                    tail = (host.workdir / "runc.log").read_text(errors="replace")[-1500:]
                    raise TestHostError(f"{host.name}: runc exited {proc.returncode}: {tail}")
                ssh = host.ssh("true", timeout=10)
                if ssh.returncode == 0:
                    return
                last = ssh.stderr.strip()
        except Timeout as exc:
            raise TestHostError(f"{exc}; last ssh error: {last}") from None

    def _stop_container(self, cid: str, timeout: float = 15) -> None:
        """Power off (SIGRTMIN+3); SIGKILL everything on the deadline; delete."""
        proc = self._procs.pop(cid, None)
        if proc is None or proc.poll() is not None:
            _stop_runc_container(self.runc_root, cid, timeout)
            return
        _run(["runc", "--root", str(self.runc_root), "kill", cid, str(SIGRTMIN_3)])
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            _run(["runc", "--root", str(self.runc_root), "kill", "--all", cid, "KILL"])
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()  # runc itself; the container is gone with its cgroup below
                proc.wait(5)
        if _runc_state(self.runc_root, cid) is not None:
            _check(["runc", "--root", str(self.runc_root), "delete", "--force", cid])


def test_hosts(workdir: Path, names: Iterable[str], **kw: Any) -> HostSet:
    """The set of hosts ``names`` under ``workdir``; boots on ``with`` (or ``.start()``)."""
    return HostSet(workdir, names, **kw)


test_hosts.__test__ = False  # type: ignore[attr-defined]  # pytest: a factory, not a test


# -- helpers ---------------------------------------------------------------------------


@contextlib.contextmanager
def _collect(errors: list[str], what: str) -> Any:
    try:
        yield
    except Exception as exc:  # noqa: BLE001 (teardown goes on and reports all)
        errors.append(f"{what}: {exc}")


def _mount(dest: str, typ: str, source: str, options: list[str]) -> dict[str, Any]:
    return {"destination": dest, "type": typ, "source": source, "options": options}


def _capabilities() -> list[str]:
    """Every capability in this process's bounding set but ``_CAPS_LEFT_OUT``."""
    bnd = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapBnd:"):
            bnd = int(line.split()[1], 16)
    return [f"CAP_{n}" for i, n in enumerate(_CAP_NAMES)
            if bnd >> i & 1 and n not in _CAPS_LEFT_OUT]  # fmt: skip


def _runc_state(root: Path, cid: str) -> str | None:
    proc = _run(["runc", "--root", str(root), "state", cid], timeout=30)
    if proc.returncode != 0:
        return None
    return str(json.loads(proc.stdout).get("status"))


def _stop_runc_container(root: Path, cid: str, timeout: float) -> None:
    """Power off (SIGRTMIN+3), SIGKILL everything on the deadline, then delete."""
    status = _runc_state(root, cid)
    if status is None:
        return
    if status == "running":
        _run(["runc", "--root", str(root), "kill", cid, str(SIGRTMIN_3)])
        with contextlib.suppress(Timeout):
            for _ in iterate_timeout(timeout, f"{cid} to power off", 0.1):
                if _runc_state(root, cid) != "running":
                    break
    if _runc_state(root, cid) == "running":
        _run(["runc", "--root", str(root), "kill", "--all", cid, "KILL"])
        for _ in iterate_timeout(10, f"{cid} to die"):
            if _runc_state(root, cid) != "running":
                break
    _check(["runc", "--root", str(root), "delete", "--force", cid])


def _cgroup_dirs(rel: str) -> list[Path]:
    out = []
    for hierarchy in CGROUP_ROOT.iterdir():
        d = hierarchy / rel
        if d.is_dir():
            out.append(d)
    return out


def _remove_cgroup(rel: str) -> None:
    """Kill what is left in the cgroup tree (all of it ran inside our host), rmdir it."""
    for top in _cgroup_dirs(rel):
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                for pid in procs.read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
    for top in _cgroup_dirs(rel):
        dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts))
        for d in [*dirs, top]:
            for _ in iterate_timeout(10, f"cgroup {d} to empty", interval=0.05):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    continue
    for hierarchy in CGROUP_ROOT.iterdir():
        with contextlib.suppress(OSError):
            (hierarchy / CGROUP_PARENT).rmdir()  # only when no other set uses it


def _unmount(path: Path) -> None:
    if not os.path.ismount(path):
        return
    proc = _run(["umount", str(path)])
    if proc.returncode != 0:
        _check(["umount", "-l", str(path)])


def _clean_dead_slot(slot: int) -> None:
    """Leftovers of a run that held ``slot`` and died (we hold its lock: it is gone)."""
    prefix = f"rpth{slot}-"
    root = RUN_DIR / "runc"
    if root.is_dir():
        for d in root.iterdir():
            if d.name.startswith(prefix):
                with contextlib.suppress(TestHostError, subprocess.SubprocessError):
                    _stop_runc_container(root, d.name, 5)
    for hierarchy in CGROUP_ROOT.iterdir():
        parent = hierarchy / CGROUP_PARENT
        if parent.is_dir():
            for d in parent.iterdir():
                if d.is_dir() and d.name.startswith(prefix):
                    with contextlib.suppress(OSError, Timeout):
                        _remove_cgroup(f"{CGROUP_PARENT}/{d.name}")
    state = RUN_DIR / f"slot-{slot}.json"
    if state.exists():
        with contextlib.suppress(OSError, ValueError):
            workdir = Path(json.loads(state.read_text())["workdir"])
            for mnt in (workdir / "hosts").glob("*/rootfs"):
                _unmount(mnt)
    if NETNS_DIR.is_dir():
        for ns in NETNS_DIR.iterdir():
            if ns.name.startswith(prefix):
                _run(["ip", "netns", "del", ns.name])
    for link in Path("/sys/class/net").iterdir():
        stem = len(f"rpth{slot}") + 8
        if link.name in (f"rptb{slot}", f"rptn{slot}") or (
            link.name.startswith((f"rpth{slot}", f"rptn{slot}")) and len(link.name) == stem
        ):
            _run(["ip", "link", "del", link.name])


def _delete_link(link: str) -> None:
    """Delete a link this set made. A veth whose peer was in a deleted netns goes away
    on its own, asynchronously (the kernel tears the namespace down later): if it vanished
    between our look and our delete, it is gone, which is what we wanted."""
    if not Path("/sys/class/net", link).exists():
        return
    try:
        _check(["ip", "link", "del", link])
    except TestHostError:
        if Path("/sys/class/net", link).exists():
            raise
