"""Scanning a node's SSH host keys: a node is ready only once we have them.

Pluggable per provider (``host-key-checking``): :class:`SshKeyscan` runs OpenSSH's
``ssh-keyscan``; tests and fake providers may pass anything with a ``scan`` method.
"""

from __future__ import annotations

import subprocess
from typing import Protocol

from rackpool.pool.errors import KeyscanError


class Keyscanner(Protocol):
    def scan(self, ip: str, port: int, timeout: float) -> list[str]:
        """Host keys as ``"<type> <base64>"`` lines; blocking; raises KeyscanError."""


class SshKeyscan:
    def __init__(self, binary: str = "ssh-keyscan") -> None:
        self.binary = binary

    def scan(self, ip: str, port: int, timeout: float) -> list[str]:
        argv = [self.binary, "-T", str(max(1, int(timeout))), "-p", str(port), ip]
        try:
            out = subprocess.run(
                argv, capture_output=True, text=True, timeout=timeout + 5, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise KeyscanError(f"ssh-keyscan failed for {ip}:{port}: {exc}") from exc
        keys = []
        for line in out.stdout.splitlines():
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            if len(parts) >= 3:
                keys.append(f"{parts[1]} {parts[2]}")
        if not keys:
            raise KeyscanError(f"no SSH host keys from {ip}:{port} yet")
        return sorted(set(keys))
