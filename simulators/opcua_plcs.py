"""A simulated machine behind an OPC UA server: the same seeded machine model the Modbus
simulators serve, one variable node per signal.

A scenario machine with ``protocol: opcua`` keeps its kind's Modbus map (the signals; backfill
and ground truth use it) and is served as the OPC UA server of such a PLC shows its program's
variables: under ``Objects/<machine>`` in the namespace ``urn:smartfactory:simulator:machine``,
node id ``s=<machine>.<signal>``. Each node holds the value as the PLC stores it in its typed
variable (the Modbus map's type: a uint16 counter wraps, a float32 is float32-exact), so a
value read over OPC UA equals the value the same poll reads over Modbus.

OPC UA is not request/response: the server samples its variables and publishes what changed.
So the machine's timeline is sampled every ``sample_s`` (wall clock); a value that changed is
written with its source timestamp, and ``served_log`` records, per sampling, the changed
values and that timestamp (``t_ms``): what a subscriber is told, and when the value held from.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

from registermap import OpcUaTag, OpcUaType, Table, Tag, decode, encode
from simulators.opcua_server import NAMESPACE_URI, OpcUaMachine, Value
from simulators.scenario import SimMachine
from simulators.timeline import MachineTimeline

log = logging.getLogger(__name__)

#: how often the server samples the machine (wall seconds): a PLC's OPC UA server samples its memory
SAMPLE_S = 0.1
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _opcua_type(tag: Tag) -> OpcUaType:
    if tag.table in (Table.coil, Table.discrete_input) or tag.type.value == "bool":
        return OpcUaType.bool
    if tag.type.value == "string":
        return OpcUaType.string
    if tag.type.value.startswith("float") or tag.scale != 1.0 or tag.offset != 0.0:
        return OpcUaType.float
    return OpcUaType.int


def node_id(machine: str, signal: str) -> str:
    """A signal's node id as a gateway config writes it: by namespace URI, never by index."""
    return f"nsu={NAMESPACE_URI};s={machine}.{signal}"


def endpoint(host: str, port: int) -> str:
    return OpcUaMachine("endpoint", {}, host=host, port=port).endpoint


def opcua_register_map(machine: str, tags: tuple[Tag, ...]) -> tuple[OpcUaTag, ...]:
    """The gateway's tags for a machine served over OPC UA: one node per signal of its (Modbus) map."""
    return tuple(OpcUaTag(name=t.name, node_id=node_id(machine, t.name), type=_opcua_type(t), unit=t.unit) for t in tags)


def stored(tag: Tag, value: bool | int | float) -> Value:
    """The signal's value as the PLC's typed variable holds it (the Modbus map's encoding)."""
    if tag.table in (Table.coil, Table.discrete_input):
        return bool(value)
    return decode(tag, encode(tag, value))


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "smartfactory"


def address_space_cache() -> tuple[Path | None, Path | None]:
    """Where the server finds asyncua's standard address space ready-made, else where to build it.

    asyncua builds the standard address space (thousands of nodes) in 1.5 s of CPU, several
    seconds while the rest of a demo starts; from a shelf it loads lazily in about 0.1 s. The
    shelf is kept per asyncua version in the user's cache directory, written by the first
    server into a directory of its own and renamed into place whole, so a concurrent server
    never reads half a shelf. Returns ``(shelf, None)`` when one is ready, ``(shelf to write,
    its directory)`` when not, ``(None, None)`` when the cache is not writable (built in memory).
    """
    import asyncua

    ready = _cache_root() / f"opcua-address-space-{getattr(asyncua, '__version__', 'unknown')}"
    if (ready / SHELF_NAME).is_file():
        return ready / SHELF_NAME, None
    try:
        ready.parent.mkdir(parents=True, exist_ok=True)
        building = Path(tempfile.mkdtemp(prefix=".building-", dir=ready.parent))
    except OSError:
        return None, None
    return building / SHELF_NAME, building


def _publish_cache(building: Path) -> None:
    import asyncua

    ready = _cache_root() / f"opcua-address-space-{getattr(asyncua, '__version__', 'unknown')}"
    try:
        building.rename(ready)
        log.info("opcua_address_space_cached path=%s", ready)
    except OSError:  # another server was first, or the cache went away: keep theirs, drop ours
        shutil.rmtree(building, ignore_errors=True)


SHELF_NAME = "standard"


class SimulatedOpcUaPlc:
    """One machine behind one OPC UA server: a timeline, a clock and the server's variables."""

    def __init__(self, machine: SimMachine, timeline: MachineTimeline | None = None,
                 sim_time: Callable[[float], float] = lambda wall: wall, served_log: TextIO | None = None,
                 host: str = "127.0.0.1", sample_s: float = SAMPLE_S, shelf_file: Path | None = None) -> None:
        from simulators.modbus_server import register_values

        self.machine = machine
        self.timeline = timeline or MachineTimeline(machine.spec)
        self.sim_time = sim_time
        self.served_log = served_log
        self.sample_s = sample_s
        self._values = register_values
        self.server = OpcUaMachine(machine.ref.machine, self._sample(time.time())[1], host=host, port=machine.port or 0,
                                   shelf_file=shelf_file)
        self._task: asyncio.Task | None = None

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    def _sample(self, wall: float) -> tuple[float, dict[str, Value]]:
        sim = self.sim_time(wall)
        raw = self._values(self.timeline, sim)
        return sim, {t.name: stored(t, raw[t.name]) for t in self.machine.tags}

    def _log(self, t_ms: int, sim: float, values: dict[str, Value]) -> None:
        if self.served_log is None or not values:
            return
        record = {"t_ms": t_ms, "sim_s": sim, "machine": self.machine.ref.machine, "line": self.machine.ref.line,
                  "protocol": "opcua", "values": values}
        self.served_log.write(json.dumps(record) + "\n")
        self.served_log.flush()

    async def _follow(self) -> None:
        held = dict(self.server.values)
        while True:
            t_ms = time.time_ns() // 1_000_000
            sim, values = self._sample(t_ms / 1000)
            changed = {k: v for k, v in values.items() if held.get(k) != v or type(held.get(k)) is not type(v)}
            source = _EPOCH + timedelta(milliseconds=t_ms)
            for name, value in changed.items():
                await self.server.set(name, value, source)
            held.update(changed)
            self._log(t_ms, sim, changed)
            await asyncio.sleep(self.sample_s)

    async def start(self) -> int:
        # its warnings that user tokens travel unencrypted concern real servers, not a loopback simulator
        logging.getLogger("asyncua.server.server").setLevel(logging.ERROR)
        building = None
        cached = self.server.shelf_file is None
        if cached:
            self.server.shelf_file, building = address_space_cache()
        try:
            port = await self.server.start()
        except Exception as exc:
            if building is not None:
                shutil.rmtree(building, ignore_errors=True)
            if not cached or building is not None or self.server.shelf_file is None:
                raise
            # a cached address space that does not load (a damaged cache): build it in memory instead
            log.warning("opcua_address_space_cache_unusable path=%s error=%r action=build-in-memory",
                        self.server.shelf_file, exc)
            await self.server.stop()
            self.server.shelf_file = None
            port = await self.server.start()
        if building is not None:
            _publish_cache(building)
        # every value as of now, stamped now: what a subscriber's first notification carries
        t_ms = time.time_ns() // 1_000_000
        sim, values = self._sample(t_ms / 1000)
        source = _EPOCH + timedelta(milliseconds=t_ms)
        for name, value in values.items():
            await self.server.set(name, value, source)
        self._log(t_ms, sim, values)
        self._task = asyncio.create_task(self._follow(), name=f"opcua-plc:{self.machine.ref.machine}")
        return port

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.server.stop()
