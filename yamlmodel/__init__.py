"""YAML files validated by pydantic models, with errors written for the operator.

Shared by the platform config (``cli.config``) and the simulator's scenario files: a bad file
is refused with its name, the line, the key path and what is wrong, never a traceback.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class YamlFileError(Exception):
    """A file that cannot be used; the message is meant for the operator."""


def load_model(path: str | Path, model: type[M], *, what: str, shape: str,
               error: type[YamlFileError] = YamlFileError, missing_hint: str = "") -> M:
    """Read ``path`` and validate it as ``model``.

    ``what`` names the file in messages ("config file"), ``shape`` says what its top level
    must be ("a mapping of sections (mqtt, store, ...)"), and every failure is raised as
    ``error`` with a message that names the file (and line and key path where known).
    An empty file is an empty mapping.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error(f"{path}: no such {what}{missing_hint}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise error(f"{path}{where}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(f"{path}: the top level must be {shape}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise error(format_validation_error(path, exc, root)) from None


def format_validation_error(path: Path, exc: ValidationError, root: yaml.Node | None) -> str:
    lines = [f"{path}: {exc.error_count()} problem(s):"]
    for error in exc.errors():
        loc = _loc_for_yaml(error["loc"])
        key_path = _key_path(loc)
        line = _line_of(root, loc)
        where = f"{path}:{line}" if line else str(path)
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check its spelling and the section it is in)"
        elif error["type"] == "missing":
            message = "required key is missing"
        lines.append(f"  {where}: {key_path or '(top level)'}: {message}")
    return "\n".join(lines)


def _loc_for_yaml(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """Drop pydantic's union-branch names (e.g. 'influxdb' under 'store', 'mc' under a tag) from a location."""
    kept = []
    for i, part in enumerate(loc):
        if i > 0 and loc[i - 1] == "store" and part in ("sqlite", "influxdb", "sharded"):
            continue
        if i > 1 and loc[i - 2] == "shards" and part in ("sqlite", "influxdb"):  # store.shards.<name>.<kind>
            continue
        if i > 1 and loc[i - 2] == "tags" and isinstance(loc[i - 1], int) and part in ("modbus", "mc", "xgt"):
            continue
        kept.append(part)
    return tuple(kept)


def _key_path(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: tuple[str | int, ...]) -> int | None:
    """Line (1-based) of the deepest YAML node the location reaches."""
    line = None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            node = None
    if node is not None:
        line = node.start_mark.line + 1
    return line
