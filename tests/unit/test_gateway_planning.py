"""DevicePlan: per-interval plans, bisecting refused reads, remembering the cuts; the
exact lower bound; report-by-exception; backoff and schedule arithmetic."""

from __future__ import annotations

import random

from gateway.planner import DevicePlan, bisect_read, min_reads, plan_reads
from gateway.poller import backoff_s, next_slot
from gateway.reporting import ChangeFilter
from gateway.settings import PolledTag
from registermap import Table, Tag

HR = Table.holding_register


def reg(a, name=None, **kw):
    return PolledTag(name=name or f"r{a}", table=HR, address=a, **kw)


def test_breaks_split_reads_at_the_cut():
    tags = [reg(a) for a in range(10)]
    assert [(r.address, r.count) for r in plan_reads(tags, breaks={(HR, 4)})] == [(0, 4), (4, 6)]
    # a break in another table does nothing here
    assert len(plan_reads(tags, breaks={(Table.input_register, 4)})) == 1


def test_bisect_splits_between_tags_at_the_middle_address():
    (read,) = plan_reads([reg(0), reg(1, type="float32"), reg(10), reg(11)], max_gap=20)
    cut, left, right = bisect_read(read)
    assert cut == 10
    assert [(r.address, r.count) for r in left + right] == [(0, 3), (10, 2)]
    (single,) = plan_reads([reg(5), reg(5, name="same_address")])
    assert bisect_read(single) is None


def simulate_device(plan: DevicePlan, bad: set[int], due):
    """Run one cycle against a device refusing any read that touches ``bad``; returns
    (requests sent, tags read)."""
    pending = list(plan.reads_for(due))
    requests, got, done = 0, set(), []
    before = set(plan.breaks)
    while pending:
        r = pending.pop(0)
        requests += 1
        if any(r.address <= b < r.address + r.count for b in bad):
            pending[:0] = plan.refuse(r)
            continue
        done.append(r)
        got |= {t.name for t in r.tags}
    for cut, lo, hi in plan.cut_checks(plan.breaks - before, done):  # what the poller does
        if hi > lo:
            requests += 1
            if any(lo <= b < hi for b in bad):
                continue
        plan.drop_break(cut)
    return requests, got


def test_one_bad_address_does_not_blind_the_rest_and_is_learned():
    tags = [reg(a) for a in range(0, 64, 2)]  # 32 tags at even addresses, gaps of 1
    plan = DevicePlan(tags, [1.0] * len(tags), max_gap=4)
    assert len(plan.reads_for([1.0])) == 1
    first_requests, got = simulate_device(plan, bad={21}, due=[1.0])  # a gap register
    assert got == {t.name for t in tags}  # every tag still read
    assert first_requests > 1 and not plan.unreadable
    second_requests, got2 = simulate_device(plan, bad={21}, due=[1.0])
    assert got2 == got
    # only the cut that isolates the bad register is kept: two reads from now on, the fewest
    # possible without reading register 21
    assert plan.breaks == {(HR, 22)}
    assert second_requests == len(plan.reads_for([1.0])) == 2
    assert second_requests < first_requests


def test_a_refused_tag_is_set_aside_and_the_others_still_read():
    tags = [reg(a) for a in range(8)]
    plan = DevicePlan(tags, [1.0] * 8)
    _, got = simulate_device(plan, bad={3}, due=[1.0])
    assert got == {t.name for t in tags} - {"r3"}
    assert set(plan.unreadable) == {"r3"}
    requests, got = simulate_device(plan, bad={3}, due=[1.0])
    assert "r3" not in got and requests == len(plan.reads_for([1.0]))
    plan.forgive()
    assert not plan.unreadable and not plan.breaks


def test_reads_per_due_set_of_intervals():
    tags = [reg(0), reg(1), reg(2, poll_interval_s=10), reg(3, poll_interval_s=10)]
    plan = DevicePlan(tags, [1, 1, 10, 10])
    assert [(r.address, r.count) for r in plan.reads_for([1])] == [(0, 2)]
    assert [(r.address, r.count) for r in plan.reads_for([10])] == [(2, 2)]
    assert [(r.address, r.count) for r in plan.reads_for([1, 10])] == [(0, 4)]


def test_greedy_matches_the_exact_lower_bound_on_random_maps():
    rng = random.Random(7)
    for _ in range(200):
        tags, a = [], rng.randint(0, 50)
        for i in range(rng.randint(1, 60)):
            a += rng.randint(0, 15)
            t = Tag(name=f"t{i}", table=rng.choice([HR, Table.input_register]), address=a,
                    type=rng.choice(["uint16", "float32", "float64"]))
            tags.append(t)
            a += t.width
        limit, gap = rng.randint(10, 125), rng.randint(0, 12)
        assert len(plan_reads(tags, limit, 2000, gap)) == min_reads(tags, limit, 2000, gap)


def test_change_filter_deadbands_and_heartbeat():
    tags = [
        reg(0, "abs", report="on_change", deadband=0.5),
        reg(1, "pct", report="on_change", deadband_percent=10, max_silence_s=60),
        reg(2, "any", report="on_change"),
        reg(3, "always"),
    ]
    f = ChangeFilter(tags)
    assert f.select(0, {"abs": 10.0, "pct": 100.0, "any": 1, "always": 5}) == {
        "abs": 10.0, "pct": 100.0, "any": 1, "always": 5}
    assert f.select(1000, {"abs": 10.4, "pct": 109.0, "any": 1, "always": 5}) == {"always": 5}
    assert f.select(2000, {"abs": 10.5, "pct": 110.0, "any": 2, "always": 5}) == {
        "abs": 10.5, "pct": 110.0, "any": 2, "always": 5}
    # slow drift is measured against the last *sent* value, not the last polled one
    assert "abs" not in f.select(3000, {"abs": 10.8})
    assert "abs" in f.select(4000, {"abs": 11.0})
    # heartbeat after 60 s of silence even without change
    assert f.select(61_999, {"pct": 110.0}) == {}
    assert f.select(62_000, {"pct": 110.0}) == {"pct": 110.0}


def test_backoff_doubles_from_the_interval_and_is_capped():
    assert [backoff_s(1.0, n, 30) for n in (1, 2, 3, 4, 5, 6, 50)] == [1, 2, 4, 8, 16, 30, 30]


def test_next_slot_skips_missed_slots_without_drift():
    assert next_slot(10.0, 1.0, 10.5) == 11.0
    assert next_slot(10.0, 1.0, 13.2) == 14.0  # 11, 12, 13 missed: not bunched


def test_learning_converges_on_random_maps_and_bad_addresses():
    rng = random.Random(11)
    for _ in range(150):
        tags, a = [], 0
        for i in range(rng.randint(1, 40)):
            a += rng.randint(0, 6)
            t = PolledTag(name=f"t{i}", table=HR, address=a, type=rng.choice(["uint16", "float32"]))
            tags.append(t)
            a += t.width
        bad = set(rng.sample(range(a + 5), rng.randint(0, 3)))
        plan = DevicePlan(tags, [1.0] * len(tags), max_registers=rng.randint(10, 125), max_gap=rng.randint(0, 10))
        readable = {t.name for t in tags if not any(t.address <= b < t.address + t.width for b in bad)}
        for _ in range(3):
            _, got = simulate_device(plan, bad, [1.0])
            assert got == readable  # never blinded: every readable tag, every cycle
        requests, got = simulate_device(plan, bad, [1.0])
        assert requests == len(plan.reads_for([1.0]))  # learned: no refusals any more
        assert set(plan.unreadable) == {t.name for t in tags} - readable
        # and as few reads as any plan that never touches a bad address
        optimum, group = 0, []
        for t in sorted((t for t in tags if t.name in readable), key=lambda t: t.address):
            if group and any(group[-1].address < b < t.address + t.width for b in bad):
                optimum += min_reads(group, plan.max_registers, 2000, plan.max_gap)
                group = []
            group.append(t)
        optimum += min_reads(group, plan.max_registers, 2000, plan.max_gap) if group else 0
        assert requests == optimum


# -- random reads (MC 0x0403) -----------------------------------------------------------------
def mc_tags(*specs):
    from registermap import McTag

    return [McTag(name=f"t{i}", device=d, **kw) for i, (d, kw) in enumerate((s if isinstance(s, tuple) else (s, {}))
                                                                          for s in specs)]


def test_neighbouring_words_become_one_double_word_point():
    from gateway.planner import random_points

    words, dwords = random_points(mc_tags("D0", "D1", "D2", ("D10", {"type": "float32"}), "M17", "M18"))
    assert dwords == [("D", 0), ("D", 10)]
    assert words == [("D", 2), ("M", 1)]  # M17 and M18 share word 1 of M: one point


def test_scattered_tags_of_several_device_kinds_go_into_one_random_read():
    from gateway.planner import RandomRead, plan_with_random

    tags = mc_tags("D100", "D5000", "W1A0", "R30000", "M900", "X1F")
    batch = plan_reads(tags, 960, 2000, 959)
    plan = plan_with_random(tags, 960, 2000, 959, 192)
    assert len(batch) == 6
    assert len(plan) == 1 and isinstance(plan[0], RandomRead) and plan[0].points == 6
    assert {t.name for t in plan[0].tags} == {t.name for t in tags}


def test_dense_areas_keep_their_batch_read_and_only_the_scattered_rest_goes_random():
    from gateway.planner import RandomRead, Read, plan_with_random

    tags = mc_tags(*[f"D{a}" for a in range(500)], *[f"R{1000 * i}" for i in range(30)])
    plan = plan_with_random(tags, 960, 2000, 959, 192)
    kinds = [(type(r).__name__, len(r.tags)) for r in plan]
    assert kinds == [("Read", 500), ("RandomRead", 30)]
    assert isinstance(plan[0], Read) and (plan[0].table, plan[0].address, plan[0].count) == ("D", 0, 500)
    assert isinstance(plan[1], RandomRead)


def test_random_reads_keep_to_the_per_request_point_limit():
    from gateway.planner import RandomRead, fewest_requests, plan_with_random

    tags = mc_tags(*[f"D{1000 * i}" for i in range(12)], *[f"R{1000 * i}" for i in range(30)],
                   *[f"ZR{1000 * i}" for i in range(60)], *[(f"W{0x400 * i:X}", {"type": "int32"}) for i in range(8)])
    plan = plan_with_random(tags, 960, 2000, 959, 20)
    assert all(isinstance(r, RandomRead) and r.points <= 20 for r in plan)
    assert sorted(t.name for r in plan for t in r.tags) == sorted(t.name for t in tags)
    assert len(plan) == 6 == fewest_requests(tags, 960, 2000, 20)  # 110 points, 20 a request
    assert len(plan_reads(tags, 960, 2000, 959)) == 110


def test_random_reads_are_not_used_where_they_do_not_save_a_request():
    from gateway.planner import Read, plan_with_random

    tags = mc_tags("D0", "D1", "D500")  # one batch read covers all three
    assert all(isinstance(r, Read) for r in plan_with_random(tags, 960, 2000, 959, 192))
    assert len(plan_with_random(tags, 960, 2000, 959, 192)) == 1


def test_a_device_without_random_read_falls_back_to_batch_reads_for_good():
    from gateway.planner import RandomRead

    tags = mc_tags("D100", "D5000", "W1A0", "M900")
    plan = DevicePlan(tags, [1.0] * 4, 960, 2000, 959, random_limit=192)
    (read,) = plan.reads_for([1.0])
    assert isinstance(read, RandomRead)
    instead = plan.without_random(read)
    assert len(instead) == 4 and not any(isinstance(r, RandomRead) for r in instead)
    plan.forgive()  # relearning refused addresses does not bring random reads back
    assert len(plan.reads_for([1.0])) == 4 and plan.random_limit is None


def test_a_refused_random_read_is_split_between_its_tags_until_the_bad_one_is_set_aside():
    from gateway.planner import RandomRead

    tags = mc_tags("D100", "D5000", "W1A0", "M900")
    plan = DevicePlan(tags, [1.0] * 4, 960, 2000, 959, random_limit=192)
    pending, requests = list(plan.reads_for([1.0])), 0
    while pending:
        r = pending.pop(0)
        requests += 1
        assert isinstance(r, RandomRead)
        if any(t.device == "D5000" for t in r.tags):
            pending[:0] = plan.refuse(r)
    assert set(plan.unreadable) == {"t1"}
    assert requests <= 1 + 2 * 2  # log2(4) levels of two halves
    (again,) = plan.reads_for([1.0])
    assert isinstance(again, RandomRead) and {t.name for t in again.tags} == {"t0", "t2", "t3"}


def test_a_cpu_with_a_smaller_random_read_limit_gets_smaller_random_reads_from_then_on():
    from gateway.planner import RandomRead

    tags = mc_tags(*[f"D{100 * i}" for i in range(40)])
    plan = DevicePlan(tags, [1.0] * 40, 960, 2000, 959, random_limit=192)
    (read,) = plan.reads_for([1.0])
    assert isinstance(read, RandomRead) and read.points == 40
    plan.fewer_random_points(read)  # answered C054
    again = plan.reads_for([1.0])
    assert plan.random_limit == 20 and len(again) == 2
    assert all(isinstance(r, RandomRead) and r.points <= 20 for r in again)


def test_random_read_plans_never_take_more_requests_and_cover_every_tag_word():
    import random as rnd

    from gateway.planner import RandomRead, plan_with_random

    rng = rnd.Random(7)
    for _ in range(40):
        specs = []
        for _ in range(rng.randrange(1, 120)):
            kind = rng.choice(["D", "R", "W", "M", "X"])
            number = rng.choice([rng.randrange(0, 64), rng.randrange(0, 8000)])
            typ = {} if kind in "MX" else rng.choice([{}, {"type": "float32"}, {"type": "string", "length": 3}])
            specs.append((f"{kind}{number:X}" if kind in "WX" else f"{kind}{number}", typ))
        tags = mc_tags(*specs)
        limit = rng.choice([4, 20, 192])
        plan = plan_with_random(tags, 960, 2000, 959, limit)
        assert len(plan) <= len(plan_reads(tags, 960, 2000, 959))
        assert sorted(t.name for r in plan for t in r.tags) == sorted(t.name for t in tags)
        for r in plan:
            if isinstance(r, RandomRead):
                assert r.points <= limit
                covered = set(r.words) | set(r.dwords) | {(a, w + 1) for a, w in r.dwords}
                assert all((t.table, w) in covered for t in r.tags for w in range(t.address, t.address + t.width))


# -- XGT: block reads and individual reads ------------------------------------------------------
def xgt_tags(*specs):
    from registermap import XgtTag

    return [XgtTag(name=f"x{i}", variable=v, **kw) for i, (v, kw) in enumerate((s if isinstance(s, tuple) else (s, {}))
                                                                            for s in specs)]


def test_scattered_xgt_variables_go_into_individual_reads_of_16_and_dense_areas_keep_a_block_read():
    from gateway.planner import IndividualRead, Read, fewest_requests, plan_with_individual

    tags = xgt_tags(*[f"%DW{a}" for a in range(300)], *[f"%MW{1000 * i}" for i in range(20)],
                    *[f"%RW{900 * i}" for i in range(12)])
    plan = plan_with_individual(tags, 700, 2000, 699, 16)
    blocks = [r for r in plan if isinstance(r, Read)]
    individual = [r for r in plan if isinstance(r, IndividualRead)]
    assert [(r.table, r.address, r.count) for r in blocks] == [("D", 0, 300)]
    assert len(individual) == 2 and all(r.size == "W" and len(r.points) <= 16 for r in individual)  # 32 words
    assert sorted(t.name for r in plan for t in r.tags) == sorted(t.name for t in tags)
    assert len(plan) == 3 == fewest_requests(tags, 700, 2000, individual_limit=16)
    assert len(plan_reads(tags, 700, 2000, 699)) == 1 + 20 + 12  # M and R variables 900+ words apart, 700 a read


def test_individual_reads_replace_block_reads_only_where_they_save_a_request():
    from gateway.planner import Read, plan_with_individual

    tags = xgt_tags("%MW0", "%MW1", "%MW600", "%DW5")  # one block read an area: 2, as individual reads 1
    plan = plan_with_individual(tags, 700, 2000, 699, 16)
    assert len(plan) == 1
    dense = xgt_tags(*[f"%DW{a}" for a in range(40)])
    assert [type(r) for r in plan_with_individual(dense, 700, 2000, 699, 16)] == [Read]


def test_an_individual_read_holds_one_size_and_double_words_go_as_words_when_that_saves_a_request():
    from gateway.planner import IndividualRead, pack_individual

    few_dwords = xgt_tags(*[f"%MW{100 * i}" for i in range(10)], *[(f"%DD{500 * i}", {"type": "float32"})
                                                                    for i in range(3)])
    (read,) = pack_individual(few_dwords, 16)  # 10 + 2 * 3 = 16 words: one request, not a W and a D one
    assert isinstance(read, IndividualRead) and read.size == "W" and len(read.points) == 16
    many_dwords = xgt_tags(*[(f"%DD{500 * i}", {"type": "float32"}) for i in range(16)], "%MW3")
    reads = pack_individual(many_dwords, 16)  # 16 D variables + 1 W: 2 requests (as words: 33, 3 requests)
    assert sorted((r.size, len(r.points)) for r in reads) == [("D", 16), ("W", 1)]
    (dread,) = [r for r in reads if r.size == "D"]
    assert dread.points[1] == ("D", 1000)  # %DD500 starts at word 1000
    bits = xgt_tags("%MX16", "%MX17", "%MW10.A", "%PX3")  # bits are read as their words: %MW1, %MW10, %PW0
    (bread,) = pack_individual(bits, 16)
    assert bread.size == "W" and bread.points == (("M", 1), ("M", 10), ("P", 0))


def test_a_refused_individual_read_is_split_until_the_one_bad_variable_is_set_aside():
    from gateway.planner import IndividualRead

    tags = xgt_tags("%MW100", "%DW5000", "%PW10", "%RW900", "%KW30")
    plan = DevicePlan(tags, [1.0] * 5, 700, 2000, 699, individual_limit=16)
    pending, requests = list(plan.reads_for([1.0])), 0
    assert len(pending) == 1 and isinstance(pending[0], IndividualRead)
    while pending:
        r = pending.pop(0)
        requests += 1
        assert isinstance(r, IndividualRead)
        if any(t.variable == "%DW5000" for t in r.tags):
            pending[:0] = plan.refuse(r)
    assert set(plan.unreadable) == {"x1"}
    assert requests <= 1 + 2 * 3  # ceil(log2(5)) levels of two halves
    (again,) = plan.reads_for([1.0])
    assert isinstance(again, IndividualRead) and {t.name for t in again.tags} == {"x0", "x2", "x3", "x4"}
