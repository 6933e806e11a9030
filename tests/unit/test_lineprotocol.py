"""Unit tests of InfluxDB line protocol output and InfluxQL quoting."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from plant import MachineRef
from tsstore.base import Point
from tsstore.lineprotocol import MEASUREMENT, quote_ident, quote_literal, to_lines

MACHINE = MachineRef("acme", "site1", "lineA", "press1")
TS = 1_700_000_000_123
PREFIX = "telemetry,line=lineA,machine=press1,site=site1,tenant=acme"


def line_of(values: dict) -> str:
    (line,) = to_lines([Point(MACHINE, TS, values)])
    return line


def split_line(line: str) -> tuple[str, str, str]:
    """measurement+tags, fields, timestamp (valid only when no field value holds a space)."""
    head, fields, ts = line.split(" ")
    return head, fields, ts


# --------------------------------------------------------------------------- to_lines


def test_measurement_is_telemetry() -> None:
    assert MEASUREMENT == "telemetry"


def test_simple_point_gives_exact_line_with_sorted_tags_float_field_and_ms_time() -> None:
    assert line_of({"force": 801.5}) == f"{PREFIX} force=801.5 {TS}"


def test_tags_are_in_sorted_key_order() -> None:
    head, _, _ = split_line(line_of({"x": 1.0}))
    keys = [pair.split("=")[0] for pair in head.split(",")[1:]]
    assert keys == sorted(keys) == ["line", "machine", "site", "tenant"]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "1.0"),
        (False, "0.0"),
        (42, "42.0"),
        (-7, "-7.0"),
        (0, "0.0"),
        (2**53, repr(float(2**53))),
        (0.1, "0.1"),
        (-0.5, "-0.5"),
        (1e-07, repr(1e-07)),
        (1.5e300, repr(1.5e300)),
    ],
)
def test_numbers_and_bools_are_written_as_floats_via_repr(value: object, text: str) -> None:
    assert line_of({"v": value}) == f"{PREFIX} v={text} {TS}"


def test_integer_fields_have_no_i_suffix() -> None:
    _, fields, _ = split_line(line_of({"count": 123}))
    assert fields == "count=123.0"
    assert not fields.endswith("i")


def test_written_float_parses_back_to_the_same_value() -> None:
    value = 0.1 + 0.2  # needs all 17 significant digits
    _, fields, _ = split_line(line_of({"v": value}))
    assert float(fields.split("=", 1)[1]) == value


def test_several_fields_in_one_line() -> None:
    _, fields, ts = split_line(line_of({"a": 1, "b": 2.5, "c": True}))
    assert sorted(fields.split(",")) == ["a=1.0", "b=2.5", "c=1.0"]
    assert ts == str(TS)


def test_string_field_is_double_quoted() -> None:
    assert line_of({"mode": "auto"}) == f'{PREFIX} mode="auto" {TS}'


def test_string_field_escapes_double_quotes() -> None:
    assert line_of({"s": 'say "hi"'}) == f'{PREFIX} s="say \\"hi\\"" {TS}'


def test_string_field_escapes_backslashes() -> None:
    assert line_of({"s": "C:\\path\\"}) == f'{PREFIX} s="C:\\\\path\\\\" {TS}'


def test_string_field_with_newline_stays_one_record() -> None:
    line = line_of({"s": "a\nb", "n": 1.0})
    assert influx_records(line + "\n") == [line]


def test_string_field_backslash_before_quote_cannot_close_the_string() -> None:
    # a value ending in a backslash must not turn the closing quote into an escaped one
    line = line_of({"s": "x\\"})
    assert line == f'{PREFIX} s="x\\\\" {TS}'
    assert influx_string_field(line, "s") == "x\\"


def test_string_field_with_newline_is_stored_unchanged_by_influx_rules() -> None:
    line = line_of({"s": "a\nb"})
    assert influx_string_field(line, "s") == "a\nb"
    assert influx_string_field(line_of({"s": "a\\nb"}), "s") != influx_string_field(line, "s")


def test_field_keys_escape_space_comma_and_equals() -> None:
    assert line_of({"a b,c=d": 1.0}) == f"{PREFIX} a\\ b\\,c\\=d=1.0 {TS}"


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_fields_are_dropped(bad: float) -> None:
    assert line_of({"bad": bad, "good": 1.0}) == f"{PREFIX} good=1.0 {TS}"


def test_point_with_only_non_finite_fields_yields_no_line() -> None:
    assert to_lines([Point(MACHINE, TS, {"a": math.nan, "b": math.inf})]) == []


def test_point_with_no_fields_yields_no_line() -> None:
    assert to_lines([Point(MACHINE, TS, {})]) == []


def test_one_line_per_point_in_order_skipping_empty_ones() -> None:
    other = MachineRef("globex", "s", "l", "m")
    points = [
        Point(MACHINE, TS, {"a": 1}),
        Point(MACHINE, TS + 1, {"a": math.nan}),
        Point(other, TS + 2, {"b": 2}),
    ]
    assert to_lines(points) == [
        f"{PREFIX} a=1.0 {TS}",
        f"telemetry,line=l,machine=m,site=s,tenant=globex b=2.0 {TS + 2}",
    ]


def test_no_points_no_lines() -> None:
    assert to_lines([]) == []


def test_to_lines_accepts_any_iterable() -> None:
    assert to_lines(Point(MACHINE, TS + i, {"a": i}) for i in range(3)) == [
        f"{PREFIX} a={float(i)!r} {TS + i}" for i in range(3)
    ]


# --------------------------------------------------------------------------- reference parsers


def influx_records(body: str) -> list[str]:
    """Split a write body into records the way influxd 1.x does (models.scanLine): a
    backslash escapes the next character; after the first unescaped space, an unescaped
    double quote opens or closes a string field; a newline outside quotes ends a record."""
    records, start, i, fields, quoted = [], 0, 0, False, False
    while i < len(body):
        ch = body[i]
        if ch == "\\":
            i += 2
            continue
        if ch == " ":
            fields = True
        elif ch == '"' and fields:
            quoted = not quoted
        elif ch == "\n" and not quoted:
            records.append(body[start:i])
            start, fields = i + 1, False
        i += 1
    assert not quoted, "string field never closed"
    if start < len(body):
        records.append(body[start:])
    return records


def influx_string_field(line: str, key: str) -> str:
    """The value influxd stores for string field ``key`` of a one-field-set line: inside
    the quotes only \\\\ and \\" are escapes (models.unescapeStringField); any other
    backslash is kept as it is."""
    body = line.split(f' {key}="', 1)[1]
    out, i = [], 0
    while True:
        ch = body[i]
        if ch == "\\" and body[i + 1] in '\\"':
            out.append(body[i + 1])
            i += 2
        elif ch == '"':
            return "".join(out)
        else:
            out.append(ch)
            i += 1


def scan_quoted(text: str, quote: str) -> tuple[str, str]:
    """InfluxQL-style scanner: read one quoted token from the start of ``text``, honouring
    backslash escapes; return (unescaped content, whatever follows the closing quote)."""
    assert text[0] == quote
    out, i = [], 1
    while True:
        ch = text[i]  # IndexError: the token never closes
        if ch == "\\":
            out.append(text[i + 1])
            i += 2
        elif ch == quote:
            return "".join(out), text[i + 1 :]
        else:
            out.append(ch)
            i += 1


@settings(max_examples=200, deadline=None, database=None)
@given(text=st.text(max_size=60))
def test_property_string_field_is_one_record_with_only_its_own_quotes(text: str) -> None:
    line = line_of({"s": text, "n": 1.0})
    assert influx_records(line + "\n") == [line]
    assert line.startswith(f'{PREFIX} s="')
    assert line.endswith(f'",n=1.0 {TS}')


@settings(max_examples=200, deadline=None, database=None)
@given(text=st.text(alphabet=st.characters(exclude_characters="\n"), max_size=60))
def test_property_string_field_without_newline_is_stored_unchanged(text: str) -> None:
    assert influx_string_field(line_of({"s": text}), "s") == text


# --------------------------------------------------------------------------- InfluxQL quoting


def test_quote_ident_wraps_in_double_quotes() -> None:
    assert quote_ident("force") == '"force"'


def test_quote_literal_wraps_in_single_quotes() -> None:
    assert quote_literal("acme") == "'acme'"


def test_quote_ident_escapes_double_quote_and_backslash() -> None:
    assert quote_ident('a"b\\c') == '"a\\"b\\\\c"'


def test_quote_literal_escapes_single_quote_and_backslash() -> None:
    assert quote_literal("a'b\\c") == "'a\\'b\\\\c'"


@pytest.mark.parametrize(
    "attack",
    ['x" OR 1=1 --', 'x"; DROP DATABASE x; --', 'x\\" OR 1=1 --', 'x\\', '"', '\\"', "a'; DROP DATABASE x"],
)
def test_quote_ident_keeps_injection_inside_the_identifier(attack: str) -> None:
    content, rest = scan_quoted(quote_ident(attack), '"')
    assert content == attack
    assert rest == ""


@pytest.mark.parametrize(
    "attack",
    ["a'; DROP DATABASE x", "' OR '1'='1", "x\\' OR 1=1 --", "x\\", "'", "\\'", 'x" OR 1=1 --'],
)
def test_quote_literal_keeps_injection_inside_the_literal(attack: str) -> None:
    content, rest = scan_quoted(quote_literal(attack), "'")
    assert content == attack
    assert rest == ""


def test_quoted_literal_in_a_where_clause_ends_where_expected() -> None:
    attack = "a'; DROP DATABASE x"
    query = f"SELECT * FROM telemetry WHERE tenant = {quote_literal(attack)} AND site = 's'"
    _, tail = query.split("= ", 1)
    content, rest = scan_quoted(tail, "'")
    assert content == "a'; DROP DATABASE x"
    assert rest == " AND site = 's'"


@settings(max_examples=200, deadline=None, database=None)
@given(text=st.text(max_size=60))
def test_property_quote_ident_round_trips(text: str) -> None:
    assert scan_quoted(quote_ident(text), '"') == (text, "")


@settings(max_examples=200, deadline=None, database=None)
@given(text=st.text(max_size=60))
def test_property_quote_literal_round_trips(text: str) -> None:
    assert scan_quoted(quote_literal(text), "'") == (text, "")
