"""Unit tests of register maps: tag validation and value <-> register conversion."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from registermap import BIT_TABLES, ByteOrder, DataType, Table, Tag, decode, encode, register_count

ABCD, CDAB, BADC, DCBA = ByteOrder.ABCD, ByteOrder.CDAB, ByteOrder.BADC, ByteOrder.DCBA
HR = Table.holding_register


def tag(type_: str = "uint16", order: ByteOrder = ABCD, **kw: object) -> Tag:
    return Tag(name="t", table=kw.pop("table", HR), address=kw.pop("address", 0), type=type_, order=order, **kw)


def registers_in_order(big_endian: bytes, order: ByteOrder) -> list[int]:
    """Reference from the ByteOrder definition: the value's big-endian bytes A B C D ...
    are carried as words AB CD ...; BADC swaps the bytes of each word, CDAB reverses the
    word order, DCBA does both (i.e. the bytes fully reversed)."""
    words = [big_endian[i : i + 2] for i in range(0, len(big_endian), 2)]
    if order in (BADC, DCBA):
        words = [w[::-1] for w in words]
    if order in (CDAB, DCBA):
        words = words[::-1]
    return [int.from_bytes(w, "big") for w in words]


# --------------------------------------------------------------------------- byte orders: known vectors

UINT32_VECTORS = {
    ABCD: [0x1122, 0x3344],
    CDAB: [0x3344, 0x1122],
    BADC: [0x2211, 0x4433],
    DCBA: [0x4433, 0x2211],
}

UINT64_VECTORS = {  # 0x1122334455667788
    ABCD: [0x1122, 0x3344, 0x5566, 0x7788],
    CDAB: [0x7788, 0x5566, 0x3344, 0x1122],
    BADC: [0x2211, 0x4433, 0x6655, 0x8877],
    DCBA: [0x8877, 0x6655, 0x4433, 0x2211],
}


@pytest.mark.parametrize("order", list(ByteOrder))
def test_uint32_0x11223344_encodes_to_known_registers(order: ByteOrder) -> None:
    assert encode(tag("uint32", order), 0x11223344) == UINT32_VECTORS[order]


@pytest.mark.parametrize("order", list(ByteOrder))
def test_uint32_known_registers_decode_to_0x11223344(order: ByteOrder) -> None:
    assert decode(tag("uint32", order), UINT32_VECTORS[order]) == 0x11223344


@pytest.mark.parametrize("order", list(ByteOrder))
def test_uint64_encodes_to_known_registers(order: ByteOrder) -> None:
    assert encode(tag("uint64", order), 0x1122334455667788) == UINT64_VECTORS[order]


@pytest.mark.parametrize("order", list(ByteOrder))
def test_uint64_known_registers_decode(order: ByteOrder) -> None:
    assert decode(tag("uint64", order), UINT64_VECTORS[order]) == 0x1122334455667788


@pytest.mark.parametrize("order", list(ByteOrder))
def test_int64_negative_matches_struct(order: ByteOrder) -> None:
    value = -0x0102030405060708
    expected = registers_in_order(struct.pack(">q", value), order)
    assert encode(tag("int64", order), value) == expected
    assert decode(tag("int64", order), expected) == value


@pytest.mark.parametrize("order", list(ByteOrder))
@pytest.mark.parametrize("value", [1.0, -123.456, 801.25, 3.4e38, 1e-40])
def test_float32_registers_follow_struct_pack_bytes(order: ByteOrder, value: float) -> None:
    a, b, c, d = struct.pack(">f", value)
    expected = {
        ABCD: [a << 8 | b, c << 8 | d],
        CDAB: [c << 8 | d, a << 8 | b],
        BADC: [b << 8 | a, d << 8 | c],
        DCBA: [d << 8 | c, b << 8 | a],
    }[order]
    assert encode(tag("float32", order), value) == expected
    assert decode(tag("float32", order), expected) == struct.unpack(">f", struct.pack(">f", value))[0]


def test_float32_one_is_0x3f800000_in_abcd() -> None:
    assert encode(tag("float32"), 1.0) == [0x3F80, 0x0000]


@pytest.mark.parametrize("order", list(ByteOrder))
def test_float64_registers_follow_struct_pack_bytes(order: ByteOrder) -> None:
    value = -2.5e-300
    expected = registers_in_order(struct.pack(">d", value), order)
    assert encode(tag("float64", order), value) == expected
    assert decode(tag("float64", order), expected) == value


# --------------------------------------------------------------------------- 16-bit integers


@pytest.mark.parametrize(("value", "register"), [(-1, 0xFFFF), (-2, 0xFFFE), (-32768, 0x8000), (32767, 0x7FFF)])
def test_int16_twos_complement(value: int, register: int) -> None:
    assert encode(tag("int16"), value) == [register]
    assert decode(tag("int16"), [register]) == value


def test_int16_negative_with_swapped_bytes() -> None:
    assert encode(tag("int16", BADC), -2) == [0xFEFF]
    assert decode(tag("int16", BADC), [0xFEFF]) == -2


def test_word_swap_alone_does_not_change_a_one_register_value() -> None:
    assert encode(tag("uint16", CDAB), 0x1234) == [0x1234]
    assert decode(tag("uint16", CDAB), [0x1234]) == 0x1234


def test_uint16_65535_is_all_ones() -> None:
    assert encode(tag("uint16"), 65535) == [0xFFFF]
    assert decode(tag("uint16"), [0xFFFF]) == 65535


def test_uint16_register_0x8000_decodes_unsigned() -> None:
    assert decode(tag("uint16"), [0x8000]) == 32768


@pytest.mark.parametrize(("type_", "value"), [("uint16", 65536), ("uint16", -1), ("int16", 32768), ("uint32", 2**32)])
def test_out_of_range_integer_is_refused_not_wrapped(type_: str, value: int) -> None:
    with pytest.raises((struct.error, ValueError, OverflowError)):
        encode(tag(type_), value)


def test_unscaled_integer_decodes_as_exact_int() -> None:
    value = decode(tag("uint64"), [0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF])
    assert type(value) is int and value == 2**64 - 1


def test_float_value_for_integer_tag_is_rounded() -> None:
    assert encode(tag("uint16"), 41.6) == [42]


# --------------------------------------------------------------------------- scale and offset


def test_scaled_decode_is_raw_times_scale_plus_offset() -> None:
    t = tag("uint16", scale=0.1, offset=-40.0)
    assert decode(t, [650]) == pytest.approx(650 * 0.1 - 40.0)
    assert isinstance(decode(t, [650]), float)


def test_scaled_encode_inverts_decode() -> None:
    t = tag("uint16", scale=0.1, offset=-40.0)
    assert encode(t, 25.0) == [650]  # (25 - -40) / 0.1


def test_scaled_int16_negative_raw() -> None:
    t = tag("int16", scale=0.5, offset=0.0)
    assert decode(t, [0xFFF6]) == -5.0  # raw -10
    assert encode(t, -5.0) == [0xFFF6]


def test_offset_only_makes_value_float() -> None:
    t = tag("uint16", offset=1000.0)
    assert decode(t, [5]) == 1005.0 and isinstance(decode(t, [5]), float)
    assert encode(t, 1005.0) == [5]


def test_scaled_float32_applies_scale() -> None:
    t = tag("float32", scale=2.0, offset=1.0)
    raw = registers_in_order(struct.pack(">f", 10.0), ABCD)
    assert decode(t, raw) == 21.0
    assert encode(t, 21.0) == raw


def test_tag_with_default_scale_and_offset_is_not_scaled() -> None:
    assert not tag().scaled
    assert tag(scale=2.0).scaled and tag(offset=1.0).scaled


# --------------------------------------------------------------------------- bools


@pytest.mark.parametrize("bit", [0, 5, 15])
def test_bool_bit_in_register(bit: int) -> None:
    t = tag("bool", bit=bit)
    assert decode(t, [1 << bit]) is True
    assert decode(t, [0xFFFF & ~(1 << bit)]) is False
    assert decode(t, [0xFFFF]) is True
    assert decode(t, [0]) is False


@pytest.mark.parametrize("bit", [0, 7, 15])
def test_bool_bit_encodes_only_that_bit(bit: int) -> None:
    t = tag("bool", bit=bit)
    assert encode(t, True) == [1 << bit]
    assert encode(t, False) == [0]


@pytest.mark.parametrize("table", sorted(BIT_TABLES))
def test_coil_and_discrete_input_bool(table: Table) -> None:
    t = tag("bool", table=table)
    assert register_count(t) == 1
    assert decode(t, [True]) is True and decode(t, [False]) is False
    assert decode(t, [1]) is True and decode(t, [0]) is False
    assert encode(t, True) == [1] and encode(t, False) == [0]


# --------------------------------------------------------------------------- strings


def test_string_is_nul_padded_to_its_length() -> None:
    t = tag("string", length=4)
    assert encode(t, "PRESS") == list(struct.unpack(">4H", b"PRESS\x00\x00\x00"))
    assert decode(t, encode(t, "PRESS")) == "PRESS"


def test_string_with_byte_swap_swaps_each_word() -> None:
    t = tag("string", BADC, length=3)
    assert encode(t, "ABCDE") == [ord("B") << 8 | ord("A"), ord("D") << 8 | ord("C"), 0x00 << 8 | ord("E")]
    assert decode(t, encode(t, "ABCDE")) == "ABCDE"


def test_string_too_long_is_truncated_to_its_registers() -> None:
    t = tag("string", length=2)
    assert decode(t, encode(t, "ABCDEFGH")) == "ABCD"


def test_string_decode_stops_at_first_nul() -> None:
    t = tag("string", length=4)
    assert decode(t, list(struct.unpack(">4H", b"AB\x00CDEFG"))) == "AB"


def test_string_decode_strips_trailing_space_padding() -> None:
    t = tag("string", length=4)
    assert decode(t, list(struct.unpack(">4H", b"AB      "))) == "AB"


def test_string_of_all_nul_decodes_empty() -> None:
    assert decode(tag("string", length=3), [0, 0, 0]) == ""


def test_string_utf8_round_trip() -> None:
    t = tag("string", length=4)
    assert decode(t, encode(t, "Prüf")) == "Prüf"  # 5 UTF-8 bytes fit in 8


@pytest.mark.parametrize("order", list(ByteOrder))
def test_string_round_trip_in_every_order(order: ByteOrder) -> None:
    t = tag("string", order, length=5)
    assert decode(t, encode(t, "LINE-7")) == "LINE-7"


# --------------------------------------------------------------------------- register_count / width


@pytest.mark.parametrize(
    ("type_", "count"),
    [("uint16", 1), ("int16", 1), ("uint32", 2), ("int32", 2), ("float32", 2), ("uint64", 4), ("int64", 4), ("float64", 4)],
)
def test_register_count_per_type(type_: str, count: int) -> None:
    t = tag(type_)
    assert register_count(t) == count == t.width
    assert len(encode(t, 1)) == count


def test_register_count_of_string_is_its_length() -> None:
    assert register_count(tag("string", length=17)) == 17


def test_register_count_of_register_bool_is_one() -> None:
    assert register_count(tag("bool", bit=3)) == 1


# --------------------------------------------------------------------------- Tag validation


def test_tag_defaults() -> None:
    t = Tag(name="speed", table=HR, address=10)
    assert (t.type, t.order, t.bit, t.length, t.scale, t.offset) == (DataType.uint16, ABCD, None, None, 1.0, 0.0)


@pytest.mark.parametrize("table", sorted(BIT_TABLES))
@pytest.mark.parametrize("type_", ["uint16", "float32", "string"])
def test_bit_table_with_non_bool_type_is_refused(table: Table, type_: str) -> None:
    with pytest.raises(ValidationError, match="holds one bit"):
        Tag(name="t", table=table, address=0, type=type_)


def test_coil_with_default_type_is_refused() -> None:
    with pytest.raises(ValidationError, match="holds one bit"):
        Tag(name="t", table=Table.coil, address=0)


@pytest.mark.parametrize("table", [Table.holding_register, Table.input_register])
def test_register_bool_without_bit_is_refused(table: Table) -> None:
    with pytest.raises(ValidationError, match="needs 'bit'"):
        Tag(name="t", table=table, address=0, type="bool")


def test_string_without_length_is_refused() -> None:
    with pytest.raises(ValidationError, match="needs 'length'"):
        Tag(name="t", table=HR, address=0, type="string")


def test_length_on_non_string_is_refused() -> None:
    with pytest.raises(ValidationError, match="'length' applies only"):
        Tag(name="t", table=HR, address=0, type="uint16", length=2)


@pytest.mark.parametrize("type_", ["uint16", "int32", "float32", "float64"])
def test_bit_on_non_bool_is_refused(type_: str) -> None:
    with pytest.raises(ValidationError, match="'bit' applies only"):
        Tag(name="t", table=HR, address=0, type=type_, bit=3)


@pytest.mark.parametrize(
    ("address", "type_", "length"),
    [(65535, "uint32", None), (65533, "uint64", None), (65535, "float64", None), (65500, "string", 37)],
)
def test_tag_spanning_past_65535_is_refused(address: int, type_: str, length: int | None) -> None:
    with pytest.raises(ValidationError, match="past address 65535"):
        Tag(name="t", table=HR, address=address, type=type_, length=length)


@pytest.mark.parametrize(
    ("address", "type_", "length"),
    [(65535, "uint16", None), (65534, "uint32", None), (65532, "uint64", None), (65500, "string", 36)],
)
def test_tag_ending_exactly_at_65535_is_accepted(address: int, type_: str, length: int | None) -> None:
    t = Tag(name="t", table=HR, address=address, type=type_, length=length)
    assert t.address + t.width - 1 == 65535


def test_coil_at_last_address_is_accepted() -> None:
    assert Tag(name="t", table=Table.coil, address=65535, type="bool").width == 1


@pytest.mark.parametrize(
    "kw",
    [
        {"address": -1},
        {"address": 65536},
        {"type": "bool", "bit": 16},
        {"type": "bool", "bit": -1},
        {"type": "string", "length": 0},
        {"type": "string", "length": 124},
        {"name": "bad name"},
        {"name": ""},
        {"unknown": 1},
        {"type": "uint128"},
        {"order": "ACBD"},
    ],
)
def test_invalid_tag_fields_are_refused(kw: dict) -> None:
    fields = {"name": "t", "table": HR, "address": 0, **kw}
    with pytest.raises(ValidationError):
        Tag(**fields)


def test_tag_is_immutable() -> None:
    t = tag()
    with pytest.raises(ValidationError):
        t.address = 5  # type: ignore[misc]


# --------------------------------------------------------------------------- properties

INT_RANGES = {
    "int16": (-(2**15), 2**15 - 1, ">h"),
    "uint16": (0, 2**16 - 1, ">H"),
    "int32": (-(2**31), 2**31 - 1, ">i"),
    "uint32": (0, 2**32 - 1, ">I"),
    "int64": (-(2**63), 2**63 - 1, ">q"),
    "uint64": (0, 2**64 - 1, ">Q"),
}
orders = st.sampled_from(list(ByteOrder))
int_cases = st.sampled_from(sorted(INT_RANGES)).flatmap(
    lambda t: st.tuples(st.just(t), st.integers(INT_RANGES[t][0], INT_RANGES[t][1]))
)


@settings(max_examples=300, deadline=None, database=None)
@given(case=int_cases, order=orders)
def test_property_integer_round_trip_over_full_range(case: tuple[str, int], order: ByteOrder) -> None:
    type_, value = case
    t = tag(type_, order)
    registers = encode(t, value)
    assert registers == registers_in_order(struct.pack(INT_RANGES[type_][2], value), order)
    assert all(0 <= r <= 0xFFFF for r in registers)
    decoded = decode(t, registers)
    assert type(decoded) is int and decoded == value


@settings(max_examples=200, deadline=None, database=None)
@given(
    type_=st.sampled_from(sorted(INT_RANGES)),
    order=orders,
    data=st.data(),
)
def test_property_any_registers_decode_then_encode_to_themselves(type_: str, order: ByteOrder, data) -> None:
    t = tag(type_, order)
    registers = data.draw(st.lists(st.integers(0, 0xFFFF), min_size=t.width, max_size=t.width))
    assert encode(t, decode(t, registers)) == registers


@settings(max_examples=300, deadline=None, database=None)
@given(value=st.floats(width=32, allow_nan=False), order=orders)
def test_property_float32_representable_values_round_trip_exactly(value: float, order: ByteOrder) -> None:
    t = tag("float32", order)
    decoded = decode(t, encode(t, value))
    # compare bit patterns so that -0.0 and +0.0 are told apart
    assert struct.pack(">f", decoded) == struct.pack(">f", value)


FLOAT32_MAX = float(np.finfo(np.float32).max)


@settings(max_examples=300, deadline=None, database=None)
@given(value=st.floats(-FLOAT32_MAX, FLOAT32_MAX, allow_nan=False), order=orders)
def test_property_float32_round_trip_equals_float32_rounding(value: float, order: ByteOrder) -> None:
    t = tag("float32", order)
    decoded = decode(t, encode(t, value))
    expected = float(np.float32(value))  # IEEE round-to-nearest, independent of struct
    assert math.isfinite(decoded)
    assert np.float32(decoded) == np.float32(expected) and decoded == expected


@settings(max_examples=300, deadline=None, database=None)
@given(value=st.floats(allow_nan=False), order=orders)
def test_property_float64_round_trip_exactly(value: float, order: ByteOrder) -> None:
    t = tag("float64", order)
    registers = encode(t, value)
    assert registers == registers_in_order(struct.pack(">d", value), order)
    assert struct.pack(">d", decode(t, registers)) == struct.pack(">d", value)


@settings(max_examples=100, deadline=None, database=None)
@given(
    text=st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20),
    length=st.integers(1, 10),
    order=orders,
)
def test_property_ascii_string_round_trip_up_to_capacity(text: str, length: int, order: ByteOrder) -> None:
    t = tag("string", order, length=length)
    registers = encode(t, text)
    assert len(registers) == length
    assert decode(t, registers) == text[: 2 * length]


def test_mc_and_xgt_values_are_low_word_first_unless_the_tag_says_otherwise() -> None:
    from registermap import McTag, XgtTag

    words = [0x3344, 0x1122]  # 0x11223344 as Mitsubishi and LS store it: low word first
    assert decode(McTag(name="c", device="D200", type="uint32"), words) == 0x11223344
    assert decode(XgtTag(name="c", variable="%DD100"), words) == 0x11223344
    # a program that keeps the high word first (e.g. copied from a Modbus device): the per-tag override
    assert decode(McTag(name="c", device="D200", type="uint32", order="ABCD"), words[::-1]) == 0x11223344
    assert decode(XgtTag(name="c", variable="%DD100", order="ABCD"), words[::-1]) == 0x11223344
