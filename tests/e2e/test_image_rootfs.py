"""The image recipe's other format and its pins: a rootfs tarball booted by the container
driver, and one recipe giving one package set whichever format is built.

``rackpool image build --format rootfs`` makes a tar.gz of the same Debian tree the qcow2
holds (cached in /var/cache/rackpool/images/<recipe hash>/rootfs/, ~75 s cold). Here it
is uploaded the way ``--upload`` does (openstacksdk), booted on a container host of a
real region (tests/support/container_region.py, instances on 198.18.248.0/24) and
logged into over SSH against the console's host keys.
"""

from __future__ import annotations

import base64
import subprocess
import tarfile
from pathlib import Path

import pytest
from tests.support.container_region import KEY_NAME, container_region

from rackpool.agent.virt.container.boot import parse_host_keys
from rackpool.core.clock import wait_for
from rackpool.deploy.images import DEFAULT_CACHE, build_image, debian_cloud
from rackpool.deploy.images.upload import upload

pytestmark = pytest.mark.root
USER_DATA = "#!/bin/sh\necho rootfs-user-data > /root/user-data.out\n"


def _dpkg_status_packages(status: str) -> dict[str, str]:
    """name → version of every installed package in a dpkg status file."""
    out: dict[str, str] = {}
    for stanza in status.split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if "Package" in fields and fields.get("Status", "").endswith(" installed"):
            out[fields["Package"]] = fields["Version"]
    return out


def _rootfs_status(tarball: Path) -> str:
    with tarfile.open(tarball, "r:gz") as tar:
        f = tar.extractfile("./var/lib/dpkg/status")
        assert f is not None
        return f.read().decode()


def _qcow2_status(disk: Path, tmp: Path) -> str:
    raw, out = tmp / "disk.raw", tmp / "status"
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(disk), str(raw)], check=True)
    try:
        subprocess.run(["debugfs", "-R", f"dump /var/lib/dpkg/status {out}", str(raw)],
                       check=True, capture_output=True)  # fmt: skip
    finally:
        raw.unlink()
    return out.read_text()


# a cold build is ~75 s per format; both are cached for later runs
@pytest.mark.timeout(900)
def test_one_recipe_gives_one_pinned_package_set_in_both_formats(tmp_path: Path) -> None:
    recipe = debian_cloud()
    pins = dict(recipe.pins)
    assert pins["cloud-init"] and pins["linux-image-cloud-amd64"]  # the lock covers everything
    rootfs = build_image(recipe, "rootfs", DEFAULT_CACHE)
    qcow2 = build_image(recipe, "qcow2", DEFAULT_CACHE)
    # two separate mmdebstrap runs of the recipe, each recording exactly the pinned set ...
    assert rootfs.packages == qcow2.packages == pins
    # ... and what dpkg says is installed in each image's bytes is that set too
    assert _dpkg_status_packages(_rootfs_status(rootfs.path("rootfs"))) == pins
    assert _dpkg_status_packages(_qcow2_status(qcow2.path("qcow2"), tmp_path)) == pins
    # the build leaves the guest's apt unpinned (the pins are a build-time constraint)
    with tarfile.open(rootfs.path("rootfs"), "r:gz") as tar:
        assert not [m for m in tar.getnames() if "preferences.d/rackpool" in m]


@pytest.mark.timeout(900)
def test_the_rootfs_build_boots_on_a_container_host_as_debian_bookworm(tmp_path: Path) -> None:
    built = build_image(debian_cloud(), "rootfs", DEFAULT_CACHE)
    with container_region(tmp_path, cidr="198.18.248.0/24", name="rf") as rack:
        conn = rack.region.connect()
        image_id = upload(built, "rootfs", conn)  # what rackpool image build --upload does
        image = conn.image.get_image(image_id)
        assert (image.disk_format, image.container_format) == ("raw", "tar")
        assert (image.os_distro, image.os_version) == ("debian", "12")
        assert image.properties["rackpool_packages"].splitlines() == [
            f"{n}={v}" for n, v in sorted(built.packages.items())
        ]
        server = conn.compute.create_server(
            name="rootfs-one", image_id=image_id, flavor_id="1", key_name=KEY_NAME,
            networks="auto", user_data=base64.b64encode(USER_DATA.encode()).decode(),
        )  # fmt: skip
        # the first boot fetches and unpacks ~140 MB, then makes host keys
        server = conn.compute.wait_for_server(server, wait=300, interval=0.5)
        keys = parse_host_keys(conn.compute.get_server_console_output(server)["output"])
        assert keys, "no host keys on the console"
        address = server.access_ipv4 or server.addresses["public"][0]["addr"]
        out: list[str] = []

        def login() -> bool:
            r = rack.login(address, keys, "hostname; cat /etc/os-release; cat /root/user-data.out",
                           tmp_path)  # fmt: skip
            out[:] = [r.stdout]
            return r.returncode == 0 and "rootfs-user-data" in r.stdout

        wait_for(login, 60, "ssh login and user_data output", interval=0.5)
        lines = out[0].splitlines()
        assert lines[0] == "rootfs-one"
        assert "ID=debian" in lines and "VERSION_CODENAME=bookworm" in lines
        # the guest's dpkg knows the pinned packages: it is the built tree, not the host's
        r = rack.login(address, keys, "dpkg-query -W -f='${Version}' cloud-init", tmp_path)
        assert r.stdout == built.packages["cloud-init"]
        conn.compute.delete_server(server)
        wait_for(lambda: conn.compute.find_server(server.id) is None, 60, "server deleted")
