"""The plant model's machine list, as the collector sees it: reloaded in the background.

The collector must keep storing known machines' data while the plant database is down, so
the last list loaded is kept in memory and in ``known-machines.json`` in the collector's
data dir (a restart during an outage starts from it). A machine added in the UI is known
within ``plant_refresh_s``. Only when there has never been a list (first start, database
unreachable) does the collector wait before subscribing: the broker keeps the messages.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from typing import TextIO
from collections.abc import Callable
from pathlib import Path

from plant import MachineRef

log = logging.getLogger(__name__)

CACHE_NAME = "known-machines.json"


class MachineDirectory:
    def __init__(self, load: Callable[[], frozenset[MachineRef]], data_dir: Path, refresh_s: float,
                 on_change: Callable[[frozenset[MachineRef]], None],
                 on_failure: Callable[[], None] | None = None) -> None:
        self._load = load
        self.cache_path = Path(data_dir) / CACHE_NAME
        self.refresh_s = refresh_s
        self._on_change = on_change
        self._on_failure = on_failure
        self.machines: frozenset[MachineRef] | None = None
        self.loaded_at: float | None = None  # time.time() of the last successful load
        self.failures = 0
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="collector-machines", daemon=True)
        self._failing = False

    def start(self) -> None:
        cached = self._read_cache()
        if cached is not None:
            self._set(cached, from_cache=True)
        self._thread.start()  # loads at once, then every refresh_s: a slow database never blocks start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        self.refresh()
        while not self._stop.wait(self.refresh_s):
            self.refresh()

    def refresh(self) -> bool:
        try:
            machines = self._load()
        except Exception as exc:  # noqa: BLE001 - a database outage must not stop ingest
            self.failures += 1
            if self._on_failure is not None:
                self._on_failure()
            if not self._failing:
                log.warning("plant_model_unavailable error=%r: %s", str(exc)[:300],
                            f"keeping the last list of {len(self.machines)} machines" if self.machines is not None
                            else "no machine list yet: not subscribing until the plant model answers")
            self._failing = True
            return False
        if self._failing:
            log.info("plant_model_available machines=%d", len(machines))
        self._failing = False
        self.loaded_at = time.time()
        if machines != self.machines:
            self._write_cache(machines)
            self._set(machines)
        return True

    def _set(self, machines: frozenset[MachineRef], from_cache: bool = False) -> None:
        added = len(machines - self.machines) if self.machines is not None else len(machines)
        self.machines = machines
        self._on_change(machines)
        log.info("machine_list machines=%d added=%d source=%s", len(machines), added,
                 self.cache_path if from_cache else "plant model")
        self.ready.set()

    def _read_cache(self) -> frozenset[MachineRef] | None:
        try:
            rows = json.loads(self.cache_path.read_text(encoding="utf-8"))
            return frozenset(MachineRef(*row) for row in rows)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, TypeError) as exc:
            log.warning("machine_cache_unreadable path=%s error=%r (ignored)", self.cache_path, str(exc))
            return None

    def _write_cache(self, machines: frozenset[MachineRef]) -> None:
        try:
            self.cache_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.cache_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(sorted([m.tenant, m.site, m.line, m.machine] for m in machines)),
                           encoding="utf-8")
            os.replace(tmp, self.cache_path)
        except OSError as exc:
            log.warning("machine_cache_not_written path=%s error=%r", self.cache_path, str(exc))


TAGS_NAME = "known-tags.tsv"


class TagNameLog:
    """The tag names admitted per machine, appended to ``known-tags.tsv`` in the data dir.

    Read once at start so ``max_tags_per_machine`` holds across restarts; one line per new
    name, which is rare (at most machines x max_tags_per_machine lines ever), so the file
    stays small and an append costs nothing measurable. Lost lines (a crash before the OS
    writes them) only let a machine re-admit those names.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / TAGS_NAME
        self._file: TextIO | None = None

    def read(self) -> dict[MachineRef, set[str]]:
        out: dict[MachineRef, set[str]] = {}
        try:
            with open(self.path, encoding="utf-8") as f:
                for line in f:
                    parts = line.rstrip("\n").split("\t")
                    if len(parts) != 5:
                        continue  # a torn last line
                    try:
                        machine = MachineRef(*parts[:4])
                    except ValueError:
                        continue
                    out.setdefault(machine, set()).add(parts[4])
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("tag_names_unreadable path=%s error=%r (the tag limit restarts from zero)", self.path, str(exc))
        return out

    def append(self, machine: MachineRef, tags: list[str]) -> None:
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for appends
            self._file.write("".join(f"{machine.tenant}\t{machine.site}\t{machine.line}\t{machine.machine}\t{t}\n"
                                     for t in tags if "\t" not in t and "\n" not in t))
            self._file.flush()
        except OSError as exc:
            log.warning("tag_names_not_written path=%s error=%r", self.path, str(exc))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
