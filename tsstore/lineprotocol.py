"""InfluxDB line protocol and InfluxQL quoting: pure functions, no I/O.

Schema: measurement ``telemetry``; tags tenant, site, line, machine (bounded sets);
one field per Modbus tag, named as the tag; time in ms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from plant import MachineRef

from tsstore.base import Point, stored_value

MEASUREMENT = "telemetry"


def _escape_key(text: str) -> str:
    """Tag keys, tag values and field keys: escape backslash, comma, equals and space."""
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _escape_string_field(text: str) -> str:
    """Only backslash and double quote: influxd unescapes nothing else inside a string field,
    and keeps a raw newline inside the quotes as part of the value."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _field(value: bool | int | float | str) -> str | None:
    v = stored_value(value)
    if isinstance(v, str):
        return f'"{_escape_string_field(v)}"'
    if not math.isfinite(v):
        return None  # line protocol has no NaN; never send a line influxd would reject
    return repr(v)


_KEYS: dict[str, str] = {}  # escaped field keys: tag names are a bounded set
_INF = float("inf")


def _key(key: str) -> str:
    escaped = _KEYS.get(key)
    if escaped is None:
        escaped = _escape_key(key)
        if len(_KEYS) < 100_000:
            _KEYS[key] = escaped
    return escaped


def to_lines(points: Iterable[Point]) -> list[str]:
    """One line per point. The collector's hot path: the common types are handled inline."""
    lines = []
    prefixes: dict[MachineRef, str] = {}
    keys = _KEYS
    for p in points:
        m = p.machine
        prefix = prefixes.get(m)
        if prefix is None:
            prefix = prefixes[m] = (
                f"{MEASUREMENT},line={_escape_key(m.line)},machine={_escape_key(m.machine)},"
                f"site={_escape_key(m.site)},tenant={_escape_key(m.tenant)} "
            )
        fields: list[str] = []
        add = fields.append
        for key, value in p.values.items():
            kind = type(value)
            if kind is float:
                if value != value or value == _INF or value == -_INF:
                    continue  # line protocol has no NaN; never send a line influxd would reject
                add(f"{keys.get(key) or _key(key)}={value!r}")
            elif kind is int or kind is bool:
                add(f"{keys.get(key) or _key(key)}={float(value)!r}")
            else:
                encoded = _field(value)
                if encoded is not None:
                    add(f"{_key(key)}={encoded}")
        if fields:
            lines.append(f"{prefix}{','.join(fields)} {p.ts_ms}")
    return lines


def quote_ident(name: str) -> str:
    """An InfluxQL identifier, double-quoted, so user input never becomes syntax."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    """An InfluxQL string literal, single-quoted."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
