"""Operator logs: readable text by default, JSON lines for an aggregator (``--log-format json``).

Every log call in the house names an event and its fields in the message template,
``log.info("device_configured device=%s unit=%d", name, unit)``. That template is the schema:
each ``key=%x`` token becomes a field holding the argument itself (a number stays a number),
``key=word`` a field holding the word, and the first word is the event. Fields may also be
passed explicitly: ``log.info("event", extra={"fields": {...}})``.

- text: ``2026-03-02T06:00:00.123Z INFO    gateway.service: device_configured device=press-1 unit=1``
- json: ``{"ts": "2026-03-02T06:00:00.123Z", "level": "INFO", "logger": "gateway.service",
  "event": "device_configured", "msg": "device_configured device=press-1 unit=1", "device": "press-1", "unit": 1}``

Warnings and errors of the libraries we drive (pymodbus, amqtt, asyncua) reach the operator; when one
floods (pymodbus logs every timeout with a frame dump), ``LibraryFlood`` lets a few through
per minute and says how many it held back.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
import time
from typing import IO, Any

FORMATS = ("text", "json")
LOG_FORMAT_ENV = "SMARTFACTORY_LOG_FORMAT"
#: Libraries whose warnings and errors must reach the operator, rate-limited.
LIBRARIES = ("pymodbus", "amqtt", "asyncua")
# key=%s, key=%r, key=%d, key=%.1f, key=%5.2f ... (one conversion, the whole value)
_FIELD = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)=%[-#0 +]*\d*(?:\.\d+)?[srdifgeExXa]$")
_WORD = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)=([^%\s]+)$")
_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_.]*)=")
_SPEC = re.compile(r"%[-#0 +]*\d*(?:\.\d+)?[srdifgeExXa%]")


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """The record's key/value fields, from its template and arguments (see the module docstring)."""
    out: dict[str, Any] = {}
    template, args = record.msg, record.args
    if isinstance(template, str) and (isinstance(args, tuple) or not args):
        values = list(args or ())
        for token in template.split():
            specs = [s for s in _SPEC.findall(token) if s != "%%"]
            field = _FIELD.match(token)
            if field and len(specs) == 1 and values:
                out[field.group(1)] = values[0]
            elif not specs and (word := _WORD.match(token)):
                out[word.group(1)] = word.group(2)
            elif specs and len(values) >= len(specs) and (key := _KEY.match(token)):
                try:  # key=%s:%d and the like: the value as text
                    out[key.group(1)] = token[key.end():] % tuple(values[:len(specs)])
                except (TypeError, ValueError):
                    pass
            del values[:len(specs)]
    extra = getattr(record, "fields", None)
    if isinstance(extra, dict):
        out.update(extra)
    return out


def _event(record: logging.LogRecord) -> str:
    first = record.msg.split(maxsplit=1)[0] if isinstance(record.msg, str) and record.msg.strip() else ""
    return first if "=" not in first and "%" not in first else ""


class _Stamp(logging.Formatter):
    converter = time.gmtime  # type: ignore[assignment]  # logging calls converter(seconds), as gmtime takes

    def stamp(self, record: logging.LogRecord) -> str:
        return self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"

    @staticmethod
    def held_back(record: logging.LogRecord) -> int:
        return int(getattr(record, "suppressed", 0) or 0)


class TextFormatter(_Stamp):
    """``time level logger: message``: what an operator reads in a terminal or journal."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{self.stamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict) and extra:
            line += "".join(f" {k}={v}" for k, v in extra.items())
        if n := self.held_back(record):
            line += f" (and {n} more like it held back in the last {LibraryFlood.INTERVAL_S:g} s)"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(_Stamp):
    """One JSON object per line: ts, level, logger, event, msg, the fields, and the traceback if any."""

    def format(self, record: logging.LogRecord) -> str:
        obj: dict[str, Any] = {"ts": self.stamp(record), "level": record.levelname, "logger": record.name,
                               "event": _event(record), "msg": record.getMessage()}
        for key, value in fields_of(record).items():
            obj.setdefault(key, value)  # a field never overwrites the envelope
        if n := self.held_back(record):
            obj["suppressed"] = n
        if record.exc_info:
            obj["exception"] = self.formatException(record.exc_info)
        return json.dumps(obj, ensure_ascii=False, default=str)  # one line: json escapes newlines


class LibraryFlood(logging.Filter):
    """At most ``BURST`` records a minute per library logger and level; the next one let through counts the rest."""

    BURST = 5
    INTERVAL_S = 60.0

    def __init__(self, prefixes: tuple[str, ...] = LIBRARIES) -> None:
        super().__init__()
        self.prefixes = prefixes
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, int], list[float]] = {}  # (logger, level) -> [window start, passed, held]

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.prefixes):
            return True
        key = (record.name, record.levelno)
        now = time.monotonic()
        with self._lock:
            w = self._windows.setdefault(key, [now, 0, 0])
            if now - w[0] >= self.INTERVAL_S:
                held = int(w[2])
                w[:] = [now, 0, 0]
                if held:
                    record.suppressed = held
            if w[1] >= self.BURST:
                w[2] += 1
                return False
            w[1] += 1
            return True


def setup_logging(level: str = "INFO", fmt: str = "text", stream: IO[str] | None = None) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: use one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(LibraryFlood())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Libraries: their warnings and errors reach the operator (rate-limited above), their chatter not.
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(logging.DEBUG if level.upper() == "DEBUG" else logging.WARNING)
    for noisy in ("transitions", "uvicorn.access", "httpx", "alembic.runtime.plugins"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
