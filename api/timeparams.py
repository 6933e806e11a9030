"""Parsing of time query parameters: pure, so every rule is unit-tested."""

from __future__ import annotations

import re
from datetime import datetime, timezone

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_every(text: str) -> int:
    """'1m' → 60000. 'raw' or '0s' → 0 (no downsampling)."""
    if text == "raw":
        return 0
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"every={text!r} is not a duration: use a number and a unit, e.g. 500ms, 10s, 1m, 1h, 1d, or raw")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def to_epoch_ms(moment: datetime) -> int:
    """Naive datetimes are taken as UTC; the API documents that."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
