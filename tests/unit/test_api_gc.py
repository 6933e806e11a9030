"""The API process's garbage-collector setting (cli.apiserver.freeze_startup_objects), in a process of its own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import gc
import api.app  # what an API process imports before it serves
from cli.apiserver import freeze_startup_objects

frozen = freeze_startup_objects()
assert frozen == gc.get_freeze_count() > 50_000, frozen  # start-up's objects: out of every collection
assert len(gc.get_objects()) < frozen / 10, len(gc.get_objects())

class Node:
    pass

a, b = Node(), Node()
a.other, b.other = b, a  # a cycle made after start-up is still collected
del a, b
assert gc.collect() >= 2
print("ok")
"""


def test_start_up_objects_are_frozen_and_later_cycles_still_collected():
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]
