"""Checks on API request bodies; each failure names the field and how to fix it."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from rackpool.core.errors import BadRequest

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
UUID_RE = re.compile(r"^[0-9a-fA-F-]{1,64}$")
MAX_INT = 2**31 - 1  # what an Integer column holds on every backend (PostgreSQL: int4)


def _ascii_int(value: Any) -> Any:
    """A string of ASCII digits as its int (``'12'``); anything else unchanged, so that
    ``'１２'`` or ``'1e3'`` stay strings and are refused as not integers."""
    if isinstance(value, str):
        digits = value[1:] if value[:1] == "-" else value
        if digits.isascii() and digits.isdigit() and len(digits) <= 18:
            return int(value)
    return value


def require_dict(body: Any, key: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    inner = body.get(key)
    if not isinstance(inner, dict):
        raise BadRequest(f"'{key}' is a required property and must be an object.")
    return inner


def name(value: Any, field: str = "name", max_len: int = 255) -> str:
    if not isinstance(value, str):
        raise BadRequest(f"Invalid input for field/attribute {field}. {field} must be a string.")
    if not value or not value.strip():
        raise BadRequest(f"Invalid input for field/attribute {field}. {field} must not be empty.")
    if value != value.strip():
        raise BadRequest(
            f"Invalid input for field/attribute {field}. "
            f"{field} must not have leading or trailing whitespace."
        )
    if len(value) > max_len:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. {field} is longer than {max_len} characters."
        )
    if _CONTROL.search(value):
        raise BadRequest(
            f"Invalid input for field/attribute {field}. {field} contains control characters."
        )
    return value


def hostname_from(name_: str) -> str:
    """What nova makes of a server name as a hostname."""
    h = re.sub(r"[^a-zA-Z0-9-]+", "-", name_.lower()).strip("-")
    return (h[:63].rstrip("-")) or "server"


def metadata(value: Any, field: str = "metadata", limit: int = 128) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BadRequest(f"Invalid input for field/attribute {field}. {field} must be an object.")
    if len(value) > limit:
        raise BadRequest(f"Quota exceeded for metadata items: at most {limit} are allowed")
    out = {}
    for k, v in value.items():
        if not isinstance(k, str) or not 1 <= len(k) <= 255:
            raise BadRequest(
                f"Invalid input for field/attribute {field}: keys must be 1-255 chars."
            )
        if not isinstance(v, str) or len(v) > 255:
            raise BadRequest(
                f"Invalid input for field/attribute {field}: value of {k!r} must be a string "
                "of at most 255 characters."
            )
        out[k] = v
    return out


def user_data(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise BadRequest("Invalid input for field/attribute user_data. Must be base64 text.")
    if len(value) > 65535:
        raise BadRequest("Invalid input for field/attribute user_data. Longer than 65535 bytes.")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(
            "Invalid input for field/attribute user_data. user_data must be base64 encoded."
        ) from None
    return value


def count(value: Any, field: str) -> int:
    if value is None:
        return 1
    value = _ascii_int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest(f"Invalid input for field/attribute {field}. Must be an integer >= 1.")
    if value > 100:
        raise BadRequest(f"Invalid input for field/attribute {field}. At most 100 at once.")
    return value


def ref(value: Any, field: str) -> str:
    """An id or a link whose last path element is the id (nova accepts both)."""
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise BadRequest(f"Invalid input for field/attribute {field}. {field} must be a string id.")
    return str(value).rstrip("/").rsplit("/", 1)[-1]


def boolean(value: Any, field: str) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no", ""):
        return value.lower() in ("true", "1", "yes")
    raise BadRequest(f"Invalid input for field/attribute {field}. {field} must be a boolean.")


def positive_int(value: Any, field: str, minimum: int = 1) -> int:
    value = _ascii_int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= MAX_INT:
        raise BadRequest(
            f"Invalid input for field/attribute {field}. Must be an integer from {minimum} "
            f"to {MAX_INT}."
        )
    return value


def limit_marker(params: Any, max_limit: int) -> tuple[int, str | None]:
    raw = params.get("limit")
    limit = max_limit
    if raw is not None:
        limit = _ascii_int(raw)
        if not isinstance(limit, int) or limit < 0:
            raise BadRequest(f"limit must be a non-negative integer, not {raw[:40]!r}")
        limit = min(limit, max_limit)
    return limit, params.get("marker")
