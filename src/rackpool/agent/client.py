"""The agent's HTTP client for the controller's ``/agent/v1`` API (docs/agent-api.md)."""

from __future__ import annotations

import base64
import binascii
import logging
from pathlib import Path
from typing import Any

import httpx

from rackpool.agent.errors import ControllerRejected, ControllerUnavailable, IncompatibleController
from rackpool.core import agentapi
from rackpool.core.instance import FlavorSpec, ImageSpec, InstanceSpec, NetworkSpec

log = logging.getLogger("rackpool.agent.client")


class ControllerClient:
    """Every request says which agent API version it speaks (``X-Rackpool-Agent-API``)."""

    def __init__(
        self, url: str, token: str, timeout: float = 10.0, api_version: str = agentapi.CURRENT
    ) -> None:
        self.url = url
        self.api_version = api_version
        headers = {"X-Agent-Token": token, agentapi.HEADER: api_version}
        self._http = httpx.Client(base_url=url, headers=headers, timeout=timeout, trust_env=False)

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
        if resp.status_code == 406:
            raise IncompatibleController(f"{self.url}: {_fault_message(resp)}")
        if resp.status_code >= 400:
            raise ControllerRejected(
                f"{method} {path}: HTTP {resp.status_code}: {resp.text[:300]}", resp.status_code
            )
        return resp.json()

    def served_versions(self) -> tuple[str, str]:
        """The agent API versions the controller serves, ``(min, max)``. A controller
        without the version endpoint (404) predates versioning: it serves only 1.0."""
        try:
            resp = self._http.get(agentapi.VERSION_PATH)
        except httpx.HTTPError as exc:
            raise ControllerUnavailable(f"GET {agentapi.VERSION_PATH}: {exc}") from exc
        if resp.status_code == 404:
            return agentapi.UNVERSIONED, agentapi.UNVERSIONED
        if resp.status_code >= 500:
            raise ControllerUnavailable(f"GET {agentapi.VERSION_PATH}: HTTP {resp.status_code}")
        try:
            served = resp.json()["agent_api"]
            low, high = str(served["min"]), str(served["max"])
            agentapi.parse(low), agentapi.parse(high)
        except (ValueError, KeyError, TypeError) as exc:
            raise ControllerRejected(
                f"GET {agentapi.VERSION_PATH}: HTTP {resp.status_code}, not a version answer "
                f"({exc})", resp.status_code,
            ) from None  # fmt: skip
        return low, high

    def check_version(self) -> tuple[str, str]:
        """Refuse (IncompatibleController) a controller that does not serve our version."""
        low, high = self.served_versions()
        if not agentapi.supports(low, high, self.api_version):
            fix = (
                "upgrade the controller first (rolling upgrade: controller, then agents)"
                if agentapi.parse(high) < agentapi.parse(self.api_version)
                else "upgrade this agent"
            )
            raise IncompatibleController(
                f"this agent speaks agent API {self.api_version} but the controller at "
                f"{self.url} serves agent API {agentapi.span(low, high)}: {fix}"
            )
        return low, high

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


def _fault_message(resp: httpx.Response) -> str:
    """The message of an OpenStack-shaped fault, or the start of the body."""
    try:
        body = resp.json()
        return str(next(iter(body.values()))["message"])
    except (ValueError, StopIteration, KeyError, TypeError, AttributeError):
        return f"HTTP {resp.status_code}: {resp.text[:300]}"


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
