"""The image recipe: what keys the build cache, and the Glance properties of a build."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from rackpool.deploy.images import BuiltImage, ImageBuildError, build_image, debian_cloud
from rackpool.deploy.images.build import apt_preferences, check_pins
from rackpool.deploy.images.recipe import CLOUD_PACKAGES, load_lock, lock_text
from rackpool.deploy.images.upload import properties, qcow2_properties


def test_the_cache_key_follows_the_bytes_not_the_name() -> None:
    a = debian_cloud("one")
    assert a.digest() == debian_cloud("two").digest()
    assert a.digest() != dataclasses.replace(a, packages=(*a.packages, "vim")).digest()
    assert a.digest() != dataclasses.replace(a, cloud_cfg=a.cloud_cfg + "x: 1\n").digest()
    assert len(a.digest()) == 64


def test_cloud_init_reads_only_the_config_drive() -> None:
    cfg = debian_cloud().cloud_cfg
    assert "datasource_list: [ConfigDrive, None]" in cfg
    assert "locale: C.UTF-8" in cfg  # else cloud-init's status is "error"


def _fake_build(tmp_path: Path) -> BuiltImage:
    recipe = debian_cloud("deb")
    d = tmp_path / recipe.digest() / "qcow2"
    d.mkdir(parents=True)
    (d / "disk.qcow2").write_bytes(b"QFI\xfb")
    meta = {"packages": {"cloud-init": "22.4.2-1", "openssh-server": "1:9.2p1-2"},
            "seconds": {"total": 90.0}, "kernel_version": "6.1.0-50-cloud-amd64"}  # fmt: skip
    (d / "image.json").write_text(json.dumps(meta))
    return build_image(recipe, "qcow2", tmp_path, progress=lambda m: None)


def test_a_finished_build_is_taken_from_the_cache(tmp_path: Path) -> None:
    built = _fake_build(tmp_path)  # no mmdebstrap run: it would take minutes
    assert built.cached and built.seconds == {"total": 90.0}
    assert built.path("qcow2").read_bytes() == b"QFI\xfb"


def test_glance_properties_record_what_went_in(tmp_path: Path) -> None:
    built = _fake_build(tmp_path)
    props = properties(built) | qcow2_properties()
    assert props["os_distro"] == "debian" and props["os_version"] == "12"
    assert props["hw_disk_bus"] == "virtio"
    assert props["rackpool_recipe_hash"] == built.digest
    assert props["rackpool_kernel"] == "6.1.0-50-cloud-amd64"
    assert props["rackpool_packages"].splitlines() == [
        "cloud-init=22.4.2-1",
        "openssh-server=1:9.2p1-2",
    ]


def test_the_default_recipe_pins_every_package_to_one_version(tmp_path: Path) -> None:
    recipe = debian_cloud()
    pins = dict(recipe.pins)
    assert set(CLOUD_PACKAGES) <= pins.keys()  # the listed packages and all they pull in
    assert {"dpkg", "libc6", "systemd", "python3"} <= pins.keys()
    assert recipe.digest() != debian_cloud(pins=()).digest()  # unpinned is another image
    changed = (*recipe.pins[:-1], (recipe.pins[-1][0], "0.0-other"))
    assert recipe.digest() != debian_cloud(pins=changed).digest()
    # a lock written from a build's package list reads back as the same pins
    (tmp_path / "x.lock.yaml").write_text(lock_text(pins, "bookworm"))
    assert load_lock(tmp_path / "x.lock.yaml") == recipe.pins


def test_apt_is_told_to_install_exactly_the_pinned_versions() -> None:
    prefs = apt_preferences((("bash", "5.2.15-2+b13"), ("openssh-server", "1:9.2p1-2+deb12u7")))
    assert prefs.split("\n\n")[:2] == [
        "Package: bash\nPin: version 5.2.15-2+b13\nPin-Priority: 1001",
        "Package: openssh-server\nPin: version 1:9.2p1-2+deb12u7\nPin-Priority: 1001",
    ]


def test_a_build_that_strays_from_the_pins_fails_naming_each_difference() -> None:
    pins = {"bash": "5.2.15-2+b13", "dash": "0.5.12-2"}
    check_pins(pins, dict(pins))  # the same set: fine
    with pytest.raises(ImageBuildError) as err:
        check_pins(pins, {"bash": "5.2.15-2+b14", "dash": "0.5.12-2", "vim": "2:9.0"})
    assert "bash: pinned 5.2.15-2+b13, installed 5.2.15-2+b14" in err.value.message
    assert "vim: pinned -, installed 2:9.0" in err.value.message
    assert "2 differences" in err.value.message
