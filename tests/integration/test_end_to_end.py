"""The whole pipeline on real processes, started the way a user starts it: ``smartfactory demo``.

simulated PLCs → gateway (Modbus TCP, MC, XGT, OPC UA: one press each) → broker → collector →
store → API, checked against the simulator's own record of everything it served. The values the
API returns for a polled press must be exactly what the simulator served in the poll's reads;
for the OPC UA press, exactly what its server held at the sample's timestamp.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest

from cli.demo import DEMO_OWNER, MACHINES, PROTOCOLS
from registermap import Table, decode
from simulators.framed_plcs import mc_register_map, xgt_register_map
from simulators.press import PRESS_TAGS
from tests.servers import free_port

pytestmark = pytest.mark.integration

MIN_SAMPLES = 6  # per machine, before the pipeline is stopped and checked


def _start_demo(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen, str, Path]:
    port = free_port()
    served = tmp_path / "served.jsonl"
    argv = [
        sys.executable, "-m", "cli.main", "demo", "--data-dir", str(tmp_path / "demo"), "--port", str(port),
        "--served-log", str(served), "--poll-interval", "0.25", *extra,
    ]
    log = open(tmp_path / "demo.out", "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    return proc, f"http://127.0.0.1:{port}", served


_SESSIONS: dict[str, httpx.Client] = {}


def _api(url: str) -> httpx.Client:
    """A client logged in with the demo owner's credentials (the ones the demo's banner prints)."""
    client = _SESSIONS.get(url)
    if client is None:
        client = httpx.Client(base_url=url, timeout=5)
        response = client.post("/api/v1/auth/login", json={"username": DEMO_OWNER[0], "password": DEMO_OWNER[1]})
        response.raise_for_status()
        _SESSIONS[url] = client
    return client


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)


def _live_start_ms(proc: subprocess.Popen, served: Path, tmp_path: Path, timeout: float = 60) -> int:
    """When the simulators served their first read. The demo backfills history before that
    instant; only what was polled live can be checked against the served registers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"demo exited early:\n{(tmp_path / 'demo.out').read_text()[-3000:]}"
        if served.exists() and served.read_text().strip():
            first = json.loads(served.read_text().splitlines()[0])
            return first["t_ms"] - 200  # a poll's timestamp precedes its read by a little
        time.sleep(0.25)
    pytest.fail(f"the simulators served nothing within {timeout}s\n{(tmp_path / 'demo.out').read_text()[-3000:]}")


def _wait_for_samples(proc: subprocess.Popen, url: str, tmp_path: Path, start_ms: int,
                      timeout: float = 60) -> list[dict]:
    """Poll the API (an external observer has nothing else to wait on) until every machine has samples."""
    deadline = time.monotonic() + timeout
    machines: list[dict] = []
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"demo exited early:\n{(tmp_path / 'demo.out').read_text()[-3000:]}"
        try:
            machines = _api(url).get("/api/v1/machines", timeout=2).json()
            # every tag: an OPC UA press's state changes more often than its other tags are sent
            # (a change carries only the tags that changed), so the state alone can run ahead
            if len(machines) == len(MACHINES) and all(len(_raw(url, m, t.name, start_ms=start_ms)) >= MIN_SAMPLES + 2
                                                      for m in machines for t in PRESS_TAGS):
                return machines
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    pytest.fail(f"no {MIN_SAMPLES} samples per machine within {timeout}s; machines={machines}\n"
                f"{(tmp_path / 'demo.out').read_text()[-3000:]}")


def _raw(url: str, m: dict, tag: str, end_ms: int | None = None, start_ms: int | None = None) -> list[dict]:
    path = f"{url}/api/v1/machines/{m['tenant']}/{m['site']}/{m['line']}/{m['machine']}/history"
    start = "2020-01-01T00:00:00Z" if start_ms is None else datetime.fromtimestamp(
        start_ms / 1000, tz=timezone.utc).isoformat()
    params = {"tag": tag, "every": "raw", "start": start}
    if end_ms is not None:
        params["end"] = datetime.fromtimestamp(end_ms / 1000, tz=timezone.utc).isoformat()
    response = _api(url).get(path, params=params, timeout=5)
    response.raise_for_status()
    return response.json()["points"]


#: the maps the demo's MC and XGT presses are read through (cli/demo.py builds its gateway config with them)
_FRAMED_MAPS = {"mc": mc_register_map(PRESS_TAGS), "xgt": xgt_register_map(PRESS_TAGS)}


def _served_values(served: list[dict], machine: str, ts_ms: int) -> dict:
    """Decode the first register and coil blocks the simulator served for this machine at or
    after the poll's source timestamp: the reads of that very poll, since a device's polls
    are sequential."""
    protocol = PROTOCOLS[machine]
    if protocol in _FRAMED_MAPS:
        framed = {}
        for tag in _FRAMED_MAPS[protocol]:
            # the request of this poll that read the tag's area (device D, M; %D, %M; an MC random read asks for several)
            record = next(r for r in served if r["machine"] == machine and tag.table in r.get("areas", ())
                          and r["t_ms"] >= ts_ms)
            assert record["t_ms"] - ts_ms < 1000, "the poll's read was served long after its timestamp"
            words = record["words"][tag.name]
            framed[tag.name] = bool(words[0]) if tag.is_bit_device else decode(tag, words)
        return framed
    values = {}
    for table in (Table.holding_register, Table.coil):
        record = next(r for r in served if r["machine"] == machine and r.get("table") == table.value
                      and r["t_ms"] >= ts_ms)
        assert record["t_ms"] - ts_ms < 1000, "the poll's read was served long after its timestamp"
        for tag in (t for t in PRESS_TAGS if t.table is table):
            if table is Table.coil:
                word, bit = divmod(tag.address - record["block_start"], 16)
                raw = [(record["registers"][word] >> bit) & 1]
            else:
                offset = tag.address - record["block_start"]
                raw = record["registers"][offset : offset + tag.width]
            values[tag.name] = decode(tag, raw)
    return values


def _check_pipeline(tmp_path: Path, *demo_args: str) -> None:
    proc, url, served_path = _start_demo(tmp_path, *demo_args)
    try:
        live_ms = _live_start_ms(proc, served_path, tmp_path)
        machines = _wait_for_samples(proc, url, tmp_path, live_ms)
        # Data keeps flowing: read every tag up to the same instant, just past a stored poll
        # (a poll's tags are stored together), so all tags see the same polls.
        # (for the OPC UA press, whose tags arrive apart, the earliest of its tags' newest samples)
        ends = {m["machine"]: min(_raw(url, m, t.name, start_ms=live_ms)[-1]["ts"] for t in PRESS_TAGS) + 1
                for m in machines}
        per_tag = {(m["machine"], t.name): _raw(url, m, t.name, ends[m["machine"]], start_ms=live_ms)
                   for m in machines for t in PRESS_TAGS}
        latest = {m["machine"]: _api(url).get(
            f"{url}/api/v1/machines/{m['tenant']}/{m['site']}/{m['line']}/{m['machine']}/latest").json()
            for m in machines}
    finally:
        _stop(proc)
    assert proc.returncode == 0, (tmp_path / "demo.out").read_text()[-3000:]
    served = [json.loads(line) for line in served_path.read_text().splitlines()]

    checked = 0
    live_tags = {tag.name for tag in PRESS_TAGS}
    for m in machines:
        name = m["machine"]
        # the backfilled history has more tags than the live press serves: those are older than the live run
        backfilled = {k: v["ts"] for k, v in latest[name]["values"].items() if k not in live_tags}
        assert all(ts < live_ms for ts in backfilled.values()), backfilled
        live_newest = {k: v for k, v in latest[name]["values"].items() if k in live_tags}
        if PROTOCOLS[name] == "opcua":
            checked += _check_opcua(served, name, per_tag, live_newest)
            continue
        timestamps = [p["ts"] for p in per_tag[(name, "state")]]
        assert len(timestamps) >= MIN_SAMPLES
        for tag in PRESS_TAGS:
            # every poll carries every tag
            assert [p["ts"] for p in per_tag[(name, tag.name)]] == timestamps
        for i, ts in enumerate(timestamps):
            expected = _served_values(served, name, ts)
            got = {tag.name: per_tag[(name, tag.name)][i]["value"] for tag in PRESS_TAGS}
            # exact equality: numbers (and booleans as 0/1) are stored as floats
            assert got == {k: float(v) for k, v in expected.items()}, f"{name} at {ts}"
            checked += 1
        newest = live_newest
        assert set(newest) == live_tags
        latest_ts = newest["state"]["ts"]
        assert latest_ts >= timestamps[-1] and all(v["ts"] == latest_ts for v in newest.values())
        expected = _served_values(served, name, latest_ts)
        assert {k: v["value"] for k, v in newest.items()} == {k: float(v) for k, v in expected.items()}
    assert checked >= len(MACHINES) * MIN_SAMPLES


def _held(served: list[dict], machine: str, tag: str, ts_ms: int) -> tuple[object, int]:
    """What the OPC UA server held for a node at an instant, and since when: the last change it
    served at or before that instant (each record carries the values that changed, stamped with
    the source timestamp a subscriber is told)."""
    record = max((r for r in served if r["machine"] == machine and tag in r.get("values", {}) and r["t_ms"] <= ts_ms),
                 key=lambda r: r["t_ms"])
    return record["values"][tag], record["t_ms"]


def check_opcua_samples(served: list[dict], name: str, points: dict[str, list[tuple[int, object]]],
                        window_ms: int = 500) -> tuple[int, int]:
    """Every (timestamp, value) the gateway delivered for an OPC UA machine's tags equals what
    its server held at that timestamp; returns (values checked, values that lagged a change).

    A change arrives stamped with the server's source timestamp; a value that held is re-sent
    each interval stamped with the gateway's clock, so one re-sent within a publishing interval
    after a change that is still on its way may carry the value before it: that, and only that,
    is also accepted (``window_ms``: the publishing interval plus the loop's delay), and the
    caller asserts it stays the exception."""
    checked = late = 0
    for tag, samples in points.items():
        for ts, got in samples:
            value, since = _held(served, name, tag, ts)
            checked += 1
            if float(got) == float(value):
                continue
            before, _ = _held(served, name, tag, since - 1)
            assert ts - since <= window_ms and float(got) == float(before), (name, tag, ts, got, value, since)
            late += 1
    return checked, late


def _check_opcua(served: list[dict], name: str, per_tag: dict, newest: dict) -> int:
    """The OPC UA press, through the store and the API: its history and its latest values."""
    points = {tag.name: [(p["ts"], p["value"]) for p in per_tag[(name, tag.name)]] for tag in PRESS_TAGS}
    assert all(len(p) >= MIN_SAMPLES for p in points.values()), points
    assert set(newest) == {tag.name for tag in PRESS_TAGS}
    checked, late = check_opcua_samples(served, name, points)
    check_opcua_samples(served, name, {tag: [(v["ts"], v["value"])] for tag, v in newest.items()})
    assert late <= checked // 10, f"{late} of {checked} OPC UA values lagged a change"
    return checked


def test_demo_on_embedded_broker_and_store(tmp_path):
    _check_pipeline(tmp_path)
    assert (tmp_path / "demo" / "telemetry.db").exists()


def test_demo_on_mosquitto_and_influxd(tmp_path, mosquitto, influxd):
    _check_pipeline(tmp_path, "--mqtt-url", mosquitto.url, "--influx-url", influxd.url,
                    "--influx-database", "e2e")
    # the data really went to influxd, not to an embedded store
    assert not (tmp_path / "demo" / "telemetry.db").exists()
    response = httpx.get(f"{influxd.url}/query", params={"db": "e2e", "q": "SELECT count(state) FROM telemetry"})
    assert response.json()["results"][0]["series"][0]["values"][0][1] >= 3 * MIN_SAMPLES
