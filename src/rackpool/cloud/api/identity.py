"""Keystone v3 subset: discovery, password tokens with a catalog, validate, revoke."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from rackpool.cloud.api.common import JSON, auth, base_url, body_json, region_of
from rackpool.cloud.identity import AuthContext
from rackpool.cloud.views import iso_micro
from rackpool.core.errors import BadRequest, Forbidden, NotFound, Unauthorized

DOMAIN = {"id": "default", "name": "Default"}


def _version(base: str) -> dict[str, Any]:
    return {
        "id": "v3.14",
        "status": "stable",
        "updated": "2020-04-07T00:00:00Z",
        "links": [{"rel": "self", "href": f"{base}/identity/v3/"}],
        "media-types": [
            {"base": "application/json", "type": "application/vnd.openstack.identity-v3+json"}
        ],
    }


async def discovery(request: Request) -> Response:
    return JSON({"versions": {"values": [_version(base_url(request))]}}, status_code=300)


async def version(request: Request) -> Response:
    return JSON({"version": _version(base_url(request))})


def catalog(base: str, region: str, project_id: str) -> list[dict[str, Any]]:
    services = [
        ("identity", "keystone", f"{base}/identity"),
        ("compute", "nova", f"{base}/compute/v2.1"),
        ("image", "glance", f"{base}/image"),
        ("volumev3", "cinderv3", f"{base}/volume/v3/{project_id}"),
        ("block-storage", "cinder", f"{base}/volume/v3/{project_id}"),
        ("network", "neutron", f"{base}/network"),
    ]
    return [
        {
            "id": f"{name}-{region}",
            "type": stype,
            "name": name,
            "endpoints": [
                {
                    "id": f"{name}-{region}-{iface}",
                    "interface": iface,
                    "region": region,
                    "region_id": region,
                    "url": url,
                }
                for iface in ("public", "internal", "admin")
            ],  # fmt: skip
        }
        for stype, name, url in services
    ]


def token_body(request: Request, ctx: AuthContext) -> dict[str, Any]:
    region = region_of(request)
    return {
        "token": {
            "methods": ["password"],
            "user": {
                "id": ctx.user_id,
                "name": ctx.user_name,
                "domain": DOMAIN,
                "password_expires_at": None,
            },
            "project": {"id": ctx.project_id, "name": ctx.project_name, "domain": DOMAIN},
            "roles": [{"id": r, "name": r} for r in ctx.roles],
            "catalog": catalog(base_url(request), region.config.region, ctx.project_id),
            "expires_at": iso_micro(ctx.expires_at) + "Z",  # type: ignore[operator]
            "issued_at": iso_micro(ctx.issued_at) + "Z",  # type: ignore[operator]
            "audit_ids": [ctx.token_hash[:22]],
            "is_domain": False,
        }
    }


def _password_auth(body: Any) -> tuple[str, str, str]:
    try:
        ident = body["auth"]["identity"]
    except (KeyError, TypeError):
        raise BadRequest("Expecting to find auth.identity in the request body") from None
    methods = ident.get("methods") if isinstance(ident, dict) else None
    if not isinstance(methods, list) or "password" not in methods:
        raise Unauthorized("Only the password authentication method is supported.")
    method = ident.get("password")
    user = method.get("user") if isinstance(method, dict) else None
    if not isinstance(user, dict):
        raise BadRequest("Expecting to find auth.identity.password.user as an object")
    name, password = user.get("name") or user.get("id"), user.get("password")
    if not isinstance(name, str) or not isinstance(password, str):
        raise BadRequest("Expecting to find auth.identity.password.user.name and password")
    scope = body["auth"].get("scope") if isinstance(body["auth"], dict) else None
    project = scope.get("project") if isinstance(scope, dict) else None
    if not isinstance(project, dict) or not (project.get("name") or project.get("id")):
        raise Unauthorized("A project scope is required: set auth.scope.project.name (or id).")
    return name, password, str(project.get("name") or project.get("id"))


async def issue(request: Request) -> Response:
    body = await body_json(request)
    name, password, project = _password_auth(body)
    token, ctx = region_of(request).identity.authenticate(name, password, project)
    return JSON(token_body(request, ctx), status_code=201, headers={"X-Subject-Token": token})


def _subject(request: Request) -> tuple[AuthContext, str]:
    """The X-Subject-Token's context, for its own user or a cloud admin only (Keystone's
    ``identity:validate_token``: 403 otherwise); an invalid, expired or revoked subject is
    404 as in Keystone (the caller's own X-Auth-Token failing is still 401)."""
    caller = auth(request)
    subject = request.headers.get("x-subject-token") or ""
    try:
        target = region_of(request).identity.validate(subject)
    except Unauthorized:
        raise NotFound("Could not find token: the subject token is invalid or expired.") from None
    if target.user_id != caller.user_id and not caller.is_cloud_admin:
        raise Forbidden("You are not authorized to validate or revoke another user's token.")
    return target, subject


async def validate(request: Request) -> Response:
    ctx, subject = _subject(request)
    if request.method == "HEAD":
        return Response(status_code=200)
    return JSON(token_body(request, ctx), headers={"X-Subject-Token": subject})


async def revoke(request: Request) -> Response:
    _, subject = _subject(request)
    region_of(request).identity.revoke(subject)
    return Response(status_code=204)


async def projects(request: Request) -> Response:
    ctx = auth(request)
    region = region_of(request)
    rows = region.identity.list_projects()
    if not ctx.is_cloud_admin:
        rows = [r for r in rows if r["id"] == ctx.project_id]
    return JSON(
        {"projects": [{"id": r["id"], "name": r["name"], "domain_id": "default", "enabled": True,
                       "description": r["description"], "is_domain": False, "parent_id": "default"}
                      for r in rows]}
    )  # fmt: skip


routes = [
    Route("/identity", discovery, methods=["GET"]),
    Route("/identity/", discovery, methods=["GET"]),
    Route("/identity/v3", version, methods=["GET"]),
    Route("/identity/v3/", version, methods=["GET"]),
    Route("/identity/v3/auth/tokens", issue, methods=["POST"]),
    Route("/identity/v3/auth/tokens", validate, methods=["GET", "HEAD"]),
    Route("/identity/v3/auth/tokens", revoke, methods=["DELETE"]),
    Route("/identity/v3/projects", projects, methods=["GET"]),
]
