"""The collector's per-tenant admission: unknown machines, tag names per machine, messages per second
per tenant; refusals go to the dead letters (acknowledged only once there) and to /metrics; the machine
list survives a plant database outage. The real broker and collector process are in
tests/integration/test_collector_limits.py."""

from __future__ import annotations

import json

from collector.admission import RATE_LIMITED, TOO_MANY_TAGS, UNKNOWN_MACHINE, UNKNOWN_TENANT, Admission
from collector.ledger import read_dead_letters
from collector.machines import CACHE_NAME, MachineDirectory
from collector.service import Collector
from plant import MachineRef
from tests.unit.test_collector_service import T0, make_collector, run_threads, stop_threads
from tests.waiting import wait_until
from wire import encode_telemetry, telemetry_topic

A1 = MachineRef("acme", "plant-1", "line-a", "press-1")
A2 = MachineRef("acme", "plant-1", "line-a", "press-2")
B1 = MachineRef("bravo", "s1", "l1", "cnc-1")
GHOST = MachineRef("acme", "plant-1", "line-a", "ghost-7")


def policy(**kw) -> Admission:
    a = Admission(kw.pop("tags", 3), kw.pop("rate", 10.0), kw.pop("burst_s", 2.0), **kw)
    a.set_machines({A1, A2, B1})
    return a


def test_a_machine_outside_the_plant_model_is_refused_with_its_own_reason():
    a = policy()
    assert a.check(A1, ["x"], 0.0) is None
    r = a.check(GHOST, ["x"], 0.0)
    assert r.reason == UNKNOWN_MACHINE and r.tenant == "acme" and "ghost-7" in r.detail
    r = a.check(MachineRef("nobody", "s", "l", "m"), ["x"], 0.0)
    assert r.reason == UNKNOWN_MACHINE and r.tenant == UNKNOWN_TENANT  # no label per invented tenant


def test_accept_switch_and_no_list_let_unknown_machines_through():
    assert policy(accept_unknown_machines=True).check(GHOST, ["x"], 0.0) is None
    a = Admission(3, 10.0, 2.0)
    a.set_machines(None)
    assert a.check(GHOST, ["x"], 0.0) is None


def test_tag_names_per_machine_are_bounded_and_known_ones_stay_accepted():
    a = policy(tags=3)
    assert a.check(A1, ["a", "b"], 0.0) is None
    assert a.check(A1, ["a", "c"], 0.0) is None  # 3 names now
    r = a.check(A1, ["a", "d"], 0.0)
    assert r.reason == TOO_MANY_TAGS and "'d'" not in r.detail and "d" in r.detail
    assert a.check(A1, ["a", "b", "c"], 0.0) is None  # the machine's own tags still flow
    assert a.check(A2, ["d", "e", "f"], 0.0) is None  # the bound is per machine


def test_a_tenant_over_its_rate_is_refused_while_another_tenant_is_not():
    a = policy(rate=10.0, burst_s=2.0)  # 20 at once, then 10 per second
    results = [a.check(A1, ["x"], 0.0) for _ in range(25)]
    assert results[:20] == [None] * 20
    assert all(r is not None and r.reason == RATE_LIMITED for r in results[20:])
    assert a.check(B1, ["x"], 0.0) is None  # bravo is not punished for acme's flood
    assert a.check(A1, ["x"], 0.05).reason == RATE_LIMITED  # 0.5 tokens refilled: not yet a message
    later = [a.check(A1, ["x"], 0.65) for _ in range(7)]  # 0.5 + 0.6 s x 10/s = 6.5 tokens: 6 messages
    assert later[:6] == [None] * 6 and later[6].reason == RATE_LIMITED


def test_refusals_are_dead_lettered_before_they_are_acked_and_counted_by_reason_and_tenant(tmp_path):
    c, store, link, _events = make_collector(tmp_path, max_tags_per_machine=2)
    c.admission.set_machines({A1, B1})
    letters_at_ack: dict[int, set[str]] = {}
    ack = link.ack

    def checked_ack(mid: int, qos: int) -> None:  # what the dead letters hold when each message is acked
        letters_at_ack[mid] = {d.topic + "#" + d.reason for d in read_dead_letters(tmp_path)}
        ack(mid, qos)

    link.ack = checked_ack  # type: ignore[method-assign]
    run_threads(c)
    msgs = [(A1, {"a": 1}), (GHOST, {"a": 1}), (A1, {"b": 1, "c": 2}), (B1, {"z": 1})]
    for i, (m, values) in enumerate(msgs):
        c.handle_message(telemetry_topic(m), encode_telemetry(m, [(T0 + i, values)]), i + 1, 1)
    wait_until(lambda: len(link.acked) == 4, 10, "4 acks")
    stop_threads(c)
    letters = read_dead_letters(tmp_path)
    assert sorted(d.reason for d in letters) == [TOO_MANY_TAGS, UNKNOWN_MACHINE]
    assert telemetry_topic(GHOST) + "#" + UNKNOWN_MACHINE in letters_at_ack[2]  # committed, then acked
    assert telemetry_topic(A1) + "#" + TOO_MANY_TAGS in letters_at_ack[3]
    assert [(p.machine, p.ts_ms) for p in store.points] == [(A1, T0), (B1, T0 + 3)]
    reg = c.metrics.registry
    assert reg.get_sample_value("collector_refused_messages_total", {"reason": UNKNOWN_MACHINE, "tenant": "acme"}) == 1
    assert reg.get_sample_value("collector_refused_messages_total", {"reason": TOO_MANY_TAGS, "tenant": "acme"}) == 1
    assert c.counters["written"] == 2


class FlakyPlant:
    def __init__(self, machines) -> None:
        self.machines, self.up, self.calls = frozenset(machines), True, 0

    def __call__(self):
        self.calls += 1
        if not self.up:
            raise ConnectionError("plant database down")
        return self.machines


def test_the_machine_list_survives_a_database_outage_and_a_restart(tmp_path):
    plant = FlakyPlant({A1})
    seen: list = []
    d = MachineDirectory(plant, tmp_path, 3600, on_change=seen.append)
    d.start()
    wait_until(d.ready.is_set, 10, "first load")
    assert d.machines == {A1}
    assert json.loads((tmp_path / CACHE_NAME).read_text()) == [["acme", "plant-1", "line-a", "press-1"]]
    plant.up = False
    assert d.refresh() is False and d.machines == {A1}  # known machines keep flowing
    plant.machines, plant.up = frozenset({A1, A2}), True
    assert d.refresh() is True and d.machines == {A1, A2} and seen[-1] == {A1, A2}  # a machine added in the UI
    d.stop()
    plant.up = False  # restart while the database is down: the cached list is used at once
    again = MachineDirectory(plant, tmp_path, 3600, on_change=lambda m: None)
    again.start()
    assert again.ready.is_set() and again.machines == {A1, A2}
    again.stop()


def test_without_any_list_the_collector_does_not_subscribe(tmp_path):
    plant = FlakyPlant({A1})
    plant.up = False
    c, *_ = make_collector(tmp_path / "c", plant_refresh_s=1)
    real = Collector(c.settings, c.mqtt_settings, c.store, data_dir=tmp_path / "c2", machine_list=plant)
    connects: list = []
    real._connect = lambda: connects.append(1)  # type: ignore[method-assign]
    real.start(serve_metrics=False)
    try:
        wait_until(lambda: plant.calls >= 2, 10, "two load attempts")
        assert connects == [] and not real.machines.ready.is_set()
        plant.up = True
        wait_until(lambda: connects == [1], 10, "connects once the plant model answers")
    finally:
        real.stop()


def test_the_tag_limit_holds_across_a_restart(tmp_path):
    c, store, link, _ = make_collector(tmp_path, max_tags_per_machine=2)
    run_threads(c)
    c.handle_message(telemetry_topic(A1), encode_telemetry(A1, [(T0, {"a": 1, "b": 2})]), 1, 1)
    wait_until(lambda: link.acked == [1], 10, "ack")
    stop_threads(c)
    c._tag_log.close()
    again, store, link, _ = make_collector(tmp_path, max_tags_per_machine=2)  # same data dir: a restart
    run_threads(again)
    again.handle_message(telemetry_topic(A1), encode_telemetry(A1, [(T0 + 1, {"c": 3})]), 1, 1)
    again.handle_message(telemetry_topic(A1), encode_telemetry(A1, [(T0 + 2, {"a": 4, "b": 5})]), 2, 1)
    wait_until(lambda: link.acked == [1, 2], 10, "acks")
    stop_threads(again)
    assert [d.reason for d in read_dead_letters(tmp_path)] == [TOO_MANY_TAGS]
    assert [p.ts_ms for p in store.points] == [T0 + 2]
