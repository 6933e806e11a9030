"""One YAML file configures every part; each command reads the sections it needs.

Errors name the file, the key path and the line, and say what is wrong, so a field
engineer can fix a config without reading a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from analytics.settings import AnalyticsSettings
from api.settings import ApiSettings
from collector.settings import CollectorSettings
from gateway.settings import GatewaySettings
from mqttlink import MqttSettings
from simulators.settings import SimulatorSettings
from tsstore import SqliteSettings, StoreSettings


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    store: StoreSettings = Field(default_factory=SqliteSettings)
    gateway: GatewaySettings | None = None
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    simulator: SimulatorSettings | None = None
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)


class ConfigError(Exception):
    """A config file that cannot be used; the message is meant for the operator."""


@dataclass(frozen=True)
class LoadedConfig:
    settings: Settings
    path: Path

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def require(self, section: str) -> Any:
        value = getattr(self.settings, section)
        if value is None:
            raise ConfigError(f"{self.path}: section '{section}' is missing; this command needs it (see README)")
        return value


def load_config(path: str | Path) -> LoadedConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}{where}: not valid YAML: {problem}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (mqtt, store, gateway, ...)")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc, root)) from None
    return LoadedConfig(settings, path.resolve())


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


def _loc_for_yaml(loc: tuple) -> tuple:
    """Drop pydantic's union-branch names (e.g. 'influxdb' under 'store') from a location."""
    kept = []
    for i, part in enumerate(loc):
        if i > 0 and loc[i - 1] == "store" and part in ("sqlite", "influxdb"):
            continue
        kept.append(part)
    return tuple(kept)


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(node: yaml.Node | None, loc: tuple) -> int | None:
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
