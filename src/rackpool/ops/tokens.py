"""Per-host ingest tokens: what a host's shipper shows ``POST /api/ingest``.

A host's token is bound to its name: ``rpi1.<host>.<mac>``, where ``<mac>`` is an
HMAC-SHA256 of the host name under the ops daemon's *ingest secret* (base64url, 32
bytes). The ops daemon keeps no per-host state: it recomputes the MAC for the name in
the token and takes the token only for lines of that host, so a compromised host can
ship its own lines and no other host's. Changing the secret revokes every host's token.

The secret is ``api.ingest_secret`` in ``ops.yaml`` or, when unset, a random one kept in
``<index.path>/ingest.secret`` (0600 from creation), made by whichever comes first: the
daemon at start or ``rackpool ops ship-token``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
import re
import secrets
from pathlib import Path

from rackpool.core.errors import ConfigError
from rackpool.ops.wire import HOST

PREFIX = "rpi1."
SECRET_FILE = "ingest.secret"
_HOST = re.compile(HOST)
_MAC_CHARS = 43  # base64url of 32 bytes, unpadded


def _mac(secret: str, host: str) -> str:
    digest = hmac.new(secret.encode(), b"rackpool-ingest:" + host.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def check_host(host: str) -> str:
    """``host``, if it is a name the ingest API takes; else ValueError saying why."""
    if not _HOST.match(host):
        raise ValueError(
            f"{host[:60]!r} is not a host name: letters, digits, '.', '_', '-' "
            "(starting with a letter or digit, at most 253 characters)"
        )
    return host


def mint(secret: str, host: str) -> str:
    """``host``'s ingest token under ``secret``."""
    return f"{PREFIX}{check_host(host)}.{_mac(secret, host)}"


def looks_like_host_token(token: str) -> bool:
    return token.startswith(PREFIX)


def token_host(secret: str, token: str) -> str | None:
    """The host ``token`` was minted for under ``secret``, or None if it was not."""
    if not token.startswith(PREFIX):
        return None
    host, dot, mac = token[len(PREFIX) :].rpartition(".")
    if not dot or len(mac) != _MAC_CHARS or not _HOST.match(host):
        return None
    return host if hmac.compare_digest(mac, _mac(secret, host)) else None


def secret_file(index_path: str | Path) -> Path:
    return Path(index_path) / SECRET_FILE


def load_or_create_secret(path: Path) -> str:
    """The secret in ``path``; made (random, 0600 from creation) if there is none yet.

    Two processes making it at once agree: the file appears whole (a private temp file
    linked into place), and the one that loses the race reads the winner's.
    """
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return _read_secret(path)


def _read_secret(path: Path) -> str:
    value = path.read_text().strip()
    if len(value) < 16:
        raise ConfigError(
            f"{path}: the ingest secret is empty or shorter than 16 characters; remove the "
            "file to make a new one (every host's ingest token then changes)"
        )
    return value
