"""Unit tests of request planning: merging tags into the fewest Modbus reads."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.planner import Read, plan_reads
from registermap import BIT_TABLES, Table, Tag, decode, encode
from simulators.press import PRESS_TAGS

HR, IR, COIL, DI = Table.holding_register, Table.input_register, Table.coil, Table.discrete_input


def reg(address: int, type_: str = "uint16", table: Table = HR, name: str | None = None, **kw: object) -> Tag:
    return Tag(name=name or f"r{address}_{type_}", table=table, address=address, type=type_, **kw)


def bit(address: int, table: Table = COIL, name: str | None = None) -> Tag:
    return Tag(name=name or f"b{address}", table=table, address=address, type="bool")


def spans(reads: list[Read]) -> list[tuple[Table, int, int]]:
    return [(r.table, r.address, r.count) for r in reads]


def assert_each_tag_in_exactly_one_read(tags: list[Tag], reads: list[Read]) -> None:
    seen = Counter(id(t) for r in reads for t in r.tags)
    assert sorted(seen.values()) == [1] * len(tags)
    assert set(seen) == {id(t) for t in tags}


# --------------------------------------------------------------------------- merging and splitting


def test_no_tags_plan_no_reads() -> None:
    assert plan_reads([]) == []


def test_contiguous_tags_merge_into_one_read() -> None:
    tags = [reg(0), reg(1), reg(2), reg(3, "float32"), reg(5, "uint64")]
    assert spans(plan_reads(tags)) == [(HR, 0, 9)]


def test_unsorted_input_is_planned_in_address_order() -> None:
    tags = [reg(3), reg(0), reg(2), reg(1)]
    (read,) = plan_reads(tags)
    assert (read.address, read.count) == (0, 4)
    assert [t.address for t in read.tags] == [0, 1, 2, 3]


def test_gap_larger_than_max_gap_splits() -> None:
    # tag at 0 ends at 1; tag at 10 leaves 9 unmapped registers (1..9) > 8
    assert spans(plan_reads([reg(0), reg(10)], max_gap=8)) == [(HR, 0, 1), (HR, 10, 1)]


def test_gap_equal_to_max_gap_merges() -> None:
    # tag at 9 leaves exactly 8 unmapped registers (1..8)
    assert spans(plan_reads([reg(0), reg(9)], max_gap=8)) == [(HR, 0, 10)]


def test_gap_is_measured_from_the_end_of_a_wide_tag() -> None:
    # float64 at 0 covers 0..3; a tag at 12 leaves 8 unmapped (4..11); at 13, 9
    assert spans(plan_reads([reg(0, "float64"), reg(12)], max_gap=8)) == [(HR, 0, 13)]
    assert spans(plan_reads([reg(0, "float64"), reg(13)], max_gap=8)) == [(HR, 0, 4), (HR, 13, 1)]


def test_max_gap_zero_merges_only_adjacent_tags() -> None:
    assert spans(plan_reads([reg(0), reg(1)], max_gap=0)) == [(HR, 0, 2)]
    assert spans(plan_reads([reg(0), reg(2)], max_gap=0)) == [(HR, 0, 1), (HR, 2, 1)]


def test_125_register_limit_splits() -> None:
    tags = [reg(a) for a in range(126)]
    assert spans(plan_reads(tags)) == [(HR, 0, 125), (HR, 125, 1)]


def test_read_of_exactly_125_registers_is_one_read() -> None:
    assert spans(plan_reads([reg(0), reg(124)], max_gap=200)) == [(HR, 0, 125)]


def test_tag_that_would_cross_the_limit_starts_a_new_read() -> None:
    # float32 at 124 would end at 126 > 125
    assert spans(plan_reads([reg(0), reg(124, "float32")], max_gap=200)) == [(HR, 0, 1), (HR, 124, 2)]


def test_configurable_lower_register_limit() -> None:
    tags = [reg(a) for a in range(20)]
    assert spans(plan_reads(tags, max_registers=10)) == [(HR, 0, 10), (HR, 10, 10)]


def test_register_tables_ignore_the_bit_limit() -> None:
    tags = [reg(a) for a in range(200)]
    assert spans(plan_reads(tags, max_bits=2000)) == [(HR, 0, 125), (HR, 125, 75)]


# --------------------------------------------------------------------------- bit tables


@pytest.mark.parametrize("table", sorted(BIT_TABLES))
def test_bits_use_the_2000_bit_limit(table: Table) -> None:
    tags = [bit(a, table) for a in range(2001)]
    assert spans(plan_reads(tags)) == [(table, 0, 2000), (table, 2000, 1)]


def test_bits_do_not_use_the_register_limit() -> None:
    tags = [bit(a) for a in range(300)]
    assert spans(plan_reads(tags, max_registers=125)) == [(COIL, 0, 300)]


def test_configurable_bit_limit() -> None:
    tags = [bit(a) for a in range(10)]
    assert spans(plan_reads(tags, max_bits=4)) == [(COIL, 0, 4), (COIL, 4, 4), (COIL, 8, 2)]


def test_bit_gap_is_max_gap_times_16() -> None:
    # coil at 0 ends at 1; a coil at 129 leaves 128 = 8 * 16 unmapped bits, at 130, 129
    assert spans(plan_reads([bit(0), bit(129)], max_gap=8)) == [(COIL, 0, 130)]
    assert spans(plan_reads([bit(0), bit(130)], max_gap=8)) == [(COIL, 0, 1), (COIL, 130, 1)]


def test_bit_gap_scales_with_configured_max_gap() -> None:
    assert spans(plan_reads([bit(0), bit(33)], max_gap=2)) == [(COIL, 0, 34)]
    assert spans(plan_reads([bit(0), bit(34)], max_gap=2)) == [(COIL, 0, 1), (COIL, 34, 1)]


# --------------------------------------------------------------------------- tables


def test_tables_never_mix_even_at_the_same_address() -> None:
    tags = [reg(0, table=HR), reg(0, table=IR), bit(0, COIL), bit(0, DI), reg(1, table=HR), bit(1, DI)]
    reads = plan_reads(tags)
    assert sorted(spans(reads)) == sorted([(HR, 0, 2), (IR, 0, 1), (COIL, 0, 1), (DI, 0, 2)])
    for r in reads:
        assert all(t.table is r.table for t in r.tags)


# --------------------------------------------------------------------------- overlaps and duplicates


def test_overlapping_tags_share_one_read() -> None:
    whole = reg(0, "uint32", name="whole")
    low = reg(1, "uint16", name="low_word")
    (read,) = plan_reads([low, whole])
    assert (read.address, read.count) == (0, 2)
    assert set(map(id, read.tags)) == {id(whole), id(low)}


def test_duplicate_address_tags_are_both_kept() -> None:
    a = reg(5, name="a")
    b = reg(5, "int16", name="b")
    (read,) = plan_reads([a, b])
    assert (read.address, read.count) == (5, 1)
    assert set(map(id, read.tags)) == {id(a), id(b)}


def test_identical_tags_each_appear_once() -> None:
    a, b = reg(5, name="same"), reg(5, name="same")
    reads = plan_reads([a, b])
    assert_each_tag_in_exactly_one_read([a, b], reads)


def test_narrow_tag_inside_a_wide_one_does_not_shrink_the_read() -> None:
    wide = reg(0, "float64", name="wide")
    inner = reg(1, name="inner")
    after = reg(4, name="after")
    (read,) = plan_reads([inner, wide, after], max_gap=0)
    assert (read.address, read.count) == (0, 5)


# --------------------------------------------------------------------------- slices


def test_slice_for_points_at_each_tags_own_registers() -> None:
    tags = [
        reg(10, "float32", name="force"),
        reg(12, name="count"),
        reg(15, "int32", name="delta"),
        reg(17, "string", name="label", length=3),
        reg(20, "bool", name="flag", bit=4),
        reg(11, name="force_low"),  # overlaps force
    ]
    memory = list(range(1000, 1100))  # register a holds 1000 + a: each register is recognisable
    for read in plan_reads(tags):
        data = memory[read.address : read.address + read.count]
        assert len(data) == read.count
        for t in read.tags:
            assert data[read.slice_for(t)] == memory[t.address : t.address + t.width]


def test_slices_decode_the_values_written_at_each_tag() -> None:
    tags = [
        reg(0, "uint16", name="state"),
        reg(1, "float32", name="force", order="CDAB"),
        reg(3, "int16", name="temp"),
        reg(8, "uint64", name="total", order="DCBA"),
        reg(12, "string", name="recipe", length=4),
    ]
    values = {"state": 3, "force": 801.25, "temp": -17, "total": 2**40 + 7, "recipe": "R-42"}
    memory = [0] * 32
    for t in tags:
        memory[t.address : t.address + t.width] = encode(t, values[t.name])
    decoded = {}
    for read in plan_reads(tags):
        data = memory[read.address : read.address + read.count]
        for t in read.tags:
            decoded[t.name] = decode(t, data[read.slice_for(t)])
    assert decoded == values


def test_slice_for_bits() -> None:
    tags = [bit(3), bit(7), bit(40)]
    (read,) = plan_reads(tags)
    assert [read.slice_for(t) for t in tags] == [slice(0, 1), slice(4, 5), slice(37, 38)]


# --------------------------------------------------------------------------- press


def test_press_tags_plan_to_exactly_two_reads() -> None:
    reads = plan_reads(PRESS_TAGS)
    assert sorted(spans(reads)) == sorted([(HR, 0, 5), (COIL, 0, 1)])
    assert_each_tag_in_exactly_one_read(list(PRESS_TAGS), reads)


# --------------------------------------------------------------------------- properties

REGISTER_TYPES = ["uint16", "int16", "uint32", "float32", "int64", "float64"]


@st.composite
def any_tag(draw) -> Tag:
    table = draw(st.sampled_from(list(Table)))
    address = draw(st.integers(0, 600))
    if table in BIT_TABLES:
        return Tag(name="b", table=table, address=address, type="bool")
    kind = draw(st.sampled_from(REGISTER_TYPES + ["string", "bool"]))
    if kind == "string":
        return Tag(name="s", table=table, address=address, type="string", length=draw(st.integers(1, 10)))
    if kind == "bool":
        return Tag(name="f", table=table, address=address, type="bool", bit=draw(st.integers(0, 15)))
    return Tag(name="r", table=table, address=address, type=kind)


@settings(max_examples=150, deadline=None, database=None)
@given(
    tags=st.lists(any_tag(), max_size=30),
    max_registers=st.integers(10, 125),  # >= the widest tag (10 registers)
    max_bits=st.integers(1, 2000),
    max_gap=st.integers(0, 30),
)
def test_property_reads_respect_limits_and_cover_every_tag_once(
    tags: list[Tag], max_registers: int, max_bits: int, max_gap: int
) -> None:
    reads = plan_reads(tags, max_registers=max_registers, max_bits=max_bits, max_gap=max_gap)
    assert_each_tag_in_exactly_one_read(tags, reads)
    for r in reads:
        is_bits = r.table in BIT_TABLES
        gap = max_gap * 16 if is_bits else max_gap
        assert 1 <= r.count <= (max_bits if is_bits else max_registers)
        assert r.tags and all(t.table is r.table for t in r.tags)
        # the read is exactly the hull of its tags
        assert r.address == min(t.address for t in r.tags)
        assert r.address + r.count == max(t.address + t.width for t in r.tags)
        # no stretch of unmapped units inside the read is longer than the gap
        covered = [False] * r.count
        for t in r.tags:
            s = r.slice_for(t)
            assert 0 <= s.start and s.stop <= r.count
            covered[s] = [True] * (s.stop - s.start)
        longest_hole = run = 0
        for c in covered:
            run = 0 if c else run + 1
            longest_hole = max(longest_hole, run)
        assert longest_hole <= gap


@st.composite
def non_overlapping_register_tags(draw) -> list[Tag]:
    """Tags of one table laid out one after another with random gaps (no overlaps)."""
    tags, address = [], 0
    for _ in range(draw(st.integers(1, 30))):
        address += draw(st.integers(0, 12))
        kind = draw(st.sampled_from(REGISTER_TYPES + ["string"]))
        length = draw(st.integers(1, 10)) if kind == "string" else None
        t = Tag(name="t", table=HR, address=address, type=kind, length=length)
        tags.append(t)
        address += t.width
    return draw(st.permutations(tags))


def min_reads_by_dp(tags: list[Tag], limit: int, gap: int) -> int:
    """Fewest groups of consecutive (address-ordered) tags such that each group spans at
    most ``limit`` units and has no hole between neighbours longer than ``gap``."""
    tags = sorted(tags, key=lambda t: t.address)
    n = len(tags)
    best = [0] + [math.inf] * n  # best[j]: fewest reads for the first j tags
    for j in range(1, n + 1):
        for i in range(j - 1, -1, -1):  # group tags[i:j]
            if i < j - 1 and tags[i + 1].address - (tags[i].address + tags[i].width) > gap:
                break  # a hole inside the group: extending further left keeps it
            if tags[j - 1].address + tags[j - 1].width - tags[i].address > limit:
                break
            best[j] = min(best[j], best[i] + 1)
    return best[n]


@settings(max_examples=100, deadline=None, database=None)
@given(tags=non_overlapping_register_tags(), max_registers=st.integers(10, 125), max_gap=st.integers(0, 15))
def test_property_greedy_plan_is_minimal_for_non_overlapping_tags(
    tags: list[Tag], max_registers: int, max_gap: int
) -> None:
    reads = plan_reads(tags, max_registers=max_registers, max_gap=max_gap)
    assert len(reads) == min_reads_by_dp(tags, max_registers, max_gap)


@settings(max_examples=75, deadline=None, database=None)
@given(tags=non_overlapping_register_tags(), max_registers=st.integers(10, 125))
def test_property_with_huge_gap_reads_never_overlap_and_split_only_for_the_limit(
    tags: list[Tag], max_registers: int
) -> None:
    reads = plan_reads(tags, max_registers=max_registers, max_gap=10**6)
    assert len(reads) == min_reads_by_dp(tags, max_registers, 10**6)
    # with no gap limit, each read is split off only because the next tag did not fit
    ordered = sorted(reads, key=lambda r: r.address)
    for before, after in zip(ordered, ordered[1:]):
        assert before.address + before.count <= after.address
        first_of_next = min(after.tags, key=lambda t: t.address)
        assert first_of_next.address + first_of_next.width - before.address > max_registers


@settings(max_examples=60, deadline=None, database=None)
@given(n=st.integers(1, 300), start=st.integers(0, 1000), max_registers=st.integers(1, 125))
def test_property_contiguous_single_registers_need_ceil_n_over_limit_reads(
    n: int, start: int, max_registers: int
) -> None:
    tags = [reg(start + i) for i in range(n)]
    reads = plan_reads(tags, max_registers=max_registers, max_gap=10**6)
    assert len(reads) == math.ceil(n / max_registers)
    assert all(r.count == max_registers for r in reads[:-1])
    assert sum(r.count for r in reads) == n


def test_fewest_reads_is_bounded_by_the_protocol_not_the_configured_gap() -> None:
    from gateway.planner import fewest_reads

    tags = [reg(10 * i) for i in range(200)]  # 200 tags 10 registers apart: 1991 registers
    assert len(plan_reads(tags, max_gap=8)) == 200  # every gap is 9 > 8: one read per tag
    bound, gap = fewest_reads(tags)
    assert bound == 16  # 13 tags fit one 125-register read: ceil(200 / 13)
    assert gap == 9 and len(plan_reads(tags, max_gap=gap)) == bound and len(plan_reads(tags, max_gap=gap - 1)) > bound


def test_default_gap_spans_a_whole_read_on_ethernet_and_16_on_a_serial_line() -> None:
    from gateway.settings import DeviceSettings

    tags = [{"name": "a", "table": "holding_register", "address": 0}]
    assert DeviceSettings.model_validate({"name": "m", "line": "l", "host": "127.0.0.1", "tags": tags}).max_gap == 124
    rtu = DeviceSettings.model_validate({"name": "m", "line": "l", "transport": "rtu", "serial": {"port": "/dev/ttyS0"},
                                         "tags": tags})
    assert rtu.max_gap == 16
    small = DeviceSettings.model_validate({"name": "m", "line": "l", "host": "127.0.0.1", "max_registers_per_read": 60,
                                           "tags": tags})
    assert small.max_gap == 59
