"""Pool tests against real rackpool region controllers on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rackpool.pool.config import PoolConfig


def openstack_provider(name: str, clouds_yaml: Path, region: str, **kw: Any) -> dict[str, Any]:
    return {
        "name": name,
        "driver": "openstack",
        "cloud": f"rackpool-{region}",
        "region-name": region,
        "clouds-yaml": str(clouds_yaml),
        "host-key-checking": False,  # fake hosts run no sshd
        "poll-interval": 0.05,
        "boot-timeout": 30,
        "pools": [
            {
                "name": "main",
                "labels": [
                    {"name": "default", "cloud-image": "host", "flavor-name": "m1.tiny"},
                ],
            }
        ],
        **kw,
    }


def pool_config(providers: list[dict[str, Any]], min_ready: int = 0, **kw: Any) -> PoolConfig:
    data: dict[str, Any] = {
        "labels": [{"name": "default", "min-ready": min_ready}],
        "providers": providers,
        "api": {"token": "secret-token"},
        "timing": {"cleanup-interval": 0.5, "tick-interval": 0.05},
        **kw,
    }
    return PoolConfig.model_validate(data)
