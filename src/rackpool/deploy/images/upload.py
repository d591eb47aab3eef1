"""Upload a built image to Glance with openstacksdk, with the properties Nova-style
schedulers and humans read: ``os_distro``, ``os_version``, ``hw_*``, the recipe hash,
the kernel and the full package list (``name=version`` lines)."""

from __future__ import annotations

from typing import Any

from rackpool.deploy.images.build import BuiltImage, Format


def properties(built: BuiltImage) -> dict[str, str]:
    r = built.recipe
    props = {
        "os_distro": "debian",
        "os_version": "12" if r.suite == "bookworm" else r.suite,
        "os_type": "linux",
        "rackpool_recipe_hash": built.digest,
        "rackpool_kernel": built.kernel_version,
        "rackpool_kernel_args": r.kernel_args,
        "rackpool_packages": "\n".join(f"{n}={v}" for n, v in built.packages.items()),
    }
    return props


def qcow2_properties() -> dict[str, str]:
    return {"hw_disk_bus": "virtio", "hw_vif_model": "virtio", "hw_rng_model": "virtio"}


def connect(cloud: str | None) -> Any:
    """An openstacksdk connection to the clouds.yaml entry ``cloud``."""
    import openstack

    return openstack.connect(cloud=cloud)


def upload(built: BuiltImage, fmt: Format, conn: Any, visibility: str = "private") -> str:
    """Create the image in Glance through ``conn`` (openstacksdk) and upload its file."""
    props = properties(built)
    if fmt == "qcow2":
        props |= qcow2_properties()
    image = conn.image.create_image(
        name=built.recipe.name,
        filename=str(built.path(fmt)),
        disk_format="qcow2" if fmt == "qcow2" else "raw",
        container_format="bare" if fmt == "qcow2" else "tar",
        visibility=visibility,
        wait=True,
        allow_duplicates=True,
        **props,
    )
    return str(image.id)
