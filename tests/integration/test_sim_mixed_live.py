"""A mixed line, live: ``smartfactory simulate`` serves one press over Modbus, one over the MC
protocol, one over XGT and one over OPC UA; a real ``smartfactory gateway run`` reads them into a
real mosquitto. Every value the gateway publishes for the MC and XGT presses must equal what the
simulator served for that tag in the request that answered the poll, and every value for the
OPC UA press what its server held at the sample's timestamp."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading

import paho.mqtt.client as mqtt
import pytest
import yaml

from registermap import decode
from simulators.framed_plcs import register_map
from simulators.opcua_plcs import opcua_register_map
from simulators.scenario import load_scenario, resolve_scenario_path
from tests.integration.test_end_to_end import check_opcua_samples
from tests.servers import free_port
from tests.waiting import wait_until
from wire import decode_telemetry, telemetry_subscription

pytestmark = pytest.mark.integration

SAMPLES = 15  # per MC/XGT/OPC UA press, each checked tag by tag
PROTOCOLS = ("modbus", "mc", "xgt", "opcua")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_gateway_publishes_exactly_what_the_mc_xgt_and_opcua_simulators_served(tmp_path, mosquitto):
    data = yaml.safe_load(resolve_scenario_path("autoparts_press_line").read_text())
    machines = [m for m in data["lines"][0]["machines"] if m["name"] in ("press-1", "press-2", "press-3", "press-4")]
    assert len(machines) == len(PROTOCOLS)
    for m, protocol in zip(machines, PROTOCOLS):
        m["port"] = free_port()
        m.pop("faults", None)
        if protocol != "modbus":
            m["protocol"] = protocol
            m.pop("float_order", None)
            m.pop("register_map", None)
    data["lines"][0]["machines"] = machines
    scenario_path = tmp_path / "scenario.yaml"
    scenario_path.write_text(yaml.safe_dump(data, sort_keys=False))
    scenario = load_scenario(scenario_path)
    sims = {m.ref.machine: m for m in scenario.machines()}
    served_path = tmp_path / "served.jsonl"
    sim_out = open(tmp_path / "simulate.out", "w")
    sim = subprocess.Popen([sys.executable, "-m", "cli.main", "simulate", str(scenario_path), "--speed", "60",
                            "--served-log", str(served_path)], stdout=sim_out, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL)
    gw = None
    samples: dict[str, list[tuple[int, dict]]] = {}
    lock = threading.Lock()

    def on_message(client, userdata, message):
        machine, telemetry = decode_telemetry(message.topic, message.payload)
        with lock:
            samples.setdefault(machine.machine, []).extend((s.ts, s.values) for s in telemetry.samples)

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sub-mixed")
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe(telemetry_subscription(scenario.tenant), qos=1)
    sub.on_message = on_message
    sub.connect_async("127.0.0.1", mosquitto.port)
    sub.loop_start()
    try:
        for m in sims.values():
            wait_until(lambda: _listening(m.port) or sim.poll() is not None, 30, f"{m.ref.machine} listening")
        assert sim.poll() is None, (tmp_path / "simulate.out").read_text()
        devices = []
        for m in sims.values():
            device = {"name": m.ref.machine, "line": m.ref.line, "host": "127.0.0.1", "port": m.port,
                      "poll_interval_s": 0.2, "timeout_s": 1}
            if m.protocol == "opcua":
                device = {"name": m.ref.machine, "line": m.ref.line, "protocol": "opcua", "poll_interval_s": 0.2,
                          "timeout_s": 1, "endpoint": f"opc.tcp://127.0.0.1:{m.port}/smartfactory/sim",
                          "tags": [t.model_dump(mode="json", exclude_none=True)
                                   for t in opcua_register_map(m.ref.machine, m.tags)]}
            elif m.protocol == "modbus":
                device["tags"] = [t.model_dump(mode="json", exclude_defaults=True) for t in m.tags]
            else:
                device["protocol"] = m.protocol
                device["tags"] = [t.model_dump(mode="json", exclude_none=True) for t in register_map(m)]
            devices.append(device)
        config = tmp_path / "gateway.yaml"
        config.write_text(yaml.safe_dump({
            "mqtt": {"url": f"mqtt://127.0.0.1:{mosquitto.port}"},
            "gateway": {"id": "gw-mixed", "tenant": scenario.tenant, "site": scenario.site,
                        "outbox": {"path": str(tmp_path / "outbox.db")}, "devices": devices}}))
        gw_log = open(tmp_path / "gateway.out", "w")
        gw = subprocess.Popen([sys.executable, "-m", "cli.main", "gateway", "run", "-c", str(config)], stdout=gw_log,
                              stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              env=dict(os.environ, PYTHONUNBUFFERED="1"))

        def enough() -> bool:
            with lock:
                return all(len(samples.get(n, ())) >= SAMPLES for n in sims)

        try:
            wait_until(enough, 60, f"{SAMPLES} samples from each press")
        except AssertionError:
            raise AssertionError((tmp_path / "gateway.out").read_text()[-3000:]) from None
    finally:
        if gw is not None:
            gw.send_signal(signal.SIGTERM)
            gw.wait(30)
        sim.send_signal(signal.SIGINT)
        sim.wait(60)
        sim_out.close()
        sub.loop_stop()
        sub.disconnect()
    served = [json.loads(line) for line in served_path.read_text().splitlines() if line.strip()]
    checked = 0
    for name in ("press-2", "press-3"):
        m = sims[name]
        tags = register_map(m)
        assert {t.name for t in tags} == {t.name for t in m.tags}  # the same signals as over Modbus
        with lock:
            got = list(samples[name])
        for ts, values in got:
            assert set(values) == {t.name for t in tags}, values
            for tag in tags:
                # the request of this poll that read the tag's area: the first served at or after the poll began
                record = next(r for r in served if r["machine"] == name and tag.table in r["areas"] and r["t_ms"] >= ts)
                assert record["t_ms"] - ts < 1000, "the poll's read was served long after its timestamp"
                words = record["words"][tag.name]
                expected = bool(words[0]) if tag.is_bit_device else decode(tag, words)
                assert values[tag.name] == expected, (name, tag.name, ts, values[tag.name], expected)
                checked += 1
    assert checked >= 2 * SAMPLES * 5
    # the OPC UA press: each tag's samples against what its server held at their timestamps
    ua = sims["press-4"]
    with lock:
        got_ua = list(samples["press-4"])
    points: dict[str, list[tuple[int, object]]] = {t.name: [] for t in ua.tags}
    for ts, values in got_ua:
        assert set(values) <= set(points), values
        for tag, value in values.items():
            points[tag].append((ts, value))
    assert all(points.values()), {k: len(v) for k, v in points.items()}  # every tag arrived
    ua_checked, late = check_opcua_samples(served, "press-4", points)
    assert ua_checked >= SAMPLES and late <= ua_checked // 10, (ua_checked, late)
    # the values moved: the presses ran through cycles, not a frozen memory
    with lock:
        assert len({v["good_count"] for _, v in samples["press-2"]} | {v["state"] for _, v in samples["press-3"]}) > 1
    assert gw.returncode == 0, (tmp_path / "gateway.out").read_text()[-3000:]
