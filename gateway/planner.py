"""Request planning: merge a device's tags into the fewest reads the protocol allows.

Pure computation, so ``smartfactory gateway plan`` and the tests can show the plan
without a device. Peers send one read per tag; a 200-tag map then costs 200 round trips
where a handful suffice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from registermap import BIT_TABLES, Table, Tag


@dataclass(frozen=True)
class Read:
    """One Modbus request: ``count`` registers (or bits) of ``table`` from ``address``."""

    table: Table
    address: int
    count: int
    tags: tuple[Tag, ...]

    def slice_for(self, tag: Tag) -> slice:
        start = tag.address - self.address
        return slice(start, start + tag.width)


def plan_reads(
    tags: Sequence[Tag], max_registers: int = 125, max_bits: int = 2000, max_gap: int = 8
) -> list[Read]:
    """Group tags per table, in address order; start a new read when the next tag would
    push the read past the size limit or leave more than ``max_gap`` unmapped units."""
    reads: list[Read] = []
    for table in Table:
        in_table = sorted((t for t in tags if t.table is table), key=lambda t: (t.address, t.width))
        if not in_table:
            continue
        is_bits = table in BIT_TABLES
        limit = max_bits if is_bits else max_registers
        gap = max_gap * 16 if is_bits else max_gap
        current: list[Tag] = []
        start = end = 0
        for tag in in_table:
            tag_end = tag.address + tag.width
            if current and tag.address - end <= gap and max(end, tag_end) - start <= limit:
                current.append(tag)
                end = max(end, tag_end)
                continue
            if current:
                reads.append(Read(table, start, end - start, tuple(current)))
            current, start, end = [tag], tag.address, tag_end
        reads.append(Read(table, start, end - start, tuple(current)))
    return reads
