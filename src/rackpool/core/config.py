"""Loading YAML config files into pydantic models with errors that name the YAML path."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from rackpool.core.errors import ConfigError

M = TypeVar("M", bound=BaseModel)
MAX_CONFIG_BYTES = 16 * 1024 * 1024


def yaml_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic error location as a YAML path: ``providers[0].cloud``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def validation_problems(exc: ValidationError) -> list[str]:
    problems = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown option (check spelling; see the documented options)"
        elif err["type"] == "missing":
            msg = "required option is missing"
        problems.append(f"{yaml_path(loc)}: {msg}")
    return problems


MAX_ALIASES = 100


class _BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses more than MAX_ALIASES ``*alias`` uses: a "billion laughs"
    file is a few lines whose aliases nest into a graph too large to validate or print."""

    aliases = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases += 1
            if self.aliases > MAX_ALIASES:
                event = self.peek_event()
                raise yaml.YAMLError(
                    f"more than {MAX_ALIASES} aliases (*name) at line {event.start_mark.line + 1}; "
                    "write the values out"
                )
        return super().compose_node(parent, index)


def read_yaml(path: str | Path) -> Any:
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):  # a directory, or a FIFO/device that would block
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise ConfigError(f"{p}: {kind}; give a YAML file")
    if st.st_size > MAX_CONFIG_BYTES:
        raise ConfigError(f"{p}: {st.st_size} bytes is too large for a config file")
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such file") from None
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"{p}: not a text file (YAML is UTF-8 text)") from None
    try:
        data = yaml.load(text, Loader=_BoundedLoader)  # noqa: S506 (a SafeLoader)
    except RecursionError:
        raise ConfigError(f"{p}: invalid YAML: nested too deeply") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{p}: invalid YAML{where}: {problem}") from exc
    return {} if data is None else data


def parse_model(data: Any, model: type[M], source: str) -> M:
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc)
        raise ConfigError(f"{source}: {len(problems)} problem(s)", problems) from None


def load_model(path: str | Path, model: type[M]) -> M:
    """Read ``path`` as YAML and validate it as ``model``; ConfigError lists every problem."""
    return parse_model(read_yaml(path), model, str(path))
