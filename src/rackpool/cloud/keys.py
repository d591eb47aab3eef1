"""SSH public keys: generate a pair, compute the fingerprint nova shows."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from rackpool.core.errors import BadRequest

KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
)


def generate() -> tuple[str, str]:
    """A new ed25519 key pair as (OpenSSH public line, OpenSSH private PEM)."""
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
        .decode()
    )
    return public + " Generated-by-rackpool", private


def fingerprint(public_key: str) -> str:
    parts = public_key.strip().split()
    if len(parts) < 2 or parts[0] not in KEY_TYPES:
        raise BadRequest(
            "Keypair data is invalid: public_key must be an OpenSSH public key line "
            f"('<type> <base64> [comment]', type one of {', '.join(KEY_TYPES)})"
        )
    try:
        blob = base64.b64decode(parts[1], validate=True)
    except ValueError:
        raise BadRequest("Keypair data is invalid: public_key body is not valid base64") from None
    digest = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
