"""Operator logs: JSON lines an aggregator can parse, readable text, and the libraries' errors reach the operator."""

from __future__ import annotations

import io
import json
import logging

import pytest

from cli.logs import LibraryFlood, setup_logging


@pytest.fixture
def restore_logging():
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    libs = {n: logging.getLogger(n).level for n in ("pymodbus", "amqtt")}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for n, lvl in libs.items():
        logging.getLogger(n).setLevel(lvl)


def test_json_lines_carry_the_events_fields_one_object_per_line(restore_logging):
    out = io.StringIO()
    setup_logging("INFO", "json", out)
    log = logging.getLogger("gateway.poller")
    log.info("device_configured device=%s unit=%d interval_s=%g reason=%r state=up address=%s:%d", "press-1", 3, 0.5,
             "two\nlines", "127.0.3.21", 502)
    log.warning("plain words without fields")
    log.info("explicit", extra={"fields": {"tenant": "acme", "rows": 12}})
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("poll_failed device=%s", "press-2")
    lines = out.getvalue().splitlines()
    assert len(lines) == 4
    first, plain, explicit, failed = (json.loads(x) for x in lines)
    assert first["logger"] == "gateway.poller" and first["level"] == "INFO" and first["ts"].endswith("Z")
    assert first["event"] == "device_configured"
    assert (first["device"], first["unit"], first["interval_s"], first["reason"], first["state"]) == (
        "press-1", 3, 0.5, "two\nlines", "up")  # typed values, not their text
    assert first["address"] == "127.0.3.21:502"
    assert first["msg"] == ("device_configured device=press-1 unit=3 interval_s=0.5 reason='two\\nlines' state=up "
                            "address=127.0.3.21:502")
    assert plain["msg"] == "plain words without fields" and plain["level"] == "WARNING"
    assert (explicit["event"], explicit["tenant"], explicit["rows"]) == ("explicit", "acme", 12)
    assert failed["device"] == "press-2" and "ValueError: boom" in failed["exception"]


def test_text_is_the_readable_default(restore_logging):
    out = io.StringIO()
    setup_logging("INFO", stream=out)
    logging.getLogger("collector.service").info("batch_written points=%d", 60)
    (line,) = out.getvalue().splitlines()
    assert line.endswith(" INFO    collector.service: batch_written points=60")


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="json"):
        setup_logging("INFO", "xml")


def test_library_warnings_and_errors_reach_the_operator_and_a_flood_is_held_back(restore_logging, monkeypatch):
    out = io.StringIO()
    setup_logging("INFO", "json", out)
    clock = [1000.0]
    monkeypatch.setattr("cli.logs.time.monotonic", lambda: clock[0])
    logging.getLogger("pymodbus.logging").error("Connection to (127.0.0.1, 1502) failed: timed out")
    logging.getLogger("amqtt.broker").warning("client disconnected without DISCONNECT")
    logging.getLogger("pymodbus.logging").debug("frame dump 0x01 0x03")  # chatter stays out
    records = [json.loads(x) for x in out.getvalue().splitlines()]
    assert [(r["logger"], r["level"]) for r in records] == [("pymodbus.logging", "ERROR"), ("amqtt.broker", "WARNING")]
    for _ in range(100):  # a device that times out on every poll
        logging.getLogger("pymodbus.logging").error("Connection failed: timed out")
    flood = [json.loads(x) for x in out.getvalue().splitlines()][2:]
    assert len(flood) == LibraryFlood.BURST - 1  # one went through before the flood
    clock[0] += LibraryFlood.INTERVAL_S
    logging.getLogger("pymodbus.logging").error("Connection failed: timed out")
    last = json.loads(out.getvalue().splitlines()[-1])
    assert last["suppressed"] == 100 - (LibraryFlood.BURST - 1)
    logging.getLogger("gateway.poller").error("ours are never held back")
    assert json.loads(out.getvalue().splitlines()[-1])["logger"] == "gateway.poller"
