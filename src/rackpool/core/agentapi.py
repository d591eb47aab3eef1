"""The version of the controller ↔ agent API (docs/agent-api.md "Versions").

``MAJOR.MINOR``. Every agent request carries ``X-Rackpool-Agent-API: <CURRENT>``; an
agent that sends none predates versioning and speaks ``UNVERSIONED``. A controller
serves agents from ``CONTROLLER_MIN`` to ``CONTROLLER_MAX`` and says so at
``GET /agent/v1/version``; an agent starts only against a controller whose range holds
its ``CURRENT``. So a rolling upgrade goes controller first: old agents keep working
with the new controller, and a new agent meeting an old controller refuses to start,
naming both versions.

History: 1.0 — the API before versioning (no header). 1.1 — the header, the version
endpoint and ``agent_api`` in the register response.
"""

from __future__ import annotations

from rackpool.core.errors import PermanentError

HEADER = "X-Rackpool-Agent-API"
VERSION_PATH = "/agent/v1/version"
UNVERSIONED = "1.0"
CURRENT = "1.1"
CONTROLLER_MIN = "1.0"
CONTROLLER_MAX = CURRENT


class UnsupportedAgentAPI(PermanentError):
    """The two ends do not share an agent API version (HTTP 406 from a controller)."""

    code = 406
    fault = "notAcceptable"


def parse(text: str) -> tuple[int, int]:
    """``"1.1"`` → ``(1, 1)``; ValueError for anything but two small decimal numbers."""
    major, dot, minor = text.strip().partition(".")
    if not (dot and major.isdigit() and minor.isdigit() and len(major) + len(minor) <= 8):
        raise ValueError(f"{text[:20]!r} is not an agent API version (MAJOR.MINOR, e.g. 1.1)")
    return int(major), int(minor)


def supports(low: str, high: str, version: str) -> bool:
    """``low <= version <= high`` (same major)."""
    v, lo, hi = parse(version), parse(low), parse(high)
    return lo <= v <= hi and lo[0] == v[0] == hi[0]


def span(low: str, high: str) -> str:
    return f"only {low}" if low == high else f"{low} to {high}"


def check_agent(header: str | None) -> str:
    """The version an agent's request speaks; UnsupportedAgentAPI (406) unless this
    controller serves it."""
    version = (header or "").strip() or UNVERSIONED
    try:
        ok = supports(CONTROLLER_MIN, CONTROLLER_MAX, version)
    except ValueError as exc:
        raise UnsupportedAgentAPI(f"{HEADER}: {exc}") from None
    if ok:
        return version
    fix = "upgrade the agent" if parse(version) < parse(CONTROLLER_MIN) else (
        "upgrade the controller first (rolling upgrade: controller, then agents)"
    )  # fmt: skip
    raise UnsupportedAgentAPI(
        f"agent API {version} is not supported by this controller, which serves agent API "
        f"{span(CONTROLLER_MIN, CONTROLLER_MAX)}: {fix}"
    )


def advertised() -> dict[str, str]:
    """What a controller tells agents about itself (version endpoint, register)."""
    return {"min": CONTROLLER_MIN, "max": CONTROLLER_MAX, "header": HEADER}
