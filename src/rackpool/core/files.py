"""Writing state files: whole (a temp file renamed over the target) and private (0600)
from the moment they exist, whatever the process's umask."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def write_private(path: Path, text: str) -> Path:
    """Replace ``path`` with ``text``; a reader sees the old file or the new, never half."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def write_discovery(state_dir: str, name: str, **fields: Any) -> Path:
    """A daemon's discovery file (``pool.json``, ``ops.json``, ``web.json``): its fields
    and this process's pid, written once it serves."""
    return write_private(Path(state_dir) / name, json.dumps({**fields, "pid": os.getpid()}))
