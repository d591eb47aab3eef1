"""OpenStack config drive: an ISO9660 volume ``config-2`` as glean and cloud-init read it.

Layout (as nova writes it)::

    openstack/latest/meta_data.json     uuid, name, hostname, public_keys, availability_zone, meta
    openstack/latest/network_data.json  links / networks / services (static IPv4)
    openstack/latest/user_data          only when user data was given
"""

from __future__ import annotations

import io
import ipaddress
import json
from pathlib import Path
from typing import Any

import pycdlib

from rackpool.core.instance import InstanceSpec, NetworkSpec

VOLUME_LABEL = "config-2"
LATEST = "openstack/latest"


def meta_data(instance: InstanceSpec, hostname: str, keys: tuple[str, ...]) -> dict[str, Any]:
    public_keys = {f"key-{i}": key for i, key in enumerate(keys)}
    return {
        "uuid": instance.id,
        "name": instance.name,
        "hostname": hostname,
        "public_keys": public_keys,
        "keys": [{"name": n, "type": "ssh", "data": k} for n, k in public_keys.items()],
        "availability_zone": instance.availability_zone,
        "project_id": instance.project_id,
        "launch_index": 0,
        "meta": dict(instance.metadata),
    }


def network_data(network: NetworkSpec) -> dict[str, Any]:
    iface = ipaddress.IPv4Interface(f"{network.address}/{network.prefix}")
    net: dict[str, Any] = {
        "id": "network0",
        "type": "ipv4",
        "link": "tap0",
        "ip_address": network.address,
        "netmask": str(iface.netmask),
        "network_id": network.network_name,
        "routes": [],
    }
    if network.gateway:
        net["routes"].append(
            {"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": network.gateway}
        )
    return {
        "links": [
            {
                "id": "tap0",
                "type": "phy",
                "ethernet_mac_address": network.mac,
                "mtu": 1500,
            }
        ],
        "networks": [net],
        "services": [],
    }


def files(
    instance: InstanceSpec,
    hostname: str,
    network: NetworkSpec,
    keys: tuple[str, ...],
    user_data: bytes | None,
) -> dict[str, bytes]:
    """Relative path → content of every file on the drive."""
    out = {
        f"{LATEST}/meta_data.json": json.dumps(meta_data(instance, hostname, keys)).encode(),
        f"{LATEST}/network_data.json": json.dumps(network_data(network)).encode(),
    }
    if user_data is not None:
        out[f"{LATEST}/user_data"] = user_data
    return out


def write_iso(path: Path, content: dict[str, bytes]) -> None:
    """Write ``content`` (relative path → bytes) as an ISO with Rock Ridge and Joliet names."""
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=4, joliet=3, rock_ridge="1.09", vol_ident=VOLUME_LABEL)
    made: set[str] = set()
    try:
        for rel in sorted(content):
            parts = rel.split("/")
            for depth in range(1, len(parts)):
                d = "/" + "/".join(parts[:depth])
                if d not in made:
                    iso.add_directory(d.upper(), rr_name=parts[depth - 1], joliet_path=d)
                    made.add(d)
            data = content[rel]
            iso.add_fp(
                io.BytesIO(data),
                len(data),
                "/" + rel.upper() + ";1",
                rr_name=parts[-1],
                joliet_path="/" + rel,
            )
        tmp = path.with_name(path.name + ".tmp")
        iso.write(str(tmp))
        tmp.replace(path)
    finally:
        iso.close()


def read_iso(path: Path) -> dict[str, bytes]:
    """Read every file of a config drive back (Rock Ridge names); for tests and debugging."""
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    out: dict[str, bytes] = {}
    try:
        for dirname, _dirs, names in iso.walk(rr_path="/"):
            for name in names:
                full = f"{dirname.rstrip('/')}/{name}"
                buf = io.BytesIO()
                iso.get_file_from_iso_fp(buf, rr_path=full)
                out[full.lstrip("/")] = buf.getvalue()
    finally:
        iso.close()
    return out


def volume_label(path: Path) -> str:
    iso = pycdlib.PyCdlib()
    iso.open(str(path))
    try:
        return iso.pvd.volume_identifier.decode().strip()
    finally:
        iso.close()
