"""The shared broker connection's settings reach the paho client."""

import pytest

from mqttlink import MqttSettings, make_client


def test_reconnect_waits_are_capped_by_the_setting_not_paho_s_default():
    client = make_client(MqttSettings(reconnect_max_s=3), "gw-1")
    assert client._reconnect_max_delay == 3  # paho keeps the cap here; its default is 120
    assert make_client(MqttSettings(), "gw-1")._reconnect_max_delay == 5


def test_a_reconnect_cap_outside_its_range_is_refused():
    with pytest.raises(ValueError, match="reconnect_max_s"):
        MqttSettings(reconnect_max_s=0.1)
