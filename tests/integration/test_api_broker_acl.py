"""Broker access from the plant model, against a real mosquitto with the generated files.

``smartfactory broker-acl`` writes mosquitto's password_file and acl_file; a gateway of
tenant A must not be able to publish into tenant B, a collector reads everything, a
wrong password is refused, and no account can take over another client's id (the
``--conf-file`` settings bind every client id to its account).
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import paho.mqtt.client as mqtt
import pytest

from tests import servers
from tests.brokeraccounts import PW, seed_accounts
from tests.waiting import wait_until

pytestmark = pytest.mark.integration



@pytest.fixture
def acl_broker(tmp_path):
    config = seed_accounts(tmp_path)
    cli = [sys.executable, "-m", "cli.main"]
    env = dict(os.environ)
    pw_file, acl_file = tmp_path / "broker" / "passwd", tmp_path / "broker" / "acl"
    conf_file = tmp_path / "broker" / "auth.conf"
    out = subprocess.run([*cli, "broker-acl", "-c", str(config), "--password-file", str(pw_file),
                          "--acl-file", str(acl_file), "--conf-file", str(conf_file)],
                         check=True, env=env, capture_output=True, text=True)
    assert "3 accounts" in out.stdout
    try:
        server = servers.mosquitto(tmp_path / "mosquitto", auth_conf=conf_file)
    except servers.ServerMissing as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    yield server
    server.stop()


class Client:
    def __init__(self, port: int, user: str, password: str, client_id: str | None = None,
                 clean_session: bool = True) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.connected = threading.Event()
        self.disconnected = threading.Event()
        self.reason: mqtt.ReasonCode | None = None
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or f"test-{user}",
                             protocol=mqtt.MQTTv311, clean_session=clean_session)
        self.c.username_pw_set(user, password)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda *_: self.disconnected.set()
        self.c.on_message = lambda _c, _u, msg: self.received.append((msg.topic, msg.payload))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_connect(self, _c, _u, _flags, reason, _props) -> None:
        self.reason = reason
        self.connected.set()

    def stop(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def test_gateway_publishes_only_into_its_own_tenant(acl_broker):
    collector = Client(acl_broker.port, "collector-1", PW["collector-1"])
    gw_acme = Client(acl_broker.port, "gw-acme", PW["gw-acme"])
    try:
        for c in (collector, gw_acme):
            wait_until(c.connected.is_set, 10, "connect")
            assert not c.reason.is_failure, c.reason
        subscribed = threading.Event()
        collector.c.on_subscribe = lambda *_: subscribed.set()
        collector.c.subscribe("sf/v1/#", qos=1)
        wait_until(subscribed.is_set, 10, "subscription")

        gw_acme.c.publish("sf/v1/acme/s1/l1/m1/telemetry", b"own", qos=1).wait_for_publish(10)
        gw_acme.c.publish("sf/v1/bravo/s1/l1/m1/telemetry", b"intrusion", qos=1).wait_for_publish(10)
        gw_acme.c.publish("elsewhere/topic", b"outside", qos=1).wait_for_publish(10)
        # a marker after the attempts: once it arrives, anything the broker let through has arrived too
        gw_acme.c.publish("sf/v1/acme/s1/l1/m1/telemetry", b"marker", qos=1).wait_for_publish(10)
        wait_until(lambda: any(p == b"marker" for _, p in collector.received), 10, "marker")
        assert collector.received == [("sf/v1/acme/s1/l1/m1/telemetry", b"own"),
                                      ("sf/v1/acme/s1/l1/m1/telemetry", b"marker")]
    finally:
        collector.stop()
        gw_acme.stop()


def test_gateway_cannot_read_and_wrong_password_is_refused(acl_broker):
    intruder = Client(acl_broker.port, "gw-acme", "not-the-password")
    try:
        wait_until(intruder.connected.is_set, 10, "CONNACK")
        assert intruder.reason.is_failure
    finally:
        intruder.stop()
    nobody = Client(acl_broker.port, "unknown-user", "whatever-pw")
    try:
        wait_until(nobody.connected.is_set, 10, "CONNACK")
        assert nobody.reason.is_failure
    finally:
        nobody.stop()
    # gw-bravo may subscribe but is granted no reads: acme's data never reaches it
    spy, gw_acme = Client(acl_broker.port, "gw-bravo", PW["gw-bravo"]), Client(acl_broker.port, "gw-acme", PW["gw-acme"])
    collector = Client(acl_broker.port, "collector-1", PW["collector-1"])
    try:
        for c in (spy, gw_acme, collector):
            wait_until(c.connected.is_set, 10, "connect")
        done = threading.Event()
        collector.c.on_subscribe = lambda *_: done.set()
        spy.c.subscribe("sf/v1/#", qos=1)
        collector.c.subscribe("sf/v1/#", qos=1)
        wait_until(done.is_set, 10, "collector subscription")
        gw_acme.c.publish("sf/v1/acme/s1/l1/m1/telemetry", b"secret", qos=1).wait_for_publish(10)
        wait_until(lambda: collector.received, 10, "collector receives")
        # the spy subscribed before the publish; the collector has it, so the broker has routed it
        assert spy.received == []
    finally:
        for c in (spy, gw_acme, collector):
            c.stop()


def test_no_account_can_take_over_another_clients_id(acl_broker, tmp_path):
    """gw-acme connects again and again under the collector's client id (and the collector's default
    id), clean session, while gw-bravo publishes 100 QoS-1 messages: the collector is never
    disconnected and stores all 100; gw-acme's connects only ever replace gw-acme's own session."""
    from collector.service import Collector
    from collector.settings import CollectorSettings
    from mqttlink import MqttSettings
    from plant import MachineRef
    from tsstore.sqlite import SqliteStore
    from wire import encode_telemetry, telemetry_topic

    store = SqliteStore(tmp_path / "telemetry.db")
    link = MqttSettings(url=acl_broker.url, username="collector-1", password=PW["collector-1"])
    collector = Collector(CollectorSettings(batch_interval_s=0.1, metrics_port=None), link, store,
                          data_dir=tmp_path / "collector")
    disconnects = []
    on_disconnect = collector.client.on_disconnect
    collector.client.on_disconnect = lambda *a: (disconnects.append(a[3]), on_disconnect(*a))
    collector.start()
    attackers: list[Client] = []
    stop = threading.Event()

    def take_over() -> None:
        n = 0
        while not stop.is_set():
            for victim in ("collector-1", "smartfactory-collector"):
                a = Client(acl_broker.port, "gw-acme", PW["gw-acme"], client_id=victim, clean_session=True)
                attackers.append(a)
                a.connected.wait(10)
                a.stop()
                n += 1

    machine = MachineRef("bravo", "s1", "l1", "m1")
    t0 = 1_795_000_020_000
    gw_bravo = Client(acl_broker.port, "gw-bravo", PW["gw-bravo"])
    thief = threading.Thread(target=take_over, daemon=True)
    try:
        assert collector.subscribed.wait(10), "collector did not subscribe"
        wait_until(gw_bravo.connected.is_set, 10, "gw-bravo connects")
        thief.start()
        wait_until(lambda: len(attackers) >= 2, 20, "takeover attempts under way")
        for i in range(100):
            gw_bravo.c.publish(telemetry_topic(machine), encode_telemetry(machine, [(t0 + i * 1000, {"n": i})]),
                               qos=1).wait_for_publish(10)
        wait_until(lambda: collector.counters["written"] >= 100, 30, "100 of bravo's points stored")
        stop.set()
        thief.join(30)
        assert all(a.reason is not None and not a.reason.is_failure for a in attackers), "gw-acme's own login works"
        assert len(attackers) >= 2
        assert disconnects == [], f"the collector was pushed off the broker: {disconnects}"
        assert [ts for ts, _ in store.history(machine, "n", t0, t0 + 100_000, 0)] == [t0 + i * 1000 for i in range(100)]
    finally:
        stop.set()
        gw_bravo.stop()
        collector.stop()
        store.close()


def test_an_account_has_one_client_id_whatever_it_asks_for(acl_broker):
    """Two connections of gw-acme under different client ids are one session: the second ends the first."""
    first = Client(acl_broker.port, "gw-acme", PW["gw-acme"], client_id="gateway-one")
    try:
        wait_until(first.connected.is_set, 10, "first connect")
        assert not first.reason.is_failure
        second = Client(acl_broker.port, "gw-acme", PW["gw-acme"], client_id="gateway-two")
        try:
            wait_until(second.connected.is_set, 10, "second connect")
            wait_until(first.disconnected.is_set, 10, "the broker ends the first connection of the same account")
        finally:
            second.stop()
    finally:
        first.stop()
