"""Glance's image schema, enforced on every create and every PATCH.

``apply_patch`` applies a JSON-patch (application/openstack-images-v2.1-json-patch) to a
copy of an image's writable fields and ``check`` validates the whole result, so a bad
patch is a 4xx that changes nothing, and no project can store a value that would break
another client's listing (types, enums, lengths and counts below are Glance's own
defaults: image_property_quota and image_tag_quota 128, names of 255 characters).

Errors: ``BadRequest`` (400) for an invalid value or patch, ``Forbidden`` (403) for a
read-only attribute, ``Conflict`` (409) to replace or remove a property that is not there.
"""

from __future__ import annotations

import math
from typing import Any

from rackpool.core.errors import BadRequest, Conflict, Forbidden

DISK_FORMATS = ("raw", "qcow2", "vhd", "vmdk", "vdi", "iso", "ami", "ari", "aki", "ploop")
CONTAINER_FORMATS = ("bare", "ovf", "ova", "docker", "tar", "ami", "ari", "aki", "compressed")
VISIBILITIES = ("private", "shared", "community", "public")
WRITABLE = ("name", "visibility", "disk_format", "container_format", "min_disk", "min_ram",
            "protected", "tags", "os_hidden")  # fmt: skip
READ_ONLY = frozenset({
    "id", "status", "size", "checksum", "owner", "created_at", "updated_at", "self", "file",
    "schema", "os_hash_algo", "os_hash_value", "virtual_size", "direct_url", "locations",
})  # fmt: skip
MAX_NAME = 255
MAX_TAGS = 128
MAX_TAG = 255
MAX_PROPERTIES = 128
MAX_PROPERTY_KEY = 255
MAX_PROPERTY_VALUE = 65535
MAX_INT = 2**31 - 1


def record(row: Any) -> dict[str, Any]:
    """The writable fields of a stored image, as fresh (copied) values."""
    out = {k: row[k] for k in WRITABLE if k != "os_hidden"}
    out["tags"] = list(row["tags"] or [])
    out["properties"] = dict(row["properties"] or {})
    return out


def check(rec: dict[str, Any]) -> dict[str, Any]:
    """Validate a whole image record; return it normalised (tags de-duplicated)."""
    name = rec.get("name")
    if name is not None and (not isinstance(name, str) or len(name) > MAX_NAME):
        raise BadRequest(f"name must be a string of at most {MAX_NAME} characters or null")
    if rec.get("visibility") not in VISIBILITIES:
        raise BadRequest(f"visibility must be one of {', '.join(VISIBILITIES)}")
    for key, allowed in (("disk_format", DISK_FORMATS), ("container_format", CONTAINER_FORMATS)):
        if rec.get(key) is not None and rec.get(key) not in allowed:
            raise BadRequest(f"{key} must be one of {', '.join(allowed)} (or null)")
    for key in ("min_disk", "min_ram"):
        v = rec.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_INT:
            raise BadRequest(f"{key} must be an integer from 0 to {MAX_INT}")
    if not isinstance(rec.get("protected"), bool):
        raise BadRequest("protected must be a boolean")
    rec["tags"] = _tags(rec.get("tags"))
    _properties(rec.get("properties"))
    return rec


def _tags(tags: Any) -> list[str]:
    if not isinstance(tags, list):
        raise BadRequest("tags must be a list of strings")
    out: list[str] = []
    for t in tags:
        if not isinstance(t, str) or not 0 < len(t) <= MAX_TAG:
            raise BadRequest(f"each tag must be a string of 1 to {MAX_TAG} characters")
        if t not in out:
            out.append(t)
    if len(out) > MAX_TAGS:
        raise BadRequest(f"an image has at most {MAX_TAGS} tags, not {len(out)}")
    return out


def _properties(props: Any) -> None:
    if not isinstance(props, dict):
        raise BadRequest("image properties must be an object")
    if len(props) > MAX_PROPERTIES:
        raise BadRequest(f"an image has at most {MAX_PROPERTIES} properties, not {len(props)}")
    for k, v in props.items():
        if not 0 < len(k) <= MAX_PROPERTY_KEY:
            raise BadRequest(f"property names are 1 to {MAX_PROPERTY_KEY} characters")
        if k in READ_ONLY or k in WRITABLE:
            raise Forbidden(f"Attribute '{k}' is read-only or reserved.")
        if not _scalar(v):
            raise BadRequest(
                f"property {k!r} must be a string of at most {MAX_PROPERTY_VALUE} characters, "
                "a number, a boolean or null"
            )


def _scalar(v: Any) -> bool:
    if v is None or isinstance(v, bool):
        return True
    if isinstance(v, str):
        return len(v) <= MAX_PROPERTY_VALUE
    if isinstance(v, int):
        return abs(v) < 2**63
    return isinstance(v, float) and math.isfinite(v)


def from_body(body: Any) -> dict[str, Any]:
    """An image record from a create body (``POST /v2/images``), validated."""
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    bad = sorted(set(body) & READ_ONLY - {"id"})
    if bad:
        raise Forbidden(f"Attribute '{bad[0]}' is read-only.")
    rec: dict[str, Any] = {
        "name": body.get("name"), "visibility": body.get("visibility", "private"),
        "disk_format": body.get("disk_format"), "container_format": body.get("container_format"),
        "min_disk": body.get("min_disk", 0), "min_ram": body.get("min_ram", 0),
        "protected": body.get("protected", False), "tags": body.get("tags", []),
        "properties": {k: v for k, v in body.items() if k not in WRITABLE and k != "id"},
    }  # fmt: skip
    if not isinstance(body.get("os_hidden", False), bool):
        raise BadRequest("os_hidden must be a boolean")
    return check(rec)


def apply_patch(rec: dict[str, Any], ops: Any) -> dict[str, Any]:
    """``rec`` with the JSON-patch ``ops`` applied, validated; ``rec`` is not changed."""
    if not isinstance(ops, list):
        raise BadRequest("The request body must be a JSON array of patch operations")
    new = {**rec, "tags": list(rec["tags"]), "properties": dict(rec["properties"])}
    for n, op in enumerate(ops):
        _apply_one(new, op, n)
    return check(new)


def _apply_one(new: dict[str, Any], op: Any, n: int) -> None:
    where = f"patch operation {n}"
    if not isinstance(op, dict) or op.get("op") not in ("add", "replace", "remove"):
        raise BadRequest(f"{where}: 'op' must be add, replace or remove")
    path = op.get("path")
    if not isinstance(path, str) or not path.startswith("/") or "/" in path[1:]:
        raise BadRequest(f"{where}: 'path' must be a JSON pointer to one attribute, e.g. /name")
    key = path[1:].replace("~1", "/").replace("~0", "~")
    if key in READ_ONLY:
        raise Forbidden(f"Attribute '{key}' is read-only.")
    if op["op"] != "remove" and "value" not in op:
        raise BadRequest(f"{where}: {op['op']} needs a 'value'")
    if key in WRITABLE:
        if op["op"] == "remove":
            raise Forbidden(f"Attribute '{key}' is a core attribute and cannot be removed.")
        if key == "os_hidden":
            if not isinstance(op["value"], bool):
                raise BadRequest("os_hidden must be a boolean")
            return
        new[key] = op["value"]
        return
    if not key:
        raise BadRequest(f"{where}: 'path' names no attribute")
    props = new["properties"]
    if op["op"] in ("replace", "remove") and key not in props:
        raise Conflict(f"Property {key} does not exist.")
    if op["op"] == "remove":
        del props[key]
    else:
        props[key] = op["value"]
