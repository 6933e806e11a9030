"""A heavy report whose client disconnects stops using the CPU (issue #11, item 2), on a real API process.

``smartfactory api`` runs as its own process (one worker, so the process is the server). The
range limit is raised in its config so that a century of KPIs by shift, which ran for more
than ten minutes before, is allowed; the client leaves once the server is busy with it, and
the server's CPU time (from /proc) must stop growing within a generous deadline.
"""

from __future__ import annotations

import os
import socket
import time
from datetime import date
from pathlib import Path

import httpx
import pytest
import yaml

from analytics.synthetic import LineSpec, generate
from plant import MachineRef
from plantmodel.admin import PlantSeed, apply_seed, create_token
from plantmodel.db import open_plant
from tests.processes import ApiProcess
from tests.waiting import wait_until
from tsstore.sqlite import SqliteStore

pytestmark = pytest.mark.integration

M = MachineRef("acme", "plant-1", "line-a", "press-1")
TICK = os.sysconf("SC_CLK_TCK")
#: three shifts a day: a century by shift is then minutes of work, far longer than the test waits
SHIFTS = [{"name": "A", "start": "06:00", "end": "14:00"}, {"name": "B", "start": "14:00", "end": "22:00"},
          {"name": "C", "start": "22:00", "end": "06:00"}]


def threads(pid: int) -> dict[int, tuple[str, float]]:
    """Each thread of a process: its state (R running or runnable, S sleeping, ...) and CPU seconds used.

    From /proc/PID/task/TID/stat (fields 3, 14 and 15). Per thread, because on a shared
    machine a busy thread may get little CPU for a while: it then still shows as runnable.
    """
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue  # the thread ended
        out[int(task.name)] = (fields[0], (int(fields[11]) + int(fields[12])) / TICK)
    return out


@pytest.fixture()
def api(tmp_path):
    config = tmp_path / "smartfactory.yaml"
    config.write_text(yaml.safe_dump({
        "store": {"kind": "sqlite", "path": "store.db"},
        "api": {"database_url": "sqlite:///plant.db", "max_range_days": 40000, "report_budget_s": 3600},
        "analytics": {"default": {"default_ideal_cycle_s": 60, "shifts": SHIFTS}, "maintain_rollups": False},
    }))
    plant = open_plant(f"sqlite:///{tmp_path / 'plant.db'}")
    apply_seed(plant, PlantSeed.model_validate({
        "tenants": [{"slug": "acme", "sites": [{"slug": "plant-1", "lines": [{"slug": "line-a", "machines": [
            {"slug": "press-1"}]}]}]}],
        "users": [{"username": "owner", "password": "owner-password-1", "role": "sme_owner", "tenant": "acme"}]}))
    token = create_token(plant, "owner", "test")
    plant.close()
    store = SqliteStore(tmp_path / "store.db")
    columns, _ = generate([M], date(2026, 3, 2), 3, LineSpec(process_s=60.0), seed=2)
    for m, cols in columns.items():
        store.write_columns(m, cols)
    store.close()
    api = ApiProcess(config).start()
    yield api.proc, api.port, token, api.log
    api.stop()


def test_a_report_stops_when_its_client_disconnects(api):
    proc, port, token, log = api
    before = threads(proc.pid)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall((f"GET /api/v1/reports/acme/plant-1/line-a/kpis?first=2000-01-01&last=2100-12-31&by=shift HTTP/1.1\r\n"
                  f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n\r\n").encode())

    def worker() -> int | None:
        """The thread that has used the most CPU since the request, once that is over 3 s."""
        now = threads(proc.pid)
        used = {tid: cpu - before.get(tid, ("", 0.0))[1] for tid, (_, cpu) in now.items()}
        tid = max(used, key=used.get)
        return tid if used[tid] > 3 else None

    wait_until(lambda: worker() is not None, 120, "a thread of the API to work on the report")
    busy = worker()
    sock.settimeout(0.1)
    with pytest.raises(TimeoutError):  # no answer yet: the report is still being computed
        sock.recv(1)
    sock.close()
    left = time.monotonic()

    samples: list[tuple[float, str, float]] = []

    def stopped() -> bool:
        """The busy thread has ended, or slept through the last two seconds without using any CPU."""
        state, cpu = threads(proc.pid).get(busy, ("gone", -1.0))
        if state == "gone":
            return True
        now = time.monotonic()
        samples.append((now, state, cpu))
        recent = [x for x in samples if now - x[0] <= 2]
        return now - samples[0][0] >= 2 and all(st == "S" for _, st, _ in recent) and recent[0][2] == cpu

    wait_until(stopped, 60, "the API thread to stop computing the abandoned report")
    assert "report_abandoned" in log.read_text(), log.read_text()[-3000:]
    print(f"stopped within {time.monotonic() - left:.1f} s of the client leaving (incl. the 2 s window)")
    assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
