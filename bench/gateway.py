"""Gateway benchmark: request planning, CPU and cycle jitter of a 50-PLC fleet, replay rate.

What it measures:

1. Requests per poll cycle for three 200-tag register maps (contiguous, sparse, mixed
   types): the planner's count, the exact lower bound under the same limits (a dynamic
   program, independent of the planner), one read per tag (what some peers send), and the
   requests a real poll actually sent, counted by a FaultProxy in front of a pymodbus server.
2. One gateway (this process: pollers, SQLite outbox, MQTT forwarder to a real mosquitto)
   polling 50 simulated PLCs x 200 tags every second; the PLCs run in a separate process.
   CPU = this process's CPU time / wall time; cycle-start jitter = how late each healthy
   device's cycle started behind its schedule, p50/p99. Then again with 5 PLCs silent
   (connection accepted, no answer: every request to them times out).
3. Replay: the broker is stopped for ``--outage-s`` seconds while polling goes on; then
   restarted. Replay rate = samples acknowledged per second until the backlog is gone,
   against the live rate (samples per second produced by polling).

4. ``--protocols``: the same 200-tag fleet map as Modbus TCP, Mitsubishi MC (SLMP), LS XGT and
   OPC UA, in one run: requests per poll (planned, counted at the PLC, the fewest the protocol's
   limits allow, batch reads only, one per tag; OPC UA: Publish or Read requests per interval
   counted at the server, subscribed and polled) and CPU per 1000 tags/s of one gateway reading
   ``--plcs`` PLCs of each protocol (PLCs in a separate process, a real mosquitto); plus the
   planning rows of a scattered 200-tag MC map and XGT map, where MC's random read and XGT's
   individual read count most. Its own section of
   RESULTS.md. ``--quick``: 2 PLCs, 5 s, printed only.

Results go to the section "Gateway: planning, fleet CPU and jitter, replay
(bench/gateway.py)" of bench/RESULTS.md (``--protocols``: "Gateway: MC, XGT and OPC UA beside Modbus");
other sections are kept.

    /tmp/sfvenv/bin/python bench/gateway.py [--plcs 50] [--dead 5] [--seconds 30] [--outage-s 120]
    /tmp/sfvenv/bin/python bench/gateway.py --protocols [--plcs 10] [--seconds 15] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from pymodbus.simulator import DataType, SimData, SimDevice  # noqa: E402

from gateway.links import build_links  # noqa: E402
from gateway.planner import min_reads, plan_reads  # noqa: E402
from gateway.poller import DevicePoller  # noqa: E402
from gateway.service import Gateway  # noqa: E402
from gateway.settings import DeviceSettings, GatewaySettings  # noqa: E402
from mqttlink import MqttSettings  # noqa: E402
from registermap import BIT_TABLES, Table, Tag  # noqa: E402
from simulators.faults import Fault, FaultProxy, Mode, start_tcp_server  # noqa: E402
from tests.servers import mosquitto  # noqa: E402

from bench.results import update_section  # noqa: E402

SECTION_TITLE = "## Gateway: planning, fleet CPU and jitter, replay (bench/gateway.py)"
PROTOCOLS_TITLE = "## Gateway: MC, XGT and OPC UA beside Modbus (bench/gateway.py --protocols)"
_OLD_PROTOCOLS_TITLE = "## Gateway: MC and XGT beside Modbus (bench/gateway.py --protocols)"
PROTOCOLS = ("modbus", "mc", "xgt")
HR, IR, COIL, DI = Table.holding_register, Table.input_register, Table.coil, Table.discrete_input


# -- register maps -------------------------------------------------------------------------
def contiguous_map() -> list[Tag]:
    return [Tag(name=f"r{a}", table=HR, address=a) for a in range(200)]


def sparse_map(seed: int = 1) -> list[Tag]:
    """200 uint16 tags with random holes of 0-30 registers between them."""
    rng = random.Random(seed)
    tags, a = [], 0
    for i in range(200):
        a += rng.choice([0, 0, 1, 2, 5, 12, 20, 30])
        tags.append(Tag(name=f"s{i}", table=HR, address=a))
        a += 1
    return tags


def mixed_map(seed: int = 2) -> list[Tag]:
    """200 tags over all four tables and every type and byte order."""
    rng = random.Random(seed)
    kinds = ["uint16", "int16", "uint32", "int32", "float32", "float64", "int64", "string", "bitreg"]
    orders = ["ABCD", "CDAB", "BADC", "DCBA"]
    tags: list[Tag] = []
    next_addr = {HR: 0, IR: 0, COIL: 0, DI: 0}
    for i in range(200):
        table = rng.choice([HR, HR, HR, IR, IR, COIL, DI])
        if table in BIT_TABLES:
            t = Tag(name=f"m{i}", table=table, address=next_addr[table], type="bool")
            next_addr[table] += 1 + rng.choice([0, 0, 0, 3, 40])
        else:
            kind = rng.choice(kinds)
            kw: dict = {"order": rng.choice(orders)}
            if kind == "string":
                kw = {"length": rng.choice([4, 8])}
            elif kind == "bitreg":
                kind, kw = "bool", {"bit": rng.randrange(16)}
            elif kind in ("uint16", "int16"):
                kw = {}
            t = Tag(name=f"m{i}", table=table, address=next_addr[table], type=kind, **kw)
            next_addr[table] += t.width + rng.choice([0, 0, 1, 4, 15])
        tags.append(t)
    return tags


def fleet_map() -> list[Tag]:
    """The 200 tags each fleet PLC serves: 120 uint16, 40 float32, 20 int32 inputs, 20 coils."""
    tags = [Tag(name=f"u{a}", table=HR, address=a) for a in range(120)]
    tags += [Tag(name=f"f{i}", table=HR, address=200 + 2 * i, type="float32") for i in range(40)]
    tags += [Tag(name=f"i{i}", table=IR, address=2 * i, type="int32") for i in range(20)]
    tags += [Tag(name=f"c{i}", table=COIL, address=i, type="bool") for i in range(20)]
    return tags


def device_for(tags: list[Tag], unit: int = 1) -> SimDevice:
    """A pymodbus device serving every address the map uses (0 up to its highest)."""

    def block(table: Table) -> list[SimData]:
        in_table = [t for t in tags if t.table is table]
        size = max((t.address + t.width for t in in_table), default=1)
        if table in BIT_TABLES:
            return [SimData(0, count=size, values=False, datatype=DataType.BITS)]
        return [SimData(0, count=size, values=1, datatype=DataType.REGISTERS)]

    return SimDevice(id=unit, simdata=(block(COIL), block(DI), block(HR), block(IR)))


# -- 1. planning -----------------------------------------------------------------------------
async def measure_planning() -> list[dict]:
    rows = []
    for name, tags in (("contiguous", contiguous_map()), ("sparse", sparse_map()), ("mixed types", mixed_map())):
        server, port = await start_tcp_server(device_for(tags))
        proxy = FaultProxy(("127.0.0.1", port))
        await proxy.start()
        device = DeviceSettings.model_validate({
            "name": "m", "line": "l", "host": "127.0.0.1", "port": proxy.port,
            "tags": [t.model_dump(mode="json") for t in tags]})
        links = build_links([device])
        got: list[dict] = []
        poller = DevicePoller(device, links[device.link], lambda d, ts, v: got.append(v))
        await poller.poll_once()
        sent = proxy.requests
        links[device.link].close()
        await proxy.stop()
        await server.shutdown()
        assert len(got) == 1 and len(got[0]) == len(tags), "a poll must return every tag"
        rows.append({
            "map": name, "tags": len(tags), "planned": len(plan_reads(tags)), "sent": sent,
            "lower_bound": min_reads(tags), "one_per_tag": len(tags),
            "tables": len({t.table for t in tags}),
        })
    return rows


# -- 2. the PLC fleet, in its own process ------------------------------------------------------
def serve_fleet(n: int, dead: int) -> None:
    """Child process: n PLCs; the last ``dead`` behind proxies that go silent on 'dead' (stdin)."""

    async def main() -> None:
        tags = fleet_map()
        ports, proxies, servers = [], [], []
        for i in range(n):
            server, port = await start_tcp_server(device_for(tags))
            servers.append(server)
            if i >= n - dead:
                proxy = FaultProxy(("127.0.0.1", port))
                await proxy.start()
                proxies.append(proxy)
                port = proxy.port
            ports.append(port)
        print(json.dumps({"ports": ports}), flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            for proxy in proxies:
                proxy.set_fault(Fault(mode=Mode.silent) if line.strip() == "dead" else None)
            print("ok", flush=True)

    asyncio.run(main())


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


async def run_fleet_phase(gw: Gateway, seconds: float, warmup: float, healthy: set[str]) -> dict:
    await asyncio.sleep(warmup)
    for p in gw.pollers:
        p.lateness_ms.clear()
    acked0 = gw.forwarder.acked_samples
    polls0 = sum(p.health.polls_ok for p in gw.pollers)
    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    late = [x for p in gw.pollers if p.device.name in healthy for x in p.lateness_ms]
    polls = sum(p.health.polls_ok for p in gw.pollers) - polls0
    return {
        "cpu_share": cpu / wall, "wall_s": wall, "polls": polls, "tags_per_s": polls * 200 / wall,
        "acked_per_s": (gw.forwarder.acked_samples - acked0) / wall,
        "jitter_p50_ms": percentile(late, 50), "jitter_p99_ms": percentile(late, 99),
        "jitter_max_ms": max(late) if late else float("nan"), "cycles": len(late),
        "loadavg_1m": os.getloadavg()[0],
    }


async def measure_fleet(a: argparse.Namespace, workdir: Path) -> dict:
    fleet = subprocess.Popen([sys.executable, __file__, "--serve-fleet", str(a.plcs), "--dead", str(a.dead)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    broker = mosquitto(workdir / "mosquitto")
    try:
        ports = json.loads(fleet.stdout.readline())["ports"]
        tags = [t.model_dump(mode="json", exclude_defaults=True) for t in fleet_map()]
        settings = GatewaySettings.model_validate({
            "id": "bench-gw", "tenant": "bench", "site": "s1",
            "outbox": {"path": str(workdir / "outbox.db")},
            "devices": [{"name": f"plc{i:02d}", "line": "l1", "host": "127.0.0.1", "port": port,
                         "poll_interval_s": 1.0, "timeout_s": 1.0, "max_backoff_s": 30, "tags": tags}
                        for i, port in enumerate(ports)],
        })
        gw = Gateway(settings, MqttSettings(url=broker.url), workdir)
        task = asyncio.create_task(gw.run())
        names = {d.name for d in settings.devices}
        dead_names = {d.name for d in settings.devices[len(ports) - a.dead:]}
        reads_per_poll = len(gw_reads(settings.devices[0]))
        all_alive = await run_fleet_phase(gw, a.seconds, a.warmup, names)
        fleet.stdin.write("dead\n")
        fleet.stdin.flush()
        fleet.stdout.readline()
        with_dead = await run_fleet_phase(gw, a.seconds, a.warmup, names - dead_names)
        fleet.stdin.write("alive\n")
        fleet.stdin.flush()
        fleet.stdout.readline()
        # replay: broker down for the outage, polling goes on into the outbox
        await asyncio.sleep(a.warmup)
        print("outage: broker stopped", file=sys.stderr, flush=True)
        await asyncio.to_thread(broker.stop)
        t_down = time.monotonic()
        acked_before = gw.forwarder.acked_samples
        polls0 = sum(p.health.polls_ok for p in gw.pollers)
        await asyncio.sleep(a.outage_s)
        live_rate = (sum(p.health.polls_ok for p in gw.pollers) - polls0) / (time.monotonic() - t_down)
        backlog = gw.outbox.pending
        await asyncio.to_thread(broker.start)
        t_up = time.monotonic()
        print(f"outage: broker back, backlog={backlog}", file=sys.stderr, flush=True)
        while not gw.forwarder.connected.is_set() and time.monotonic() - t_up < 120:
            await asyncio.sleep(0.01)
        t_conn = time.monotonic()  # paho's own reconnect backoff (1 s doubling to 30 s) ends here
        shown = 0.0
        while gw.outbox.pending > max(10, live_rate) and time.monotonic() - t_conn < 1200:
            if time.monotonic() - shown > 5:
                shown = time.monotonic()
                print(f"replay: pending={gw.outbox.pending} acked={gw.forwarder.acked_samples - acked_before} "
                      f"in_flight={len(gw.forwarder._in_flight)}", file=sys.stderr, flush=True)
            await asyncio.sleep(0.02)
        drain_s = time.monotonic() - t_conn
        replayed = gw.forwarder.acked_samples - acked_before
        print(f"replay: done in {drain_s:.1f} s", file=sys.stderr, flush=True)
        task.cancel()
        try:
            await asyncio.wait_for(task, 30)
        except (asyncio.CancelledError, asyncio.TimeoutError):
            pass
        return {
            "all_alive": all_alive, "with_dead": with_dead, "reads_per_poll": reads_per_poll,
            "replay": {"outage_s": a.outage_s, "backlog": backlog, "drain_s": drain_s, "replayed": replayed,
                       "reconnect_s": t_conn - t_up,
                       "replay_rate": replayed / drain_s, "live_rate": live_rate,
                       "ratio": (replayed / drain_s) / live_rate if live_rate else float("nan"),
                       "outbox_bytes": (workdir / "outbox.db").stat().st_size},
            "plcs": len(ports), "dead": a.dead,
        }
    finally:
        fleet.stdin.close()
        fleet.wait(20)
        broker.stop()


def gw_reads(device: DeviceSettings):
    """The reads of one poll as the gateway plans them (MC: batch and random reads; XGT: block and
    individual reads)."""
    from gateway.planner import DevicePlan
    from gateway.poller import individual_limit_of, random_limit_of

    plan = DevicePlan(device.tags, [device.interval_of(t) for t in device.tags], device.max_registers_per_read,
                      device.max_bits_per_read, device.max_gap, random_limit_of(device), individual_limit_of(device))
    return plan.reads_for(plan.intervals)


# -- 4. MC and XGT beside Modbus ------------------------------------------------------------------
def mc_scattered_map() -> list[dict]:
    """200 MC tags scattered over six device kinds, tens to hundreds of words apart (a machine whose
    program grew over the years): where random read saves requests."""
    return ([{"name": f"d{i}", "device": f"D{60 * i}"} for i in range(60)]
            + [{"name": f"r{i}", "device": f"R{700 * i}", "type": "float32"} for i in range(40)]
            + [{"name": f"w{i}", "device": f"W{0x100 * i:X}"} for i in range(30)]
            + [{"name": f"z{i}", "device": f"ZR{1500 * i}", "type": "int32"} for i in range(20)]
            + [{"name": f"m{i}", "device": f"M{150 * i}"} for i in range(30)]
            + [{"name": f"x{i}", "device": f"X{0x100 * i:X}"} for i in range(20)])


def xgt_scattered_map() -> list[dict]:
    """200 XGT variables scattered over six areas, tens to hundreds of words apart: where individual
    reads (16 variables of one size, any areas) save requests."""
    return ([{"name": f"d{i}", "variable": f"%DW{60 * i}"} for i in range(60)]
            + [{"name": f"r{i}", "variable": f"%RD{350 * i}", "type": "float32"} for i in range(40)]
            + [{"name": f"m{i}", "variable": f"%MW{60 * i}"} for i in range(30)]
            + [{"name": f"l{i}", "variable": f"%LD{250 * i}", "type": "int32"} for i in range(20)]
            + [{"name": f"p{i}", "variable": f"%PX{900 * i}"} for i in range(30)]
            + [{"name": f"k{i}", "variable": f"%KX{1500 * i}"} for i in range(20)])


def protocol_map(protocol: str) -> list[dict]:
    """The fleet map's 200 values (120 uint16, 40 float32, 20 int32, 20 bools; four areas) as each
    protocol addresses them; "mc-scattered": ``mc_scattered_map``; "xgt-scattered": ``xgt_scattered_map``."""
    if protocol == "mc-scattered":
        return mc_scattered_map()
    if protocol == "xgt-scattered":
        return xgt_scattered_map()
    if protocol == "modbus":
        return [t.model_dump(mode="json", exclude_defaults=True) for t in fleet_map()]
    if protocol == "mc":
        return ([{"name": f"u{a}", "device": f"D{a}"} for a in range(120)]
                + [{"name": f"f{i}", "device": f"D{200 + 2 * i}", "type": "float32"} for i in range(40)]
                + [{"name": f"i{i}", "device": f"W{2 * i:X}", "type": "int32"} for i in range(20)]
                + [{"name": f"c{i}", "device": f"M{i}"} for i in range(20)])
    return ([{"name": f"u{a}", "variable": f"%DW{a}"} for a in range(120)]
            + [{"name": f"f{i}", "variable": f"%DD{100 + i}", "type": "float32"} for i in range(40)]
            + [{"name": f"i{i}", "variable": f"%MD{i}", "type": "int32"} for i in range(20)]
            + [{"name": f"c{i}", "variable": f"%MX{i * 1}"} for i in range(20)])


def protocol_device(protocol: str, port: int, name: str = "m", **kw) -> dict:
    d = {"name": name, "line": "l1", "host": "127.0.0.1", "port": port, "tags": protocol_map(protocol), **kw}
    if protocol != "modbus":
        d["protocol"] = protocol.split("-")[0]
    return d


class CountingServers:
    """PLCs of one protocol on loopback; ``requests`` counts the frames they answered."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.requests = 0
        self._stop: list = []

    async def start(self) -> int:
        if self.protocol == "modbus":
            server, port = await start_tcp_server(device_for(fleet_map()))
            proxy = FaultProxy(("127.0.0.1", port))
            await proxy.start()
            self._proxy = proxy
            self._stop += [proxy.stop, server.shutdown]
            return proxy.port
        from simulators.mc_server import McMemory, McServer
        from simulators.xgt_server import XgtMemory, XgtServer

        srv = McServer(McMemory()) if self.protocol.startswith("mc") else XgtServer(XgtMemory())
        answer = srv.answer

        def counted(frame: bytes) -> bytes:
            self.requests += 1
            return answer(frame)

        srv.answer = counted
        self._stop.append(srv.stop)
        return await srv.start()

    def count(self) -> int:
        return self._proxy.requests if self.protocol == "modbus" else self.requests

    async def stop(self) -> None:
        for stop in self._stop:
            await stop()


async def measure_protocol_planning() -> list[dict]:
    from gateway.planner import IndividualRead, RandomRead, fewest_reads, fewest_requests
    from gateway.poller import individual_limit_of, random_limit_of

    rows = []
    for protocol in (*PROTOCOLS, "mc-scattered", "xgt-scattered"):
        servers = CountingServers(protocol)
        port = await servers.start()
        device = DeviceSettings.model_validate(protocol_device(protocol, port))
        links = build_links([device])
        got: list[dict] = []
        poller = DevicePoller(device, links[device.link], lambda d, ts, v: got.append(v))
        await poller.poll_once()
        sent = servers.count()
        links[device.link].close()
        await servers.stop()
        assert len(got) == 1 and len(got[0]) == len(device.tags), f"{protocol}: a poll must return every tag"
        batch_fewest, _ = fewest_reads(device.tags, device.max_registers_per_read, device.max_bits_per_read)
        fewest = fewest_requests(device.tags, device.max_registers_per_read, device.max_bits_per_read,
                                 random_limit_of(device), individual_limit_of(device))
        planned = gw_reads(device)
        rows.append({"protocol": protocol, "tags": len(device.tags), "planned": len(planned), "sent": sent,
                     "random": sum(isinstance(r, RandomRead | IndividualRead) for r in planned), "fewest": fewest,
                     "batch_only": batch_fewest, "one_per_tag": len(device.tags),
                     "max_registers": device.max_registers_per_read, "max_gap": device.max_gap})
    return rows


def serve_protocol_fleet(protocol: str, n: int) -> None:
    """Child process: n PLCs of one protocol; prints their ports, serves until stdin closes."""

    async def main() -> None:
        fleet = [CountingServers(protocol) for _ in range(n)]
        ports = [await f.start() for f in fleet]
        print(json.dumps({"ports": ports}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())


async def measure_protocol_cpu(a: argparse.Namespace, workdir: Path) -> dict:
    broker = mosquitto(workdir / "mosquitto")
    out = {}
    try:
        for protocol in PROTOCOLS:
            fleet = subprocess.Popen([sys.executable, __file__, "--serve-protocol", protocol, "--plcs", str(a.plcs)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            try:
                ports = json.loads(fleet.stdout.readline())["ports"]
                settings = GatewaySettings.model_validate({
                    "id": f"bench-{protocol}", "tenant": "bench", "site": "s1",
                    "outbox": {"path": str(workdir / f"{protocol}.outbox.db")},
                    "devices": [protocol_device(protocol, port, f"plc{i:02d}", poll_interval_s=1.0, timeout_s=1.0)
                                for i, port in enumerate(ports)]})
                gw = Gateway(settings, MqttSettings(url=broker.url), workdir)
                task = asyncio.create_task(gw.run())
                phase = await run_fleet_phase(gw, a.seconds, a.warmup, {d.name for d in settings.devices})
                phase["reads_per_poll"] = len(gw_reads(settings.devices[0]))
                phase["cpu_per_1000_tags_s"] = phase["cpu_share"] * 1000 / phase["tags_per_s"] \
                    if phase["tags_per_s"] else float("nan")
                out[protocol] = phase
                print(protocol, json.dumps(phase), file=sys.stderr, flush=True)
                task.cancel()
                try:
                    await asyncio.wait_for(task, 30)
                except (asyncio.CancelledError, asyncio.TimeoutError):
                    pass
            finally:
                fleet.stdin.close()
                fleet.wait(20)
    finally:
        broker.stop()
    return out


def render_protocols(a: argparse.Namespace, planning: list[dict], cpu: dict, opcua_rows: list[dict],
                     opcua_cpu: dict) -> str:
    names = {"modbus": "Modbus TCP", "mc": "MC (SLMP 3E, Q series)", "xgt": "XGT (FEnet)",
             "mc-scattered": "MC, scattered map", "xgt-scattered": "XGT, scattered map"}
    out = [
        PROTOCOLS_TITLE, "",
        f"- date: {time.strftime('%a %b %d %H:%M:%S UTC %Y', time.gmtime())}",
        f"- machine: {platform.system()} {platform.release()} {platform.machine()}, nproc {os.cpu_count()}, "
        f"Python {platform.python_version()}; shared with other engineers' jobs while running",
        f"- command: `python bench/gateway.py --protocols --plcs {a.plcs} --seconds {a.seconds}`",
        f"- a reduced size on this shared 2-core machine: {a.plcs} PLCs of each protocol x 200 tags every 1 s, "
        f"{a.seconds:g} s measured after {a.warmup:g} s warm-up (the Modbus section above runs 50 PLCs)",
        "- load average (1 min) at the end of each phase: "
        + ", ".join(f"{p} {cpu[p]['loadavg_1m']:.1f}" for p in PROTOCOLS if p in cpu)
        + (f", opcua {opcua_cpu['loadavg_1m']:.1f}" if "loadavg_1m" in opcua_cpu else ""),
        "",
        "The same 200 values on each protocol: 120 uint16, 40 float32, 20 int32 and 20 bools in four areas "
        "(Modbus: holding registers 0-119 and 200-279, input registers, coils; MC: D0-D119, D200-D279, W0-W27, "
        "M0-M19; XGT: %DW0-%DW119, %DD100-%DD139, %MD0-%MD19, %MX0-%MX19). Requests are counted at the PLC "
        "(a proxy for Modbus, the server's own frame count for MC and XGT).",
        "",
        "| protocol | planned (MC random / XGT individual reads) | sent (counted at the PLC) | fewest possible | batch reads only | "
        "one per tag | per read at most | CPU per 1000 tags/s (share of one core) | tags/s polled | jitter p99 ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in planning:
        c = cpu.get(r["protocol"], {})
        per_read = f"{r['max_registers']} words" + (", 192 random points" if r["protocol"].startswith("mc") else
                                                   ", 16 individual variables" if r["protocol"].startswith("xgt") else "")
        out.append(f"| {names[r['protocol']]} | {r['planned']} ({r['random']}) | {r['sent']} | {r['fewest']} | "
                   f"{r['batch_only']} | {r['one_per_tag']} | {per_read} | "
                   + (f"{c['cpu_per_1000_tags_s']:.4f} | {c['tags_per_s']:,.0f} | {c['jitter_p99_ms']:.1f} |" if c
                      else "not measured | | |"))
    ok = all(r["sent"] == r["fewest"] for r in planning)
    scattered = next((r for r in planning if r["protocol"] == "mc-scattered"), None)
    xgt_scattered = next((r for r in planning if r["protocol"] == "xgt-scattered"), None)
    out += ["", f"Requests sent = the fewest the planner finds under each protocol's limits: {'**met**' if ok else '**missed**'}. "
            "A batch read reads one area: a Modbus table, an MC device kind, an XGT memory area. The map's four "
            "Modbus tables take 4 requests. On MC, batch reads alone take 3 (D0-D279 fit one 960-word read, then W "
            "and M); the map's 121 word and double-word points fit one random read (MC 0x0403: up to 192 points of "
            "any device kinds), so the gateway sends 1. On XGT, "
            "%DW and %DD share the D area and %MD and %MX the M area, so it takes 2 (1400-byte block reads). One "
            "request per tag, what a naive driver sends, is 200."]
    if scattered is not None:
        out += ["", f"MC, scattered: 200 tags over D, R, W, ZR, M and X, tens to hundreds of words apart "
                f"(`mc_scattered_map`; planning only, no CPU phase). Batch reads alone need {scattered['batch_only']}; "
                f"with random reads the gateway sends {scattered['sent']}."]
    if xgt_scattered is not None:
        out += ["", f"XGT, scattered: 200 variables over %D, %R, %M, %L, %P and %K, tens to hundreds of words apart "
                f"(`xgt_scattered_map`; planning only, no CPU phase). Block reads alone need "
                f"{xgt_scattered['batch_only']}; with individual reads (16 variables of one size a request) the "
                f"gateway sends {xgt_scattered['sent']}."]
    out += render_opcua(opcua_rows, opcua_cpu)
    return "\n".join(out)


# -- 5. OPC UA beside them: subscriptions, counted at the server ------------------------------------
def opcua_values(step: int) -> dict:
    """The fleet map's 200 values as an OPC UA server holds them (120 counters, 40 floats, 20 int32,
    20 bools), every one different at each step: the most a subscription can have to carry."""
    values: dict = {f"u{a}": (a + step) % 65536 for a in range(120)}
    values.update({f"f{i}": i + step / 8 for i in range(40)})
    values.update({f"i{i}": -i - step for i in range(20)})
    values.update({f"c{i}": (i + step) % 2 == 0 for i in range(20)})
    return values


def opcua_device(endpoint: str, name: str = "m", **kw) -> dict:
    from simulators.opcua_server import NAMESPACE_URI

    tags = [{"name": n, "node_id": f"nsu={NAMESPACE_URI};s=bench.{n}"} for n in opcua_values(0)]
    return {"name": name, "line": "l1", "protocol": "opcua", "endpoint": endpoint, "tags": tags, **kw}


class OpcUaRequests:
    """Counts the service requests an asyncua server answers, by service (ReadRequest, PublishRequest, ...);
    a Read of namespace-0 nodes only (the server's status, the namespace array) counts as ``StatusRead``."""

    def __init__(self) -> None:
        from asyncua import ua
        from asyncua.server.internal_session import InternalSession
        from asyncua.server.uaprocessor import UaProcessor

        self.by_service: dict[str, int] = {}
        original = UaProcessor._process_message
        original_read = InternalSession.read
        counts = self.by_service

        async def counted(processor, typeid, requesthdr, seqhdr, body):
            name = ua.ObjectIdNames.get(typeid.Identifier, str(typeid)).replace("_Encoding_DefaultBinary", "")
            if name != "ReadRequest":  # counted below, where its nodes are known
                counts[name] = counts.get(name, 0) + 1
            return await original(processor, typeid, requesthdr, seqhdr, body)

        async def read(session, params):
            name = "StatusRead" if all(r.NodeId.NamespaceIndex == 0 for r in params.NodesToRead) else "ReadRequest"
            counts[name] = counts.get(name, 0) + 1
            return await original_read(session, params)

        UaProcessor._process_message = counted  # type: ignore[method-assign]
        InternalSession.read = read  # type: ignore[method-assign]

    def snapshot(self) -> dict[str, int]:
        return dict(self.by_service)


async def start_opcua_plc(interval_s: float, refuse_subscriptions: bool = False):
    """An OPC UA server with the 200 values, all changing every ``interval_s``; returns (server, change task)."""
    from simulators.opcua_plcs import address_space_cache
    from simulators.opcua_server import OpcUaMachine, variant
    from asyncua import ua

    shelf, building = address_space_cache()
    sim = OpcUaMachine("bench", opcua_values(0), shelf_file=shelf)
    await sim.start()
    if building is not None:
        from simulators.opcua_plcs import _publish_cache

        _publish_cache(building)
    assert sim.server is not None
    if refuse_subscriptions:
        sim.server.iserver.max_subscriptions = 0  # answers BadTooManySubscriptions: the gateway polls

    async def change() -> None:
        step = 0
        while True:
            await asyncio.sleep(interval_s)
            step += 1
            for name, value in opcua_values(step).items():
                await sim.server.write_attribute_value(sim._nodes[name].nodeid, ua.DataValue(variant(value)))

    return sim, asyncio.create_task(change())


async def measure_opcua_planning(interval_s: float = 1.0, intervals: int = 6) -> list[dict]:
    """Requests per interval in steady state, counted at the server: subscribed, and polled (a server
    that refuses subscriptions), after the session's own setup requests."""
    from gateway.opcua import OpcUaDevice

    counter = OpcUaRequests()
    rows = []
    for mode in ("subscription", "polled"):
        sim, changing = await start_opcua_plc(interval_s, refuse_subscriptions=mode == "polled")
        device = DeviceSettings.model_validate(opcua_device(sim.endpoint, poll_interval_s=interval_s))
        got: list[dict] = []
        runner = OpcUaDevice(device, lambda d, ts, v: got.append(v))
        before = counter.snapshot()
        task = asyncio.create_task(runner.run())
        while runner.health.polls_ok < 3:  # the session is up and a few cycles went by
            await asyncio.sleep(0.01)
        setup = {k: v - before.get(k, 0) for k, v in counter.snapshot().items() if v - before.get(k, 0)}
        start, cycles0, t0 = counter.snapshot(), runner.health.polls_ok, time.monotonic()
        await asyncio.sleep(interval_s * intervals)
        cycles = runner.health.polls_ok - cycles0
        steady = {k: v - start.get(k, 0) for k, v in counter.snapshot().items() if v - start.get(k, 0)}
        wall = time.monotonic() - t0
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        changing.cancel()
        await asyncio.gather(changing, return_exceptions=True)
        await sim.stop()
        values = {}
        for v in got:
            values.update(v)
        assert len(values) == len(device.tags), f"opcua {mode}: every tag must arrive"
        per_interval = sum(steady.values()) / (wall / interval_s)
        rows.append({"protocol": f"opcua ({mode})", "tags": len(device.tags), "cycles": cycles, "wall_s": wall,
                     "per_interval": per_interval, "steady": steady, "setup": setup,
                     "data_requests_per_interval": (steady.get("PublishRequest", 0) + steady.get("ReadRequest", 0))
                     / (wall / interval_s),
                     "fewest": 1, "one_per_tag": len(device.tags), "monitored_items": len(runner.subscribed),
                     "polled_nodes": len(runner.polled)})
    return rows


def serve_opcua_fleet(n: int) -> None:
    """Child process: n OPC UA servers whose 200 values all change every second."""

    async def main() -> None:
        import logging

        logging.getLogger("asyncua").setLevel(logging.ERROR)
        plcs = [await start_opcua_plc(1.0) for _ in range(n)]
        print(json.dumps({"endpoints": [sim.endpoint for sim, _ in plcs]}), flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)

    asyncio.run(main())


async def measure_opcua_cpu(a: argparse.Namespace, workdir: Path) -> dict:
    broker = mosquitto(workdir / "mosquitto")
    fleet = subprocess.Popen([sys.executable, __file__, "--serve-opcua", str(a.plcs)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        endpoints = json.loads(fleet.stdout.readline())["endpoints"]
        settings = GatewaySettings.model_validate({
            "id": "bench-opcua", "tenant": "bench", "site": "s1",
            "outbox": {"path": str(workdir / "opcua.outbox.db")},
            "devices": [opcua_device(ep, f"plc{i:02d}", poll_interval_s=1.0, timeout_s=2.0)
                        for i, ep in enumerate(endpoints)]})
        gw = Gateway(settings, MqttSettings(url=broker.url), workdir)
        task = asyncio.create_task(gw.run())
        phase = await run_fleet_phase(gw, a.seconds, a.warmup, {d.name for d in settings.devices})
        phase["cpu_per_1000_tags_s"] = phase["cpu_share"] * 1000 / phase["tags_per_s"] \
            if phase["tags_per_s"] else float("nan")
        print("opcua", json.dumps(phase), file=sys.stderr, flush=True)
        task.cancel()
        try:
            await asyncio.wait_for(task, 30)
        except (asyncio.CancelledError, asyncio.TimeoutError):
            pass
        return phase
    finally:
        fleet.stdin.close()
        fleet.wait(30)
        broker.stop()


def render_opcua(rows: list[dict], cpu: dict) -> list[str]:
    out = ["", "### OPC UA beside them", "",
           "The same 200 values as nodes of an asyncua server (string node ids, found by namespace URI), every one "
           "changing every interval: the most a subscription has to carry. Requests are counted at the server, by "
           "service, in steady state after the session's setup. Subscribed: one subscription with a monitored item "
           "per tag, the server samples and publishes; polled: what the gateway does when a server refuses "
           "subscriptions (one Read of every node per interval).", "",
           "| mode | data requests per interval | fewest possible | one per tag | all requests per interval "
           "(by service, over the intervals measured) | session setup (by service) | CPU per 1000 tags/s (share of "
           "one core) | tags/s | jitter p99 ms |",
           "|---|---:|---:|---:|---|---|---:|---:|---:|"]
    for r in rows:
        c = cpu if r["protocol"] == "opcua (subscription)" else {}
        interval = r["per_interval"]
        by = ", ".join(f"{k.removesuffix('Request')} {v}" for k, v in sorted(r["steady"].items()))
        setup = ", ".join(f"{k.removesuffix('Request')} {v}" for k, v in sorted(r["setup"].items()))
        out.append(f"| {r['protocol']} | {r['data_requests_per_interval']:.2f} | {r['fewest']} | {r['one_per_tag']} | "
                   f"{interval:.2f} ({by}; {r['cycles']} intervals) | {setup} | "
                   f"{c.get('cpu_per_1000_tags_s', float('nan')):.4f} | {c.get('tags_per_s', float('nan')):,.0f} | "
                   f"{c.get('jitter_p99_ms', float('nan')):.1f} |")
    ok = all(round(r["data_requests_per_interval"]) == r["fewest"] for r in rows)
    status_rate = sum(r["steady"].get("StatusRead", 0) for r in rows) / sum(r["wall_s"] for r in rows)
    out += ["", f"Data requests per interval = the fewest possible (1) in both modes: {'**met**' if ok else '**missed**'}. "
            "Data requests are Publish (subscribed) or a Read of the tags' nodes (polled), against 200 for a Read per "
            "tag. Besides them asyncua's client reads the server's state (its session watchdog, set to the device's "
            f"interval: StatusRead, a Read of namespace-0 nodes only), here {status_rate:.1f} a second. CPU: one gateway with "
            f"{cpu.get('plcs', '?')} OPC UA servers (in a separate process) x 200 tags, every value changing every "
            "1 s, publishing every 1 s; the Modbus, MC and XGT rows above are the baseline of the same run.", ""]
    return out


# -- results -----------------------------------------------------------------------------------
def update_results(section: str) -> None:
    update_section(SECTION_TITLE, section)


def render(a: argparse.Namespace, planning: list[dict], fleet: dict) -> str:
    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**missed**"

    out = [
        SECTION_TITLE, "",
        f"- date: {time.strftime('%a %b %d %H:%M:%S UTC %Y', time.gmtime())}",
        f"- machine: {platform.system()} {platform.release()} {platform.machine()}, nproc {os.cpu_count()}, "
        f"Python {platform.python_version()}; shared with other engineers' jobs while running",
        f"- command: `python bench/gateway.py --plcs {a.plcs} --dead {a.dead} --seconds {a.seconds} "
        f"--outage-s {a.outage_s}`",
        f"- load average (1 min) at the end of the two fleet phases: {fleet['all_alive']['loadavg_1m']:.1f}, "
        f"{fleet['with_dead']['loadavg_1m']:.1f}",
        "",
        "### Requests per poll cycle (200 tags each; limits 125 registers / 2000 bits, max gap 8)",
        "",
        "| map | tables | planned | sent (counted by a proxy) | lower bound | one per tag | one-per-tag / sent |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in planning:
        out.append(f"| {r['map']} | {r['tables']} | {r['planned']} | {r['sent']} | {r['lower_bound']} | "
                   f"{r['one_per_tag']} | {r['one_per_tag'] / r['sent']:.0f}x |")
    ok_plan = all(r["sent"] == r["lower_bound"] for r in planning)
    out += ["", f"Target: request count = lower bound: {verdict(ok_plan)}. The lower bound is the fewest "
            "reads any plan can use under the same size and gap limits (exact dynamic program per table, "
            "`gateway.planner.min_reads`).", ""]
    aa, wd, rp = fleet["all_alive"], fleet["with_dead"], fleet["replay"]
    out += [
        f"### Fleet: one gateway process, {fleet['plcs']} PLCs x 200 tags every 1 s "
        f"({fleet['reads_per_poll']} reads per PLC per cycle)",
        "",
        "PLCs are pymodbus servers in a separate process; the gateway (pollers, SQLite outbox, paho forwarder) "
        f"runs in the benchmark process and publishes to a real mosquitto. Each phase measured for {a.seconds} s "
        f"after {a.warmup} s warm-up. Dead PLCs accept the connection and never answer (timeout 1 s, backoff "
        "capped at 30 s). Jitter = lateness of each healthy device's cycle start behind its schedule.",
        "",
        "| phase | tags/s polled | samples/s acked by broker | CPU (share of one core) | jitter p50 ms | "
        "jitter p99 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, r in ((f"all {fleet['plcs']} alive", aa), (f"{fleet['dead']} dead", wd)):
        out.append(f"| {label} | {r['tags_per_s']:,.0f} | {r['acked_per_s']:,.1f} | {r['cpu_share']:.3f} | "
                   f"{r['jitter_p50_ms']:.1f} | {r['jitter_p99_ms']:.1f} | {r['jitter_max_ms']:.1f} |")
    cpu_per_10k = aa["cpu_share"] * 10_000 / aa["tags_per_s"] if aa["tags_per_s"] else float("nan")
    out += [
        "",
        f"Target: 10,000 tags/s under half a core: {cpu_per_10k:.3f} of a core per 10,000 tags/s "
        f"(all alive) {verdict(cpu_per_10k < 0.5)}; with dead PLCs {wd['cpu_share']:.3f} of a core.",
        f"Target: jitter p99 < 100 ms with dead PLCs: {wd['jitter_p99_ms']:.1f} ms {verdict(wd['jitter_p99_ms'] < 100)}.",
        "",
        "### Replay after a broker outage",
        "",
        f"mosquitto stopped for {rp['outage_s']:.0f} s while polling went on (live rate {rp['live_rate']:.1f} "
        f"samples/s = {rp['live_rate'] * 200:,.0f} values/s); backlog {rp['backlog']:,} samples "
        f"({rp['outbox_bytes'] / 1e6:.1f} MB outbox file). The gateway reconnected {rp['reconnect_s']:.1f} s after "
        "the broker came back (paho's reconnect backoff, 1 s doubling to 30 s); from then the backlog (plus the "
        f"live polls meanwhile) drained in {rp['drain_s']:.1f} s: {rp['replayed']:,} samples acknowledged, "
        f"**{rp['replay_rate']:,.0f} samples/s = {rp['ratio']:.0f}x the live rate** "
        f"(target >= 10x: {verdict(rp['ratio'] >= 10)}). Replay packs up to 500 samples of one machine per message "
        "(bounded by ~0.5 MiB), 200 messages in flight.",
        "",
    ]
    if rp["outage_s"] < 600:
        out += [f"The issue asks for a 10-minute outage; this run used {rp['outage_s']:.0f} s (a 10-minute backlog "
                f"at this live rate would be {rp['live_rate'] * 600:,.0f} samples). The replay rate is per sample, "
                "so a longer backlog drains proportionally longer at the same rate.", ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plcs", type=int, default=50)
    parser.add_argument("--dead", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--outage-s", type=float, default=120)
    parser.add_argument("--no-write", action="store_true", help="print, do not update RESULTS.md")
    parser.add_argument("--protocols", action="store_true", help="MC, XGT and OPC UA beside Modbus (section 4) only")
    parser.add_argument("--quick", action="store_true", help="with --protocols: 2 PLCs, 5 s, print only")
    parser.add_argument("--serve-opcua", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-fleet", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-protocol", choices=PROTOCOLS, help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.serve_fleet:
        serve_fleet(a.serve_fleet, a.dead)
        return
    if a.serve_protocol:
        serve_protocol_fleet(a.serve_protocol, a.plcs)
        return
    if a.serve_opcua:
        serve_opcua_fleet(a.serve_opcua)
        return
    if a.protocols:
        import logging

        logging.basicConfig(level=logging.ERROR)

        if a.quick:
            a.plcs, a.seconds, a.warmup, a.no_write = 2, 5.0, 3.0, True

        async def run_protocols() -> tuple[list[dict], dict, list[dict], dict]:
            planning = await measure_protocol_planning()
            opcua_rows = await measure_opcua_planning()
            print(json.dumps(planning + opcua_rows, indent=1), flush=True)
            with tempfile.TemporaryDirectory(prefix="bench_gateway_") as tmp:
                cpu = await measure_protocol_cpu(a, Path(tmp))
                opcua_cpu = await measure_opcua_cpu(a, Path(tmp))
            opcua_cpu["plcs"] = a.plcs
            return planning, cpu, opcua_rows, opcua_cpu

        planning, cpu, opcua_rows, opcua_cpu = asyncio.run(run_protocols())
        section = render_protocols(a, planning, cpu, opcua_rows, opcua_cpu)
        print(section)
        if not a.no_write:
            from bench.results import RESULTS_PATH

            if RESULTS_PATH.exists() and _OLD_PROTOCOLS_TITLE in RESULTS_PATH.read_text():  # the section grew OPC UA
                RESULTS_PATH.write_text(RESULTS_PATH.read_text().replace(_OLD_PROTOCOLS_TITLE, PROTOCOLS_TITLE))
            update_section(PROTOCOLS_TITLE, section)
        return

    async def run() -> tuple[list[dict], dict]:
        planning = await measure_planning()
        print(json.dumps(planning, indent=1), flush=True)
        with tempfile.TemporaryDirectory(prefix="bench_gateway_") as tmp:
            fleet = await measure_fleet(a, Path(tmp))
        print(json.dumps(fleet, indent=1), flush=True)
        return planning, fleet

    import logging

    logging.basicConfig(level=logging.ERROR)
    planning, fleet = asyncio.run(run())
    section = render(a, planning, fleet)
    print(section)
    if not a.no_write:
        update_results(section)


if __name__ == "__main__":
    main()
