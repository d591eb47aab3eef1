"""A Nova ``POST /servers`` body, checked and typed (no database needed)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rackpool.cloud import validation
from rackpool.core.errors import BadRequest, Forbidden

SERVER_KEYS = {
    "name", "imageRef", "flavorRef", "networks", "key_name", "metadata", "user_data",
    "config_drive", "availability_zone", "min_count", "max_count", "security_groups",
    "adminPass", "accessIPv4", "accessIPv6", "OS-DCF:diskConfig", "personality",
    "block_device_mapping_v2", "return_reservation_id",
}  # fmt: skip


@dataclass(frozen=True)
class ServerRequest:
    """What a create asks for; names, refs and sizes are valid, existence is not checked."""

    name: str
    flavor_ref: str
    image_ref: str
    key_name: str | None
    metadata: dict[str, str]
    user_data: str | None
    config_drive: bool
    availability_zone: str | None
    min_count: int
    max_count: int
    security_groups: tuple[str, ...]
    # Nova's forced host (``availability_zone: "AZ:HOST"``, ``"AZ::NODE"``,
    # ``"AZ:HOST:NODE"``, ``":HOST"``): a cloud admin's request for exactly this host.
    # ``availability_zone`` then holds the zone part only (None when it was empty).
    forced_host: str | None = None

    def server_name(self, i: int) -> str:
        """The name of the ``i``-th (0-based) server: ``name-1``… when several."""
        return f"{self.name}-{i + 1}" if self.max_count > 1 else self.name


FORCED_HOST_POLICY = "os_compute_api:servers:create:forced_host"


def parse(body: Any, may_force_host: bool = False) -> ServerRequest:
    """``body`` as a :class:`ServerRequest`; BadRequest naming the field otherwise.

    A forced host in ``availability_zone`` needs ``may_force_host`` (a cloud admin),
    else Forbidden with Nova's policy message."""
    s = validation.require_dict(body, "server")
    unknown = sorted(set(s) - SERVER_KEYS)
    if unknown:
        raise BadRequest(
            "Invalid input for field/attribute server. Additional properties are not allowed "
            f"({', '.join(repr(k) for k in unknown)} were unexpected)"
        )
    name = validation.name(s.get("name"), "name")
    for key in ("flavorRef", "imageRef"):
        if key not in s:
            raise BadRequest(
                f"Invalid input for field/attribute server. '{key}' is a required property"
            )
    flavor_ref = validation.ref(s["flavorRef"], "flavorRef")
    image_ref = validation.ref(s["imageRef"], "imageRef")
    _check_networks(s.get("networks"))
    meta = validation.metadata(s.get("metadata"))
    user_data = validation.user_data(s.get("user_data"))
    config_drive = validation.boolean(s.get("config_drive"), "config_drive")
    az = s.get("availability_zone")
    if az is not None and (not isinstance(az, str) or not az):
        raise BadRequest(
            "Invalid input for field/attribute availability_zone. Must be a non-empty string."
        )
    az, forced_host = _forced_host(az)
    if forced_host is not None and not may_force_host:
        raise Forbidden(
            f"Policy doesn't allow {FORCED_HOST_POLICY} to be performed. "
            "(availability_zone 'ZONE:HOST' places on a given host: cloud admins only; "
            "give a zone name alone)"
        )
    min_count = validation.count(s.get("min_count"), "min_count")
    max_count = validation.count(s.get("max_count", min_count), "max_count")
    if max_count < min_count:
        raise BadRequest("min_count must be <= max_count")
    groups = _security_groups(s.get("security_groups"))
    key_name = s.get("key_name")
    if key_name is not None and not isinstance(key_name, str):
        raise BadRequest("Invalid input for field/attribute key_name. Must be a string.")
    return ServerRequest(
        name=name, flavor_ref=flavor_ref, image_ref=image_ref, key_name=key_name,
        metadata=meta, user_data=user_data, config_drive=config_drive, availability_zone=az,
        min_count=min_count, max_count=max_count, security_groups=tuple(groups),
        forced_host=forced_host,
    )  # fmt: skip


def _forced_host(value: str | None) -> tuple[str | None, str | None]:
    """Split Nova's legacy ``ZONE:HOST``, ``ZONE::NODE``, ``ZONE:HOST:NODE`` forms into
    (zone or None, host or None). A host runs one node named as the host, so NODE names
    the host too; HOST and NODE given together must agree."""
    if value is None or ":" not in value:
        return value, None
    parts = value.split(":")
    if len(parts) == 2:
        zone, host, node = parts[0], parts[1], ""
    elif len(parts) == 3:
        zone, host, node = parts
    else:
        raise BadRequest(
            f"Invalid input received: Unsupported value for availability_zone: {value!r} "
            "(use ZONE, ZONE:HOST, ZONE::NODE or ZONE:HOST:NODE)"
        )
    if host and node and host != node:
        raise BadRequest(
            f"Invalid input for field/attribute availability_zone. {value!r}: node {node!r} "
            f"is not on host {host!r} (each host has one node, named as the host)"
        )
    name = host or node
    if not name:
        raise BadRequest(
            f"Invalid input for field/attribute availability_zone. {value!r} names no host "
            "(use ZONE:HOST or ZONE::NODE)"
        )
    if len(name) > 255:
        raise BadRequest(
            "Invalid input for field/attribute availability_zone. The host name is longer "
            "than 255 characters."
        )
    return (zone or None), name


def _check_networks(value: Any) -> None:
    if value is None or value in ("auto", "none"):
        return
    if not isinstance(value, list):
        raise BadRequest(
            "Invalid input for field/attribute networks. Must be 'auto', 'none' or a list."
        )
    for i, net in enumerate(value):
        if not isinstance(net, dict):
            raise BadRequest(f"Invalid input for field/attribute networks[{i}]. Must be an object.")
        uuid_ = net.get("uuid")
        if uuid_ is not None and uuid_ not in ("public",) and not isinstance(uuid_, str):
            raise BadRequest(
                f"Invalid input for field/attribute networks[{i}].uuid. Must be a string."
            )


def _security_groups(value: Any) -> list[str]:
    if value is None:
        return ["default"]
    if not isinstance(value, list):
        raise BadRequest("Invalid input for field/attribute security_groups. Must be a list.")
    out = []
    for i, g in enumerate(value):
        if not isinstance(g, dict) or not isinstance(g.get("name"), str):
            raise BadRequest(
                f"Invalid input for field/attribute security_groups[{i}]. Needs a 'name'."
            )
        out.append(g["name"])
    return out
