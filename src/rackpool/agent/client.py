"""The agent's HTTP client for the controller's ``/agent/v1`` API (docs/agent-api.md)."""

from __future__ import annotations

import base64
import binascii
import logging
from pathlib import Path
from typing import Any

import httpx

from rackpool.agent.errors import ControllerRejected, ControllerUnavailable
from rackpool.core.instance import FlavorSpec, ImageSpec, InstanceSpec, NetworkSpec

log = logging.getLogger("rackpool.agent.client")


class ControllerClient:
    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        self._http = httpx.Client(
            base_url=url, headers={"X-Agent-Token": token}, timeout=timeout, trust_env=False
        )

    def close(self) -> None:
        self._http.close()

    def set_token(self, token: str) -> None:
        """Present ``token`` (this host's own credential) from now on."""
        self._http.headers["X-Agent-Token"] = token

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            resp = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ControllerUnavailable(f"{method} {path}: {exc}") from exc
        if resp.status_code >= 500:
            raise ControllerUnavailable(f"{method} {path}: HTTP {resp.status_code}")
        if resp.status_code >= 400:
            raise ControllerRejected(
                f"{method} {path}: HTTP {resp.status_code}: {resp.text[:300]}", resp.status_code
            )
        return resp.json()

    def register(self, body: dict[str, Any]) -> dict[str, Any]:
        return dict(self._call("POST", "/agent/v1/hosts", body))

    def heartbeat(self, host: str, instances: list[dict[str, Any]]) -> dict[str, Any]:
        return dict(
            self._call("POST", f"/agent/v1/hosts/{host}/heartbeat", {"instances": instances})
        )

    def pull(self, host: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/agent/v1/hosts/{host}/instances")["instances"])

    def report(self, instance_id: str, body: dict[str, Any]) -> None:
        self._call("POST", f"/agent/v1/instances/{instance_id}/report", body)

    def download(self, file_url: str, dest: Path) -> None:
        try:
            with self._http.stream("GET", file_url) as resp:
                if resp.status_code >= 400:
                    raise ControllerRejected(
                        f"GET {file_url}: HTTP {resp.status_code}", resp.status_code
                    )
                with open(dest, "wb") as f:
                    for chunk in resp.iter_bytes(1 << 20):
                        f.write(chunk)
        except httpx.HTTPError as exc:
            raise ControllerUnavailable(f"GET {file_url}: {exc}") from exc


def _user_data(value: Any) -> bytes | None:
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return str(value).encode()


def parse_instance(d: dict[str, Any]) -> InstanceSpec:
    """The wire form of one desired instance → InstanceSpec (KeyError on a missing field)."""
    img, flv, net = d["image"], d["flavor"], d["network"]
    return InstanceSpec(
        id=d["id"],
        name=d["name"],
        hostname=d.get("hostname") or d["name"],
        project_id=d.get("project_id") or "",
        image=ImageSpec(
            id=img["id"],
            name=img.get("name") or img["id"],
            builtin=img.get("builtin"),
            checksum=img.get("checksum"),
            os_hash_algo=img.get("os_hash_algo"),
            os_hash_value=img.get("os_hash_value"),
            size=img.get("size"),
            disk_format=img.get("disk_format") or "raw",
            container_format=img.get("container_format") or "bare",
            file_url=img.get("file_url"),
        ),
        flavor=FlavorSpec(
            id=flv["id"],
            name=flv.get("name") or flv["id"],
            vcpus=int(flv["vcpus"]),
            ram_mb=int(flv["ram"]),
            disk_gb=int(flv["disk"]),
        ),
        network=NetworkSpec(
            address=net["address"],
            prefix=int(net["prefix"]),
            gateway=net["gateway"],
            mac=net["mac"],
            network_name=net.get("network_name") or "public",
        ),
        keys=tuple(d.get("keys") or ()),
        user_data=_user_data(d.get("user_data")),
        metadata=tuple(sorted((str(k), str(v)) for k, v in (d.get("metadata") or {}).items())),
        config_drive=bool(d.get("config_drive")),
        availability_zone=d.get("availability_zone") or "nova",
    )
