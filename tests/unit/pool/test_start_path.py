"""``rackpool pool serve`` loads only what the pool needs before its API serves.

Start-up time is the operator's (issue 13: exec to API serving < 0.5 s): the CLI
loads only the ``pool`` command's module, and the openstack driver imports
openstacksdk when it first talks to the cloud, in the provider's executor.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import yaml

# Loaded by other parts' commands, or by the openstack driver on its first call; kazoo
# only with store: {zookeeper: ...}.
NOT_ON_START = ("openstack", "keystoneauth1", "rackpool.cloud", "rackpool.ops", "rackpool.agent",
                "rackpool.cli.up", "rackpool.cli.cloud", "sqlalchemy",
                "kazoo", "rackpool.pool.store.zookeeper")  # fmt: skip


def test_pool_serve_start_path_loads_no_sdk_and_no_other_part(tmp_path: Path) -> None:
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"c": {"auth": {"auth_url": "http://x"}}}}))
    config = tmp_path / "pool.yaml"
    config.write_text(yaml.safe_dump({
        "state-dir": str(tmp_path / "state"),
        "labels": [{"name": "small", "min-ready": 1}],
        "providers": [{"name": "r1", "driver": "openstack", "cloud": "c",
                       "clouds-yaml": str(clouds), "pools": [{"labels": [
                           {"name": "small", "cloud-image": "host", "flavor-name": "m1.tiny"}]}]}],
        "api": {"token": "secret-token", "port": 0},
    }))  # fmt: skip
    # What serve() builds before it serves: the parser, config, store, launcher and app.
    code = textwrap.dedent(f"""
        import json, sys
        from rackpool.cli import build_parser
        args = build_parser(["pool", "serve", "--config", {str(config)!r}]).parse_args(
            ["pool", "serve", "--config", {str(config)!r}])
        from rackpool.pool.api import create_app
        from rackpool.pool.config import load
        from rackpool.pool.daemon import bind
        from rackpool.pool.launcher import Launcher
        from rackpool.pool.store import open_store
        config = load(args.config)
        launcher = Launcher(config, open_store(config))
        create_app(launcher, "secret-token")
        bind(config).close()
        print(json.dumps(sorted(sys.modules)))
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    loaded = json.loads(out.stdout)
    early = [m for m in loaded if any(m == p or m.startswith(p + ".") for p in NOT_ON_START)]
    assert not early, f"loaded before the pool serves: {early}"
    assert "rackpool.pool.drivers.openstack.adapter" in loaded  # the launcher did build it
