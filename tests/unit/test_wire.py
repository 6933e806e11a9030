"""Unit tests of the wire contract: MQTT topics and telemetry payloads (v1)."""

from __future__ import annotations

import json
import math
import string
from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from paho.mqtt.client import topic_matches_sub

from plant import MachineRef
from wire import (
    MAX_PAYLOAD_BYTES,
    Telemetry,
    WireError,
    decode_telemetry,
    encode_telemetry,
    parse_telemetry_topic,
    telemetry_subscription,
    telemetry_topic,
)

MACHINE = MachineRef("acme", "plant-1", "line_2", "press.7")
TOPIC = "sf/v1/acme/plant-1/line_2/press.7/telemetry"
TS = 1_700_000_000_000  # 2023-11-14, epoch ms

# Bounds stated by the contract: 2000-01-01 (inclusive) .. 2100-01-01 (exclusive), in ms.
TS_MIN = int(datetime(2000, 1, 1, tzinfo=timezone.utc).timestamp()) * 1000
TS_MAX = int(datetime(2100, 1, 1, tzinfo=timezone.utc).timestamp()) * 1000


def body(**overrides: object) -> dict:
    message: dict = {"v": 1, "tenant": "acme", "samples": [{"ts": TS, "values": {"x": 1}}]}
    message.update(overrides)
    return message


def raw(message: object) -> bytes:
    return json.dumps(message).encode()


def reason_of(topic: str, payload: bytes) -> str:
    with pytest.raises(WireError) as info:
        decode_telemetry(topic, payload)
    return info.value.reason


# --------------------------------------------------------------------------- topics


def test_telemetry_topic_has_root_version_four_levels_and_suffix() -> None:
    assert telemetry_topic(MACHINE) == TOPIC


def test_parse_telemetry_topic_inverts_telemetry_topic() -> None:
    assert parse_telemetry_topic(telemetry_topic(MACHINE)) == MACHINE


@pytest.mark.parametrize(
    "topic",
    [
        "xx/v1/acme/plant-1/line_2/press.7/telemetry",  # wrong root
        "SF/v1/acme/plant-1/line_2/press.7/telemetry",  # root is case-sensitive
        "sf/v1/acme/plant-1/line_2/telemetry",  # 6 levels
        "sf/v1/acme/plant-1/line_2/press.7/extra/telemetry",  # 8 levels
        "sf/v1/acme/plant-1/line_2/press.7/status",  # wrong last level
        "sf/v1/acme/plant-1/line_2/press.7/telemetry/",  # trailing slash adds a level
        "/sf/v1/acme/plant-1/line_2/press.7/telemetry",  # leading slash adds a level
        "",
    ],
)
def test_parse_rejects_topics_of_the_wrong_shape(topic: str) -> None:
    with pytest.raises(ValueError, match="not a telemetry topic"):
        parse_telemetry_topic(topic)


@pytest.mark.parametrize("version", ["v2", "v0", "V1", "1"])
def test_parse_rejects_other_contract_versions(version: str) -> None:
    with pytest.raises(ValueError, match="contract version"):
        parse_telemetry_topic(f"sf/{version}/acme/plant-1/line_2/press.7/telemetry")


@pytest.mark.parametrize(
    "bad",
    [
        "",  # empty level
        "-press",  # must start with a letter or digit
        "_press",
        ".press",
        "press 7",  # space
        "press,7",  # line-protocol separator
        "press=7",
        "+",  # MQTT wildcard
        "#",
        "$SYS",  # broker-internal
        "a" * 65,  # longer than 64
        "prèss",  # non-ASCII letter
    ],
)
@pytest.mark.parametrize("level", range(4))
def test_parse_rejects_invalid_identifier_in_any_level(level: int, bad: str) -> None:
    levels = ["acme", "plant-1", "line_2", "press.7"]
    levels[level] = bad
    with pytest.raises(ValueError):
        parse_telemetry_topic("sf/v1/" + "/".join(levels) + "/telemetry")


def test_parse_accepts_identifier_of_exactly_64_characters() -> None:
    name = "m" * 64
    assert parse_telemetry_topic(f"sf/v1/acme/plant-1/line_2/{name}/telemetry").machine == name


def test_parse_rejects_identifier_with_trailing_newline() -> None:
    with pytest.raises(ValueError):
        parse_telemetry_topic("sf/v1/acme/plant-1/line_2/press.7\n/telemetry")


def test_telemetry_subscription_for_all_tenants() -> None:
    assert telemetry_subscription() == "sf/v1/+/+/+/+/telemetry"


def test_telemetry_subscription_for_one_tenant() -> None:
    assert telemetry_subscription("acme") == "sf/v1/acme/+/+/+/telemetry"


def test_telemetry_subscription_with_shared_group_uses_share_prefix() -> None:
    assert telemetry_subscription(shared_group="collectors") == "$share/collectors/sf/v1/+/+/+/+/telemetry"
    assert telemetry_subscription("acme", "collectors") == "$share/collectors/sf/v1/acme/+/+/+/telemetry"


def test_telemetry_subscription_matches_built_topics_by_mqtt_rules() -> None:
    other = MachineRef("globex", "s", "l", "m")
    assert topic_matches_sub(telemetry_subscription(), telemetry_topic(MACHINE))
    assert topic_matches_sub(telemetry_subscription(), telemetry_topic(other))
    assert topic_matches_sub(telemetry_subscription("acme"), telemetry_topic(MACHINE))
    assert not topic_matches_sub(telemetry_subscription("acme"), telemetry_topic(other))


# --------------------------------------------------------------------------- encode


def test_encode_produces_v1_json_with_tenant_and_samples() -> None:
    payload = encode_telemetry(MACHINE, [(TS, {"a": 1, "b": 2.5}), (TS + 1000, {"c": True, "d": "x"})])
    assert json.loads(payload) == {
        "v": 1,
        "tenant": "acme",
        "samples": [{"ts": TS, "values": {"a": 1, "b": 2.5}}, {"ts": TS + 1000, "values": {"c": True, "d": "x"}}],
    }


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_encode_refuses_non_finite_floats(bad: float) -> None:
    with pytest.raises(ValueError):
        encode_telemetry(MACHINE, [(TS, {"x": bad})])


def test_encode_decode_round_trip_keeps_values_and_types() -> None:
    samples = [(TS, {"flag": True, "off": False, "count": 42, "neg": -7, "force": 801.25, "mode": "auto"})]
    machine, message = decode_telemetry(TOPIC, encode_telemetry(MACHINE, samples))
    assert machine == MACHINE
    assert message.v == 1 and message.tenant == "acme"
    assert len(message.samples) == 1
    assert message.samples[0].ts == TS
    decoded = message.samples[0].values
    assert decoded == samples[0][1]
    assert {k: type(v) for k, v in decoded.items()} == {k: type(v) for k, v in samples[0][1].items()}


# --------------------------------------------------------------------------- decode: rejections


def test_wire_error_is_a_value_error_with_reason_and_detail() -> None:
    error = WireError("schema", "something")
    assert isinstance(error, ValueError)
    assert (error.reason, error.detail) == ("schema", "something")


def test_decode_refuses_payload_over_the_limit() -> None:
    assert reason_of(TOPIC, b" " * (MAX_PAYLOAD_BYTES + 1)) == "oversized"


def test_decode_checks_size_before_topic() -> None:
    assert reason_of("not/a/topic", b" " * (MAX_PAYLOAD_BYTES + 1)) == "oversized"


def test_decode_accepts_payload_of_exactly_the_limit() -> None:
    payload = raw(body())
    padded = payload + b" " * (MAX_PAYLOAD_BYTES - len(payload))  # trailing JSON whitespace
    assert len(padded) == MAX_PAYLOAD_BYTES
    assert decode_telemetry(TOPIC, padded)[1].samples[0].values == {"x": 1}


@pytest.mark.parametrize(
    "topic",
    ["sf/v2/acme/plant-1/line_2/press.7/telemetry", "sf/v1/acme/plant-1/line_2/telemetry", "sf/v1/acme/a b/l/m/telemetry"],
)
def test_decode_reports_bad_topic(topic: str) -> None:
    assert reason_of(topic, raw(body())) == "topic"


@pytest.mark.parametrize(
    "payload",
    [b"", b"{", b"not json", b'{"v":1,', b"\xff\xfe\x00", b"[]", b"null", b"1", b'"text"'],
)
def test_decode_reports_invalid_json_as_schema(payload: bytes) -> None:
    assert reason_of(TOPIC, payload) == "schema"


@pytest.mark.parametrize("field", ["v", "tenant", "samples"])
def test_decode_reports_missing_top_level_field(field: str) -> None:
    message = body()
    del message[field]
    assert reason_of(TOPIC, raw(message)) == "schema"


@pytest.mark.parametrize("field", ["ts", "values"])
def test_decode_reports_missing_sample_field(field: str) -> None:
    sample = {"ts": TS, "values": {"x": 1}}
    del sample[field]
    assert reason_of(TOPIC, raw(body(samples=[sample]))) == "schema"


def test_decode_reports_extra_top_level_field() -> None:
    assert reason_of(TOPIC, raw(body(machine="press.7"))) == "schema"


def test_decode_reports_extra_sample_field() -> None:
    assert reason_of(TOPIC, raw(body(samples=[{"ts": TS, "values": {"x": 1}, "quality": "good"}]))) == "schema"


@pytest.mark.parametrize("version", [2, 0, "1", 1.5, None])
def test_decode_reports_wrong_version(version: object) -> None:
    assert reason_of(TOPIC, raw(body(v=version))) == "schema"


@pytest.mark.parametrize("version", [True, 1.0])
def test_decode_reports_version_that_is_not_the_integer_one(version: object) -> None:
    assert reason_of(TOPIC, raw(body(v=version))) == "schema"


def test_decode_reports_empty_samples() -> None:
    assert reason_of(TOPIC, raw(body(samples=[]))) == "schema"


def test_decode_reports_empty_values() -> None:
    assert reason_of(TOPIC, raw(body(samples=[{"ts": TS, "values": {}}]))) == "schema"


def test_decode_reports_timestamp_in_seconds() -> None:
    assert reason_of(TOPIC, raw(body(samples=[{"ts": TS // 1000, "values": {"x": 1}}]))) == "schema"


def test_decode_reports_timestamp_in_microseconds() -> None:
    assert reason_of(TOPIC, raw(body(samples=[{"ts": TS * 1000, "values": {"x": 1}}]))) == "schema"


@pytest.mark.parametrize("ts", [TS_MIN, TS_MAX - 1])
def test_decode_accepts_timestamps_at_the_bounds(ts: int) -> None:
    assert decode_telemetry(TOPIC, raw(body(samples=[{"ts": ts, "values": {"x": 1}}])))[1].samples[0].ts == ts


@pytest.mark.parametrize("ts", [TS_MIN - 1, TS_MAX])
def test_decode_reports_timestamps_just_outside_the_bounds(ts: int) -> None:
    assert reason_of(TOPIC, raw(body(samples=[{"ts": ts, "values": {"x": 1}}]))) == "schema"


@pytest.mark.parametrize("ts", [float(TS), str(TS), True, None])
def test_decode_reports_non_integer_timestamp(ts: object) -> None:
    assert reason_of(TOPIC, raw(body(samples=[{"ts": ts, "values": {"x": 1}}]))) == "schema"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400"])
def test_decode_reports_non_finite_numbers(literal: bytes) -> None:
    payload = b'{"v":1,"tenant":"acme","samples":[{"ts":%d,"values":{"x":%s}}]}' % (TS, literal)
    assert reason_of(TOPIC, payload) == "schema"


def test_decode_accepts_string_of_256_characters() -> None:
    text = "s" * 256
    values = decode_telemetry(TOPIC, raw(body(samples=[{"ts": TS, "values": {"x": text}}])))[1].samples[0].values
    assert values == {"x": text}


def test_decode_reports_string_longer_than_256_characters() -> None:
    assert reason_of(TOPIC, raw(body(samples=[{"ts": TS, "values": {"x": "s" * 257}}]))) == "schema"


@pytest.mark.parametrize("value", [None, [1], {"a": 1}])
def test_decode_reports_non_scalar_values(value: object) -> None:
    assert reason_of(TOPIC, raw(body(samples=[{"ts": TS, "values": {"x": value}}]))) == "schema"


@pytest.mark.parametrize("key", ["", "bad key", "-x", "a/b", "a,b", "k" * 65])
def test_decode_reports_value_names_that_are_not_identifiers(key: str) -> None:
    assert reason_of(TOPIC, raw(body(samples=[{"ts": TS, "values": {key: 1}}]))) == "schema"


@pytest.mark.parametrize("tenant", ["", "bad tenant", "+"])
def test_decode_reports_payload_tenant_that_is_not_an_identifier(tenant: str) -> None:
    assert reason_of(TOPIC, raw(body(tenant=tenant))) == "schema"


def test_decode_keeps_true_as_bool_not_one() -> None:
    values = decode_telemetry(TOPIC, b'{"v":1,"tenant":"acme","samples":[{"ts":%d,"values":{"a":true,"b":false}}]}' % TS)[
        1
    ].samples[0].values
    assert values["a"] is True
    assert values["b"] is False


def test_decode_keeps_integer_as_int_not_bool_or_float() -> None:
    values = decode_telemetry(TOPIC, b'{"v":1,"tenant":"acme","samples":[{"ts":%d,"values":{"a":1,"b":0,"c":7}}]}' % TS)[
        1
    ].samples[0].values
    assert [type(values[k]) for k in "abc"] == [int, int, int]
    assert values == {"a": 1, "b": 0, "c": 7}


def test_decode_keeps_float_with_fraction_zero_as_float() -> None:
    values = decode_telemetry(TOPIC, b'{"v":1,"tenant":"acme","samples":[{"ts":%d,"values":{"a":1.0}}]}' % TS)[
        1
    ].samples[0].values
    assert type(values["a"]) is float and values["a"] == 1.0


def test_decode_reports_tenant_mismatch_between_topic_and_payload() -> None:
    assert reason_of(TOPIC, raw(body(tenant="globex"))) == "tenant_mismatch"


def test_decode_returns_machine_of_the_topic_and_message_model() -> None:
    machine, message = decode_telemetry(TOPIC, raw(body()))
    assert machine == MACHINE
    assert isinstance(message, Telemetry)


# --------------------------------------------------------------------------- properties

_FIRST = string.ascii_letters + string.digits
identifiers = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(_FIRST),
    st.text(alphabet=_FIRST + "_.-", max_size=63),
)
scalar_values = st.one_of(
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=256),
)
samples_strategy = st.lists(
    st.tuples(st.integers(TS_MIN, TS_MAX - 1), st.dictionaries(identifiers, scalar_values, min_size=1, max_size=8)),
    min_size=1,
    max_size=5,
)
machines = st.builds(MachineRef, identifiers, identifiers, identifiers, identifiers)


@settings(max_examples=150, deadline=None, database=None)
@given(machine=machines, samples=samples_strategy)
def test_property_encode_decode_round_trip(machine: MachineRef, samples: list) -> None:
    topic = telemetry_topic(machine)
    decoded_machine, message = decode_telemetry(topic, encode_telemetry(machine, samples))
    assert decoded_machine == machine
    assert message.tenant == machine.tenant
    assert [s.ts for s in message.samples] == [ts for ts, _ in samples]
    for sample, (_, values) in zip(message.samples, samples):
        assert sample.values == values
        # equality alone would let True == 1 == 1.0 through: the type must survive too
        assert {k: type(v) for k, v in sample.values.items()} == {k: type(v) for k, v in values.items()}


@settings(max_examples=150, deadline=None, database=None)
@given(payload=st.binary(max_size=512), topic=st.one_of(st.just(TOPIC), st.text(max_size=80)))
def test_property_decode_of_arbitrary_bytes_raises_only_wire_error(payload: bytes, topic: str) -> None:
    try:
        decode_telemetry(topic, payload)
    except WireError as exc:
        assert exc.reason in {"oversized", "topic", "schema", "tenant_mismatch"}


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # includes NaN and +-inf, dumped as NaN/Infinity literals
    st.text(max_size=300),
)
json_keys = st.one_of(st.sampled_from(["v", "tenant", "samples", "ts", "values", "x"]), identifiers, st.text(max_size=10))
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(json_keys, children, max_size=4),
    max_leaves=20,
)
near_valid_samples = st.lists(
    st.fixed_dictionaries(
        {"ts": st.one_of(st.integers(), st.integers(TS_MIN, TS_MAX), json_values)},
        optional={"values": st.one_of(st.dictionaries(json_keys, json_values, max_size=4), json_values)},
    ),
    max_size=3,
)
json_messages = st.one_of(
    json_values,
    st.fixed_dictionaries(
        {},
        optional={
            "v": st.one_of(st.just(1), json_values),
            "tenant": st.one_of(st.just("acme"), identifiers, json_values),
            "samples": st.one_of(near_valid_samples, json_values),
            "extra": json_values,
        },
    ),
)


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=json_messages)
def test_property_decode_of_arbitrary_json_raises_only_wire_error(message: object) -> None:
    payload = json.dumps(message, allow_nan=True).encode()
    try:
        machine, decoded = decode_telemetry(TOPIC, payload)
    except WireError as exc:
        assert exc.reason in {"schema", "tenant_mismatch"}
    else:
        # anything accepted really is a valid v1 message of the topic's tenant
        assert machine == MACHINE and decoded.v == 1 and decoded.tenant == "acme" and decoded.samples
