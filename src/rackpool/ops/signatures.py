"""Known-bug signatures: a directory of elastic-recheck YAML files, one per bug.

A file ``<bug>.yaml`` holds ``query`` (Lucene subset, see :mod:`rackpool.ops.query`)
and optionally ``suppress-graph``, ``suppress-notification``, ``allow-nonvoting``
(booleans, as in elastic-recheck), ``test_ids`` (the test ids the bug fails, a list of
strings), ``resolved_at`` (when the bug was fixed, free text as elastic-recheck wrote
it) and ``description`` (a rackpool addition). Every one is kept on the
:class:`Signature`. The bug id is the file name without ``.yaml``.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from rackpool.core.config import read_yaml
from rackpool.core.errors import ConfigError
from rackpool.ops.errors import QuerySyntaxError, SignatureError
from rackpool.ops.query import Node, parse

_FLAGS = ("suppress-graph", "suppress-notification", "allow-nonvoting")
_KEYS = ("query", *_FLAGS, "test_ids", "resolved_at", "description")


@dataclass(frozen=True)
class Signature:
    bug: str
    query_text: str
    query: Node
    suppress_graph: bool = False
    suppress_notification: bool = False
    allow_nonvoting: bool = False
    description: str = ""
    path: str = ""
    test_ids: tuple[str, ...] = ()
    resolved_at: str = ""


def builtin_dir() -> Path:
    """The signatures rackpool ships for its own failure modes."""
    return Path(str(resources.files("rackpool.ops") / "signatures"))


def load_signature(path: str | Path) -> Signature:
    p = Path(path)
    try:
        data = read_yaml(p)
    except ConfigError as exc:
        raise SignatureError(str(exc)) from exc
    if not isinstance(data, dict):
        raise SignatureError(f"{p}: expected a mapping with a 'query' key")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise SignatureError(
            f"{p}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(_KEYS)}"
        )
    test_ids = data.get("test_ids", [])
    if not isinstance(test_ids, list) or not all(isinstance(t, str) for t in test_ids):
        raise SignatureError(f"{p}: 'test_ids' must be a list of test ids (strings)")
    resolved_at = data.get("resolved_at", "")
    if isinstance(resolved_at, (list, dict)) or resolved_at is None:
        raise SignatureError(f"{p}: 'resolved_at' must be a date or a string")
    text = data.get("query")
    if not isinstance(text, str) or not text.strip():
        raise SignatureError(f"{p}: 'query' is missing or not a string")
    for flag in _FLAGS:
        if flag in data and not isinstance(data[flag], bool):
            raise SignatureError(f"{p}: '{flag}' must be true or false")
    try:
        query = parse(text.strip())
    except QuerySyntaxError as exc:
        raise SignatureError(f"{p}: query: {exc}") from exc
    return Signature(
        bug=p.name.removesuffix(".yaml").removesuffix(".yml"),
        query_text=text.strip(),
        query=query,
        suppress_graph=bool(data.get("suppress-graph", False)),
        suppress_notification=bool(data.get("suppress-notification", False)),
        allow_nonvoting=bool(data.get("allow-nonvoting", False)),
        description=str(data.get("description", "")),
        path=str(p),
        test_ids=tuple(test_ids),
        resolved_at=str(resolved_at),
    )


def load_signatures(directories: list[str | Path]) -> list[Signature]:
    """Every signature in ``directories``; every bad file is reported, naming it."""
    sigs: dict[str, Signature] = {}
    problems: list[str] = []
    for directory in directories:
        d = Path(directory)
        if not d.is_dir():
            problems.append(f"{d}: not a directory of signature files")
            continue
        for path in sorted([*d.glob("*.yaml"), *d.glob("*.yml")]):
            try:
                sig = load_signature(path)
            except SignatureError as exc:
                problems.append(exc.message)
                continue
            sigs[sig.bug] = sig
    if problems:
        raise _many(problems)
    return sorted(sigs.values(), key=lambda s: s.bug)


def _many(problems: list[str]) -> SignatureError:
    err = SignatureError(f"{len(problems)} signature problem(s)")
    err.problems = problems
    return err
