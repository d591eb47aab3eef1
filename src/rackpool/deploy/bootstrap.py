"""On a controller host: migrate the region's database and ensure what the inventory asks.

``python -m rackpool.deploy.bootstrap --config region.yaml --spec bootstrap.yaml``
(the ``rackpool_controller`` role runs it from the host's venv) opens the region, which
brings its schema to the newest Alembic revision, then makes sure the ``admin`` project,
the inventory's projects, users (with their generated passwords), roles, quotas,
flavors and the pool's keypair exist as declared. Idempotent: it prints one JSON line
``{"changed": [...]}`` naming what it had to change, empty when nothing did, which
the role turns into Ansible's changed status. Passwords never reach the output.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rackpool.core.config import load_model
from rackpool.core.errors import NotFound, RackpoolError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BootUser(_Strict):
    name: str = Field(min_length=1)
    password: str = Field(min_length=8)
    role: Literal["member", "admin"] = "member"


class BootQuota(_Strict):
    cores: int | None = Field(None, ge=-1)
    ram: int | None = Field(None, ge=-1)
    instances: int | None = Field(None, ge=-1)


class BootProject(_Strict):
    name: str = Field(min_length=1)
    users: list[BootUser] = Field(default_factory=list)
    quota: BootQuota | None = None


class BootFlavor(_Strict):
    name: str = Field(min_length=1)
    vcpus: int = Field(gt=0)
    ram: int = Field(gt=0)
    disk: int = Field(0, ge=0)
    id: str | None = None


class BootKeypair(_Strict):
    project: str
    user: str
    name: str
    public_key: str


class BootstrapSpec(_Strict):
    admin_password: str = Field(min_length=8)
    projects: list[BootProject] = Field(default_factory=list)
    flavors: list[BootFlavor] = Field(default_factory=list)
    keypairs: list[BootKeypair] = Field(default_factory=list)


def ensure(region: Any, spec: BootstrapSpec) -> list[str]:
    """Make the region match ``spec``; the things that had to change."""
    from rackpool.cloud.identity import AuthContext, check_password

    changed: list[str] = []
    ident, compute = region.identity, region.compute

    def project(name: str) -> str:
        try:
            return str(ident.project_id(name))
        except NotFound:
            changed.append(f"project {name}")
            return str(ident.create_project(name))

    def user(name: str, password: str, pid: str, role: str) -> str:
        from sqlalchemy import select

        from rackpool.cloud.db.schema import users

        with region.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        if row is None:
            changed.append(f"user {name}")
            uid = str(ident.create_user(name, password))
        else:
            uid = str(row["id"])
            if not check_password(password, row["password_hash"]):
                changed.append(f"password of {name}")
                ident.set_password(name, password)
        ident.assign_role(uid, pid, role)
        if role == "admin":
            ident.assign_role(uid, pid, "member")
        return uid

    admin_project = region.config.admin_project
    user("admin", spec.admin_password, project(admin_project), "admin")
    for p in spec.projects:
        pid = project(p.name)
        for u in p.users:
            user(u.name, u.password, pid, u.role)
        if p.quota is not None:
            want = p.quota.model_dump(exclude_none=True)
            with region.engine.connect() as conn:
                have = compute.quota(conn, pid)
            if any(have[k] != v for k, v in want.items()):
                changed.append(f"quota of {p.name}")
                compute.set_quota(pid, want)
    have_flavors = {f["name"]: f for f in compute.list_flavors()}
    for f in spec.flavors:
        old = have_flavors.get(f.name)
        if old is not None and (old["vcpus"], old["ram"], old["disk"]) == (f.vcpus, f.ram, f.disk):
            continue
        if old is not None:  # Nova's way: flavors are immutable, replace it
            compute.delete_flavor(old["id"])
        changed.append(f"flavor {f.name}")
        compute.create_flavor({"flavor": f.model_dump(exclude_none=True)})
    for k in spec.keypairs:
        uid, pid = ident.user_id(k.user), ident.project_id(k.project)
        ctx = AuthContext(uid, k.user, pid, k.project, ("member",), 0.0, 0.0, "")
        try:
            if compute.get_keypair(ctx, k.name)["public_key"] == k.public_key.strip():
                continue
            compute.delete_keypair(ctx, k.name)
        except NotFound:
            pass
        changed.append(f"keypair {k.name} of {k.user}")
        compute.create_keypair(ctx, {"keypair": {"name": k.name, "public_key": k.public_key}})
    return changed


def main(argv: list[str] | None = None) -> int:
    from rackpool.cloud.config import load_region_config
    from rackpool.cloud.region import Region

    ap = argparse.ArgumentParser(prog="python -m rackpool.deploy.bootstrap")
    ap.add_argument("--config", required=True, help="region.yaml")
    ap.add_argument("--spec", required=True, help="bootstrap.yaml written by rackpool deploy")
    args = ap.parse_args(argv)
    try:
        config = load_region_config(args.config)
        spec = load_model(args.spec, BootstrapSpec)
        t0 = time.monotonic()
        region = Region.open(config)  # migrates the schema to head
        try:
            changed = ensure(region, spec)
        finally:
            region.close()
    except RackpoolError as exc:
        print(json.dumps({"failed": True, "msg": str(exc)}))
        return 2
    print(json.dumps({"changed": changed, "seconds": round(time.monotonic() - t0, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
