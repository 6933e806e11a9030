"""``smartfactory dead-letters``: what was not stored, and why, for an operator."""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import click

from collector.ledger import DB_NAME, read_dead_letters, spool_status


def _payload_text(payload: bytes) -> tuple[str, str]:
    try:
        return payload.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode(), "base64"


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def print_dead_letters(data_dir: Path, reason: str | None = None, limit: int = 50, after_id: int = 0,
                       as_json: bool = False, summary: bool = False) -> None:
    path = Path(data_dir) / DB_NAME
    if not path.exists():
        click.echo(f"{path}: no collector data yet (no dead letters, empty spool)", err=True)
        return
    if summary:
        counts = Counter(d.reason for d in read_dead_letters(data_dir, reason=reason))
        spooled, spool_bytes = spool_status(data_dir)
        if as_json:
            click.echo(json.dumps({"dead_letters": dict(counts), "spool_messages": spooled,
                                   "spool_bytes": spool_bytes}))
            return
        click.echo(f"{path}")
        for name, n in sorted(counts.items()):
            click.echo(f"  {name:<16} {n}")
        click.echo(f"  total            {sum(counts.values())}")
        click.echo(f"spool: {spooled} messages, {spool_bytes} bytes waiting for the store")
        return
    for d in read_dead_letters(data_dir, reason=reason, limit=limit, after_id=after_id):
        text, encoding = _payload_text(d.payload)
        if as_json:
            click.echo(json.dumps({"id": d.id, "received": _when(d.received_ms), "reason": d.reason,
                                   "detail": d.detail, "topic": d.topic, "payload": text,
                                   "payload_encoding": encoding, "payload_bytes": d.payload_bytes,
                                   "truncated": d.truncated}))
        else:
            more = f" (truncated from {d.payload_bytes} bytes)" if d.truncated else ""
            click.echo(f"#{d.id} {_when(d.received_ms)} {d.reason} topic={d.topic!r}\n  why: {d.detail}\n"
                       f"  payload{more} [{encoding}]: {text[:500]}")
