"""``smartfactory demo``: the whole platform as child processes of one command.

Each part runs as the same command an operator would run on its own (``smartfactory
simulate``, ``gateway run``, ``collector``, ``api``, ``broker``), from one generated
config file, so the demo exercises the real process boundaries, including the collector
and the API sharing the embedded store from two processes.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import yaml

from simulators.kinds import KINDS
from simulators.press import PRESS_TAGS

HISTORY_UTC_OFFSET_H = 9  # the demo plant is in Korea

TENANT, SITE, LINE = "hanil-autoparts", "changwon-1", "press-line-1"
MACHINES = ("press-1", "press-2", "press-3", "press-4")
#: What each demo press's PLC speaks: one of each protocol the gateway reads, on loopback.
PROTOCOLS = dict(zip(MACHINES, ("modbus", "mc", "xgt", "opcua")))
GATEWAY_ID = "demo-gateway-1"
#: Demo logins, printed in the banner: an SME owner (Korean UI) and a centre engineer (English UI).
DEMO_OWNER = ("hanil-owner", "hanil-demo-1234")
DEMO_ENGINEER = ("centre-engineer", "centre-demo-1234")
OTHER_TENANT = "daehan-metal"  # a second SME with its own owner, to show that tenants cannot see each other
DEMO_OTHER_OWNER = ("daehan-owner", "daehan-demo-1234")
#: The demo presses: blanks loaded by hand (4.2 s) and a 19 s pressing step (simulators/kinds.py "press").
PRESS_PARAMS = {"load_s": 4.2, "process_s": 19.0}
#: Their ideal cycle time: pressing plus unloading, with an automatic feed (no manual input, no idle gap),
#: so performance reads about 70-80% (a 12 s ideal, shorter than the pressing alone, read 40%).
PRESS_IDEAL_CYCLE_S = PRESS_PARAMS["process_s"] + KINDS["press"].params.unload_s


@dataclass(frozen=True)
class DemoOptions:
    mqtt_url: str | None
    influx_url: str | None
    influx_database: str
    data_dir: Path
    host: str
    port: int
    speed: float
    served_log: Path | None = None
    poll_interval_s: float = 1.0
    history_days: float = 28.0  # backfilled before the live part; the rollout falls in the middle


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex((host, port)) == 0


def build_config(opts: DemoOptions, broker_port: int | None, plc_ports: list[int],
                 rollout_date: str | None = None) -> dict:
    """The demo's config file, written to the data dir so the user can read and reuse it.

    With the history's rollout date, the ``analytics`` section names the rollout, so the
    centre view and ``smartfactory report --portfolio`` show its before/after at once.
    """
    store: dict
    if opts.influx_url:
        store = {"kind": "influxdb", "url": opts.influx_url, "database": opts.influx_database}
    else:
        store = {"kind": "sqlite", "path": "telemetry.db"}
    return {
        "mqtt": {"url": opts.mqtt_url or f"mqtt://127.0.0.1:{broker_port}"},
        "store": store,
        "simulator": {
            "host": "127.0.0.1",
            "speed": opts.speed,
            **({"served_log": str(opts.served_log.resolve())} if opts.served_log else {}),
            "scenario": SCENARIO_FILE,  # written beside this file by build_scenario
        },
        "gateway": {
            "id": GATEWAY_ID,
            "tenant": TENANT,
            "site": SITE,
            "devices": [demo_device(name, port, opts.poll_interval_s) for name, port in zip(MACHINES, plc_ports)],
        },
        "collector": {"client_id": "demo-collector-1"},  # the production batching (group commit at this load)
        "api": {"host": opts.host, "port": opts.port, "database_url": "sqlite:///plant.db"},
        **({"analytics": {
            # the demo presses' ideal cycle: pressing plus unloading, without material input
            "default": {"timezone": "Asia/Seoul", "default_ideal_cycle_s": PRESS_IDEAL_CYCLE_S},
            "rollouts": [{"tenant": TENANT, "line": LINE, "date": rollout_date, "commissioning_days": 1}],
        }} if rollout_date else {}),
    }


def demo_device(name: str, port: int, poll_interval_s: float) -> dict:
    """The gateway's device for a demo press, in its PLC's protocol, with the map the simulator serves it through."""
    from simulators.framed_plcs import mc_register_map, xgt_register_map
    from simulators.opcua_plcs import endpoint, opcua_register_map

    protocol = PROTOCOLS[name]
    device: dict = {"name": name, "line": LINE, "poll_interval_s": poll_interval_s}
    if protocol == "opcua":
        device.update(protocol="opcua", endpoint=endpoint("127.0.0.1", port))
        tags: tuple = opcua_register_map(name, PRESS_TAGS)
    else:
        device.update(host="127.0.0.1", port=port)
        tags = PRESS_TAGS
        if protocol != "modbus":
            device["protocol"] = protocol
            tags = mc_register_map(PRESS_TAGS) if protocol == "mc" else xgt_register_map(PRESS_TAGS)
    # a list per device: a shared one would be written as a YAML alias
    device["tags"] = [t.model_dump(mode="json", exclude_defaults=True) for t in tags]
    return device


def build_plant_seed(rollout_date: str | None = None) -> dict:
    """The demo centre: the simulated press line's SME, a second SME, and one login per role.

    Shifts follow the demo scenario's calendar; the rollout date is the scenario's.
    """
    # Against flapping (docs/api.md, Alarms): the press force is one value per stroke and 0 between strokes,
    # so an off-delay of two cycles (about 29 s each) keeps overloads on consecutive strokes one alarm; the
    # 2 s on-delay passes over a single bad read; the deadband (10 kN, about 1 % of the 0-1000 kN range) keeps
    # a stroke at 825-830 kN from clearing it. A fault that comes back within 15 s of a reset stays one alarm.
    press_alarms = [
        {"name": "고장 30초 이상", "kind": "state_duration", "tag": "state", "state": 4, "duration_s": 30,
         "off_delay_s": 15},
        {"name": "프레스 압력 830 kN 초과", "kind": "threshold", "tag": "press_force", "op": ">", "threshold": 830,
         "on_delay_s": 2, "deadband": 10, "off_delay_s": 60},
    ]
    return {
        "centre": "Gyeongnam Smart Factory Centre",
        "tenants": [
            {"slug": TENANT, "name": "한일오토파츠", "name_en": "Hanil Autoparts", "rollout_date": rollout_date,
             # the rollout plan's targets: the report shows 달성률 against them
             "targets": [{"kpi": "output_per_hour", "change_pct": 10, "note": "시간당 생산량 10% 향상"},
                         {"kpi": "material_input_s", "change_pct": -70, "note": "자재 투입 자동화"}],
             "sites": [
                {"slug": SITE, "name": "창원 1공장", "name_en": "Changwon Plant 1", "lines": [
                    {"slug": LINE, "name": "프레스 1라인", "name_en": "Press Line 1",
                     "shifts": [{"name": "1조", "start": "06:00", "end": "14:00"},
                                {"name": "2조", "start": "14:00", "end": "22:00"},
                                {"name": "3조", "start": "22:00", "end": "06:00"}],
                     "machines": [{"slug": m, "name": f"프레스 {i}호기", "name_en": f"Press {i}", "ideal_cycle_s": PRESS_IDEAL_CYCLE_S,
                                   "gateway": GATEWAY_ID, "alarms": press_alarms} for i, m in enumerate(MACHINES, 1)]}]}]},
            {"slug": OTHER_TENANT, "name": "대한금속", "name_en": "Daehan Metal", "sites": [
                {"slug": "gimhae-1", "name": "김해 공장", "name_en": "Gimhae Plant", "lines": [
                    {"slug": "cnc-line-1", "name": "CNC 1라인", "name_en": "CNC Line 1",
                     "shifts": [{"name": "주간", "start": "08:00", "end": "17:00", "weekdays": "01234"}],
                     "machines": [{"slug": "cnc-1", "name": "CNC 1호기", "name_en": "CNC 1", "ideal_cycle_s": 90.0}]}]}]},
        ],
        "users": [
            {"username": DEMO_OWNER[0], "password": DEMO_OWNER[1], "role": "sme_owner", "tenant": TENANT},
            {"username": DEMO_OTHER_OWNER[0], "password": DEMO_OTHER_OWNER[1], "role": "sme_owner",
             "tenant": OTHER_TENANT},
            {"username": DEMO_ENGINEER[0], "password": DEMO_ENGINEER[1], "role": "centre_engineer"},
        ],
        # the demo's embedded broker runs with --allow-anonymous; with mosquitto (or `smartfactory broker -c`),
        # `smartfactory broker-acl` uses these
        "broker_accounts": [{"username": GATEWAY_ID, "password": "gateway-demo-1234", "kind": "gateway",
                             "tenant": TENANT}],
    }


def seed_plant(data_dir: Path, rollout_date: str | None = None) -> None:
    from plantmodel.admin import PlantSeed, apply_seed
    from plantmodel.db import open_plant

    plant = open_plant(f"sqlite:///{data_dir / 'plant.db'}")
    try:
        apply_seed(plant, PlantSeed.model_validate(build_plant_seed(rollout_date)))
    finally:
        plant.close()


SCENARIO_FILE = "demo-scenario.yaml"
ORDERS_FILE = "orders.csv"


def seed_orders(data_dir: Path, scenario: dict) -> Path | None:
    """The line's ERP order export for the history (``simulators.orders``: on time 78% → 93%, lead time 6 → 4
    days at the rollout), written beside the config and imported, so the report's D has content."""
    from datetime import date

    from plantmodel.orders import import_csv
    from plantmodel.db import open_plant
    from simulators.orders import generate

    if "rollout" not in scenario:
        return None
    text = generate(date.fromisoformat(scenario["start"]), int(scenario["days"]),
                    date.fromisoformat(scenario["rollout"]["date"]), LINE, seed=int(scenario.get("seed", 1)))
    path = data_dir / ORDERS_FILE
    path.write_text(text, encoding="utf-8")
    plant = open_plant(f"sqlite:///{data_dir / 'plant.db'}")
    try:
        import_csv(plant, TENANT, text)
    finally:
        plant.close()
    return path


#: Planned stops of the demo calendar, in local minutes of the day: a 10-minute break in each
#: shift and 10 minutes of cleaning before each shift change (06:00, 14:00, 22:00).
BREAKS_MIN, SHIFT_ENDS_MIN, STOP_MIN = (10 * 60, 18 * 60, 2 * 60), (6 * 60, 14 * 60, 22 * 60), 10
#: No planned stop starts within this long after the demo starts: whoever starts it sees the line move.
MOVING_AFTER_START_MIN = 45


def _breaks_clear_of(start: datetime) -> dict:
    """Breaks and cleaning for the demo calendar, none of them within the first minutes of the run."""
    now_min = start.hour * 60 + start.minute

    def near(at_min: int) -> bool:  # a stop [at, at + 10) that overlaps [now - 10, now + MOVING_AFTER_START_MIN)
        return (at_min - now_min + STOP_MIN) % 1440 < MOVING_AFTER_START_MIN + STOP_MIN

    breaks = []
    for b in BREAKS_MIN:
        while near(b):
            b = (b + 60) % 1440  # an hour later: still inside the same 8-hour shift for these three
        breaks.append({"start": f"{b // 60:02d}:{b % 60:02d}", "minutes": STOP_MIN})
    cleaning = 0 if any(near((end - STOP_MIN) % 1440) for end in SHIFT_ENDS_MIN) else STOP_MIN
    return {"breaks": breaks, "cleaning_minutes": cleaning}


def build_scenario(opts: DemoOptions, plc_ports: list[int], now: float) -> dict:
    """The demo line as a scenario: its history is backfilled, then the same timelines go live.

    Three shifts every day, with breaks and cleaning placed clear of the start (so the line
    moves whenever the demo is started), the press line's parameters and its rollout
    (material input -75%) in the middle of the history. One press per PLC protocol
    (``PROTOCOLS``): the same model behind Modbus TCP, MC, XGT and OPC UA.
    """
    tz = timezone(timedelta(hours=HISTORY_UTC_OFFSET_H))
    today = datetime.fromtimestamp(now, tz).date()
    days = max(int(round(opts.history_days)), 0)
    start = today - timedelta(days=days)
    every = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    scenario: dict = {
        "tenant": TENANT, "site": SITE, "description": "smartfactory demo press line", "seed": 1,
        "start": start.isoformat(), "days": max(days, 1), "host": "127.0.0.1",
        "calendar": {
            "utc_offset_hours": HISTORY_UTC_OFFSET_H,
            "shifts": [{"start": "06:00", "end": "14:00", "days": every},
                       {"start": "14:00", "end": "22:00", "days": every},
                       {"start": "22:00", "end": "06:00", "days": every}],
            **_breaks_clear_of(datetime.fromtimestamp(now, tz)),
        },
        "lines": [{"name": LINE, "machines": [
            {"name": name, "kind": "press", "port": port, "params": dict(PRESS_PARAMS),
             # the walking skeleton's map, which the gateway config reads (over MC, XGT and OPC UA:
             # the maps derived from it)
             **({"register_map": [t.model_dump(mode="json", exclude_defaults=True) for t in PRESS_TAGS]}
                if PROTOCOLS[name] == "modbus" else {"protocol": PROTOCOLS[name]}),
             # press-1 starts high so its uint16 counter wraps; press-2's PLC restarted once
             **({"initial_good_count": 60000} if i == 0 else {}),
             **({"restarts": [f"{(start + timedelta(days=days // 3)).isoformat()}T10:00:00+09:00"]}
                if i == 1 and days >= 3 else {})}
            for i, (name, port) in enumerate(zip(MACHINES, plc_ports))]}],
    }
    if days >= 2:
        scenario["rollout"] = {"date": (start + timedelta(days=days // 2)).isoformat(), "commissioning_days": 1,
                               "changes": {"material_input_time": "-75%"}}
    return scenario


_PROTOCOL_LABEL = {"modbus": "Modbus TCP", "mc": "MC (SLMP)", "xgt": "XGT (FEnet)", "opcua": "OPC UA"}


class Child:
    def __init__(self, name: str, argv: list[str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     env=env, text=True, bufsize=1,
                                     start_new_session=True)  # signals reach children only through stop()
        self._pump = threading.Thread(target=self._forward, daemon=True)
        self._pump.start()

    def _forward(self) -> None:
        """Prefix the child's lines on our stdout and keep them in its log file."""
        with open(self.log_path, "a", encoding="utf-8") as log_file:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                log_file.write(line)
                sys.stdout.write(f"[{self.name:<9}] {line}")
                sys.stdout.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._pump.join(timeout=2)


def _wait(check, what: str, children: list[Child], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for c in children:
            if c.proc.poll() is not None:
                raise RuntimeError(f"{c.name} exited with code {c.proc.returncode} (log: {c.log_path})")
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready after {timeout:.0f}s")


def run_demo(opts: DemoOptions) -> int:
    if port_in_use(opts.host, opts.port):
        print(f"error: {opts.host}:{opts.port} is already in use; stop what runs there or choose --port", file=sys.stderr)
        return 2
    data_dir = opts.data_dir.resolve()
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    broker_port = None if opts.mqtt_url else free_port()
    plc_ports = [free_port() for _ in MACHINES]
    now = time.time()
    scenario = build_scenario(opts, plc_ports, now)
    (data_dir / SCENARIO_FILE).write_text(yaml.safe_dump(scenario, sort_keys=False))
    rollout_date = scenario.get("rollout", {}).get("date")
    config_path = data_dir / "smartfactory.yaml"
    config_path.write_text(yaml.safe_dump(build_config(opts, broker_port, plc_ports, rollout_date), sort_keys=False))
    seed_plant(data_dir, rollout_date)
    seed_orders(data_dir, scenario)

    me = [sys.executable, "-m", "cli.main"]
    cfg = ["--config", str(config_path)]
    children: list[Child] = []
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())

    def start(name: str, *args: str) -> Child:
        child = Child(name, [*me, *args], data_dir / "logs")
        children.append(child)
        return child

    try:
        # the PLCs first: they need nothing else, and their OPC UA stack takes a while to load
        start("simulate", "simulate", *cfg)
        if broker_port:
            # anonymous: the demo's gateway and collector share one config (one mqtt section) on one machine
            start("broker", "broker", "--port", str(broker_port), "--allow-anonymous")
            _wait(lambda: port_in_use("127.0.0.1", broker_port), "embedded MQTT broker", children)
        start("api", "api", *cfg)
        start("collector", "collector", *cfg)
        _wait(lambda: all(port_in_use("127.0.0.1", p) for p in plc_ports), "simulated PLCs", children)
        start("gateway", "gateway", "run", *cfg)
        url = f"http://{opts.host}:{opts.port}"
        _wait(lambda: _healthy(url), "API", children)
        # History up to the moment the live part took over, written beside the live data
        # while the live part runs (a one-shot child: its exit does not stop the demo).
        backfill = None
        if "rollout" in scenario and opts.history_days > 0:
            end = datetime.fromtimestamp(now, timezone.utc).isoformat()
            backfill = start("backfill", "backfill", str(data_dir / SCENARIO_FILE), "--end", end, *cfg,
                             "--truth", str(data_dir / "ground-truth"))
        print(
            "\n"
            f"  smartfactory demo is running ({len(MACHINES)} simulated presses, {opts.speed:g}x speed)\n"
            f"  PLCs:       {', '.join(f'{m} {_PROTOCOL_LABEL[PROTOCOLS[m]]}' for m in MACHINES)}\n"
            f"  Dashboard:  {url}/\n"
            f"  Log in:     {DEMO_OWNER[0]} / {DEMO_OWNER[1]}  (SME owner, Korean)\n"
            f"              {DEMO_ENGINEER[0]} / {DEMO_ENGINEER[1]}  (centre engineer, English)\n"
            f"  API docs:   {url}/docs\n"
            f"  Config:     {config_path}\n"
            f"  Store:      {'InfluxDB ' + opts.influx_url if opts.influx_url else data_dir / 'telemetry.db'}\n"
            f"  Broker:     {opts.mqtt_url or f'embedded, mqtt://127.0.0.1:{broker_port}'}\n"
            + ("" if opts.mqtt_url else
               "              ANONYMOUS (--allow-anonymous): any local client may publish and read; demo only,\n"
               "              production needs broker accounts (docs/security.md)\n")
            + (f"  History:    {scenario['days']} days being backfilled (rollout on {scenario['rollout']['date']}: "
               f"material input -75%); ground truth in {data_dir / 'ground-truth'}\n"
               f"  Orders:     {data_dir / ORDERS_FILE} imported (on time 78% -> 93%, lead time 6 -> 4 days: "
               "the report's D)\n" if backfill else "")
            + f"  Scenario:   {data_dir / SCENARIO_FILE}\n"
            "  Stop with Ctrl-C.\n",
            flush=True,
        )
        while not stop.wait(0.5):
            for c in children:
                if c.name == "backfill":
                    if c is backfill and c.proc.poll() is not None:
                        if c.proc.returncode == 0:
                            print("  History backfilled: the dashboard shows the days before and after the rollout.",
                                  flush=True)
                        else:
                            print(f"warning: backfill exited with code {c.proc.returncode} (log: {c.log_path}); "
                                  "the live part keeps running", file=sys.stderr, flush=True)
                        backfill = None
                    continue
                if c.proc.poll() is not None and not stop.is_set():
                    print(f"error: {c.name} exited with code {c.proc.returncode}; stopping the demo "
                          f"(log: {c.log_path})", file=sys.stderr)
                    return 1
        return 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        for c in reversed(children):
            c.stop()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
