"""The gateway as a real process (``smartfactory gateway run``) against real mosquitto:
zero loss across a broker outage and a SIGKILL, birth/Last Will and device status,
a PLC switched off and on (damping, backoff, recovery), username/password; the device
behaviours once per polled protocol (Modbus, MC, XGT). Ground truth is the simulated PLCs' own log of every read they served."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml

from tests.integration.test_gateway_polling import PROTOCOLS, counting_device, start_counting_plc
from tests.servers import Mosquitto, find_binary, free_port
from tests.waiting import wait_until
from wire import decode_telemetry, status_subscription, telemetry_subscription

pytestmark = pytest.mark.integration

TENANT, SITE = "t1", "s1"


class Plcs:
    """Counting PLCs (Modbus, MC or XGT) served from a thread of the test process (the gateway is
    another process); ``stop_plc``/``start_plc`` switch one off and on again on its port."""

    def __init__(self, names: list[str], served_log: Path, protocol: str = "modbus") -> None:
        self.log = open(served_log, "a", encoding="utf-8")
        self.names, self.protocol = names, protocol
        self.ports: list[int] = []
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self.loop)

        async def main():
            self.plcs, self.stops, self.starts = [], [], []
            for n in self.names:
                plc, port, stop, start = await start_counting_plc(self.protocol, n, self.log)
                self.plcs.append(plc)
                self.stops.append(stop)
                self.starts.append(start)
                self.ports.append(port)
            ready.set()

        self.loop.run_until_complete(main())
        self.loop.run_forever()

    def stop_plc(self, i: int) -> None:
        asyncio.run_coroutine_threadsafe(self.stops[i](), self.loop).result(10)

    def start_plc(self, i: int) -> None:
        asyncio.run_coroutine_threadsafe(self.starts[i](), self.loop).result(10)

    def stop(self) -> None:
        async def shutdown():
            for s in self.stops:
                await s()

        asyncio.run_coroutine_threadsafe(shutdown(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.log.close()


class Subscriber:
    def __init__(self, url_port: int, client_id: str, username: str | None = None, password: str | None = None,
                 tls_ca: Path | None = None):
        self.seqs: dict[str, set[int]] = {}
        self.first_arrival: dict[str, list[int]] = {}  # each seq when first seen, in arrival order
        self.samples = 0
        self.status: dict[str, dict] = {}
        self.status_history: list[tuple[str, dict]] = []  # every status message, in arrival order
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False,
                                  protocol=mqtt.MQTTv311)
        if username:
            self.client.username_pw_set(username, password)
        if tls_ca:
            self.client.tls_set(ca_certs=str(tls_ca))
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(
            [(telemetry_subscription(TENANT), 1), (status_subscription(TENANT), 1)])
        self.client.on_message = self._on_message
        self.client.connect_async("127.0.0.1", url_port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        if message.topic.endswith("/status"):
            with self.lock:
                self.status[message.topic] = json.loads(message.payload)
                self.status_history.append((message.topic, self.status[message.topic]))
            return
        machine, telemetry = decode_telemetry(message.topic, message.payload)
        with self.lock:
            got = self.seqs.setdefault(machine.machine, set())
            order = self.first_arrival.setdefault(machine.machine, [])
            for s in telemetry.samples:
                if s.values["seq"] not in got:
                    order.append(s.values["seq"])
                got.add(s.values["seq"])
                self.samples += 1

    def count(self, machine: str) -> int:
        with self.lock:
            return len(self.seqs.get(machine, ()))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def write_config(tmp_path: Path, mqtt_port: int, plc_ports: list[int], names: list[str], protocol: str = "modbus",
                 device_extra: dict | None = None, **mqtt_extra) -> Path:
    config = {
        "mqtt": {"url": f"mqtt://127.0.0.1:{mqtt_port}", "keepalive_s": 5, **mqtt_extra},
        "gateway": {
            "id": "gw-test", "tenant": TENANT, "site": SITE, "status_interval_s": 1,
            "outbox": {"path": str(tmp_path / "outbox.db")},
            "devices": [
                counting_device(protocol, n, p, poll_interval_s=0.1, timeout_s=0.5, max_backoff_s=1,
                                status_interval_s=1, **(device_extra or {}))
                for n, p in zip(names, plc_ports)
            ],
        },
    }
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_gateway(config: Path, log: Path) -> subprocess.Popen:
    out = open(log, "a")
    return subprocess.Popen([sys.executable, "-m", "cli.main", "gateway", "run", "--config", str(config)],
                            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))


def served(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.parametrize("protocol", ["modbus", "mc"])
def test_nothing_is_lost_across_a_broker_outage_and_a_sigkill(tmp_path, mosquitto, protocol):
    names = ["m1", "m2"]
    served_log = tmp_path / "served.jsonl"
    plcs = Plcs(names, served_log, protocol)
    sub = Subscriber(mosquitto.port, "sub-zero-loss")
    config = write_config(tmp_path, mosquitto.port, plcs.ports, names, protocol)
    log = tmp_path / "gateway.log"
    gw = start_gateway(config, log)
    try:
        wait_until(lambda: all(sub.count(n) >= 10 for n in names), 30, "live samples")
        # 1. the broker goes away; polling goes on into the outbox
        mosquitto.stop()
        outage_from = len(served(served_log))
        wait_until(lambda: len(served(served_log)) >= outage_from + 40, 30, "polls during the outage")
        # 2. the gateway is killed with a backlog in its outbox
        kill_ms = int(time.time() * 1000)
        gw.send_signal(signal.SIGKILL)
        gw.wait(10)
        # 3. broker back, gateway restarted: the backlog and new polls must all arrive
        mosquitto.start()
        gw = start_gateway(config, log)
        wait_until(lambda: len(served(served_log)) >= outage_from + 80, 30, "polls after the restart")
        records = served(served_log)
        expected = {n: {r["seq"] for r in records if r["machine"] == n} for n in names}
        # a read served just before the SIGKILL may not have reached the outbox yet (one poll per device)
        at_risk = {n: {r["seq"] for r in records if r["machine"] == n and kill_ms - 1000 <= r["t_ms"] <= kill_ms}
                   for n in names}

        def all_arrived() -> bool:
            with sub.lock:
                return all(not (expected[n] - at_risk[n] - sub.seqs.get(n, set())) for n in names)

        try:
            wait_until(all_arrived, 60, "every served sample at the subscriber")
        except AssertionError:
            with sub.lock:
                missing = {n: sorted(expected[n] - sub.seqs.get(n, set()))[:20] for n in names}
            raise AssertionError(f"missing samples: {missing}\n{log.read_text()[-3000:]}") from None
        with sub.lock:
            lost_at_kill = {n: at_risk[n] - sub.seqs.get(n, set()) for n in names}
        assert all(len(v) <= 1 for v in lost_at_kill.values()), lost_at_kill
        assert "outbox_resumed" in log.read_text()  # the restart found the backlog on disk
        with sub.lock:  # the backlog was replayed in order, before the polls made after it
            assert all(sub.first_arrival[n] == sorted(sub.first_arrival[n]) for n in names)
    finally:
        if gw.poll() is None:
            gw.send_signal(signal.SIGTERM)
            gw.wait(20)
        sub.close()
        plcs.stop()
    assert gw.returncode == 0, log.read_text()[-3000:]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_plc_switched_off_goes_offline_after_damping_backs_off_and_flows_again_on_restart(tmp_path, mosquitto,
                                                                                            protocol):
    """One PLC of two stops answering (its port closes, as when it is switched off): the device
    is reported offline only at the third failed poll (offline_after_failures), the gateway and
    the other device go on, reconnects back off to max_backoff_s, and the device's values flow
    again once the PLC listens on the same port."""
    names = ["victim", "other"]
    served_log = tmp_path / "served.jsonl"
    plcs = Plcs(names, served_log, protocol)
    sub = Subscriber(mosquitto.port, "sub-plc-restart")
    config = write_config(tmp_path, mosquitto.port, plcs.ports, names, protocol,
                          device_extra={"offline_after_failures": 3, "offline_after_s": 60})
    log = tmp_path / "gateway.log"
    gw = start_gateway(config, log)
    topic = f"sf/v1/{TENANT}/{SITE}/l1/victim/status"

    def victim_statuses() -> list[dict]:
        with sub.lock:
            return [v for t, v in sub.status_history if t == topic]

    def failures_logged() -> list[str]:
        return [line for line in log.read_text().splitlines() if "poll_failed device=victim" in line]

    try:
        wait_until(lambda: all(sub.count(n) >= 5 for n in names), 30, "live samples of both devices")
        wait_until(lambda: any(v["state"] == "online" for v in victim_statuses()), 20, "the victim online")
        plcs.stop_plc(0)
        switched_off = time.monotonic()
        seen_before = len(victim_statuses())
        other_before = sub.count("other")
        wait_until(lambda: any(v["state"] == "offline" for v in victim_statuses()[seen_before:]), 20,
                   "the victim reported offline")
        wait_until(lambda: len(failures_logged()) >= 7, 20, "reconnects backing off to the cap")
        wait_until(lambda: sub.count("other") >= other_before + 30, 20, "the other device flowing meanwhile")
        attempts, outage_s = len(failures_logged()), time.monotonic() - switched_off
        assert gw.poll() is None, log.read_text()[-3000:]
        victim_before = sub.count("victim")
        plcs.start_plc(0)  # the same port
        wait_until(lambda: sub.count("victim") >= victim_before + 5, 20, "the victim's values again")
        wait_until(lambda: victim_statuses()[-1]["state"] == "online", 20, "the victim online again")
        text = log.read_text()
    finally:
        if gw.poll() is None:
            gw.send_signal(signal.SIGTERM)
            gw.wait(20)
        sub.close()
        plcs.stop()
    during = victim_statuses()[seen_before:]
    offline_at = next(i for i, v in enumerate(during) if v["state"] == "offline")
    # damping: statuses published before the third failure still say online; offline comes with it
    assert during[offline_at]["consecutive_failures"] == 3, during
    assert all(v["state"] == "online" for v in during[:offline_at]), during
    assert "device_offline device=victim" in text and "failures=3" in text.split("device_offline device=victim")[1][:200]
    # backoff: the waits double from the poll interval up to max_backoff_s (1 s) ...
    backoffs = [float(line.split("backoff_s=")[1].split()[0]) for line in failures_logged()[:7]]
    assert backoffs == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0], backoffs
    # ... and were waited: at the poll interval (0.1 s) the outage would have taken 10 attempts a second
    assert attempts <= 5 + outage_s / 1.0 + 2, (attempts, outage_s)
    assert "device_recovered device=victim" in text
    assert gw.returncode == 0, text[-3000:]


def mosquitto_with_passwords(workdir: Path, users: dict[str, str]) -> Mosquitto:
    binary = find_binary(("mosquitto", "/usr/sbin/mosquitto"))
    passwd = find_binary(("mosquitto_passwd", "/usr/bin/mosquitto_passwd"))
    if not binary or not passwd:
        pytest.skip("mosquitto / mosquitto_passwd not installed")
    workdir.mkdir(parents=True, exist_ok=True)
    pwfile = workdir / "passwords"
    pwfile.touch()
    for user, password in users.items():
        subprocess.run([passwd, "-b", str(pwfile), user, password], check=True, capture_output=True)
    os.chmod(pwfile, 0o600)
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous false\npassword_file {pwfile}\n"
                    f"user {getpass.getuser()}\nlog_type error\nlog_type warning\n")
    server = Mosquitto("mosquitto", [binary, "-c", str(conf)], port, workdir)
    server.start()
    return server


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_birth_will_device_status_and_password_auth(tmp_path, protocol):
    broker = mosquitto_with_passwords(tmp_path / "mosq", {"gw": "s3cret", "dash": "view"})
    names = ["m1", "dead"]
    plcs = Plcs(["m1"], tmp_path / "served.jsonl", protocol)
    dead_port = free_port()  # nothing listens there
    sub = Subscriber(broker.port, "dashboard", "dash", "view")
    gw_topic = f"sf/v1/{TENANT}/{SITE}/_gateway/gw-test/status"
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    bad_config = write_config(wrong, broker.port, [plcs.ports[0]], ["m1"], protocol, username="gw", password="nope")
    bad = start_gateway(bad_config, wrong / "gateway.log")
    config = write_config(tmp_path, broker.port, [plcs.ports[0], dead_port], names, protocol, username="gw",
                          password="s3cret")
    log = tmp_path / "gateway.log"
    gw = start_gateway(config, log)
    try:
        wait_until(lambda: sub.count("m1") >= 3, 30, "samples through an authenticated broker")

        def status(topic_end: str) -> dict:
            with sub.lock:
                return next((v for k, v in sub.status.items() if k.endswith(topic_end)), {})

        wait_until(lambda: status("/l1/dead/status").get("state") == "offline", 20, "dead device offline")
        wait_until(lambda: status("/l1/m1/status").get("state") == "online", 20, "live device online")
        wait_until(lambda: status("/_gateway/gw-test/status").get("state") == "online", 20, "gateway birth")
        dead = status("/l1/dead/status")
        assert dead["consecutive_failures"] >= 1 and dead["last_success_ts"] is None and dead["last_error"]
        live = status("/l1/m1/status")
        assert live["last_success_ts"] and live["latency_ms"] is not None and live["polls_ok"] >= 1
        assert "outbox_dropped" in status("/_gateway/gw-test/status")
        # the gateway with a wrong password is refused, keeps its samples on disk, and says why
        wait_until(lambda: "mqtt_connect_refused" in (wrong / "gateway.log").read_text(), 20, "refusal logged")
        assert bad.poll() is None
        # SIGKILL: the broker publishes the Last Will, retained
        gw.send_signal(signal.SIGKILL)
        gw.wait(10)
        wait_until(lambda: status("/_gateway/gw-test/status").get("state") == "offline", 20, "last will")
        assert status("/_gateway/gw-test/status")["reason"] == "connection-lost"
        assert gw_topic in sub.status
    finally:
        for p in (gw, bad):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(20)
        sub.close()
        plcs.stop()
        broker.stop()
    assert bad.returncode == 0


def make_certs(d: Path) -> tuple[Path, Path, Path]:
    """A private CA and a server certificate for 127.0.0.1, with openssl."""
    openssl = find_binary(("openssl", "/usr/bin/openssl"))
    if not openssl:
        pytest.skip("openssl not installed")
    d.mkdir(parents=True, exist_ok=True)
    ca_key, ca, key, csr, cert = (d / n for n in ("ca.key", "ca.crt", "server.key", "server.csr", "server.crt"))
    ext = d / "ext.cnf"
    ext.write_text("subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n")
    for argv in (
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca, "-days", "2",
         "-subj", "/CN=test-ca"],
        [openssl, "req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=127.0.0.1"],
        [openssl, "x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "2", "-extfile", ext],
    ):
        subprocess.run([str(a) for a in argv], check=True, capture_output=True)
    return ca, cert, key


def test_tls_with_a_private_ca(tmp_path):
    binary = find_binary(("mosquitto", "/usr/sbin/mosquitto"))
    if not binary:
        pytest.skip("mosquitto not installed")
    ca, cert, key = make_certs(tmp_path / "pki")
    workdir = tmp_path / "mosq"
    workdir.mkdir()
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\ncafile {ca}\ncertfile {cert}\n"
                    f"keyfile {key}\nuser {getpass.getuser()}\nlog_type error\n")
    broker = Mosquitto("mosquitto", [binary, "-c", str(conf)], port, workdir)
    broker.start()
    plcs = Plcs(["m1"], tmp_path / "served.jsonl")
    sub = Subscriber(port, "tls-sub", tls_ca=ca)
    untrusting = tmp_path / "untrusting"
    untrusting.mkdir()
    # without the private CA the broker's certificate must be refused: no data goes out
    bad = start_gateway(_tls_config(untrusting, port, plcs.ports[0], "m2", None), untrusting / "gateway.log")
    gw = start_gateway(_tls_config(tmp_path, port, plcs.ports[0], "m1", ca), tmp_path / "gateway.log")
    try:
        wait_until(lambda: sub.count("m1") >= 3, 30, "samples over TLS")
        wait_until(lambda: "mqtt_connect_failed" in (untrusting / "gateway.log").read_text(), 20,
                   "the untrusting gateway's failure logged")
        assert sub.count("m2") == 0
    finally:
        for p in (gw, bad):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(20)
        sub.close()
        plcs.stop()
        broker.stop()


def _tls_config(d: Path, port: int, plc_port: int, name: str, ca: Path | None) -> Path:
    path = write_config(d, port, [plc_port], [name])
    config = yaml.safe_load(path.read_text())
    config["mqtt"]["url"] = f"mqtts://127.0.0.1:{port}"
    if ca is not None:
        config["mqtt"]["ca_file"] = str(ca)
    config["gateway"]["id"] = f"gw-{name}"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_full_outbox_drops_the_oldest_and_publishes_the_count(tmp_path):
    binary = find_binary(("mosquitto", "/usr/sbin/mosquitto"))
    if not binary:
        pytest.skip("mosquitto not installed")
    port = free_port()  # no broker there yet: the outbox fills up
    plcs = Plcs(["m1"], tmp_path / "served.jsonl")
    config = write_config(tmp_path, port, plcs.ports, ["m1"])
    data = yaml.safe_load(config.read_text())
    data["gateway"]["outbox"]["max_samples"] = 100
    data["gateway"]["devices"][0]["poll_interval_s"] = 0.05
    config.write_text(yaml.safe_dump(data))
    log = tmp_path / "gateway.log"
    gw = start_gateway(config, log)
    workdir = tmp_path / "mosq"
    workdir.mkdir()
    broker = None
    sub = None
    try:
        wait_until(lambda: "outbox_full" in log.read_text(), 30, "the outbox reaching its limit")
        conf = workdir / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n")
        broker = Mosquitto("mosquitto", [binary, "-c", str(conf)], port, workdir)
        broker.start()
        sub = Subscriber(port, "drop-watcher")

        def gateway_status() -> dict:
            with sub.lock:
                return next((v for k, v in sub.status.items() if "/_gateway/" in k), {})

        wait_until(lambda: gateway_status().get("outbox_dropped", 0) > 0, 30, "the drop count in the gateway status")
        wait_until(lambda: sub.count("m1") >= 50, 30, "the kept samples")
        def missing() -> set[int]:
            with sub.lock:
                got = set(sub.seqs["m1"])
            return set(range(1, max(got) + 1)) - got

        # every sample that never arrived was counted as dropped (a dropped row may also have
        # been in flight and arrived, so the count can be higher), and the oldest went first
        wait_until(lambda: 0 < len(missing()) <= gateway_status()["outbox_dropped"], 30,
                   "every missing sample counted")
        assert 1 in missing()
    finally:
        if gw.poll() is None:
            gw.send_signal(signal.SIGTERM)
            gw.wait(20)
        if sub is not None:
            sub.close()
        plcs.stop()
        if broker is not None:
            broker.stop()
