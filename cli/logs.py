"""Operator-readable logs: one line per event, ``time level logger: event key=value ...``."""

from __future__ import annotations

import logging
import sys
import time


class _Formatter(logging.Formatter):
    converter = time.gmtime  # type: ignore[assignment]  # logging calls converter(seconds), as gmtime takes

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        line = f"{stamp} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # Third-party chatter an operator cannot act on.
    for noisy, lvl in (("pymodbus", logging.CRITICAL), ("amqtt", logging.CRITICAL), ("transitions", logging.WARNING),
                       ("uvicorn.access", logging.WARNING), ("httpx", logging.WARNING),
                       ("alembic.runtime.plugins", logging.WARNING)):
        logging.getLogger(noisy).setLevel(lvl)
