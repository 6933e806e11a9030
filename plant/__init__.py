"""Identifiers of the plant hierarchy: tenant (SME) → site → line → machine.

Every part of the pipeline names a machine the same way; the rules live here once so
that an identifier accepted by the gateway config is also a valid MQTT topic level,
a bounded InfluxDB tag value and a URL path segment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: Letters, digits, '_', '-', '.'; starts with a letter or digit; at most 64 characters.
#: No '/', '+', '#' (MQTT), no spaces, ',' or '=' (line protocol), no '$' (broker-internal topics).
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


class InvalidIdentifier(ValueError):
    """An identifier that cannot be used as a topic level, tag value or path segment."""


def check_identifier(value: str, what: str = "identifier") -> str:
    if not isinstance(value, str) or not _IDENTIFIER.fullmatch(value):
        raise InvalidIdentifier(
            f"{what} {value!r} is not valid: use 1-64 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )
    return value


def check_time_zone(value: str) -> str:
    """A plant's local time: shifts, "today" and report days are computed in it, so it must load."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}: use an IANA name such as Asia/Seoul or UTC") from None
    return value


def is_identifier(value: object) -> bool:
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None


@dataclass(frozen=True, slots=True, order=True)
class MachineRef:
    """The full address of one machine; unique across all tenants."""

    tenant: str
    site: str
    line: str
    machine: str

    def __post_init__(self) -> None:
        for level in ("tenant", "site", "line", "machine"):
            check_identifier(getattr(self, level), level)

    def as_dict(self) -> dict[str, str]:
        return {"tenant": self.tenant, "site": self.site, "line": self.line, "machine": self.machine}

    def __str__(self) -> str:
        return f"{self.tenant}/{self.site}/{self.line}/{self.machine}"
