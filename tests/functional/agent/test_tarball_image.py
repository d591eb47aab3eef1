"""A rootfs tarball through Glance into the agent's ImageCache, end to end.

Uploaded with openstacksdk to a real region controller, fetched by ImageCache from
``/agent/v1/images/{id}/file`` with the agent token, verified (md5 and os_hash) and
unpacked. Booting one in the container driver is in test_agent_region.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import tarfile
from pathlib import Path

import pytest
from tests.support.region import AGENT_TOKEN, running_region

from rackpool.agent.client import ControllerClient
from rackpool.agent.errors import ImageError
from rackpool.agent.images import ImageCache
from rackpool.core.instance import ImageSpec

pytestmark = pytest.mark.root


def make_tarball(path: Path, src: Path) -> None:
    (src / "bin").mkdir(parents=True)
    (src / "etc").mkdir()
    (src / "bin" / "sh").write_text("#!/bin/false\n")
    (src / "bin" / "sh").chmod(0o755)
    (src / "etc" / "os-release").write_text('ID=rackpool-test\nNAME="tiny"\n')
    (src / "sh-link").symlink_to("bin/sh")
    with tarfile.open(path, "w") as tar:
        for member in ("bin", "etc", "sh-link"):
            tar.add(src / member, arcname=member)


def test_tarball_image_fetch_verify_unpack(tmp_path: Path) -> None:
    blob = tmp_path / "rootfs.tar"
    make_tarball(blob, tmp_path / "tree")
    data = blob.read_bytes()
    with running_region(tmp_path, fake_hosts=[]) as region:
        conn = region.connect()
        image = conn.create_image(
            "tiny-rootfs", filename=str(blob), disk_format="raw", container_format="tar", wait=True
        )
        assert image.checksum == hashlib.md5(data, usedforsecurity=False).hexdigest()
        spec = ImageSpec(
            id=image.id,
            name=image.name,
            checksum=image.checksum,
            os_hash_algo=image.hash_algo,
            os_hash_value=image.hash_value,
            size=image.size,
            container_format="tar",
            file_url=f"/agent/v1/images/{image.id}/file",
        )
        client = ControllerClient(region.url, AGENT_TOKEN)
        # a host fetches only images its instances use: enroll one and place a server on it
        reg = client.register(
            {"name": "tar-h1", "driver": "fake", "vcpus": 4, "ram_mb": 4096, "disk_gb": 40}
        )
        client.set_token(reg["credential"])
        conn.compute.create_server(name="uses-tar", image_id=image.id, flavor_id="1")
        try:
            cache = ImageCache(tmp_path / "images", client)
            local = cache.prepare(spec, "rootfs")
            assert local.form == "rootfs" and local.path
            root = Path(local.path)
            assert (root / "etc" / "os-release").read_text().startswith("ID=rackpool-test")
            assert (root / "bin" / "sh").stat().st_mode & 0o777 == 0o755
            assert (root / "sh-link").readlink() == Path("bin/sh")
            assert (tmp_path / "images" / image.id / "image").read_bytes() == data
            # a second prepare uses the cache
            assert cache.prepare(spec, "rootfs") == local
            # a cached file that changed on disk (same size, other bytes) is noticed,
            # dropped and fetched again
            cached = tmp_path / "images" / image.id / "image"
            cached.write_bytes(bytes(len(data)))
            assert cache.prepare(spec, "rootfs") == local
            assert cached.read_bytes() == data

            # bytes that do not match the expected checksum are rejected and not kept
            bad = dataclasses.replace(spec, checksum="0" * 32)
            fresh = ImageCache(tmp_path / "images2", client)
            with pytest.raises(ImageError, match="md5"):
                fresh.prepare(bad, "rootfs")
            assert not (tmp_path / "images2" / image.id / "image").exists()
            assert not (tmp_path / "images2" / image.id / "image.part").exists()
        finally:
            client.close()
            conn.delete_image(image.id, wait=True)
