"""Gateway config: Modicon addressing, transports, per-tag reporting options, and the errors a
field engineer sees (file, key path, what to change)."""

from __future__ import annotations

import textwrap

import pytest
from pydantic import ValidationError

from cli.config import ConfigError, load_config
from gateway.settings import DeviceSettings, GatewaySettings, PolledTag, modicon_to_wire
from registermap import Table, Tag
from simulators.press import PRESS_TAGS


def device(**kw):
    base = {"name": "m1", "line": "l1", "host": "127.0.0.1", "tags": [{"name": "a", "table": "holding_register", "address": 0}]}
    return DeviceSettings.model_validate({**base, **kw})


@pytest.mark.parametrize("ref, table, address", [
    (1, Table.coil, 0), (9999, Table.coil, 9998), (10001, Table.discrete_input, 0),
    (30001, Table.input_register, 0), (40001, Table.holding_register, 0), (49999, Table.holding_register, 9998),
    (400001, Table.holding_register, 0), (465536, Table.holding_register, 65535), (300010, Table.input_register, 9),
])
def test_modicon_references(ref, table, address):
    assert modicon_to_wire(ref) == (table, address)


@pytest.mark.parametrize("ref", [0, 20001, 40000, 50001, 465537, 200001])
def test_bad_modicon_references(ref):
    with pytest.raises(ValueError):
        modicon_to_wire(ref)


def test_modicon_device_gets_wire_addresses_and_tables():
    d = device(addressing="modicon", tags=[
        {"name": "speed", "address": 40003, "type": "float32"},
        {"name": "run", "address": 1},
        {"name": "temp", "address": 30001, "table": "input_register"},
    ])
    assert [(t.table, t.address) for t in d.tags] == [
        (Table.holding_register, 2), (Table.coil, 0), (Table.input_register, 0)]


def test_zero_based_is_the_default_and_rejects_missing_table():
    with pytest.raises(ValidationError, match="table"):
        device(tags=[{"name": "x", "address": 40001}])


def test_modicon_mismatched_table_is_explained():
    with pytest.raises(ValidationError, match=r"tags\[0\]\.table .*40001 is a holding_register"):
        device(addressing="modicon", tags=[{"name": "x", "address": 40001, "table": "input_register"}])


def test_config_error_names_file_line_and_key_path(tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text(textwrap.dedent("""\
        gateway:
          id: gw1
          tenant: t
          site: s
          devices:
            - name: m1
              line: l1
              host: 127.0.0.1
              addressing: modicon
              tags:
                - {name: ok, address: 40001}
                - {name: bad, address: 40000}
    """))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    assert str(path) in text and "gateway.devices[0]" in text and "tags[1].address (bad)" in text
    assert "40001" in text  # says what a valid reference looks like


def test_transports_need_their_connection_settings():
    with pytest.raises(ValidationError, match="needs 'serial'"):
        device(transport="rtu", host=None)
    with pytest.raises(ValidationError, match="needs 'host'"):
        device(host=None)
    d = device(transport="rtu", host=None, serial={"port": "/dev/ttyUSB0", "baudrate": 9600})
    assert d.link == ("rtu", "/dev/ttyUSB0")


def test_units_on_one_bus_must_differ_and_share_line_settings():
    tags = [{"name": "a", "table": "holding_register", "address": 0}]
    base = {"id": "g", "tenant": "t", "site": "s"}
    with pytest.raises(ValidationError, match="share unit id 1"):
        GatewaySettings.model_validate({**base, "devices": [
            {"name": n, "line": "l", "transport": "rtu_over_tcp", "host": "h", "tags": tags} for n in ("a", "b")]})
    with pytest.raises(ValidationError, match="disagree"):
        GatewaySettings.model_validate({**base, "devices": [
            {"name": "a", "line": "l", "transport": "rtu", "unit_id": 1, "serial": {"port": "/dev/x"}, "tags": tags},
            {"name": "b", "line": "l", "transport": "rtu", "unit_id": 2, "serial": {"port": "/dev/x", "baudrate": 9600},
             "tags": tags},
        ]})


def test_reporting_options_need_on_change():
    with pytest.raises(ValidationError, match="need report: on_change"):
        PolledTag(name="a", table="holding_register", address=0, deadband=1)
    with pytest.raises(ValidationError, match="either"):
        PolledTag(name="a", table="holding_register", address=0, report="on_change", deadband=1, deadband_percent=2)


def test_polled_tag_with_default_options_equals_the_plain_tag():
    plain = PRESS_TAGS[3]
    polled = PolledTag.model_validate(plain.model_dump())
    assert polled == plain and plain == polled
    assert PolledTag.model_validate({**plain.model_dump(), "poll_interval_s": 5}) != plain
    assert isinstance(polled, Tag)


def test_per_tag_interval_defaults_to_the_devices():
    d = device(poll_interval_s=2, tags=[
        {"name": "a", "table": "holding_register", "address": 0},
        {"name": "b", "table": "holding_register", "address": 1, "poll_interval_s": 10},
    ])
    assert [d.interval_of(t) for t in d.tags] == [2, 10]
