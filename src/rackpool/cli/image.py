"""``rackpool image build [--format qcow2|rootfs] [--upload --os-cloud C] NAME``.

Builds (or takes from the cache) a Debian bookworm cloud image from one recipe and,
with ``--upload``, puts it in Glance through openstacksdk. docs/images.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _build(args: argparse.Namespace) -> int:
    from rackpool.deploy.images import build_image, debian_cloud
    from rackpool.deploy.images.recipe import load_lock

    pins = () if args.no_pins else load_lock(Path(args.lock) if args.lock else None)
    recipe = debian_cloud(args.name, mirror=args.mirror, pins=pins)
    built = build_image(
        recipe, args.format, Path(args.cache), progress=lambda m: print(m, file=sys.stderr)
    )
    print(built.path(args.format))
    if args.upload:
        from rackpool.deploy.images.upload import connect, upload

        conn = connect(args.os_cloud)
        image_id = upload(built, args.format, conn, visibility=args.visibility)
        print(f"uploaded {args.name} as {image_id}", file=sys.stderr)
    return 0


def register(sub: Any) -> None:
    from rackpool.deploy.images.recipe import DEFAULT_CACHE, DEFAULT_MIRROR

    image = sub.add_parser("image", help="build and upload guest images")
    isub = image.add_subparsers(dest="image_command", required=True)
    p = isub.add_parser("build", help="build a Debian bookworm cloud image (cached by recipe)")
    p.add_argument("name", help="image name (the Glance name with --upload)")
    p.add_argument("--format", choices=["qcow2", "rootfs"], default="qcow2")
    p.add_argument("--cache", default=str(DEFAULT_CACHE), help="build cache directory")
    p.add_argument("--mirror", default=DEFAULT_MIRROR, help="Debian mirror (or a "
                   "snapshot.debian.org/archive/debian/<timestamp>/ URL)")  # fmt: skip
    p.add_argument("--lock", default=None, help="lock file pinning every package's version "
                   "(default: the bundled debian-12-cloud.lock.yaml)")  # fmt: skip
    p.add_argument("--no-pins", action="store_true", help="install whatever versions the "
                   "mirror serves; the cache dir's packages.lock.yaml then records them")  # fmt: skip
    p.add_argument("--upload", action="store_true", help="upload to Glance (openstacksdk)")
    p.add_argument("--os-cloud", default=None, help="clouds.yaml entry for --upload")
    p.add_argument("--visibility", default="private", choices=["private", "public", "shared"])
    p.set_defaults(handler=_build)
