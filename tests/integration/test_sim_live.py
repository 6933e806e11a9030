"""Live mode through a real pymodbus client: ``smartfactory simulate SCENARIO`` as a process.

- the ground truth the simulator writes matches what the registers showed;
- backfill of the same span agrees with what live mode served.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import yaml
from pymodbus.client import ModbusTcpClient

from plant.states import MachineState
from registermap import Table, decode
from simulators.backfill import backfill
from simulators.groundtruth import load_truth_arrays
from simulators.scenario import load_scenario, resolve_scenario_path
from tests.servers import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

SPEED = 600.0  # 10 simulated minutes per second
START = "2026-03-03T09:00:00+09:00"  # a Tuesday morning shift, after the rollout
READS_PER_MACHINE = 200  # at least; reading goes on until the run spans MIN_SIM_SPAN_S
MIN_SIM_SPAN_S = 11 * 60  # simulated seconds, so the run crosses several cycles and states


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    """Serve two presses of the press line at 600x, read them through pymodbus, stop."""
    tmp = tmp_path_factory.mktemp("simlive")
    data = yaml.safe_load(resolve_scenario_path("autoparts_press_line").read_text())
    machines = [m for m in data["lines"][0]["machines"] if m["name"] in ("press-2", "press-3")]
    for m in machines:
        m["port"] = free_port()
    data["lines"][0]["machines"] = machines
    scenario_path = tmp / "scenario.yaml"
    scenario_path.write_text(yaml.safe_dump(data, sort_keys=False))
    served, truth = tmp / "served.jsonl", tmp / "truth"
    argv = [sys.executable, "-m", "cli.main", "simulate", str(scenario_path), "--speed", str(SPEED),
            "--start", START, "--served-log", str(served), "--truth", str(truth)]
    log = open(tmp / "simulate.out", "w")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    scenario = load_scenario(scenario_path)
    sims = scenario.machines()
    reads: dict[str, list[dict]] = {m.ref.machine: [] for m in sims}
    try:
        for m in sims:
            wait_until(lambda: _listening(m.port) or proc.poll() is not None, 30, f"{m.ref.machine} listening")
        assert proc.poll() is None, (tmp / "simulate.out").read_text()
        clients = {m.ref.machine: ModbusTcpClient("127.0.0.1", port=m.port, timeout=3) for m in sims}
        for c in clients.values():
            assert c.connect()
        hr_count = {m.ref.machine: max(t.address + t.width for t in m.tags if t.table is Table.holding_register)
                    for m in sims}
        started = time.monotonic()
        # a fast machine does 200 reads in well under a second: keep reading until the
        # accelerated clock has covered the span the assertions below rely on
        while (len(reads[sims[0].ref.machine]) < READS_PER_MACHINE
               or (time.monotonic() - started) * SPEED < MIN_SIM_SPAN_S):
            for m in sims:
                name = m.ref.machine
                hr = clients[name].read_holding_registers(0, count=hr_count[name], device_id=m.unit_id)
                coils = clients[name].read_coils(0, count=1, device_id=m.unit_id)
                assert not hr.isError() and not coils.isError()
                reads[name].append({"hr": list(hr.registers), "coil": bool(coils.bits[0])})
        for c in clients.values():
            c.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(60)
        log.close()
    assert proc.returncode == 0, (tmp / "simulate.out").read_text()[-3000:]
    records = [json.loads(line) for line in served.read_text().splitlines()]
    return scenario, sims, reads, records, truth


def _served(records: list[dict], machine: str, table: Table) -> list[dict]:
    return [r for r in records if r["machine"] == machine and r["table"] == table.value]


def test_every_register_read_is_what_was_served(live_run):
    _, sims, reads, records, _ = live_run
    for m in sims:
        name = m.ref.machine
        hr = _served(records, name, Table.holding_register)
        assert len(hr) == len(reads[name]) >= READS_PER_MACHINE
        assert [r["registers"] for r in hr] == [r["hr"] for r in reads[name]]


def test_ground_truth_matches_what_the_registers_showed(live_run):
    """Every value the client read, against the truth file alone (not the model's code)."""
    scenario, sims, reads, records, truth_dir = live_run
    doc = json.loads((truth_dir / "ground_truth.json").read_text())
    t_from, t_to = doc["range_s"]
    assert t_to - t_from > 10 * 60  # the truth covers the run: at least ten simulated minutes
    seen_states = set()
    for m in sims:
        name = m.ref.machine
        entry = next(e for e in doc["machines"] if e["machine"] == name)
        arrays = load_truth_arrays(truth_dir / entry["file"])
        tags = {t.name: t for t in m.tags}
        hr_records = _served(records, name, Table.holding_register)
        coil_records = _served(records, name, Table.coil)
        good_ends = arrays["cycle_end_s"][arrays["good"].astype(bool)]
        restarts = entry["restart_counts"]
        for read, rec, coil_rec in zip(reads[name], hr_records, coil_records):
            t = rec["sim_s"]
            assert t_from <= t < t_to
            regs = read["hr"]
            value = {n: decode(tag, regs[tag.address: tag.address + tag.width])
                     for n, tag in tags.items() if tag.table is Table.holding_register}
            i = np.searchsorted(arrays["state_start_s"], t, side="right") - 1
            assert value["state"] == arrays["state_code"][i], f"{name} at {t}"
            seen_states.add(value["state"])
            # the part counter: good parts completed per the truth since the last PLC
            # restart (or from the initial count), modulo 2^16
            good_abs = entry["good_before"] + int(np.searchsorted(good_ends, t, side="right"))
            before = [r for r in restarts if r[0] <= t]
            base = before[-1][1] if before else -entry["initial_good_count"]
            assert value["good_count"] == (good_abs - base) % 65536, f"{name} at {t}"
            # the material-input coil is on exactly while the truth says LOADING
            j = np.searchsorted(arrays["state_start_s"], coil_rec["sim_s"], side="right") - 1
            assert read["coil"] == (arrays["state_code"][j] == MachineState.LOADING)
            assert all(np.isfinite(value[n]) for n in ("press_force", "oil_temp", "hydraulic_pressure"))
    assert {MachineState.PROCESSING, MachineState.LOADING} <= seen_states
    # press-2 restarted before the window: its counter counts from that restart
    assert any(e["restart_counts"] and e["restart_counts"][0][0] < t_from for e in doc["machines"])


def test_backfill_and_live_agree(live_run, tmp_path):
    """The same span backfilled into a store: state occupancy and parts made agree with
    what live mode served to the pymodbus client."""
    scenario, sims, reads, records, truth_dir = live_run
    doc = json.loads((truth_dir / "ground_truth.json").read_text())
    t_from, t_to = doc["range_s"]
    from tsstore.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "bf.db")
    backfill(scenario, float(np.floor(t_from)), float(np.ceil(t_to)),
             lambda m, cols: store.write_columns(m.ref, cols))
    for m in sims:
        name = m.ref.machine
        hr_records = _served(records, name, Table.holding_register)
        live_t = np.array([r["sim_s"] for r in hr_records])
        state_tag = next(t for t in m.tags if t.name == "state")
        live_states = np.array([decode(state_tag, r["hr"][0:1]) for r in reads[name]])
        points = store.history(m.ref, "state", int(np.floor(t_from)) * 1000, int(np.ceil(t_to)) * 1000, 0)
        ts = np.array([p[0] for p in points]) / 1000.0
        vals = np.array([p[1] for p in points])
        # the store's step function at each live read: the same state except near transitions
        held = vals[np.searchsorted(ts, live_t, side="right") - 1]
        assert np.mean(held == live_states) > 0.85
        # time-weighted occupancy from the store vs the share of live reads, per state
        durations = np.diff(np.append(ts, t_to))
        for state in (MachineState.PROCESSING, MachineState.LOADING, MachineState.IDLE):
            stored_share = durations[vals == state].sum() / durations.sum()
            live_share = np.mean(live_states == state)
            assert abs(stored_share - live_share) < 0.1, (name, state.name, stored_share, live_share)
        # parts made across the window
        good = store.history(m.ref, "good_count", int(np.floor(t_from)) * 1000, int(np.ceil(t_to)) * 1000, 0)
        g_ts = np.array([p[0] for p in good]) / 1000.0
        g_vals = np.array([p[1] for p in good])
        count_tag = next(t for t in m.tags if t.name == "good_count")
        live_first, live_last = (decode(count_tag, reads[name][k]["hr"][1:2]) for k in (0, -1))
        stored_first, stored_last = (g_vals[np.searchsorted(g_ts, live_t[k], side="right") - 1] for k in (0, -1))
        assert abs(((live_last - live_first) % 65536) - ((stored_last - stored_first) % 65536)) <= 1
        assert (live_last - live_first) % 65536 > 5  # parts were made while we watched
    store.close()
