"""The gateway's OPC UA client against a real asyncua server on loopback: values by
subscription equal what the server holds, namespaces found by URI, browse paths, bad
status as a per-tag error, a server restart survived, Sign&Encrypt with certificates made
here, and config errors that say what and where."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from asyncua import ua
from pydantic import ValidationError

from gateway.opcua import MAX_PUBLISH_S, OpcUaDevice, publishing_interval_ms
from gateway.settings import DeviceSettings
from simulators.opcua_server import NAMESPACE_URI, OpcUaMachine
from tests.integration.test_gateway_polling import Recorder, run, wait_for

pytestmark = pytest.mark.integration

SHELF: dict = {}


@pytest.fixture(scope="module", autouse=True)
def _address_space_cache(tmp_path_factory):
    """asyncua builds its standard address space in seconds; the first server keeps it in a shelf."""
    SHELF["path"] = tmp_path_factory.mktemp("opcua") / "standard-address-space"
    yield
    SHELF.clear()


LOT_GUID = uuid.UUID("7d3c4a52-1f7e-4b8e-9a55-0c1d2e3f4a5b")
NS = NAMESPACE_URI


def _machine(**kw) -> OpcUaMachine:
    values = {"Force": 812.5, "가압력 설정": 800.0, "Good Count": 10, "Running": True, "Lot": "L-0001", "Broken Sensor": 0.0}
    return OpcUaMachine("Press 1", values, namespaces_before=("urn:other:a", "urn:other:b"), guid_nodes={"Lot": LOT_GUID},
                        numeric_nodes={"Good Count": 1001}, unreadable=("Broken Sensor",), shelf_file=SHELF.get("path"), **kw)


def _tags(sim: OpcUaMachine) -> list[dict]:
    return [
        {"name": "force", "node_id": sim.node_id("Force"), "unit": "kN"},
        {"name": "setpoint", "node_id": "s=Press 1.가압력 설정", "namespace_uri": NS},
        {"name": "good_count", "node_id": sim.node_id("Good Count")},
        {"name": "lot", "node_id": sim.node_id("Lot")},
        {"name": "running", "browse_path": ["Objects", f"nsu={NS};Press 1", f"nsu={NS};Running"]},
        {"name": "broken", "node_id": sim.node_id("Broken Sensor")},
    ]


def _device(sim: OpcUaMachine, tags: list[dict] | None = None, **kw) -> DeviceSettings:
    return DeviceSettings.model_validate({"name": "press-ua", "line": "l1", "protocol": "opcua", "endpoint": sim.endpoint,
                                          "poll_interval_s": 0.2, "timeout_s": 1.0, "tags": tags or _tags(sim), **kw})


def _latest(rec: Recorder, name: str = "press-ua") -> dict:
    merged: dict = {}
    for _, values in rec.samples.get(name, []):
        merged.update(values)
    return merged


async def _run_device(device: DeviceSettings, rec: Recorder, **kw) -> tuple[OpcUaDevice, asyncio.Task]:
    runner = OpcUaDevice(device, rec.sink, rec.health, **kw)
    return runner, asyncio.create_task(runner.run())


async def _stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


EXPECTED = {"force": 812.5, "setpoint": 800.0, "good_count": 10, "lot": "L-0001", "running": True}


def test_values_arrive_by_subscription_and_follow_a_change_on_the_server():
    async def main():
        sim = _machine()
        await sim.start()
        rec = Recorder()
        runner, task = await _run_device(_device(sim), rec)
        try:
            await wait_for(lambda: _latest(rec).keys() >= EXPECTED.keys(), what="every readable tag")
            first = _latest(rec)
            await sim.set("Force", 901.25)
            await sim.set("Good Count", 11)
            await wait_for(lambda: _latest(rec).get("force") == 901.25 and _latest(rec).get("good_count") == 11,
                           what="the changed values")
            # a quiet every_poll tag is still sent every interval, as from a polled device
            await wait_for(lambda: sum(1 for _, v in rec.samples["press-ua"] if "setpoint" in v) >= 3,
                           what="the unchanged setpoint sent again")
            held = {k: await sim.read(v) for k, v in
                    (("force", "Force"), ("good_count", "Good Count"), ("setpoint", "가압력 설정"), ("lot", "Lot"))}
            return runner, rec, first, held
        finally:
            await _stop(task)
            await sim.stop()

    runner, rec, first, held = run(main())
    assert {k: first[k] for k in EXPECTED} == EXPECTED
    assert sim_index_was_moved(runner)
    latest = _latest(rec)
    assert {k: latest[k] for k in held} == held  # equals what the server holds now
    assert sorted(runner.subscribed) == sorted([*EXPECTED, "broken"])  # monitored items, not polls
    assert runner.polled == []
    assert "broken" not in latest  # a bad node never sends a value...
    assert runner.health.unreadable_tags == ["broken"]  # ...it is a per-tag error
    assert runner.health.online is True and runner.health.polls_failed == 0


def test_a_long_poll_interval_still_gets_changes_published_within_a_quarter_second():
    """The publishing interval is the poll interval only up to MAX_PUBLISH_S: a change is not held in
    the server's queue for a whole 5 s poll interval, and it still arrives by the subscription."""
    async def main():
        sim = _machine()
        await sim.start()
        rec = Recorder()
        runner, task = await _run_device(_device(sim, poll_interval_s=5.0), rec)
        try:
            await wait_for(lambda: _latest(rec).keys() >= EXPECTED.keys(), what="every readable tag")
            requested = runner.subscription.parameters.RequestedPublishingInterval
            await sim.set("Force", 955.5)
            await wait_for(lambda: _latest(rec).get("force") == 955.5, what="the changed force")
            return requested
        finally:
            await _stop(task)
            await sim.stop()

    requested = run(main())
    assert requested == publishing_interval_ms(5.0) == MAX_PUBLISH_S * 1000 == 250
    assert publishing_interval_ms(0.1) == 100  # a shorter poll interval is kept


def sim_index_was_moved(runner: OpcUaDevice) -> bool:
    """The machine's namespace is at index 4 on this server (two namespaces before it), so
    a client that took the first free index (2) would have read nothing."""
    return any(nid.NamespaceIndex == 4 for nid in runner._by_node)


def test_an_index_in_the_config_is_mapped_by_its_uri_when_the_server_numbers_otherwise():
    async def main():
        sim = _machine()
        await sim.start()
        assert sim.index == 4
        # a decoy in the namespace now at index 2, with the same string id and another value
        assert sim.server is not None
        decoy = await sim.server.nodes.objects.add_object(ua.NodeId("decoy", 2), ua.QualifiedName("decoy", 2))
        await decoy.add_variable(ua.NodeId("Press 1.Force", 2), ua.QualifiedName("Force", 2), -1.0)
        tags = [{"name": "force", "node_id": "ns=2;s=Press 1.Force"},
                {"name": "running", "browse_path": ["Objects", "2:Press 1", "2:Running"]}]
        device = _device(sim, tags, namespaces={2: NS})  # the config was written when the machine's was 2
        rec = Recorder()
        runner, task = await _run_device(device, rec)
        try:
            await wait_for(lambda: _latest(rec).keys() >= {"force", "running"}, what="both tags")
        finally:
            await _stop(task)
            await sim.stop()
        return rec

    rec = run(main())
    assert _latest(rec) == {"force": 812.5, "running": True}


def test_a_bad_node_and_a_missing_namespace_are_per_tag_errors_and_the_rest_flows():
    async def main():
        sim = _machine()
        await sim.start()
        tags = _tags(sim) + [
            {"name": "ghost", "node_id": "nsu=urn:nobody:here;s=Press 1.Force"},
            {"name": "nowhere", "browse_path": ["Objects", f"nsu={NS};Press 1", f"nsu={NS};No Such Tag"]},
            {"name": "unknown_id", "node_id": f"nsu={NS};s=Press 1.Not There"},
        ]
        rec = Recorder()
        runner, task = await _run_device(_device(sim, tags), rec)
        try:
            await wait_for(lambda: _latest(rec).keys() >= EXPECTED.keys()
                           and len(runner.health.unreadable_tags) == 4, what="values and the four bad tags")
            await sim.set("Force", 777.0)
            await wait_for(lambda: _latest(rec).get("force") == 777.0, what="a change after the bad tags")
        finally:
            await _stop(task)
            await sim.stop()
        return runner, rec

    runner, rec = run(main())
    assert runner.health.unreadable_tags == ["broken", "ghost", "nowhere", "unknown_id"]
    assert runner.health.online is True
    why = runner._bad
    assert why["broken"] == "BadNotReadable" and why["unknown_id"] == "BadNodeIdUnknown"
    assert "tags[6].node_id (ghost): namespace 'urn:nobody:here' is not on the server" in why["ghost"]
    assert f"4: {NS}" in why["ghost"]  # the server's namespaces, to fix the URI from
    assert "tags[7].browse_path (nowhere)" in why["nowhere"] and "BadNoMatch" in why["nowhere"]
    assert not {"broken", "ghost", "nowhere", "unknown_id"} & _latest(rec).keys()


def test_a_restarted_server_takes_the_device_offline_after_damping_and_subscriptions_come_back():
    async def main():
        sim = _machine()
        await sim.start()
        rec = Recorder()
        device = _device(sim, offline_after_failures=2, offline_after_s=30, max_backoff_s=0.5)
        runner, task = await _run_device(device, rec)
        try:
            await wait_for(lambda: runner.health.online is True and _latest(rec).get("force") == 812.5, what="online")
            await sim.stop()
            await wait_for(lambda: runner.health.online is False, what="offline after the server stopped")
            failures_at_offline = runner.health.consecutive_failures
            first_sub = runner.subscription
            sim.values["Force"] = 555.5  # the machine comes back with another value
            await sim.start()  # same port
            await wait_for(lambda: runner.health.online is True and _latest(rec).get("force") == 555.5,
                           what="online again with the new server's value")
            await sim.set("Force", 556.5)  # a change after the restart: the subscription is live again
            await wait_for(lambda: _latest(rec).get("force") == 556.5, what="a change after the restart")
            second_sub = runner.subscription
        finally:
            await _stop(task)
            await sim.stop()
        return runner, rec, failures_at_offline, first_sub, second_sub

    runner, rec, failures_at_offline, first_sub, second_sub = run(main())
    assert failures_at_offline >= 2  # damped: not offline on the first failure
    assert rec.status["press-ua"][0] == "online" and "offline" in rec.status["press-ua"]
    assert rec.status["press-ua"][-1] == "online"
    assert second_sub is not None and second_sub is not first_sub  # re-created on the new session
    assert sorted(runner.subscribed) == sorted([*EXPECTED, "broken"])


def test_a_server_that_refuses_subscriptions_is_polled():
    async def main():
        sim = _machine()
        await sim.start()
        assert sim.server is not None
        sim.server.iserver.max_subscriptions = 0  # answers BadTooManySubscriptions
        rec = Recorder()
        runner, task = await _run_device(_device(sim), rec)
        try:
            await wait_for(lambda: _latest(rec).keys() >= EXPECTED.keys(), what="every readable tag, polled")
            await sim.set("Force", 640.0)
            await wait_for(lambda: _latest(rec).get("force") == 640.0, what="a change, polled")
        finally:
            await _stop(task)
            await sim.stop()
        return runner, rec

    runner, rec = run(main())
    assert runner.subscribed == [] and len(runner.polled) == len(_tags(_machine()))
    assert runner.health.unreadable_tags == ["broken"] and runner.health.online is True
    assert {k: _latest(rec)[k] for k in EXPECTED if k != "force"} == {k: v for k, v in EXPECTED.items() if k != "force"}


def _certificate(tmp_path, name: str, uri: str, server: bool) -> tuple:
    from asyncua.crypto.cert_gen import dump_private_key_as_pem, generate_private_key, generate_self_signed_app_certificate
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key = generate_private_key()
    usage = [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
    cert = generate_self_signed_app_certificate(key, name, {}, [x509.UniformResourceIdentifier(uri), x509.DNSName("localhost")],
                                                usage, days=2)
    cert_path, key_path = tmp_path / f"{name}.der", tmp_path / f"{name}.pem"
    cert_path.write_bytes(cert.public_bytes(Encoding.DER))
    key_path.write_bytes(dump_private_key_as_pem(key))
    return cert_path, key_path, cert.public_bytes(Encoding.DER)


def test_sign_and_encrypt_with_certificates_and_a_server_that_trusts_only_the_gateway(tmp_path):
    server_cert, server_key, _ = _certificate(tmp_path, "sim", "urn:smartfactory:simulator:opcua", server=True)
    client_cert, client_key, client_der = _certificate(tmp_path, "gateway", "urn:smartfactory:gateway:test", server=False)
    stranger_cert, stranger_key, _ = _certificate(tmp_path, "stranger", "urn:someone:else", server=False)

    async def main():
        sim = _machine(certificate=server_cert, private_key=server_key, trusted=(client_der,), allow_none=False)
        await sim.start()
        security = {"mode": "sign_and_encrypt", "certificate": client_cert.name, "private_key": client_key.name,
                    "server_certificate": server_cert.name}  # relative: to the config's directory
        rec, other = Recorder(), Recorder()
        runner, task = await _run_device(_device(sim, security=security), rec, base_dir=tmp_path)
        stranger, task2 = await _run_device(_device(sim, security={**security, "certificate": str(stranger_cert),
                                                                    "private_key": str(stranger_key)},
                                                    offline_after_failures=1), other, base_dir=tmp_path)
        plain, task3 = await _run_device(_device(sim, offline_after_failures=1), Recorder())
        try:
            await wait_for(lambda: _latest(rec).keys() >= EXPECTED.keys(), what="values over Sign&Encrypt")
            await wait_for(lambda: stranger.health.online is False and plain.health.online is False,
                           what="the untrusted client and the unsecured one refused")
        finally:
            for t in (task, task2, task3):
                await _stop(t)
            await sim.stop()
        return runner, rec, stranger, other, plain

    runner, rec, stranger, other, plain = run(main())
    assert {k: _latest(rec)[k] for k in EXPECTED} == EXPECTED
    assert runner.client is None  # closed on stop
    assert other.samples == {} and "BadCertificateUntrusted" in (stranger.health.last_error or "")
    assert plain.health.polls_ok == 0 and plain.health.last_error


def test_sign_with_basic256sha256_reads_and_a_refused_certificate_names_the_config_key(tmp_path):
    """Mode Sign (signed, not encrypted) against a server that offers only Basic256Sha256 Sign;
    a certificate the server does not trust, a pinned server certificate that is not the
    server's, and a mode the server does not offer each fail with the key to fix."""
    server_cert, server_key, _ = _certificate(tmp_path, "sim", "urn:smartfactory:simulator:opcua", server=True)
    client_cert, client_key, client_der = _certificate(tmp_path, "gateway", "urn:smartfactory:gateway:test", server=False)
    stranger_cert, stranger_key, _ = _certificate(tmp_path, "stranger", "urn:someone:else", server=False)
    other_server, _, _ = _certificate(tmp_path, "other-server", "urn:someone:server", server=True)
    sign = {"mode": "sign", "policy": "Basic256Sha256", "certificate": client_cert.name, "private_key": client_key.name,
            "server_certificate": server_cert.name}
    wrong = {"untrusted": {**sign, "certificate": stranger_cert.name, "private_key": stranger_key.name},
             "not the server's": {**sign, "server_certificate": other_server.name},
             "mode not offered": {**sign, "mode": "sign_and_encrypt"}}

    async def main():
        sim = _machine(certificate=server_cert, private_key=server_key, trusted=(client_der,), allow_none=False,
                       secure_modes=("sign",))
        await sim.start()
        rec = Recorder()
        runner, task = await _run_device(_device(sim, security=sign), rec, base_dir=tmp_path)
        refused = {what: await _run_device(_device(sim, security=sec, offline_after_failures=1), Recorder(),
                                           base_dir=tmp_path) for what, sec in wrong.items()}
        try:
            await wait_for(lambda: _latest(rec).keys() >= EXPECTED.keys(), what="values over Sign")
            await wait_for(lambda: all(r.health.last_error for r, _ in refused.values()), timeout=60,
                           what="the three wrong settings refused")
        finally:
            for t in (task, *(t for _, t in refused.values())):
                await _stop(t)
            await sim.stop()
        return runner, rec, {what: r.health for what, (r, _) in refused.items()}

    runner, rec, refused = run(main())
    assert {k: _latest(rec)[k] for k in EXPECTED} == EXPECTED
    assert all(h.polls_ok == 0 and h.online is False for h in refused.values())
    untrusted = refused["untrusted"].last_error or ""
    assert untrusted.startswith("security.certificate (stranger.der): the server refused the gateway's certificate "
                                "(BadCertificateUntrusted)"), untrusted
    assert (refused["not the server's"].last_error or "").startswith(
        "security.server_certificate (other-server.der): not the certificate this server presents"), refused
    assert refused["mode not offered"].last_error == (
        "security.mode / security.policy: the server offers no Basic256Sha256 sign_and_encrypt endpoint; it offers "
        "Basic256Sha256 sign: set security.mode and security.policy to one of them")


def test_source_timestamps_are_the_servers():
    async def main():
        sim = _machine()
        await sim.start()
        assert sim.server is not None
        rec = Recorder()
        samples: list = []
        runner, task = await _run_device(_device(sim), rec)
        runner.sink = lambda device, ts, values: samples.append((ts, values))
        try:
            await wait_for(lambda: any("force" in v for _, v in samples), what="force")
            stamp = datetime.now(timezone.utc) - timedelta(minutes=5)
            node = sim._nodes["Force"]
            await node.write_value(ua.DataValue(ua.Variant(123.0, ua.VariantType.Double), SourceTimestamp=stamp))
            await wait_for(lambda: any(v.get("force") == 123.0 for _, v in samples), what="the stamped change")
        finally:
            await _stop(task)
            await sim.stop()
        return samples, stamp

    samples, stamp = run(main())
    ts = next(ts for ts, v in samples if v.get("force") == 123.0)
    sent_before = max(ts for ts, v in samples if v.get("force") == 812.5)
    # the server's stamp, unless a re-sent sample was already later (then just after it)
    assert ts == max(int(stamp.timestamp() * 1000), sent_before + 1)


@pytest.mark.parametrize("tag, message", [
    ({"name": "f", "node_id": "ns=2;x=Force"}, "tags.0.opcua\n  Value error, 'ns=2;x=Force' is not a node id: write nsu="),
    ({"name": "f", "node_id": "s=Force", "namespace_uri": "urn:a", "browse_path": ["Objects"]}, "one of them"),
    ({"name": "f", "node_id": "nsu=urn:a;g=not-a-guid"}, "a GUID node id is g="),
    ({"name": "f", "node_id": "nsu=urn:a;i=-3"}, "a numeric node id is i=<0..4294967295>"),
    ({"name": "f", "node_id": "nsu=urn:a;s=F", "namespace_uri": "urn:b"}, "give it once"),
    ({"name": "f", "node_id": "ns=2;s=Press 1.Force"}, "tags[0].node_id (f): namespace index 2 may mean another namespace"),
    ({"name": "f", "browse_path": ["Objects", "3:Press 1"]}, "tags[0].browse_path (f): namespace index 3"),
])
def test_config_errors_say_what_and_where(tag, message):
    with pytest.raises(ValidationError) as exc:
        DeviceSettings.model_validate({"name": "m", "line": "l1", "protocol": "opcua", "endpoint": "opc.tcp://127.0.0.1:4840",
                                       "tags": [tag]})
    assert message in str(exc.value)


def test_device_settings_errors_for_opcua():
    base = {"name": "m", "line": "l1", "protocol": "opcua", "tags": [{"name": "f", "node_id": "nsu=urn:a;s=F"}]}
    for extra, message in [({}, "needs 'endpoint'"), ({"endpoint": "http://x:1"}, "write opc.tcp://host:port"),
                           ({"endpoint": "opc.tcp://127.0.0.1:4840", "host": "127.0.0.1"}, "host: not used by an OPC UA device"),
                           ({"endpoint": "opc.tcp://127.0.0.1:4840", "security": {"mode": "sign_and_encrypt"}},
                            "needs certificate, private_key, server_certificate"),
                           ({"endpoint": "opc.tcp://127.0.0.1:4840", "tags": [{"name": "f", "table": "coil", "address": 0,
                                                                               "type": "bool"}]},
                            "written as a modbus tag")]:
        with pytest.raises(ValidationError, match=message.replace("(", r"\(")):
            DeviceSettings.model_validate({**base, **extra})
    with pytest.raises(ValidationError, match="OPC UA settings, but the device speaks modbus"):
        DeviceSettings.model_validate({"name": "m", "line": "l1", "host": "127.0.0.1", "endpoint": "opc.tcp://x:1",
                                       "tags": [{"name": "a", "table": "coil", "address": 0, "type": "bool"}]})


class _SimThread:
    """The simulator on an event loop of its own, so a CLI command can run asyncio.run beside it."""

    loops: dict[int, asyncio.AbstractEventLoop] = {}

    def __init__(self, sim: OpcUaMachine) -> None:
        import threading

        self.sim = sim
        self.loop = self.loops[id(sim)] = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> OpcUaMachine:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.sim.start(), self.loop).result(60)
        return self.sim

    def __exit__(self, *exc) -> None:
        asyncio.run_coroutine_threadsafe(self.sim.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_gateway_browse_lists_node_ids_by_uri_with_browse_paths_and_types_and_plan_resolves_offline(tmp_path):
    from click.testing import CliRunner

    from cli.main import cli

    with _SimThread(_machine()) as sim:
        result = CliRunner().invoke(cli, ["gateway", "browse", sim.endpoint])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"4: {NS}" in out
    assert f'node_id: "nsu={NS};s=Press 1.가압력 설정"' in out
    assert f"Objects/nsu={NS};Press 1/nsu={NS};가압력 설정  Double  = 800.0" in out
    assert f'node_id: "nsu={NS};g={LOT_GUID}"' in out and f'node_id: "nsu={NS};i=1001"' in out
    assert "Broken Sensor  Double  = 'BadNotReadable'" in out
    assert "ServerStatus" not in out  # the standard Server object is skipped

    config = tmp_path / "gw.yaml"
    config.write_text(
        "gateway:\n  id: gw1\n  tenant: t1\n  site: s1\n  devices:\n"
        "    - {name: press-ua, line: l1, protocol: opcua, endpoint: 'opc.tcp://127.0.0.1:4840', poll_interval_s: 1,\n"
        f"       namespaces: {{2: '{NS}'}},\n"
        "       tags: [{name: force, node_id: 'ns=2;s=Press 1.Force'},\n"
        "              {name: running, browse_path: [Objects, '2:Press 1', '2:Running'], poll_interval_s: 0.5,\n"
        "               report: on_change}]}\n", encoding="utf-8")
    plan = CliRunner().invoke(cli, ["gateway", "plan", "-c", str(config)])
    assert plan.exit_code == 0, plan.output
    assert "l1/press-ua (opc.tcp://127.0.0.1:4840, security none): 2 tags on monitored items" in plan.output
    assert f"force                nsu={NS};s=Press 1.Force" in plan.output
    assert f"running              browse path /Objects/nsu={NS};Press 1/nsu={NS};Running  (on_change)" in plan.output
    assert "sampled every 0.5 s: 1 items" in plan.output


def test_gateway_browse_explains_an_endpoint_with_nothing_behind_it():
    import socket

    from click.testing import CliRunner

    from cli.main import cli

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = CliRunner().invoke(cli, ["gateway", "browse", f"opc.tcp://127.0.0.1:{port}", "--timeout", "0.5"])
    assert result.exit_code == 1
    assert f"opc.tcp://127.0.0.1:{port}: cannot open a session: ConnectionRefusedError" in result.output


def test_gateway_run_publishes_an_opcua_machine_with_its_status_through_the_broker(tmp_path, mosquitto):
    """``smartfactory gateway run`` as a process: the values the server holds reach MQTT through the
    outbox, and the retained device status says online with the bad node as an unreadable tag."""
    import json
    import os
    import subprocess
    import sys
    import threading

    import paho.mqtt.client as mqtt
    import yaml

    from tests.waiting import wait_until
    from wire import decode_telemetry, status_subscription, telemetry_subscription

    got: dict = {}
    status: dict = {}
    lock = threading.Lock()

    def on_message(client, userdata, message):
        with lock:
            if message.topic.endswith("/status"):
                status[message.topic] = json.loads(message.payload)
                return
            _, telemetry = decode_telemetry(message.topic, message.payload)
            for s in telemetry.samples:
                got.update(s.values)

    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sub-opcua", protocol=mqtt.MQTTv311)
    sub.on_connect = lambda c, u, f, rc, p: c.subscribe([(telemetry_subscription("t1"), 1), (status_subscription("t1"), 1)])
    sub.on_message = on_message
    sub.connect_async("127.0.0.1", mosquitto.port)
    sub.loop_start()
    with _SimThread(_machine()) as sim:
        tags = _tags(sim)
        config = {"mqtt": {"url": f"mqtt://127.0.0.1:{mosquitto.port}", "keepalive_s": 5},
                  "gateway": {"id": "gw-ua", "tenant": "t1", "site": "s1", "status_interval_s": 1,
                              "outbox": {"path": str(tmp_path / "outbox.db")},
                              "devices": [{"name": "press-ua", "line": "l1", "protocol": "opcua", "endpoint": sim.endpoint,
                                           "poll_interval_s": 0.2, "status_interval_s": 1, "tags": tags}]}}
        path = tmp_path / "gateway.yaml"
        path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        with open(tmp_path / "gateway.log", "a") as log:
            proc = subprocess.Popen([sys.executable, "-m", "cli.main", "gateway", "run", "--config", str(path)],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    env=dict(os.environ, PYTHONUNBUFFERED="1"))
        try:
            def device_status():
                with lock:
                    return next((v for k, v in status.items() if k.endswith("/press-ua/status")), {})

            wait_until(lambda: got.keys() >= EXPECTED.keys() and device_status().get("unreadable_tags") == ["broken"],
                       timeout=60, what="telemetry and the device status")
            asyncio.run_coroutine_threadsafe(sim.set("Force", 933.0), _loop_of(sim)).result(10)
            wait_until(lambda: got.get("force") == 933.0, timeout=30, what="the change through the broker")
        finally:
            proc.terminate()
            proc.wait(30)
            sub.loop_stop()
            sub.disconnect()
    assert device_status()["state"] == "online"
    with lock:
        assert {k: got[k] for k in EXPECTED if k != "force"} == {k: v for k, v in EXPECTED.items() if k != "force"}
        assert "broken" not in got
    assert proc.returncode == 0, (tmp_path / "gateway.log").read_text()


def _loop_of(sim: OpcUaMachine) -> asyncio.AbstractEventLoop:
    return _SimThread.loops[id(sim)]


def test_a_reload_that_changes_an_opcua_device_closes_its_session_and_subscribes_the_new_tags(tmp_path, mosquitto):
    from gateway.service import Gateway
    from gateway.settings import GatewaySettings
    from mqttlink import MqttSettings

    async def main():
        sim = _machine()
        await sim.start()
        mqtt = MqttSettings.model_validate({"url": f"mqtt://127.0.0.1:{mosquitto.port}"})

        def settings(tags):
            return GatewaySettings.model_validate({
                "id": "gw-ua", "tenant": "t1", "site": "s1", "outbox": {"path": str(tmp_path / "outbox.db")},
                "devices": [{"name": "press-ua", "line": "l1", "protocol": "opcua", "endpoint": sim.endpoint,
                             "poll_interval_s": 0.2, "tags": tags}]})

        tags = _tags(sim)
        first = settings(tags[:2])
        nxt = settings(tags)
        gateway = Gateway(first, mqtt, tmp_path, reader=lambda: (nxt, mqtt))
        task = asyncio.create_task(gateway.run())
        try:
            await wait_for(lambda: gateway.pollers and gateway.pollers[0].health.online is True, what="first session")
            old = gateway.pollers[0]
            assert sorted(old.subscribed) == ["force", "setpoint"]
            assert await gateway.reload() is True
            new = gateway.pollers[0]
            await wait_for(lambda: new.health.online is True and len(new.subscribed) == len(tags), what="new session")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await sim.stop()
        return old, new

    old, new = run(main())
    assert old is not new and old.client is None  # the old session was closed, not left behind
    assert new.health.unreadable_tags == ["broken"]


def test_a_user_name_and_password_open_the_session_and_a_wrong_password_is_refused():
    async def main():
        sim = _machine(users={"gateway": "s3cret"})
        await sim.start()
        rec = Recorder()
        good, t1 = await _run_device(_device(sim, username="gateway", password="s3cret"), rec)
        bad, t2 = await _run_device(_device(sim, username="gateway", password="wrong", offline_after_failures=1), Recorder())
        try:
            await wait_for(lambda: _latest(rec).keys() >= EXPECTED.keys(), what="values with the right password")
            await wait_for(lambda: bad.health.online is False, what="the wrong password refused")
        finally:
            for t in (t1, t2):
                await _stop(t)
            await sim.stop()
        return good, bad

    good, bad = run(main())
    assert good.health.online is True and bad.health.polls_ok == 0
    assert (bad.health.last_error or "").startswith("BadUserAccessDenied")  # the server's status, by name
