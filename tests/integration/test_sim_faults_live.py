"""Fault windows written in a scenario file reach a pymodbus client through ``smartfactory simulate``:
the faulty machine answers as scripted, then recovers by itself; its neighbour is unaffected."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

import pytest
import yaml
from pymodbus.client import ModbusTcpClient

from simulators.scenario import resolve_scenario_path
from tests.servers import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

WINDOW_S = 4.0


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_scripted_busy_window_then_recovery_while_the_neighbour_serves(tmp_path):
    data = yaml.safe_load(resolve_scenario_path("autoparts_press_line").read_text())
    faulty, healthy = (dict(m) for m in data["lines"][0]["machines"][:2])
    faulty.update(port=free_port(), faults=[{"mode": "exception", "code": 6, "at_s": 0, "for_s": WINDOW_S}])
    healthy.update(port=free_port())
    data["lines"][0]["machines"] = [faulty, healthy]
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    out = open(tmp_path / "simulate.out", "w")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "simulate", str(path)], stdout=out,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: _listening(faulty["port"]) and _listening(healthy["port"]) or proc.poll() is not None,
                   30, "both presses listening")
        assert proc.poll() is None, (tmp_path / "simulate.out").read_text()
        bad = ModbusTcpClient("127.0.0.1", port=faulty["port"], timeout=3)
        good = ModbusTcpClient("127.0.0.1", port=healthy["port"], timeout=3)
        assert bad.connect() and good.connect()
        first = bad.read_holding_registers(0, count=2, device_id=1)
        neighbour = good.read_holding_registers(0, count=2, device_id=1)
        busy_answers = 0
        recovered = None

        def served() -> bool:
            nonlocal busy_answers, recovered
            r = bad.read_holding_registers(0, count=2, device_id=1)
            if r.isError():
                assert r.exception_code == 6
                busy_answers += 1
                return False
            recovered = r
            return True

        wait_until(served, WINDOW_S + 20, "the fault window to end")
        bad.close()
        good.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
        out.close()
    assert first.isError() and first.exception_code == 6  # device busy, as scripted
    assert not neighbour.isError()  # the other press is not behind the proxy's fault
    assert busy_answers >= 1 and not recovered.isError() and len(recovered.registers) == 2
    assert "faults=1" in (tmp_path / "simulate.out").read_text()


def test_a_bad_fault_entry_names_its_key_path(tmp_path):
    data = yaml.safe_load(resolve_scenario_path("autoparts_press_line").read_text())
    data["lines"][0]["machines"][0]["faults"] = [{"mode": "delay"}]  # delay without delay_s
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    result = subprocess.run([sys.executable, "-m", "cli.main", "simulate", str(path)], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "lines[0].machines[0].faults[0]" in result.stderr + result.stdout
    assert "delay_s" in result.stderr + result.stdout
