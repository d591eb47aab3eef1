"""JSON shapes of Nova/Glance resources as openstacksdk and nodepool read them."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rackpool.cloud.servers.repository import Server


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def host_id(project_id: str, host: str | None) -> str:
    if not host:
        return ""
    return hashlib.sha224((project_id + host).encode()).hexdigest()


def flavor(f: Any, base: str) -> dict[str, Any]:
    link = f"{base}/flavors/{f['id']}"
    return {
        "id": f["id"],
        "name": f["name"],
        "vcpus": f["vcpus"],
        "ram": f["ram"],
        "disk": f["disk"],
        "swap": "",
        "rxtx_factor": 1.0,
        "OS-FLV-EXT-DATA:ephemeral": 0,
        "OS-FLV-DISABLED:disabled": False,
        "os-flavor-access:is_public": bool(f["is_public"]),
        "links": [{"rel": "self", "href": link}, {"rel": "bookmark", "href": link}],
    }


def server(r: Server, base: str, admin: bool) -> dict[str, Any]:
    sid = r.id
    link = f"{base}/servers/{sid}"
    addresses: dict[str, list[dict[str, Any]]] = {}
    if r.address:
        addresses["public"] = [
            {
                "version": 4,
                "addr": r.address,
                "OS-EXT-IPS:type": "fixed",
                "OS-EXT-IPS-MAC:mac_addr": r.mac,
            }
        ]
    status = r.status
    vm_state = {"BUILD": "building", "ACTIVE": "active", "ERROR": "error"}.get(status, "deleted")
    body: dict[str, Any] = {
        "id": sid,
        "name": r.name,
        "status": status,
        "tenant_id": r.project_id,
        "user_id": r.user_id,
        "metadata": dict(r.metadata or {}),
        "hostId": host_id(r.project_id, r.host),
        "image": {
            "id": r.image_id,
            "links": [{"rel": "bookmark", "href": f"{base}/images/{r.image_id}"}],
        },
        "flavor": {
            "id": r.flavor_id,
            "links": [{"rel": "bookmark", "href": f"{base}/flavors/{r.flavor_id}"}],
        },
        "created": iso(r.created_at),
        "updated": iso(r.updated_at),
        "addresses": addresses,
        "accessIPv4": r.address or "",
        "accessIPv6": "",
        "links": [{"rel": "self", "href": link}, {"rel": "bookmark", "href": link}],
        "OS-DCF:diskConfig": "MANUAL",
        "progress": 100 if status == "ACTIVE" else 0,
        "OS-EXT-AZ:availability_zone": r.availability_zone or "",
        "config_drive": "True" if r.config_drive else "",
        "key_name": r.key_name,
        "OS-SRV-USG:launched_at": iso_micro(r.launched_at),
        "OS-SRV-USG:terminated_at": None,
        "OS-EXT-STS:task_state": r.task_state,
        "OS-EXT-STS:vm_state": vm_state,
        "OS-EXT-STS:power_state": 1 if status == "ACTIVE" else 0,
        "os-extended-volumes:volumes_attached": [],
        "security_groups": [{"name": g} for g in (r.security_groups or ["default"])],
    }
    if status == "ERROR" and r.fault_message:
        body["fault"] = {
            "code": r.fault_code or 500,
            "message": r.fault_message,
            "created": iso(r.fault_at),
        }
    if admin:
        body["OS-EXT-SRV-ATTR:host"] = r.host
        body["OS-EXT-SRV-ATTR:hypervisor_hostname"] = r.host
        body["OS-EXT-SRV-ATTR:instance_name"] = f"instance-{r.seq:08x}"
    return body


def image(i: Any) -> dict[str, Any]:
    body: dict[str, Any] = dict(i["properties"] or {})
    body.update(
        {
            "id": i["id"],
            "name": i["name"],
            "status": i["status"],
            "visibility": i["visibility"],
            "owner": i["owner"],
            "protected": bool(i["protected"]),
            "os_hidden": False,
            "disk_format": i["disk_format"],
            "container_format": i["container_format"],
            "size": i["size"],
            "virtual_size": None,
            "checksum": i["checksum"],
            "os_hash_algo": i["os_hash_algo"],
            "os_hash_value": i["os_hash_value"],
            "min_disk": i["min_disk"],
            "min_ram": i["min_ram"],
            "tags": list(i["tags"] or []),
            "created_at": iso(i["created_at"]),
            "updated_at": iso(i["updated_at"]),
            "self": f"/v2/images/{i['id']}",
            "file": f"/v2/images/{i['id']}/file",
            "schema": "/v2/schemas/image",
        }
    )
    return body
