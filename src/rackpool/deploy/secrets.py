"""Passwords and tokens of a deployment, generated once on the deploy machine.

Kept in ``<state>/secrets.yaml`` (0600, in a 0700 dir) and reused by every later run,
so a second deploy writes the same configs (changed=0). Never printed or logged; the
Ansible tasks that carry them are ``no_log``.
"""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path
from typing import Any

import yaml

from rackpool.core.errors import ConfigError
from rackpool.core.files import write_private
from rackpool.deploy.inventory import Inventory

NODE_KEY = "keys/nodes_ed25519"


class Secrets:
    """Name → secret, created on first use; ``save()`` writes only if something was new."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._data: dict[str, str] = {}
        self._new = False
        if path.exists():
            try:
                data: Any = yaml.safe_load(path.read_text()) or {}
            except yaml.YAMLError as exc:
                raise ConfigError(f"{path}: unreadable ({exc}); restore it from a backup") from None
            if not isinstance(data, dict):
                raise ConfigError(f"{path}: not a mapping; restore it from a backup")
            self._data = {str(k): str(v) for k, v in data.items()}

    def get(self, name: str, nbytes: int = 18) -> str:
        if name not in self._data:
            self._data[name] = secrets.token_urlsafe(nbytes)
            self._new = True
        return self._data[name]

    def redact(self, text: str) -> str:
        """``text`` with every secret of this store replaced by ``<secret>``."""
        for value in sorted(self._data.values(), key=len, reverse=True):
            text = text.replace(value, "<secret>")
        return text

    def save(self) -> None:
        if self._new:
            write_private(self.path, yaml.safe_dump(self._data, sort_keys=True))
            self._new = False


def all_secrets(inv: Inventory, store: Secrets) -> None:
    """Create every secret ``inv`` needs now, so a partial render never leaves one missing."""
    for r in inv.regions:
        store.get(f"{r.name}/agent_token", 24)
        store.get(f"{r.name}/users/admin")
        for p in r.projects:
            for u in p.users:
                store.get(f"{r.name}/users/{u.name}")
        if inv.pool is not None:
            store.get(f"{r.name}/users/{inv.pool.user}")
    if inv.pool is not None:
        store.get("pool/api_token")
    if inv.ops is not None:
        store.get("ops/push_token")
        store.get("ops/ingest_secret", 32)


def node_key(state: Path) -> tuple[Path, str]:
    """The SSH key the pool's nodes accept (private file, public line), made once."""
    key = state / NODE_KEY
    if not key.exists():
        key.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "rackpool-nodes", "-f", str(key)],
            check=True,
            capture_output=True,
        )
    return key, Path(str(key) + ".pub").read_text().strip()
