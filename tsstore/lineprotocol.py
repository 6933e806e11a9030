"""InfluxDB line protocol and InfluxQL quoting: pure functions, no I/O.

Schema: measurement ``telemetry``; tags tenant, site, line, machine (bounded sets);
one field per Modbus tag, named as the tag; time in ms.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

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


def to_lines(points: Iterable[Point]) -> list[str]:
    lines = []
    for p in points:
        m = p.machine
        fields = []
        for key, value in p.values.items():
            encoded = _field(value)
            if encoded is not None:
                fields.append(f"{_escape_key(key)}={encoded}")
        if not fields:
            continue
        tags = (
            f"line={_escape_key(m.line)},machine={_escape_key(m.machine)},"
            f"site={_escape_key(m.site)},tenant={_escape_key(m.tenant)}"
        )
        lines.append(f"{MEASUREMENT},{tags} {','.join(fields)} {p.ts_ms}")
    return lines


def quote_ident(name: str) -> str:
    """An InfluxQL identifier, double-quoted, so user input never becomes syntax."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_literal(value: str) -> str:
    """An InfluxQL string literal, single-quoted."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
