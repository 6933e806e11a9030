"""``smartfactory broker`` (amqtt) requires the accounts ``broker-acl`` writes, like mosquitto: anonymous
and wrong passwords refused, a client id bound to its account, topics confined; ``--allow-anonymous``
(the demo's) accepts anyone. Real broker processes, real paho clients."""

from __future__ import annotations

import os
import subprocess
import threading

import paho.mqtt.client as mqtt
import pytest

from tests import servers
from tests.brokeraccounts import CLI, PW, seed_accounts
from tests.waiting import wait_until

pytestmark = pytest.mark.integration



class Broker:
    def __init__(self, tmp_path, *args: str) -> None:
        self.port = servers.free_port()
        self.log = tmp_path / f"broker-{self.port}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([*CLI, "broker", "--port", str(self.port), *args], stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        servers._wait_tcp(self.port, self.proc, self.log)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def broker_files(tmp_path):
    config = seed_accounts(tmp_path)
    pw, acl = tmp_path / "passwd", tmp_path / "acl"
    subprocess.run([*CLI, "broker-acl", "-c", str(config), "--password-file", str(pw), "--acl-file", str(acl)],
                   check=True, capture_output=True)
    return config, pw, acl


@pytest.fixture
def secured(tmp_path, broker_files):
    _config, pw, acl = broker_files
    b = Broker(tmp_path, "--password-file", str(pw), "--acl-file", str(acl))
    yield b
    b.stop()


class Client:
    def __init__(self, port: int, user: str | None, password: str | None, client_id: str | None = None,
                 clean_session: bool = True) -> None:
        self.connected, self.disconnected = threading.Event(), threading.Event()
        self.reason = None
        self.received: list[bytes] = []
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id or user or "anon-1",
                             protocol=mqtt.MQTTv311, clean_session=clean_session)
        if user:
            self.c.username_pw_set(user, password)
        self.c.on_connect = self._on_connect
        self.c.on_disconnect = lambda *_: self.disconnected.set()
        self.c.on_message = lambda _c, _u, m: self.received.append(m.payload)
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()

    def _on_connect(self, _c, _u, _f, reason, _p) -> None:
        self.reason = reason
        self.connected.set()

    def refused(self) -> bool:
        wait_until(lambda: self.connected.is_set() or self.disconnected.is_set(), 10, "CONNACK or close")
        return self.reason is None or self.reason.is_failure

    def stop(self) -> None:
        self.c.loop_stop()
        self.c.disconnect()


def test_anonymous_wrong_password_and_a_borrowed_client_id_are_refused(secured):
    cases = {"anonymous": (None, None, None), "wrong password": ("gw-acme", "not-the-password", None),
             "unknown account": ("nobody", "whatever-pw", None),
             "another client's id": ("gw-acme", PW["gw-acme"], "collector-1")}
    for what, (user, password, client_id) in cases.items():
        c = Client(secured.port, user, password, client_id)
        try:
            assert c.refused(), what
        finally:
            c.stop()
    ok = Client(secured.port, "gw-acme", PW["gw-acme"])
    try:
        assert not ok.refused()
    finally:
        ok.stop()


def test_topics_are_confined_and_a_bad_login_cannot_end_the_collectors_session(secured):
    collector = Client(secured.port, "collector-1", PW["collector-1"], clean_session=False)
    gw = Client(secured.port, "gw-acme", PW["gw-acme"])
    try:
        assert not collector.refused() and not gw.refused()
        subscribed = threading.Event()
        collector.c.on_subscribe = lambda *_: subscribed.set()
        collector.c.subscribe("sf/v1/+/+/+/+/telemetry", qos=1)
        wait_until(subscribed.is_set, 10, "subscription")
        for victim_clean in (True, False):  # wrong password under the collector's id, both session kinds
            thief = Client(secured.port, "collector-1", "guessed-password", "collector-1", clean_session=victim_clean)
            try:
                assert thief.refused()
            finally:
                thief.stop()
        gw.c.publish("sf/v1/acme/s1/l1/m1/telemetry", b"own", qos=1).wait_for_publish(10)
        gw.c.publish("sf/v1/bravo/s1/l1/m1/telemetry", b"intrusion", qos=1).wait_for_publish(10)
        gw.c.publish("sf/v1/acme/s1/l1/m1/telemetry", b"marker", qos=1).wait_for_publish(10)
        wait_until(lambda: b"marker" in collector.received, 10, "marker reaches the collector")
        assert collector.received == [b"own", b"marker"]
        assert not collector.disconnected.is_set(), "the collector was pushed off"
    finally:
        collector.stop()
        gw.stop()


def test_accounts_from_the_plant_database(tmp_path, broker_files):
    config, _pw, _acl = broker_files
    b = Broker(tmp_path, "-c", str(config))
    try:
        good = Client(b.port, "gw-bravo", PW["gw-bravo"])
        bad = Client(b.port, "gw-bravo", "wrong-password-1")
        try:
            assert not good.refused() and bad.refused()
        finally:
            good.stop()
            bad.stop()
    finally:
        b.stop()


def test_allow_anonymous_accepts_anyone_and_no_accounts_is_an_error(tmp_path):
    b = Broker(tmp_path, "--allow-anonymous")
    try:
        anon = Client(b.port, None, None)
        try:
            assert not anon.refused()
        finally:
            anon.stop()
    finally:
        b.stop()
    out = subprocess.run([*CLI, "broker", "--port", str(servers.free_port())], capture_output=True, text=True,
                         timeout=60, env=dict(os.environ), check=False)
    assert out.returncode == 2 and "--allow-anonymous" in out.stderr and "broker-acl" in out.stderr
