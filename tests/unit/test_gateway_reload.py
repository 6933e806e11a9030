"""What a SIGHUP reload refuses, without devices or a broker: a config that does not load, and
changes that only a restart can apply (the forwarder's session and the outbox depend on them)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.service import Gateway
from gateway.settings import GatewaySettings
from mqttlink import MqttSettings


def settings(tmp_path, **kw) -> GatewaySettings:
    body = {"id": "gw1", "tenant": "t1", "site": "s1", "outbox": {"path": str(tmp_path / "o.db")},
            "devices": [{"name": "m1", "line": "l1", "host": "127.0.0.1", "port": 1502,
                         "tags": [{"name": "a", "table": "holding_register", "address": 0}]}]}
    body.update(kw)
    return GatewaySettings.model_validate(body)


@pytest.mark.parametrize("change, key", [
    ({"id": "gw2"}, "gateway.id"),
    ({"site": "s2"}, "gateway.site"),
    ({"outbox": {"path": "elsewhere.db"}}, "gateway.outbox"),
])
def test_a_change_that_needs_a_restart_is_refused(tmp_path, caplog, change, key):
    mqtt = MqttSettings(url="mqtt://127.0.0.1:1")
    gw = Gateway(settings(tmp_path), mqtt, tmp_path, reader=lambda: (settings(tmp_path, **change), mqtt))
    try:
        assert asyncio.run(gw.reload()) is False
    finally:
        gw.outbox.close()
    assert f"changed {key}" in caplog.text and "need a restart" in caplog.text
    assert gw.settings.model_dump() == settings(tmp_path).model_dump()


def test_an_mqtt_change_is_refused_and_a_reader_error_is_logged_on_one_line(tmp_path, caplog):
    mqtt = MqttSettings(url="mqtt://127.0.0.1:1")
    gw = Gateway(settings(tmp_path), mqtt, tmp_path,
                 reader=lambda: (settings(tmp_path), MqttSettings(url="mqtt://127.0.0.1:2")))
    try:
        assert asyncio.run(gw.reload()) is False
        assert "changed mqtt" in caplog.text

        def broken():
            raise ValueError("gw.yaml: 2 problem(s):\n  gw.yaml:3: gateway.devices[0].port: bad\n  gw.yaml:9: other")

        gw.reader = broken
        assert asyncio.run(gw.reload()) is False
    finally:
        gw.outbox.close()
    refused = [r.getMessage() for r in caplog.records if "reload_refused" in r.getMessage()][-1]
    assert "\n" not in refused and "gateway.devices[0].port: bad" in refused and "gw.yaml:9: other" in refused
