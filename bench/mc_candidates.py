"""MC/SLMP client candidates beside our own link, against our MC simulator, in one run.

Why: issue 15 asks to choose between a maintained library and our own driver after measuring.
Each client runs in its own child process (so its CPU time is its own), against one
``simulators.mc_server.McServer`` in this process, which counts the requests by command:

- (a) requests per poll of the bench's 200-tag MC fleet map (``bench/gateway.py``);
- (b) process CPU seconds per 1000 tag reads, as a ratio to ours;
- (c) every value equal to what the simulator holds, on the fleet map and on extra tags
  (a string, X1A0, B1F, W1FF);
- (d) an end code (C056, a read past D's range) and a dropped connection (the server closes it
  without answering), then the next read on the same client object.

Candidates are not project dependencies: install them in a separate venv and pass its Python,
``python bench/mc_candidates.py --candidate-python /tmp/mcvenv/bin/python``; a candidate that
is not installed there is skipped with a message. Writes "## MC/SLMP client candidates" of
bench/RESULTS.md. The child side of this file (``--client``) uses the standard library only
besides the candidate itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TITLE = "## MC/SLMP client candidates beside our link (bench/mc_candidates.py)"
CANDIDATES = {"pymcprotocol": "pymcprotocol", "plc-comm-slmp": "slmp"}  # distribution: import name
DROP_DEVICE = 12000  # a batch read of D12000 makes the simulator close the connection without answering
PAST_RANGE = "D12287"  # 2 words from here run past D (12288 words): C056


# -- child side: one client, standard library plus the candidate ------------------------------

def decode(spec: dict, words: dict[str, int]) -> object:
    """A tag's value from its words (``"D:12"`` -> unsigned word), Mitsubishi's default orders."""
    w = [words[f"{spec['kind']}:{spec['word'] + i}"] & 0xFFFF for i in range(spec["width"])]
    t = spec["type"]
    if t == "bool":
        return bool((w[0] >> spec["bit"]) & 1)
    if t == "uint16":
        return w[0]
    raw = struct.pack(f"<{len(w)}H", *w)  # low word first, each word little-endian: BADC strings
    if t == "int32":
        return struct.unpack("<i", raw)[0]
    if t == "float32":
        return struct.unpack("<f", raw)[0]
    return raw[:spec["length"]].decode("ascii").rstrip("\x00")


def outcome(fn) -> dict:
    try:
        return {"ok": True, "result": repr(fn())[:80]}
    except Exception as exc:  # noqa: BLE001 - what the candidate raises is what we measure
        return {"ok": False, "error": f"{type(exc).__module__}.{type(exc).__name__}: {exc}"[:200]}


async def aoutcome(coro) -> dict:
    try:
        return {"ok": True, "result": repr(await coro)[:80]}
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": f"{type(exc).__module__}.{type(exc).__name__}: {exc}"[:200]}


def run_pymcprotocol(job: dict) -> dict:
    """Blocking client, no planner: we give it our planner's reads (``job['plan']``)."""
    import pymcprotocol

    plc = pymcprotocol.Type3E(plctype="Q")
    plc.connect("127.0.0.1", job["port"])

    def poll(plan: list[dict], specs: list[dict]) -> dict:
        words: dict[str, int] = {}
        for r in plan:
            if r["kind"] == "batch":
                got = plc.batchread_wordunits(r["head"], r["count"])
                for i, v in enumerate(got):
                    words[f"{r['area']}:{r['word'] + i}"] = v
            else:
                wv, dv = plc.randomread(r["words"], r["dwords"])
                for key, v in zip(r["word_keys"], wv):
                    words[key] = v
                for key, v in zip(r["dword_keys"], dv):
                    area, word = key.split(":")
                    words[key], words[f"{area}:{int(word) + 1}"] = v & 0xFFFF, (v >> 16) & 0xFFFF
        return {s["name"]: decode(s, words) for s in specs}

    return timed(job, poll, lambda: {
        "end_code": outcome(lambda: plc.batchread_wordunits(PAST_RANGE, 2)),
        "after_end_code": outcome(lambda: plc.batchread_wordunits("D0", 1)),
        "drop": outcome(lambda: plc.batchread_wordunits(f"D{DROP_DEVICE}", 1)),
        "after_drop": outcome(lambda: plc.batchread_wordunits("D0", 1)),
    })


def run_plc_comm_slmp(job: dict) -> dict:
    """Asyncio client with its own grouping (``read_named``: one random read per call)."""
    import slmp
    from slmp.async_client import AsyncSlmpClient
    from slmp.utils import read_named

    async def main() -> dict:
        # melsec:qnudv speaks 3E; the QJ71E71/LJ71E71 module profiles use 4E, which our simulator does not
        target = slmp.SlmpTarget(network=0, station=0xFF, module_io=0x03FF, multidrop=0)
        client = AsyncSlmpClient("127.0.0.1", job["port"], transport="tcp", timeout=2.0,
                                 default_target=target, plc_profile="melsec:qnudv")
        await client.connect()
        loop = asyncio.get_running_loop()

        def poll(_plan: list[dict], specs: list[dict]) -> dict:
            return asyncio.run_coroutine_threadsafe(poll_async(specs), loop).result()

        async def poll_async(specs: list[dict]) -> dict:
            named = [s for s in specs if s["type"] != "string"]
            out = await read_named(client, [s["named"] for s in named])
            values = {s["name"]: out[s["named"]] for s in named}
            for s in specs:  # read_named takes no strings: the caller reads their words
                if s["type"] == "string":
                    got = await client.read_devices(s["device"], s["width"], bit_unit=False)
                    words = {f"{s['kind']}:{s['word'] + i}": int(v) for i, v in enumerate(got)}
                    values[s["name"]] = decode(s, words)
            return values

        async def probes() -> dict:
            return {
                "end_code": await aoutcome(client.read_devices(PAST_RANGE, 2, bit_unit=False)),
                "after_end_code": await aoutcome(client.read_devices("D0", 1, bit_unit=False)),
                "drop": await aoutcome(client.read_devices(f"D{DROP_DEVICE}", 1, bit_unit=False)),
                "after_drop": await aoutcome(client.read_devices("D0", 1, bit_unit=False)),
            }

        # the timed loop runs in a worker thread driving this loop, so CPU is counted for the
        # whole process as for the others
        result = await loop.run_in_executor(None, lambda: timed(job, poll, lambda: None))
        if job["phase"] == "rest":
            result["probes"] = await probes()
        await client.close()
        return result

    return asyncio.run(main())


def run_ours(job: dict) -> dict:
    """Our McLink under the gateway's DevicePoller (planner, decoding), as the gateway runs it."""
    sys.path.insert(0, str(ROOT))
    from gateway.links import build_links
    from gateway.settings import DeviceSettings
    from gateway.poller import DevicePoller
    from plcprotocol import mc

    async def main() -> dict:
        results: dict[str, dict] = {}
        for which in (("fleet",) if job["phase"] == "fleet" else ("extras",)):
            device = DeviceSettings.model_validate({"name": "m", "line": "l1", "protocol": "mc", "host": "127.0.0.1",
                                                    "port": job["port"], "tags": job[f"{which}_tags"]})
            link = build_links([device])[device.link]
            got: list[dict] = []
            poller = DevicePoller(device, link, lambda d, ts, v: got.append(v))
            polls = job["polls"] if which == "fleet" else 1
            t0 = time.process_time()
            for _ in range(polls):
                await poller.poll_once()
            results[which] = {"cpu_s": time.process_time() - t0, "polls": polls, "values": got[-1]}
        if job["phase"] == "fleet":
            return results
        from gateway.mclink import McLink

        link = McLink("127.0.0.1", job["port"])
        d0 = mc.Device.parse("D0")
        results["probes"] = {
            "end_code": await aoutcome(link.read_words(mc.Device.parse(PAST_RANGE), 2, 2.0)),
            "after_end_code": await aoutcome(link.read_words(d0, 1, 2.0)),
            "drop": await aoutcome(link.read_words(mc.Device.parse(f"D{DROP_DEVICE}"), 1, 2.0)),
            "after_drop": await aoutcome(link.read_words(d0, 1, 2.0)),
        }
        link.close()
        return results

    return asyncio.run(main())


def timed(job: dict, poll, probes) -> dict:
    results: dict[str, object] = {}
    for which in (("fleet",) if job["phase"] == "fleet" else ("extras",)):
        polls = job["polls"] if which == "fleet" else 1
        try:
            t0 = time.process_time()
            for _ in range(polls):
                values = poll(job[f"{which}_plan"], job[f"{which}_specs"])
            results[which] = {"cpu_s": time.process_time() - t0, "polls": polls, "values": values}
        except Exception as exc:  # noqa: BLE001
            results[which] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    p = probes() if job["phase"] == "rest" else None
    if p is not None:
        results["probes"] = p
    return results


def client_main(name: str) -> None:
    job = json.loads(sys.stdin.read())
    run = {"ours": run_ours, "pymcprotocol": run_pymcprotocol, "plc-comm-slmp": run_plc_comm_slmp}[name]
    print(json.dumps(run(job), default=repr))


# -- parent side: the simulator, the map, the comparison --------------------------------------

def tag_maps() -> tuple[list[dict], list[dict]]:
    sys.path.insert(0, str(ROOT))
    from bench.gateway import protocol_map

    extras = [{"name": "recipe", "device": "D600", "type": "string", "length": 8},
              {"name": "x1a0", "device": "X1A0"}, {"name": "x1a1", "device": "X1A1"},
              {"name": "b1f", "device": "B1F"}, {"name": "w1ff", "device": "W1FF"},
              {"name": "speed", "device": "D610", "type": "float32"},
              {"name": "count", "device": "W20A", "type": "int32"}]
    return protocol_map("mc"), extras


def fill(memory, tags: list[dict], seed: int = 15) -> dict[str, object]:
    """Seeded values in the simulator's memory; the values each tag must read."""
    rng, expected = random.Random(seed), {}
    for t in tags:
        typ, dev = t.get("type", "bool" if t["device"][0] in "XYMBL" else "uint16"), t["device"]
        if typ == "bool":
            v: object = rng.random() < 0.5 or t["name"] in ("x1a0", "b1f")
            memory.set_bit(dev, bool(v))
        elif typ == "uint16":
            v = rng.randrange(0x8000, 0x10000) if rng.random() < 0.3 else rng.randrange(0x8000)  # some >= 0x8000
            memory.set_word(dev, v)
        elif typ == "int32":
            v = rng.randrange(-2**31, 2**31)
            memory.set_dword(dev, v)
        elif typ == "float32":
            v = struct.unpack("<f", struct.pack("<f", rng.uniform(-1e4, 1e4)))[0]
            memory.set_dword(dev, struct.unpack("<I", struct.pack("<f", v))[0])
        else:
            v = "PRESS-07"[: t["length"]]
            from plcprotocol import mc

            d = mc.Device.parse(dev)
            raw = v.encode().ljust(t["length"] + t["length"] % 2, b"\x00")
            for i in range(0, len(raw), 2):
                memory.words[d.kind.name][d.number + i // 2] = raw[i] | raw[i + 1] << 8
        expected[t["name"]] = v
    return expected


def specs_and_plan(tags: list[dict]) -> tuple[list[dict], list[dict]]:
    """Per-tag decoding specs, and our planner's reads as device strings (for a candidate
    without a planner of its own)."""
    from gateway.planner import RandomRead
    from gateway.settings import DeviceSettings
    from bench.gateway import gw_reads
    from plcprotocol import mc

    device = DeviceSettings.model_validate({"name": "m", "line": "l1", "protocol": "mc", "host": "127.0.0.1",
                                            "port": 1, "tags": tags})
    specs = []
    for t in tags:
        d = mc.Device.parse(t["device"])
        typ = t.get("type", "bool" if d.kind.is_bit else "uint16")
        word, bit = (d.number // 16, d.number % 16) if d.kind.is_bit else (d.number, 0)
        width = {"int32": 2, "float32": 2, "string": (t.get("length", 0) + 1) // 2}.get(typ, 1)
        suffix = {"int32": ":L", "float32": ":F", "uint16": ":U", "bool": ":BIT"}.get(typ, "")
        specs.append({"name": t["name"], "kind": d.kind.name, "word": word, "bit": bit, "width": width,
                      "type": typ, "length": t.get("length", 0), "device": str(d), "named": f"{d}{suffix}"})

    def name(area: object, word: int) -> str:
        kind = mc.DEVICE_KINDS[str(area)]
        number = word * 16 if kind.is_bit else word
        # pymcprotocol reads "WA" as a device kind "WA": hexadecimal numbers need a leading 0
        return f"{kind.name}0{number:X}" if kind.hex_numbered else f"{kind.name}{number}"

    plan = []
    for r in gw_reads(device):
        if isinstance(r, RandomRead):
            plan.append({"kind": "random", "words": [name(a, w) for a, w in r.words],
                         "dwords": [name(a, w) for a, w in r.dwords],
                         "word_keys": [f"{a}:{w}" for a, w in r.words], "dword_keys": [f"{a}:{w}" for a, w in r.dwords]})
        else:
            plan.append({"kind": "batch", "area": str(r.table), "word": r.address, "count": r.count,
                         "head": name(r.table, r.address)})
    return specs, plan


def same(a: object, b: object) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and struct.pack("<f", a) == struct.pack("<f", b)
    return a == b and type(a) is type(b) or (isinstance(a, bool) is isinstance(b, bool) and a == b)


async def run_client(name: str, python: str, job: dict, server, counts: dict) -> dict:
    before = dict(server.commands)
    proc = await asyncio.create_subprocess_exec(python, __file__, "--client", name, stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                env={**os.environ, "PYTHONPATH": str(ROOT)})
    out, err = await proc.communicate(json.dumps(job).encode())
    if proc.returncode:
        return {"error": err.decode()[-600:]}
    result = json.loads(out)
    result["commands"] = {f"0x{k:04X}": v - before.get(k, 0) for k, v in server.commands.items()}
    return result


async def measure(candidate_python: str, polls: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from simulators.mc_server import McMemory, McServer

    fleet, extras = tag_maps()
    memory = McMemory()
    expected = {**fill(memory, fleet), **fill(memory, extras, seed=16)}
    server = McServer(memory)
    answer = server._answer

    def answering(frame: bytes) -> bytes:
        # a batch read whose head is D12000 (Q addressing): close the connection, no answer
        if frame[11:13] == b"\x01\x04" and frame[15:19] == DROP_DEVICE.to_bytes(3, "little") + b"\xa8":
            raise ConnectionResetError("bench: dropping the connection")
        return answer(frame)

    server.answer = answering
    port = await server.start()
    fleet_specs, fleet_plan = specs_and_plan(fleet)
    extras_specs, extras_plan = specs_and_plan(extras)
    job = {"port": port, "polls": polls, "fleet_tags": fleet, "extras_tags": extras, "fleet_specs": fleet_specs,
           "fleet_plan": fleet_plan, "extras_specs": extras_specs, "extras_plan": extras_plan}
    results: dict[str, dict] = {}
    for name in ("ours", *CANDIDATES):
        python = sys.executable if name == "ours" else candidate_python
        if name != "ours":
            check = await asyncio.create_subprocess_exec(python, "-c", f"import {CANDIDATES[name]}",
                                                         stdout=asyncio.subprocess.DEVNULL,
                                                         stderr=asyncio.subprocess.DEVNULL)
            if await check.wait():
                print(f"skipping {name}: not installed for {python} (pip install {name} into that venv)",
                      file=sys.stderr)
                results[name] = {"skipped": f"not installed for {python}"}
                continue
            version = await asyncio.create_subprocess_exec(
                python, "-c", f"import importlib.metadata as m; print(m.version('{name}'))",
                stdout=asyncio.subprocess.PIPE)
            ver = (await version.communicate())[0].decode().strip()
        else:
            ver = "this tree"
        print(f"running {name} ...", file=sys.stderr, flush=True)
        r = await run_client(name, python, {**job, "phase": "fleet"}, server, {})
        if "error" not in r:
            commands = r.pop("commands")
            r["fleet_commands"] = ", ".join(f"{k}: {v / polls:g}" for k, v in commands.items() if v)
            r["fleet_requests"] = sum(commands.values())
            rest = await run_client(name, python, {**job, "phase": "rest"}, server, {})
            r.update({k: v for k, v in rest.items() if k in ("extras", "probes", "error")})
        r["version"] = ver
        # per-phase requests: fleet polls, then the single extras poll and the probes
        results[name] = r
        print(name, json.dumps({k: v for k, v in r.items() if k not in ("fleet", "extras")}), file=sys.stderr)
    await server.stop()
    return {"results": results, "expected": expected, "fleet_tags": len(fleet), "extras": [t["name"] for t in extras],
            "polls": polls}


def render(m: dict, args: argparse.Namespace) -> str:
    expected = m["expected"]
    ours_cpu = None
    rows, probes = [], []
    for name, r in m["results"].items():
        if "skipped" in r or "error" in r:
            rows.append(f"| {name} | {r.get('skipped') or r.get('error', '')[:120]} | | | | |")
            continue
        fleet, extras = r.get("fleet", {}), r.get("extras", {})
        wrong = [k for k, v in {**fleet.get("values", {}), **extras.get("values", {})}.items()
                 if not same(v, expected[k])]
        missing = len(expected) - len(fleet.get("values", {})) - len(extras.get("values", {}))
        cpu_per_1000 = fleet["cpu_s"] / (fleet["polls"] * m["fleet_tags"]) * 1000 if "cpu_s" in fleet else float("nan")
        if name == "ours":
            ours_cpu = cpu_per_1000
        ratio = f"{cpu_per_1000 / ours_cpu:.2f}" if cpu_per_1000 and ours_cpu else "-"
        rpp = f"{r['fleet_requests'] / fleet['polls']:g}" if "polls" in fleet else "-"
        err = fleet.get("error") or extras.get("error") or ""
        shown = ", ".join(f"{k} (got {({**fleet.get('values', {}), **extras.get('values', {})})[k]!r}, "
                          f"held {expected[k]!r})" for k in wrong[:4])
        rows.append(f"| {name} {r['version']} | {rpp} ({r['fleet_commands']}) | "
                    f"{cpu_per_1000:.4f} | {ratio} | "
                    f"{len(expected) - len(wrong) - missing}/{len(expected)}{'; wrong: ' + shown if shown else ''}"
                    f"{'; ' + err if err else ''} | |")
        p = r.get("probes", {})

        def say(o: dict) -> str:
            return ("answered " + o["result"]) if o.get("ok") else ("raised " + o.get("error", "?"))
        probes.append(f"| {name} | {say(p.get('end_code', {}))} | {say(p.get('after_end_code', {}))} | "
                      f"{say(p.get('drop', {}))} | {say(p.get('after_drop', {}))} |")
    out = [TITLE, "",
           f"- date: {time.strftime('%a %b %d %H:%M:%S UTC %Y', time.gmtime())}",
           f"- machine: {platform.system()} {platform.release()} {platform.machine()}, nproc {os.cpu_count()}, "
           f"Python {platform.python_version()}; shared with other engineers' jobs while running",
           f"- command: `python bench/mc_candidates.py --candidate-python {args.candidate_python} --polls {args.polls}`",
           "",
           f"One `simulators.mc_server.McServer` on 127.0.0.1 (Q addressing), {m['fleet_tags']} fleet tags "
           "(`bench/gateway.py`: D0-D119 uint16, D200-D279 float32, W0-W27 int32, M0-M19 bits) and "
           f"{len(m['extras'])} extra tags (string D600, X1A0, X1A1, B1F, W1FF, float32 D610, int32 W20A), seeded values. "
           f"Each client in its own process; {m['polls']} polls of the fleet map; CPU = that process's CPU time "
           "over the polls (decoding included), requests counted at the simulator by command "
           "(0x0401 batch read, 0x0403 random read). pymcprotocol has no planner: it is given our planner's reads. "
           "plc-comm-slmp groups with its own `read_named` (one random read a call; strings read by the caller).",
           "",
           "| client | requests per poll (by command) | CPU s per 1000 tag reads | ratio to ours | values right | |",
           "|---|---:|---:|---:|---|---|", *rows, "",
           "End code and dropped connection, on the same client object: a 2-word read at D12287 (past D: C056), "
           "then D0; a read the simulator answers by closing the connection, then D0.", "",
           "| client | C056 read | next read | dropped | next read |", "|---|---|---|---|---|", *probes, ""]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--candidate-python", default="/tmp/mcvenv/bin/python",
                        help="a Python whose site-packages has the candidates (not the project's venv)")
    parser.add_argument("--polls", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if args.client:
        client_main(args.client)
        return
    m = asyncio.run(measure(args.candidate_python, args.polls))
    section = render(m, args)
    print(section)
    if not args.no_write:
        sys.path.insert(0, str(ROOT))
        from bench.results import update_section

        update_section(TITLE, section)


if __name__ == "__main__":
    main()
