"""Register scan: bisecting refused blocks finds exactly the addresses a device serves."""

from __future__ import annotations

import asyncio
import math

from gateway.links import Refused
from gateway.scan import scan_table
from registermap import Table


def fake_device(present: set[int], refusals: list | None = None):
    async def read(table, address, count):
        if any(a not in present for a in range(address, address + count)):
            raise Refused(2, f"{address}+{count}")
        return [a * 10 for a in range(address, address + count)]

    return read


def test_scan_finds_exactly_the_served_addresses_with_few_requests():
    present = set(range(0, 100)) | set(range(200, 210)) | {500}
    result = asyncio.run(scan_table(fake_device(present), Table.holding_register, 0, 1000, end_after=None))
    assert set(result.answered) == present
    assert result.ranges() == [(0, 99), (200, 209), (500, 500)]
    assert result.values[205] == 2050
    # a refusal only says "something here is missing": each missing address costs about one
    # request, present runs far less
    assert result.requests <= 1.2 * (1000 - len(present)) + 20


def test_a_dense_map_with_one_hole_costs_few_requests():
    present = set(range(1000)) - {617}
    result = asyncio.run(scan_table(fake_device(present), Table.holding_register, 0, 1000))
    assert set(result.answered) == present
    assert result.requests <= 8 + 2 * 3 + 16  # blocks + bisection levels + one small block probed singly


def test_scan_of_a_full_range_is_one_request_per_block():
    result = asyncio.run(scan_table(fake_device(set(range(1000))), Table.input_register, 0, 1000))
    assert result.requests == math.ceil(1000 / 125)
    bits = asyncio.run(scan_table(fake_device(set(range(4000))), Table.coil, 0, 4000))
    assert bits.requests == 2


def test_other_exception_codes_are_counted_not_bisected():
    async def busy(table, address, count):
        raise Refused(6, "busy")

    result = asyncio.run(scan_table(busy, Table.holding_register, 0, 250))
    assert result.answered == [] and result.refusals == {6: 2} and result.requests == 2


def test_the_scan_stops_once_a_table_has_clearly_ended():
    present = set(range(20))  # a 20-register input table, scanned over 0-2999
    result = asyncio.run(scan_table(fake_device(present), Table.input_register, 0, 3000))
    assert set(result.answered) == present
    assert result.stopped_at is not None and 20 + 256 <= result.stopped_at <= 20 + 256 + 16
    assert result.requests < 300  # where probing every missing address costs about 3000
    assert not result.all_zero


def test_a_device_answering_only_zeros_is_flagged():
    async def zeros(table, address, count):
        return [0] * count

    result = asyncio.run(scan_table(zeros, Table.holding_register, 0, 500))
    assert result.all_zero and result.stopped_at is None and len(result.answered) == 500


# -- MC / XGT device areas ---------------------------------------------------------------------
def area_device(sizes: dict[str, int], values: dict[tuple[str, int], int] | None = None):
    """A PLC whose areas run from word 0 to their size; an area it lacks is refused at once."""
    reads: list[tuple[str, int, int]] = []

    async def read(area, address, count):
        reads.append((area, address, count))
        if address + count > sizes.get(area, 0):
            raise Refused(2, f"{area}{address}+{count}", "read past the device's address range", 0xC056)
        return [(values or {}).get((area, a), 0) for a in range(address, address + count)]

    return read, reads


def test_an_area_scan_finds_the_size_in_about_two_log2_requests_and_reads_the_range():
    from gateway.scan import scan_area

    read, reads = area_device({"D": 12288}, {("D", 100): 5, ("D", 2000): 9})
    result = asyncio.run(scan_area(read, "D", 0, 1000, 960, 1 << 24))
    assert result.size == 12288 and not result.unbounded and result.refused is None
    assert result.nonzero() == [100] and set(result.values) == set(range(1000))
    assert result.requests == len(reads) <= 1 + 2 * math.ceil(math.log2(12288)) + 2


def test_an_area_the_plc_lacks_costs_one_request_and_keeps_the_refusal():
    from gateway.scan import scan_area

    read, reads = area_device({})
    result = asyncio.run(scan_area(read, "R", 0, 1000, 960, 1 << 24))
    assert result.size is None and result.requests == 1 == len(reads)
    assert result.refused is not None and result.refused.protocol_code == 0xC056


def test_the_range_read_stops_at_the_area_end_and_a_small_area_is_found_exactly():
    from gateway.scan import scan_area

    for size in (1, 2, 3, 17, 1000, 1024, 1025):
        read, reads = area_device({"M": size})
        result = asyncio.run(scan_area(read, "M", 0, 5000, 960, 1 << 20))
        assert result.size == size and max(result.values) == size - 1 and result.all_zero
        assert result.requests <= 1 + 2 * 20 + math.ceil(size / 960)


def test_an_area_larger_than_the_search_limit_says_so():
    from gateway.scan import scan_area

    read, _ = area_device({"ZR": 1 << 30})
    result = asyncio.run(scan_area(read, "ZR", 0, 10, 960, 1 << 16))
    assert result.size == 1 << 16 and result.unbounded
