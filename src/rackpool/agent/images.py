"""Local image cache: fetch Glance images from the controller, verify, unpack once."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import threading
from pathlib import Path

from rackpool.agent.client import ControllerClient
from rackpool.agent.errors import ImageError
from rackpool.agent.virt.base import ImageForm, LocalImage
from rackpool.core.errors import RackpoolError
from rackpool.core.instance import ImageSpec

log = logging.getLogger("rackpool.agent.images")


def verify(path: Path, image: ImageSpec) -> None:
    """Check the md5 ``checksum`` and the ``os_hash_value`` when the controller gives them."""
    size = path.stat().st_size
    if image.size and size != image.size:
        raise ImageError(f"image {image.id}: size {size} != expected {image.size}")
    md5 = hashlib.md5(usedforsecurity=False)
    algo = image.os_hash_algo if image.os_hash_value else None
    multi = hashlib.new(algo) if algo else None
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            md5.update(chunk)
            if multi:
                multi.update(chunk)
    if image.checksum and md5.hexdigest() != image.checksum:
        raise ImageError(f"image {image.id}: md5 {md5.hexdigest()} != expected {image.checksum}")
    if multi and multi.hexdigest() != image.os_hash_value:
        raise ImageError(f"image {image.id}: {algo} mismatch")


def fetch_failure(image_id: str, exc: RackpoolError) -> ImageError:
    """The fault an instance gets when its image cannot be had: one phrase for every
    cause (download, checksum, unpacking), which the ``rackpool-image-fetch-failure``
    signature looks for."""
    return ImageError(f"Failed to fetch image {image_id}: {exc.message}")


class ImageCache:
    """``<dir>/<id>/image`` (the verified download) and ``<dir>/<id>/rootfs`` (unpacked tar)."""

    def __init__(self, directory: Path, client: ControllerClient | None) -> None:
        self.dir = directory
        self.client = client
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, image_id: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(image_id, threading.Lock())

    def prepare(self, image: ImageSpec, form: ImageForm) -> LocalImage:
        if image.builtin == "host" or image.id == "host":
            return LocalImage(image.id, "host")
        if "/" in image.id or not image.id:
            raise ImageError(f"bad image id {image.id!r}")
        with self._lock(image.id):
            base = self.dir / image.id
            blob = self._fetch(image, base)
            if form == "disk":
                return LocalImage(image.id, "disk", str(blob))
            return LocalImage(image.id, "rootfs", str(self._unpack(image, blob, base)))

    def _fetch(self, image: ImageSpec, base: Path) -> Path:
        blob = base / "image"
        if blob.exists():
            if self._still_valid(image, blob):
                return blob
            log.warning(
                "cached image %s changed on disk or does not match its checksum; fetching again",
                image.id,
                extra={"image_id": image.id},
            )
            blob.unlink()
        if self.client is None or not image.file_url:
            raise ImageError(f"image {image.id} is not cached and has no file URL")
        base.mkdir(parents=True, exist_ok=True)
        part = base / "image.part"
        self.client.download(image.file_url, part)
        try:
            verify(part, image)
        except ImageError:
            part.unlink(missing_ok=True)
            raise
        part.replace(blob)
        self._mark_verified(image, blob)
        log.info("cached image %s", image.id, extra={"image_id": image.id})
        return blob

    @staticmethod
    def _fingerprint(image: ImageSpec, blob: Path) -> dict[str, object]:
        st = blob.stat()
        return {
            "checksum": image.checksum,
            "os_hash_value": image.os_hash_value,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "inode": st.st_ino,
        }

    def _mark_verified(self, image: ImageSpec, blob: Path) -> None:
        marker = blob.with_name("verified.json")
        tmp = blob.with_name("verified.json.tmp")
        tmp.write_text(json.dumps(self._fingerprint(image, blob)))
        tmp.replace(marker)

    def _still_valid(self, image: ImageSpec, blob: Path) -> bool:
        """A cached blob is used as is only if it is unchanged since it was verified.

        Hashing a large image on every spawn would be slow, so the verification is
        recorded with the file's size, mtime and inode; any difference (or a different
        expected checksum) means hashing it again.
        """
        marker = blob.with_name("verified.json")
        try:
            if json.loads(marker.read_text()) == self._fingerprint(image, blob):
                return True
        except (OSError, ValueError):
            pass
        try:
            verify(blob, image)
        except ImageError:
            return False
        self._mark_verified(image, blob)
        return True

    def _unpack(self, image: ImageSpec, blob: Path, base: Path) -> Path:
        root = base / "rootfs"
        if root.exists():
            return root
        tmp = base / "rootfs.part"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        # GNU tar keeps owners, modes and device nodes, strips leading "/" and ".." members,
        # and defers symlinks so a member cannot be written through one onto the host.
        proc = subprocess.run(
            ["tar", "-x", "-p", "--numeric-owner", "-f", str(blob), "-C", str(tmp)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ImageError(f"image {image.id} is not a rootfs tarball: {proc.stderr[-300:]}")
        tmp.replace(root)
        return root
