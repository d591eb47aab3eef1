"""The rackpool wheel and the wheelhouse of its dependencies, made on the deploy machine.

Hosts install offline (``pip install --no-index --find-links``): they need no package
index. The rackpool wheel is the inventory's ``wheel:`` (a file, or a directory holding
``rackpool-<version>-*.whl``) or built from this checkout with ``pip wheel --no-deps``.
The dependencies are built once per requirement set into
``/var/cache/rackpool/wheelhouse/<hash>/`` (``$RACKPOOL_WHEELHOUSE_CACHE``), outside
the checkout, and packed into one tar that Ansible copies to each host.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from rackpool.core.errors import ConfigError, TemporaryError

DEFAULT_CACHE = "/var/cache/rackpool/wheelhouse"
CACHE_ENV = "RACKPOOL_WHEELHOUSE_CACHE"


@dataclass(frozen=True)
class Wheels:
    wheel: Path  # rackpool-<version>-py3-none-any.whl
    version: str
    wheelhouse_tar: Path  # the dependencies, one tar
    wheelhouse_hash: str


def checkout_root() -> Path | None:
    """The source checkout this rackpool runs from (src layout), if it is one."""
    root = Path(__file__).resolve().parents[3]
    return (
        root
        if (root / "pyproject.toml").exists() and (root / "src" / "rackpool").is_dir()
        else None
    )


CHECKOUT = "checkout"


def checkout_version() -> str:
    """``version: checkout``: the checkout's version with its commit as a local version
    (``0.1.0+g1a2b3c4d5e6``), so each commit is its own virtualenv on the hosts."""
    root = checkout_root()
    if root is None:
        raise ConfigError("version: checkout needs a source checkout; give a version and wheel:")
    import tomllib

    base = tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]
    proc = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
        capture_output=True, text=True, check=False, timeout=30,
    )  # fmt: skip
    if proc.returncode != 0:
        raise ConfigError(
            f"version: checkout: {root} is not a git checkout ({proc.stderr.strip()})"
        )
    return f"{base}+g{proc.stdout.strip()}"


def wheel_version(path: Path) -> str:
    m = re.match(r"^rackpool-([^-]+)-", path.name)
    if not m:
        raise ConfigError(f"{path}: not a rackpool wheel (rackpool-<version>-*.whl)")
    return m.group(1)


def requirements(wheel: Path) -> list[str]:
    """The wheel's Requires-Dist without extras-only entries, sorted."""
    with zipfile.ZipFile(wheel) as z:
        name = next((n for n in z.namelist() if n.endswith(".dist-info/METADATA")), None)
        if name is None:
            raise ConfigError(f"{wheel}: no METADATA; not a wheel")
        meta = Parser().parsestr(z.read(name).decode())
    reqs = [r for r in meta.get_all("Requires-Dist") or [] if "extra ==" not in r]
    return sorted(r.strip() for r in reqs)


def find_wheel(source: str | None, version: str, out: Path) -> Path:
    """The rackpool wheel of ``version``: from ``source`` or built from the checkout."""
    if source:
        p = Path(source).expanduser()
        if p.is_dir():
            found = sorted(p.glob(f"rackpool-{version}-*.whl"))
            if not found:
                raise ConfigError(f"wheel: no rackpool-{version}-*.whl in {p}")
            return found[-1]
        if not p.is_file():
            raise ConfigError(f"wheel: {p} does not exist")
        if wheel_version(p) != version:
            raise ConfigError(
                f"wheel: {p.name} is version {wheel_version(p)}, the inventory asks for {version}"
            )
        return p
    root = checkout_root()
    if root is None:
        raise ConfigError("wheel: not running from a checkout; set wheel: to a rackpool wheel")
    build, tree = out / "build", out / "source"
    for d in (build, tree):
        shutil.rmtree(d, ignore_errors=True)
    build.mkdir(parents=True, mode=0o700)
    # a copy of the sources: building in the checkout would leave build/ and egg-info there
    tree.mkdir(mode=0o700)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    shutil.copytree(root / "src", tree / "src", ignore=skip)
    for name in ("pyproject.toml", "README.md", "LICENSE", "setup.cfg", "MANIFEST.in"):
        if (root / name).exists():
            shutil.copy(root / name, tree / name)
    if "+" in version:  # a checkout build: the commit goes into the wheel's version
        py = tree / "pyproject.toml"
        py.write_text(
            re.sub(r'(?m)^version = "[^"]*"', f'version = "{version}"', py.read_text(), count=1)
        )
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(build), str(tree)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    shutil.rmtree(tree, ignore_errors=True)
    if proc.returncode != 0:
        raise TemporaryError(f"pip wheel of {root} failed: {proc.stderr.strip()[-500:]}")
    built = sorted(build.glob("rackpool-*.whl"))
    if not built:
        raise TemporaryError(f"pip wheel of {root} made no rackpool wheel")
    if wheel_version(built[0]) != version:
        raise ConfigError(
            f"version: the inventory asks for {version} but this checkout builds "
            f"{wheel_version(built[0])}; set version:, --version or wheel:"
        )
    final = out / built[0].name
    shutil.move(str(built[0]), final)
    shutil.rmtree(build, ignore_errors=True)
    return final


def cache_dir() -> Path:
    base = Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
    try:
        base.mkdir(parents=True, exist_ok=True)
        if os.access(base, os.W_OK):
            return base
    except OSError:
        pass
    return Path.home() / ".cache" / "rackpool" / "wheelhouse"


def wheelhouse(reqs: list[str]) -> tuple[Path, str]:
    """A tar of wheels for ``reqs`` (and theirs), built once per requirement set."""
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    digest = hashlib.sha256("\n".join([tag, *reqs]).encode()).hexdigest()[:16]
    base = cache_dir()
    d = base / digest
    tar = base / f"{digest}.tar"
    if tar.exists():
        return tar, digest
    d.mkdir(parents=True, exist_ok=True)
    (d / "requirements.txt").write_text("\n".join(reqs) + "\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(d), "-r", str(d / "requirements.txt")],
        capture_output=True, text=True, check=False, timeout=1800,
    )  # fmt: skip
    if proc.returncode != 0:
        raise TemporaryError(f"building the wheelhouse failed: {proc.stderr.strip()[-800:]}")
    tmp = tar.with_suffix(".tmp")
    with tarfile.open(tmp, "w") as t:
        for f in sorted(d.glob("*.whl")):
            info = t.gettarinfo(str(f), arcname=f.name)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            info.mode = 0o644
            with f.open("rb") as fh:
                t.addfile(info, fh)
    tmp.replace(tar)
    return tar, digest


def prepare(source: str | None, version: str, out: Path) -> Wheels:
    out.mkdir(parents=True, exist_ok=True, mode=0o700)
    wheel = find_wheel(source, version, out)
    tar, digest = wheelhouse(requirements(wheel))
    return Wheels(wheel, version, tar, digest)
