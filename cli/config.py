"""One YAML file configures every part; each command reads the sections it needs.

Errors name the file, the key path and the line, and say what is wrong, so a field
engineer can fix a config without reading a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from analytics.settings import AnalyticsSettings
from api.settings import ApiSettings
from collector.settings import CollectorSettings
from gateway.settings import GatewaySettings
from mqttlink import MqttSettings
from reportmail.settings import MailSettings
from simulators.settings import SimulatorSettings
from tsstore import SqliteSettings, StoreSettings
from yamlmodel import YamlFileError, format_validation_error, load_model

__all__ = ["ConfigError", "LoadedConfig", "Settings", "format_validation_error", "load_config"]


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    store: StoreSettings = Field(default_factory=SqliteSettings)
    gateway: GatewaySettings | None = None
    collector: CollectorSettings = Field(default_factory=CollectorSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    simulator: SimulatorSettings | None = None
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)
    mail: MailSettings | None = Field(default=None, description="SMTP for the scheduled report e-mails (reportmail)")


class ConfigError(YamlFileError):
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
    settings = load_model(path, Settings, what="config file", error=ConfigError,
                          shape="a mapping of sections (mqtt, store, gateway, ...)")
    return LoadedConfig(settings, Path(path).resolve())
