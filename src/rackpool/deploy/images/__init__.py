"""Image builds: one recipe → a bootable Debian cloud image (qcow2) or a rootfs tarball.

Errors::

    RackpoolError
    └── ImageBuildError      a build step failed (permanent for this recipe and mirror)
"""

from __future__ import annotations

from rackpool.deploy.images.build import BuiltImage, ImageBuildError, build_image
from rackpool.deploy.images.recipe import DEFAULT_CACHE, Recipe, debian_cloud

__all__ = [
    "DEFAULT_CACHE",
    "BuiltImage",
    "ImageBuildError",
    "Recipe",
    "build_image",
    "debian_cloud",
]
