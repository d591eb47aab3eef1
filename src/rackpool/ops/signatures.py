"""Known-bug signatures: a directory of elastic-recheck YAML files, one per bug.

A file ``<bug>.yaml`` holds ``query`` (Lucene subset, see :mod:`rackpool.ops.query`)
and optionally ``suppress-graph``, ``suppress-notification``, ``allow-nonvoting``
(booleans, as in elastic-recheck) and ``description`` (a rackpool addition). The bug
id is the file name without ``.yaml``.
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
    unknown = sorted(set(data) - {"query", "description", *_FLAGS})
    if unknown:
        raise SignatureError(
            f"{p}: unknown key(s) {', '.join(unknown)}; "
            f"allowed: query, {', '.join(_FLAGS)}, description"
        )
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
