"""Request planning: merge a device's tags into the fewest reads the protocol allows.

Pure computation, so ``smartfactory gateway plan`` and the tests can show the plan
without a device. Peers send one read per tag; a 200-tag map then costs 200 round trips
where a handful suffice.

A protocol with a random read (MC's 0x0403: scattered word and double-word points of any
device kinds in one request) can do better for scattered tags: ``plan_with_random`` moves the
sparsest batch reads into random reads when that takes fewer requests, and keeps batch reads
for dense areas. XGT's individual read (up to 16 variables of one size, any areas) is used the
same way: ``plan_with_individual``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from registermap import BIT_TABLES, McTag, Table, Tag, XgtTag

#: Where a read goes: a Modbus table, or an MC device kind such as "D" (one request reads one)
Area = Table | str
AnyTag = Tag | McTag | XgtTag


def area_name(area: Area) -> str:
    return area.value if isinstance(area, Table) else area


def _area_order(area: Area) -> tuple[int, str]:
    return (list(Table).index(area), "") if isinstance(area, Table) else (len(Table), area)


def areas_of(tags: Iterable[AnyTag]) -> list[Area]:
    """The areas the tags are in: Modbus tables in their usual order, then MC device kinds."""
    return sorted({t.table for t in tags}, key=_area_order)


@dataclass(frozen=True)
class Read:
    """One request: ``count`` registers (or bits) of ``table`` (a Modbus table or an MC device kind) from ``address``."""

    table: Area
    address: int
    count: int
    tags: tuple[AnyTag, ...]

    def slice_for(self, tag: AnyTag) -> slice:
        start = tag.address - self.address
        return slice(start, start + tag.width)


@dataclass(frozen=True)
class RandomRead:
    """One random read: word points and double-word points, each (area, word address), of any
    areas; a double-word point reads the word and the next one. Every tag's words are in it."""

    words: tuple[tuple[Area, int], ...]
    dwords: tuple[tuple[Area, int], ...]
    tags: tuple[AnyTag, ...]

    @property
    def points(self) -> int:
        return len(self.words) + len(self.dwords)

    def values_for(self, tag: AnyTag, got: Mapping[tuple[Area, int], int]) -> list[int]:
        """The tag's words out of the answer (word values by (area, word address))."""
        return [got[(tag.table, a)] for a in range(tag.address, tag.address + tag.width)]


#: words per variable of an XGT individual read, by size letter (bit variables are read as their word)
INDIVIDUAL_SIZES = {"W": 1, "D": 2, "L": 4}


@dataclass(frozen=True)
class IndividualRead:
    """One XGT individual read: variables of one size (all words, all double words or all long
    words) of any areas, each given as (area, first word). Every tag's words are in it."""

    size: str  # W, D or L
    points: tuple[tuple[Area, int], ...]
    tags: tuple[AnyTag, ...]

    @property
    def words_per_point(self) -> int:
        return INDIVIDUAL_SIZES[self.size]

    def values_for(self, tag: AnyTag, got: Mapping[tuple[Area, int], int]) -> list[int]:
        """The tag's words out of the answer (word values by (area, word address))."""
        return [got[(tag.table, a)] for a in range(tag.address, tag.address + tag.width)]


AnyRead = Read | RandomRead | IndividualRead


def random_points(tags: Iterable[AnyTag]) -> tuple[list[tuple[Area, int]], list[tuple[Area, int]]]:
    """The fewest word and double-word points that cover the tags' words: two neighbouring
    words are one double-word point (a run of k words costs ceil(k/2) points)."""
    needed = sorted({(t.table, a) for t in tags for a in range(t.address, t.address + t.width)},
                    key=lambda p: (_area_order(p[0]), p[1]))
    words: list[tuple[Area, int]] = []
    dwords: list[tuple[Area, int]] = []
    i = 0
    while i < len(needed):
        area, a = needed[i]
        if i + 1 < len(needed) and needed[i + 1] == (area, a + 1):
            dwords.append((area, a))
            i += 2
        else:
            words.append((area, a))
            i += 1
    return words, dwords


def random_read(tags: Sequence[AnyTag]) -> RandomRead:
    words, dwords = random_points(tags)
    return RandomRead(tuple(words), tuple(dwords), tuple(tags))


def plan_with_random(
    tags: Sequence[AnyTag],
    max_registers: int,
    max_bits: int,
    max_gap: int,
    random_limit: int,
    breaks: Collection[tuple[Area, int]] = (),
) -> list[AnyRead]:
    """Batch reads for dense spans, random reads (at most ``random_limit`` points each) for the
    scattered rest, whichever mix takes the fewest requests; batch reads only on a tie.

    Tried for several gaps up to ``max_gap``: a small gap isolates scattered tags as small batch
    reads, the candidates to move. For each, the batch reads covering the fewest points move
    first (k of them: n - k batch reads plus the random reads their points pack into)."""
    def cost(read: Read) -> int:
        words, dwords = random_points(read.tags)
        return len(words) + len(dwords)

    return _plan_mixed(tags, max_registers, max_bits, max_gap, random_limit, breaks, cost,
                       lambda costed: _pack_random(costed, random_limit))


def plan_with_individual(
    tags: Sequence[AnyTag],
    max_registers: int,
    max_bits: int,
    max_gap: int,
    limit: int,
    breaks: Collection[tuple[Area, int]] = (),
) -> list[AnyRead]:
    """XGT: block reads for dense spans, individual reads (at most ``limit`` variables of one size
    each) for the scattered rest, whichever mix takes the fewest requests; block reads on a tie.
    The same search as ``plan_with_random``."""
    return _plan_mixed(tags, max_registers, max_bits, max_gap, limit, breaks,
                       lambda read: sum(len(p) for p in _native_points(read.tags).values()),
                       lambda costed: pack_individual([t for _, r in costed for t in r.tags], limit))


def _plan_mixed(
    tags: Sequence[AnyTag],
    max_registers: int,
    max_bits: int,
    max_gap: int,
    limit: int,
    breaks: Collection[tuple[Area, int]],
    cost_of: Callable[[Read], int],
    pack: Callable[[Sequence[tuple[int, Read]]], list[AnyRead]],
) -> list[AnyRead]:
    best: list[AnyRead] = list(plan_reads(tags, max_registers, max_bits, max_gap, breaks))
    gaps = sorted({g for g in (0, 2, 8, 32, 128, max_gap) if g <= max_gap})
    for gap in gaps:
        reads = plan_reads(tags, max_registers, max_bits, gap, breaks)
        costs = sorted(((cost_of(r), r) for r in reads),
                       key=lambda c: (c[0], _area_order(c[1].table), c[1].address))
        # n - k + ceil(points / limit) is what moving the k cheapest reads would cost if their points
        # packed perfectly; pack the few most promising k for real (packing each k costs O(n^2))
        estimates, moved_points = [], 0
        for k, (cost, _) in enumerate(costs, start=1):
            if cost > limit:
                break
            moved_points += cost
            estimates.append((len(reads) - k + math.ceil(moved_points / limit), k))
        for estimate, k in sorted(estimates)[:3]:
            if estimate >= len(best):
                break
            packed = pack(costs[:k])
            if len(reads) - k + len(packed) < len(best):
                kept = sorted((r for _, r in costs[k:]), key=lambda r: (_area_order(r.table), r.address))
                best = [*kept, *packed]
    return best


def _pack_random(costed: Sequence[tuple[int, Read]], limit: int) -> list[AnyRead]:
    """First-fit decreasing over (points, batch read): each moved read's tags stay in one random read."""
    bins: list[tuple[int, list[AnyTag]]] = []
    for cost, read in sorted(costed, key=lambda c: -c[0]):
        for i, (used, held) in enumerate(bins):
            if used + cost <= limit:
                bins[i] = (used + cost, held + list(read.tags))
                break
        else:
            bins.append((cost, list(read.tags)))
    return [random_read(held) for _, held in bins]


def _points_as(size: str, tag: AnyTag) -> tuple[tuple[Area, int], ...]:
    """The variables of ``size`` that hold the tag's words, as (area, first word)."""
    step = INDIVIDUAL_SIZES[size]
    first = tag.address - tag.address % step
    return tuple((tag.table, a) for a in range(first, tag.address + tag.width, step))


def _native_size(tag: AnyTag) -> str:
    """A double or long word tag is one D or L variable; anything else (words, bits, strings) words."""
    for size in ("L", "D"):
        step = INDIVIDUAL_SIZES[size]
        if tag.width == step and tag.address % step == 0:
            return size
    return "W"


def _native_points(tags: Iterable[AnyTag]) -> dict[str, set[tuple[Area, int]]]:
    out: dict[str, set[tuple[Area, int]]] = {}
    for t in tags:
        size = _native_size(t)
        out.setdefault(size, set()).update(_points_as(size, t))
    return out


def individual_read(size: str, tags: Sequence[AnyTag]) -> IndividualRead:
    points = sorted({p for t in tags for p in _points_as(size, t)}, key=lambda p: (_area_order(p[0]), p[1]))
    return IndividualRead(size, tuple(points), tuple(tags))


def _pack_sized(tags: Sequence[AnyTag], limit: int, words_only: bool) -> list[IndividualRead]:
    """First-fit decreasing per size; tags that share their variables (bits of one word) go together."""
    units: dict[tuple[str, tuple[tuple[Area, int], ...]], list[AnyTag]] = {}
    for t in tags:
        size = "W" if words_only else _native_size(t)
        units.setdefault((size, _points_as(size, t)), []).append(t)
    bins: list[tuple[str, set[tuple[Area, int]], list[AnyTag]]] = []
    for (size, points), held in sorted(units.items(), key=lambda u: (u[0][0], -len(u[0][1]))):
        for b_size, b_points, b_tags in bins:
            if b_size == size and len(b_points | set(points)) <= limit:
                b_points.update(points)
                b_tags.extend(held)
                break
        else:
            bins.append((size, set(points), list(held)))
    return [individual_read(size, held) for size, _, held in bins]


def pack_individual(tags: Sequence[AnyTag], limit: int) -> list[AnyRead]:
    """XGT individual reads for ``tags``: each double or long word as one variable of its size, or
    every value in words (one size, so one request holds them all) when that takes fewer requests.
    A 16-variable read carries at most 128 bytes, far below the 1400-byte limit."""
    native, words = _pack_sized(tags, limit, False), _pack_sized(tags, limit, True)
    return list(words if len(words) < len(native) else native)


def plan_reads(
    tags: Sequence[AnyTag],
    max_registers: int = 125,
    max_bits: int = 2000,
    max_gap: int = 8,
    breaks: Collection[tuple[Area, int]] = (),
) -> list[Read]:
    """Group tags per table, in address order; start a new read when the next tag would
    push the read past the size limit or leave more than ``max_gap`` unmapped units.

    ``breaks`` holds (table, address) boundaries no read may cross: a tag at or past the
    address starts a new read. They record where a device refused a merged read.
    Greedy is optimal here: each read takes as many tags as it can, which never leaves
    the remaining tags a worse start."""
    reads: list[Read] = []
    for table in areas_of(tags):
        in_table = sorted((t for t in tags if t.table == table), key=lambda t: (t.address, t.width))
        is_bits = table in BIT_TABLES
        limit = max_bits if is_bits else max_registers
        gap = max_gap * 16 if is_bits else max_gap
        cuts = sorted(a for t, a in breaks if t == table)
        current: list[AnyTag] = []
        start = end = 0
        for tag in in_table:
            tag_end = tag.address + tag.width
            if (
                current
                and tag.address - end <= gap
                and max(end, tag_end) - start <= limit
                and not _crosses(cuts, start, tag.address)
            ):
                current.append(tag)
                end = max(end, tag_end)
                continue
            if current:
                reads.append(Read(table, start, end - start, tuple(current)))
            current, start, end = [tag], tag.address, tag_end
        reads.append(Read(table, start, end - start, tuple(current)))
    return reads


def _crosses(cuts: list[int], start: int, address: int) -> bool:
    """Is there a break b with start < b <= address?"""
    i = bisect.bisect_right(cuts, start)
    return i < len(cuts) and cuts[i] <= address


def bisect_read(read: Read) -> tuple[int, list[Read], list[Read]] | None:
    """Split a refused read between two of its tags, at the middle distinct tag address.

    Returns (break address, left reads, right reads), or None when every tag of the read
    starts at one address and there is nothing left to split.
    """
    starts = sorted({t.address for t in read.tags})
    if len(starts) < 2:
        return None
    cut = starts[len(starts) // 2]
    left = [t for t in read.tags if t.address < cut]
    right = [t for t in read.tags if t.address >= cut]
    return cut, [_hull(read.table, left)], [_hull(read.table, right)]


def _hull(table: Area, tags: Sequence[AnyTag]) -> Read:
    ordered = tuple(sorted(tags, key=lambda t: (t.address, t.width)))
    start = ordered[0].address
    return Read(table, start, max(t.address + t.width for t in ordered) - start, ordered)


def min_reads(tags: Iterable[AnyTag], max_registers: int = 125, max_bits: int = 2000, max_gap: int = 8) -> int:
    """The fewest reads any plan can use under the same limits: an exact dynamic program
    over address-ordered tags, independent of the greedy planner (for tests and bench)."""
    total = 0
    tags = list(tags)
    for table in areas_of(tags):
        ordered = sorted((t for t in tags if t.table == table), key=lambda t: (t.address, t.width))
        is_bits = table in BIT_TABLES
        limit = max_bits if is_bits else max_registers
        gap = max_gap * 16 if is_bits else max_gap
        n = len(ordered)
        best = [0.0] + [math.inf] * n  # best[j]: fewest reads for the first j tags
        for j in range(1, n + 1):
            for i in range(j - 1, -1, -1):  # one read for ordered[i:j]
                if _group_fits(ordered[i:j], limit, gap):
                    best[j] = min(best[j], best[i] + 1)
                elif max(t.address + t.width for t in ordered[i:j]) - ordered[i].address > limit:
                    break
        total += int(best[n])
    return total


def fewest_reads(tags: Sequence[AnyTag], max_registers: int = 125, max_bits: int = 2000) -> tuple[int, int]:
    """The fewest reads the protocol's own limits allow (any gap inside one read), and the
    smallest ``max_gap`` with which the planner reaches it. ``gateway plan`` prints both, so a
    field engineer sees what a larger gap would save."""
    # the greedy planner is optimal (tests check it against min_reads) and, unlike the exact
    # program, fast for a 960-word MC read of hundreds of tags
    bound = len(plan_reads(tags, max_registers, max_bits, max_gap=max_registers))
    lo, hi = 0, max_registers  # the read count falls as the gap grows: search the smallest gap that reaches it
    while lo < hi:
        mid = (lo + hi) // 2
        if len(plan_reads(tags, max_registers, max_bits, mid)) <= bound:
            hi = mid
        else:
            lo = mid + 1
    return bound, lo


def fewest_requests(tags: Sequence[AnyTag], max_registers: int, max_bits: int, random_limit: int | None = None,
                    individual_limit: int | None = None) -> int:
    """With a random read (MC) or individual read (XGT): the requests the mixed planner needs under
    the protocol's own limits (any gap inside one batch read). Never more than the fewest batch
    reads; not a proven optimum of every mix (that search is exponential), the best this planner finds."""
    if random_limit is not None:
        return len(plan_with_random(tags, max_registers, max_bits, max_registers, random_limit))
    if individual_limit is not None:
        return len(plan_with_individual(tags, max_registers, max_bits, max_registers, individual_limit))
    return len(plan_reads(tags, max_registers, max_bits, max_registers))


def _group_fits(group: Sequence[AnyTag], limit: int, gap: int) -> bool:
    reach = group[0].address + group[0].width
    for t in group[1:]:
        if t.address - reach > gap:
            return False
        reach = max(reach, t.address + t.width)
    return reach - group[0].address <= limit


class DevicePlan:
    """The reads a device needs per due set of poll intervals, and what it has learned.

    Tags are grouped by poll interval; a cycle reads the tags whose interval is due, with
    one merged plan per due set (cached). When the device refuses a read with exception 2,
    ``refuse`` bisects it and remembers the cut, so later plans avoid the bad span;
    a lone tag that is still refused is set aside as unreadable.
    """

    def __init__(
        self,
        tags: Sequence[AnyTag],
        intervals: Sequence[float],
        max_registers: int = 125,
        max_bits: int = 2000,
        max_gap: int = 8,
        random_limit: int | None = None,
        individual_limit: int | None = None,
    ) -> None:
        """``random_limit``: points per random read, for a protocol that has one (MC);
        ``individual_limit``: variables per individual read (XGT); neither: batch reads only."""
        self.max_registers, self.max_bits, self.max_gap = max_registers, max_bits, max_gap
        self.random_limit, self.individual_limit = random_limit, individual_limit
        self.groups: dict[float, list[AnyTag]] = {}
        for tag, interval in zip(tags, intervals):
            self.groups.setdefault(interval, []).append(tag)
        self.breaks: set[tuple[Area, int]] = set()
        self.unreadable: dict[str, AnyTag] = {}
        self._cache: dict[frozenset[float], list[AnyRead]] = {}

    @property
    def intervals(self) -> list[float]:
        return sorted(self.groups)

    def reads_for(self, due: Collection[float]) -> list[AnyRead]:
        key = frozenset(due)
        if key not in self._cache:
            tags = [t for i in key for t in self.groups.get(i, ()) if t.name not in self.unreadable]
            self._cache[key] = self.plan(tags)
        return self._cache[key]

    def plan(self, tags: Sequence[AnyTag]) -> list[AnyRead]:
        if self.random_limit is not None:
            return plan_with_random(tags, self.max_registers, self.max_bits, self.max_gap, self.random_limit,
                                    self.breaks)
        if self.individual_limit is not None:
            return plan_with_individual(tags, self.max_registers, self.max_bits, self.max_gap, self.individual_limit,
                                        self.breaks)
        return list(plan_reads(tags, self.max_registers, self.max_bits, self.max_gap, self.breaks))

    def without_random(self, read: RandomRead) -> list[AnyRead]:
        """The device does not support random reads (e.g. MC end code C059 on an older CPU): plan
        batch reads from now on, and return the batch reads that replace ``read``."""
        self.random_limit = None
        self._cache.clear()
        return self.plan(read.tags)

    def fewer_random_points(self, read: RandomRead) -> None:
        """The device took fewer points than ``read`` had (MC C053/C054 on a CPU with a smaller limit
        than the manual's): plan random reads of at most half as many from now on."""
        if self.random_limit is not None and read.points > 1:
            self.random_limit = min(self.random_limit, read.points // 2)
            self._cache.clear()

    def refuse(self, read: AnyRead) -> list[AnyRead]:
        """The device answered ``read`` with illegal data address: return the reads to try
        instead (empty when the read held one address, whose tags become unreadable). A random
        read or an XGT individual read is split between its tags (its points are scattered: no cut
        to remember)."""
        self._cache.clear()
        if isinstance(read, RandomRead | IndividualRead):
            if len(read.tags) > 1:
                half = len(read.tags) // 2
                if isinstance(read, IndividualRead):
                    return [individual_read(read.size, read.tags[:half]), individual_read(read.size, read.tags[half:])]
                return [random_read(read.tags[:half]), random_read(read.tags[half:])]
            for t in read.tags:
                self.unreadable[t.name] = t
            return []
        split = bisect_read(read)
        if split is None:
            for t in read.tags:
                self.unreadable[t.name] = t
            return []
        cut, left, right = split
        self.breaks.add((read.table, cut))
        return [*left, *right]

    def cut_checks(
        self, cuts: Collection[tuple[Area, int]], done: Sequence[AnyRead]
    ) -> list[tuple[tuple[Area, int], int, int]]:
        """For new cuts, the gap [lo, hi) each one guards: the addresses between the good
        reads on either side of it. Bisection leaves a cut at every level, but only a cut
        whose gap is refused isolates a bad address; the others cost a read per cycle for
        nothing. An empty gap (hi == lo) means the cut is unneeded outright. Cuts without a
        good read on both sides, or with a gap longer than one read, are not offered."""
        checks = []
        for table, cut in sorted(cuts, key=lambda c: (_area_order(c[0]), c[1])):
            same = [r for r in done if isinstance(r, Read) and r.table == table]
            left = max((r for r in same if r.address + r.count <= cut), key=lambda r: r.address + r.count, default=None)
            right = min((r for r in same if r.address >= cut), key=lambda r: r.address, default=None)
            if left is None or right is None:
                continue
            lo, hi = left.address + left.count, right.address
            if hi - lo <= (self.max_bits if table in BIT_TABLES else self.max_registers):
                checks.append(((table, cut), lo, hi))
        return checks

    def drop_break(self, cut: tuple[Area, int]) -> None:
        """A cut turned out unnecessary: the addresses across it answer."""
        self.breaks.discard(cut)
        self._cache.clear()

    def forgive(self) -> None:
        """Forget what was learned, e.g. after the device's program changed (reconnect)."""
        self.breaks.clear()
        self.unreadable.clear()
        self._cache.clear()
