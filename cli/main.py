"""``smartfactory``: demo, simulate, gateway, collector, api, plant, broker-acl, broker."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from cli.config import ConfigError, LoadedConfig, load_config
from cli.logs import FORMATS, LOG_FORMAT_ENV, setup_logging

log = logging.getLogger(__spec__.name if __name__ == "__main__" and __spec__ else __name__)  # python -m cli.main

CONFIG_OPTION = click.option(
    "-c",
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default="smartfactory.yaml",
    show_default=True,
    envvar="SMARTFACTORY_CONFIG",
    help="YAML config file (env SMARTFACTORY_CONFIG).",
)


def _load(path: Path) -> LoadedConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)


def _section(config: LoadedConfig, name: str):
    try:
        return config.require(name)
    except ConfigError as exc:
        click.echo(f"config error: {exc}", err=True)
        sys.exit(2)


def _run_until_signal(main: Callable[[], Awaitable[None]]) -> None:
    """Run an asyncio service; SIGINT/SIGTERM cancel it so it can clean up."""

    async def runner() -> None:
        task = asyncio.current_task()
        assert task is not None  # runner() runs as asyncio.run's main task
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            await main()
        except asyncio.CancelledError:
            log.info("stopped")

    asyncio.run(runner())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default="INFO", show_default=True,
              type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False))
@click.option("--log-format", default="text", show_default=True, envvar=LOG_FORMAT_ENV, type=click.Choice(FORMATS),
              help="text for people; json for a log aggregator: one object per line with the event's fields "
              f"(also ${LOG_FORMAT_ENV}; processes this one starts inherit it).")
def cli(log_level: str, log_format: str) -> None:
    """Smart-factory monitoring: Modbus gateways, MQTT, time-series store, KPIs, dashboards."""
    setup_logging(log_level, log_format)
    os.environ[LOG_FORMAT_ENV] = log_format  # API workers and the demo's children log the same way


@cli.command()
@click.option("--mqtt-url", help="Use this broker (mqtt://host:port) instead of the embedded one.")
@click.option("--influx-url", help="Use this InfluxDB (http://host:8086) instead of the embedded store.")
@click.option("--influx-database", default="smartfactory", show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default="demo-data", show_default=True,
              help="Where the demo keeps its config, store and logs.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the API listens on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="API port.")
@click.option("--speed", default=1.0, show_default=True, type=click.FloatRange(0.1, 100),
              help="Simulated seconds per real second.")
@click.option("--poll-interval", default=1.0, show_default=True, type=click.FloatRange(0.05, 60),
              help="Seconds between polls of each simulated PLC.")
@click.option("--served-log", type=click.Path(dir_okay=False, path_type=Path),
              help="Record every block of registers the simulators serve (JSON lines), to verify the pipeline.")
@click.option("--history-days", default=28, show_default=True, type=click.IntRange(0, 366),
              help="Days of history to backfill (rollout in the middle), while the live part runs; 0: none.")
def demo(mqtt_url, influx_url, influx_database, data_dir, host, port, speed, poll_interval, served_log,
         history_days) -> None:
    """Run the whole platform on one machine: simulated press line, gateway, broker, collector, store, API."""
    from cli.demo import DemoOptions, run_demo

    sys.exit(run_demo(DemoOptions(mqtt_url, influx_url, influx_database, data_dir, host, port, speed,
                                  served_log=served_log, poll_interval_s=poll_interval,
                                  history_days=history_days)))


def _scenario(name: str):
    from simulators.scenario import ScenarioError, load_scenario, resolve_scenario_path

    try:
        return load_scenario(resolve_scenario_path(name))
    except ScenarioError as exc:
        click.echo(f"scenario error: {exc}", err=True)
        sys.exit(2)


@cli.command()
@click.argument("scenario", required=False)
@CONFIG_OPTION
@click.option("--speed", type=click.FloatRange(0.01, 1000), help="Simulated seconds per real second [default: 1].")
@click.option("--start", "start", help="Simulated instant at startup, ISO 8601 with zone [default: now].")
@click.option("--host", help="Listen address [default: the scenario's or the config's].")
@click.option("--served-log", type=click.Path(dir_okay=False, path_type=Path),
              help="Record every block of registers served, with its wall and simulated time (JSON lines).")
@click.option("--truth", "truth_dir", type=click.Path(file_okay=False, path_type=Path),
              help="On exit, write the ground truth of the simulated span to this directory.")
@click.pass_context
def simulate(ctx: click.Context, scenario: str | None, config_path: Path, speed: float | None, start: str | None,
             host: str | None, served_log: Path | None, truth_dir: Path | None) -> None:
    """Serve simulated PLCs, one port per machine: Modbus TCP, or MC (SLMP) / XGT / OPC UA for a machine with protocol: mc / xgt / opcua.

    SCENARIO is a scenario file or a shipped scenario's name (autoparts_press_line,
    maskpack_filling_line, placebo_machining_line, mixed_press_line: Modbus, MC, XGT and OPC UA); without it, the config's 'simulator'
    section. History for the same scenario: 'smartfactory backfill SCENARIO'.
    """
    from datetime import datetime

    from simulators.modbus_server import serve_scenario

    if scenario == "backfill":
        click.echo("error: history has its own command: smartfactory backfill SCENARIO --days N --sqlite FILE "
                   "(see smartfactory backfill --help)", err=True)
        sys.exit(2)
    if scenario is not None and ctx.get_parameter_source("config_path") is click.core.ParameterSource.COMMANDLINE:
        click.echo("error: give a SCENARIO or --config, not both", err=True)
        sys.exit(2)
    start_s = None
    if start:
        try:
            when = datetime.fromisoformat(start)
        except ValueError:
            click.echo(f"error: --start {start!r} is not an ISO 8601 instant (2026-03-02T08:30:00+09:00)", err=True)
            sys.exit(2)
        if when.tzinfo is None:
            click.echo(f"error: --start {start!r} needs a time zone, e.g. {start}+09:00", err=True)
            sys.exit(2)
        start_s = when.timestamp()
    if scenario is not None:
        loaded = _scenario(scenario)
        _run_until_signal(lambda: serve_scenario(loaded, host=host, speed=speed or 1.0, start_s=start_s,
                                                 served_log=served_log, truth_dir=truth_dir))
        return
    config = _load(config_path)
    settings = _section(config, "simulator")
    from simulators.scenario import ScenarioError

    try:
        loaded = settings.resolve_scenario(config.base_dir)
    except ScenarioError as exc:
        click.echo(f"scenario error: {exc}", err=True)
        sys.exit(2)
    _run_until_signal(lambda: serve_scenario(
        loaded, host=host or settings.host, speed=speed or settings.speed,
        start_s=start_s if start_s is not None else settings.start_s(),
        served_log=served_log or settings.served_log, truth_dir=truth_dir or settings.truth_dir))


@cli.command()
@click.argument("scenario")
@click.option("--days", type=click.FloatRange(0.001, 3660), help="Days of history [default: the scenario's 'days'].")
@click.option("--start", help="First day (2026-01-05) or instant [default: the scenario's start].")
@click.option("--end", help="'now' or a date/instant: the history ends here (with --days and no --start: "
                            "the last N days before it).")
@click.option("-c", "--config", "config_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this config file's store.")
@click.option("--sqlite", "sqlite_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this SQLite store file.")
@click.option("--influx-url", help="Write to this InfluxDB (http://host:8086).")
@click.option("--influx-database", default="smartfactory", show_default=True)
@click.option("--truth", "truth_dir", type=click.Path(file_okay=False, path_type=Path), default="ground-truth",
              show_default=True, help="Directory for the run's ground truth (ground_truth.json, one npz per machine).")
@click.option("--dry-run", is_flag=True, help="Generate and sample only; write nothing to a store.")
def backfill(scenario: str, days: float | None, start: str | None, end: str | None, config_path: Path | None,
             sqlite_path: Path | None, influx_url: str | None, influx_database: str, truth_dir: Path,
             dry_run: bool) -> None:
    """Write days of a scenario's history into a store, as the collector would have stored it.

    Report-on-change at 1 s resolution with every tag at least once a minute (see
    simulators/backfill.py); the same timelines 'smartfactory simulate SCENARIO' serves live.
    """
    from simulators.backfill import backfill as run_backfill
    from simulators.backfill import plan_range, store_writer
    from tsstore import InfluxSettings, SqliteSettings, open_store

    loaded = _scenario(scenario)
    targets = [t for t in (config_path, sqlite_path, influx_url) if t]
    if dry_run == bool(targets) or len(targets) > 1:
        click.echo("error: say where to write: one of --config, --sqlite, --influx-url (or --dry-run)", err=True)
        sys.exit(2)
    try:
        t_from, t_to = plan_range(loaded, start, end, days)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    store = None
    if config_path:
        config = _load(config_path)
        store = open_store(config.settings.store, config.base_dir)
    elif sqlite_path:
        store = open_store(SqliteSettings(path=sqlite_path))
    elif influx_url:
        store = open_store(InfluxSettings(kind="influxdb", url=influx_url, database=influx_database))
    try:
        report = run_backfill(loaded, t_from, t_to, store_writer(store) if store else None, truth_dir=truth_dir,
                              progress=log.info)
        if config_path and store is not None:
            _refresh_rollups(config, store, [m.ref for m in loaded.machines()], t_from, t_to)
    finally:
        if store is not None:
            store.close()
    log.info("backfill_done machines=%d days=%.2f instants=%d values=%d seconds=%.1f values_per_s=%.0f truth=%s",
             report.machines, report.days, report.instants, report.values, report.seconds, report.values_per_s,
             report.truth_path)


def _refresh_rollups(config: LoadedConfig, store, machines: list, t_from: float, t_to: float) -> None:
    """History written into the past is older than the maintainer's recheck window: tally it now."""
    import time as _time

    from analytics.continuous import RollupMaintainer

    cache = _rollup_cache(config)
    try:
        started = _time.perf_counter()
        n = RollupMaintainer(store, _analytics_with_plant(config), cache).refresh(machines, int(t_from * 1000), int(t_to * 1000))
        log.info("rollups_refreshed machines=%d buckets=%d seconds=%.1f cache=%s", len(machines), n,
                 _time.perf_counter() - started, cache.path)
    finally:
        cache.close()


@cli.command()
@CONFIG_OPTION
@click.option("--once", is_flag=True, help="One full pass (the last analytics.rollup_recheck_hours rechecked), "
              "then exit (for cron); default: a pass every analytics.rollup_interval_s until stopped.")
@click.option("--refresh-days", type=click.IntRange(1, 3650),
              help="First recompute the last N days for every machine (after importing history).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Maintainer worker processes (PostgreSQL plant database only): they share the machines "
              "through row leases, as the API processes' own workers do.")
def rollups(config_path: Path, once: bool, refresh_days: int | None, workers: int) -> None:
    """Keep the analytics rollup cache up to date, without the API (which does it itself).

    Each pass tallies every machine's newly finished hours from the store and recomputes the
    last analytics.rollup_quick_recheck_hours for late data, and once per
    analytics.rollup_full_recheck_s each machine's last analytics.rollup_recheck_hours (the
    machines taking turns), so reports never start cold. On PostgreSQL, workers here and in
    the API (its leader, or every process) claim machines in batches through row leases
    (analytics.leases); workers are processes, as a tally is CPU-bound Python.
    """
    import multiprocessing

    from plantmodel.db import database_url

    config = _load(config_path)
    url = database_url(config.settings.api.database_url, config.base_dir)
    shared = url.startswith("postgresql") and config.settings.analytics.cache_path is None
    if workers > 1 and not shared:
        click.echo(f"{config_path}: rollups --workers {workers} needs the rollup cache in PostgreSQL (api.database_url "
                   "a postgresql:// URL and no analytics.cache_path); the embedded SQLite cache has one maintainer: "
                   "run without --workers", err=True)
        sys.exit(2)
    if refresh_days:
        _refresh_all(config, refresh_days)
    if workers == 1:
        sys.exit(_rollup_worker(str(config_path), once))
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited connections or threads
    os.environ["SMARTFACTORY_LOG_LEVEL"] = logging.getLevelName(logging.getLogger().level)
    procs = [ctx.Process(target=_rollup_worker_main, args=(str(config_path), once), name=f"rollups-{i + 1}")
             for i in range(workers)]
    for p in procs:
        p.start()
    log.info("rollup_workers_started workers=%d pids=%s", workers, ",".join(str(p.pid) for p in procs))

    def _forward(*_):
        for p in procs:
            if p.is_alive():
                p.terminate()  # SIGTERM: each worker ends its pass at the next machine and gives back its leases

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _forward)
    for p in procs:
        p.join()
    sys.exit(max((p.exitcode or 0) for p in procs) and 1)


def _refresh_all(config: LoadedConfig, days: int) -> None:
    import time as _time

    from analytics.continuous import RollupMaintainer
    from analytics.rollup_pg import PostgresRollupCache
    from tsstore import open_store

    store, cache = open_store(config.settings.store, config.base_dir), _rollup_cache(config)
    try:
        now = _time.time()
        n = RollupMaintainer(store, _analytics_with_plant(config), cache).refresh(
            store.machines(), int((now - days * 86_400) * 1000), int(now * 1000))
        if isinstance(cache, PostgresRollupCache):
            from analytics.leases import RollupLeases

            RollupLeases(cache).make_due()
        log.info("rollups_refreshed days=%d buckets=%d cache=%s", days, n, cache.path)
    finally:
        cache.close()
        store.close()


def _rollup_worker_main(config_path: str, once: bool) -> None:
    """Entry of a ``--workers`` process (spawned: logging is set up again here)."""
    setup_logging(os.environ.get("SMARTFACTORY_LOG_LEVEL", "INFO"), os.environ.get(LOG_FORMAT_ENV, "text"))
    sys.exit(_rollup_worker(config_path, once))


def _rollup_worker(config_path: str, once: bool) -> int:
    """One maintainer (leased on PostgreSQL), with the centre's summaries refreshed after each pass."""
    from analytics.command import maintainer_for
    from tsstore import open_store

    config = _load(Path(config_path))
    s = config.settings
    store = open_store(s.store, config.base_dir)
    cache = _rollup_cache(config)
    plant = _existing_plant(config)
    maintainer = maintainer_for(store, _analytics_with_plant(config), cache)  # the row shape reports read
    if plant is not None:
        from api.centre import CentreSummaries
        from api.services import EffectiveAnalytics

        maintainer.after_pass = CentreSummaries(plant, store, cache, EffectiveAnalytics(s.analytics, plant).get,
                                                int(s.api.stale_after_s * 1000), s.api.centre_gains_ttl_s).refresh
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        if once:  # run rarely (cron): nothing remembers when the day was last rechecked, so recheck it now
            return 1 if maintainer.run_pass(stop=stop, full=True).failed else 0
        maintainer.run_until(stop)  # passes until a signal: the single maintainer every interval, a leased one when due
        return 0
    finally:
        cache.close()
        store.close()
        if plant is not None:
            plant.close()


@cli.group()
def gateway() -> None:
    """Read PLCs (Modbus, MC/SLMP, LS XGT, OPC UA) and publish to MQTT."""


@gateway.command("run")
@CONFIG_OPTION
def gateway_run(config_path: Path) -> None:
    """Poll the configured devices and publish every poll (the 'gateway' and 'mqtt' sections)."""
    from gateway.outbox import OutboxError
    from gateway.service import Gateway, run_gateway

    config = _load(config_path)
    settings = _section(config, "gateway")

    def reread():
        # errors name the file and the key path (ConfigError); the gateway logs them and keeps running
        again = load_config(config_path)
        return again.require("gateway"), again.settings.mqtt

    def started(gw: Gateway) -> None:
        # SIGHUP (systemctl reload): re-read the config and swap the changed devices
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, gw.request_reload)

    try:
        _run_until_signal(lambda: run_gateway(settings, config.settings.mqtt, config.base_dir, reread, started))
    except OutboxError as exc:
        click.echo(f"gateway error: {exc}", err=True)
        sys.exit(2)


@gateway.command("plan")
@CONFIG_OPTION
def gateway_plan(config_path: Path) -> None:
    """Print the reads each poll will send (OPC UA: the nodes it subscribes), without touching a device."""
    from gateway.planner import (DevicePlan, IndividualRead, RandomRead, area_name, fewest_reads, fewest_requests,
                                 plan_reads)
    from gateway.poller import individual_limit_of, random_limit_of

    settings = _section(_load(config_path), "gateway")
    for d in settings.devices:
        if d.protocol.value == "opcua":
            _plan_opcua(d)
            continue
        random_limit, individual_limit = random_limit_of(d), individual_limit_of(d)
        plan = DevicePlan(d.tags, [d.interval_of(t) for t in d.tags], d.max_registers_per_read,
                          d.max_bits_per_read, d.max_gap, random_limit, individual_limit)
        every = plan.reads_for(plan.intervals)
        fewest, gap_needed = fewest_reads(d.tags, d.max_registers_per_read, d.max_bits_per_read)
        whole = len(plan_reads(d.tags, d.max_registers_per_read, d.max_bits_per_read, d.max_gap))
        reach = "" if whole <= fewest else f" with max_gap: {gap_needed}"
        if individual_limit is not None:
            mixed = fewest_requests(d.tags, d.max_registers_per_read, d.max_bits_per_read,
                                    individual_limit=individual_limit)
            n_individual = sum(isinstance(r, IndividualRead) for r in every)
            bound = (f"{len(every) - n_individual} block + {n_individual} individual; fewest possible {mixed} with "
                     f"individual reads, {fewest} block reads only{reach}")
            limits = (f"{d.max_registers_per_read} words ({2 * d.max_registers_per_read} bytes) a block read, "
                      f"{individual_limit} variables of one size an individual read")
        elif random_limit is None:
            bound = f"fewest possible {fewest}{reach}"
            limits = f"{d.max_registers_per_read} registers / {d.max_bits_per_read} bits"
        else:
            mixed = fewest_requests(d.tags, d.max_registers_per_read, d.max_bits_per_read, random_limit)
            n_random = sum(isinstance(r, RandomRead) for r in every)
            bound = (f"{len(every) - n_random} batch + {n_random} random; fewest possible {mixed} with random reads, "
                     f"{fewest} batch reads only{reach}")
            limits = f"{d.max_registers_per_read} words a batch read, {random_limit} points a random read"
        click.echo(f"{d.line}/{d.name} ({_device_identity(d)}): {len(d.tags)} tags in {len(every)} "
                   f"reads ({bound}, one per tag {len(d.tags)}); per read at most {limits}, gap {d.max_gap}")
        for interval in plan.intervals:
            reads = plan.reads_for([interval])
            if len(plan.intervals) > 1:
                click.echo(f"  every {interval:g} s: {len(plan.groups[interval])} tags in {len(reads)} reads")
            for r in reads:
                names = ", ".join(t.name for t in r.tags)
                if isinstance(r, RandomRead):
                    click.echo(f"    {'random read':<17} {len(r.words):>3} words + {len(r.dwords):>3} double words  "
                               f"[{names}]")
                elif isinstance(r, IndividualRead):
                    variables = " ".join(f"%{area_name(a)}{r.size}{w // r.words_per_point}" for a, w in r.points)
                    click.echo(f"    {'individual read':<17} {len(r.points):>3} {r.size} variables ({variables})  "
                               f"[{names}]")
                else:
                    click.echo(f"    {area_name(r.table):<17} address {r.address:>5} count {r.count:>4}  [{names}]")


def _device_identity(d) -> str:
    """What addresses the device on its protocol: a Modbus unit id, an MC route, an XGT header."""
    where = f"{d.host}:{d.port}" if d.transport.value == "tcp" else d.link_name
    if d.protocol.value == "mc":
        from plcprotocol import mc

        route = mc.LOCAL_CPU
        series = "Q/L/FX5" if d.series is mc.Series.q else "iQ-R"
        return f"{where} network {route.network} station {route.pc} (3E binary, {series} addressing)"
    if d.protocol.value == "xgt":
        from plcprotocol import xgt

        return f"{where} FEnet, company id {xgt.COMPANY_ID.decode()}"
    return f"{where} unit {d.unit_id}"


def _plan_opcua(d) -> None:
    """An OPC UA device has no reads to plan: say which nodes it subscribes, at which sampling."""
    from gateway.opcua import offline_ref

    security = d.security.mode.value if d.security else "none"
    click.echo(f"{d.line}/{d.name} ({d.endpoint}, security {security}): {len(d.tags)} tags on monitored items of one "
               f"subscription, published every {d.poll_interval_s:g} s (the server samples; a server that refuses "
               f"subscriptions is read once per interval instead)")
    groups: dict[float, list] = {}
    for t in d.tags:
        groups.setdefault(d.interval_of(t), []).append(t)
    for interval, tags in sorted(groups.items()):
        click.echo(f"  sampled every {interval:g} s: {len(tags)} items")
        for t in tags:
            report = "" if t.report.value == "every_poll" else f"  (on_change{'' if t.deadband is None else f', deadband {t.deadband:g}'})"
            click.echo(f"    {t.name:<20} {offline_ref(d, t)}{report}")
    click.echo("  namespace URIs are looked up on the server at every connect")


def _parse_range(text: str) -> tuple[int, int]:
    try:
        first, last = (int(x, 0) for x in text.split("-", 1))
    except ValueError:
        raise click.BadParameter(f"{text!r}: use FIRST-LAST, 0-based wire addresses, e.g. 0-999",
                                 param_hint="--range") from None
    if not 0 <= first <= last <= 65535:
        raise click.BadParameter(f"{text!r}: need 0 <= FIRST <= LAST <= 65535", param_hint="--range")
    return first, last + 1


MC_SCAN_AREAS = "D,W,R,M,X,Y,B"
XGT_SCAN_AREAS = "P,M,K,F,T,C,L,N,D,R,U,Z,I,Q,W,A"


@gateway.command("scan")
@click.argument("host")
@click.option("--protocol", default="modbus", show_default=True, type=click.Choice(["modbus", "mc", "xgt"]),
              help="modbus: Modbus TCP; mc: Mitsubishi MC protocol (SLMP, binary 3E); xgt: LS ELECTRIC FEnet.")
@click.option("--port", default=None, type=click.IntRange(1, 65535),
              help="Default 502 (Modbus) or 2004 (XGT); MC has no fixed port: give the one set in GX Works.")
@click.option("--unit", default=1, show_default=True, type=click.IntRange(0, 247), help="Modbus unit (device) id.")
@click.option("--transport", default="tcp", show_default=True, type=click.Choice(["tcp", "rtu_over_tcp"]),
              help="Modbus only.")
@click.option("--tables", default="coil,discrete_input,input_register,holding_register", show_default=True,
              help="Modbus: comma-separated tables to probe.")
@click.option("--areas", default=None,
              help=f"MC / XGT: comma-separated device areas (default MC {MC_SCAN_AREAS}; XGT {XGT_SCAN_AREAS}).")
@click.option("--series", default="q", show_default=True, type=click.Choice(["q", "iq-r"]),
              help="MC: q (Q, L, FX5) or iq-r addressing.")
@click.option("--range", "range_", default="0-999", show_default=True,
              help="Modbus: wire addresses FIRST-LAST (0-based, inclusive). MC / XGT: the words whose values "
                   "are read (a bit device's word N holds its points 16N to 16N+15).")
@click.option("--timeout", default=1.0, show_default=True, type=click.FloatRange(0.05, 30),
              help="Seconds to wait for each answer.")
@click.option("--end-after", default=256, show_default=True, type=click.IntRange(0),
              help="Modbus: stop a table after this many addresses in a row that do not answer (0: scan the whole range).")
def gateway_scan(host: str, protocol: str, port: int | None, unit: int, transport: str, tables: str,
                 areas: str | None, series: str, range_: str, timeout: float, end_after: int) -> None:
    """Probe which addresses (Modbus) or device areas (MC, XGT) of a device answer, to help build its tag list."""
    start, end = _parse_range(range_)
    if protocol == "mc" and port is None:
        raise click.BadParameter("an MC port has no fixed default: give the MC protocol (SLMP) port set in "
                                 "GX Works, e.g. --port 5007", param_hint="--port")
    port = port or (2004 if protocol == "xgt" else 502)
    if protocol != "modbus":
        sys.exit(asyncio.run(_scan_areas(host, port, protocol, areas, series, start, end, timeout)))
    from gateway.links import LinkError, ModbusLink
    from gateway.scan import reachability, scan_table
    from registermap import Table

    try:
        chosen = [Table(t.strip()) for t in tables.split(",") if t.strip()]
    except ValueError as exc:
        raise click.BadParameter(f"{exc}; tables are {', '.join(t.value for t in Table)}",
                                 param_hint="--tables") from None
    async def scan() -> int:
        from pymodbus import FramerType
        from pymodbus.client import AsyncModbusTcpClient

        problem = await reachability(host, port, max(timeout, 3.0))
        if problem is not None:
            click.echo(f"{host}:{port}: {problem}", err=True)
            return 1
        framer = FramerType.RTU if transport == "rtu_over_tcp" else FramerType.SOCKET
        client = AsyncModbusTcpClient(host, port=port, framer=framer, timeout=timeout, retries=0, reconnect_delay=0)
        link = ModbusLink(f"{transport}:{host}:{port}", client, shared=True)
        status = 0
        try:
            for table in chosen:
                try:
                    result = await scan_table(lambda t, a, c: link.read(t, a, c, unit, timeout), table, start, end,
                                              end_after=end_after or None)
                except LinkError:
                    click.echo(f"{table.value}: the device at {host}:{port} accepts connections but did not answer "
                               f"unit {unit} within {timeout:g} s; check the unit id and the transport "
                               f"(tcp or rtu_over_tcp), or raise --timeout", err=True)
                    status = 1
                    continue
                runs = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in result.ranges()) or "none"
                scanned = (result.stopped_at or end) - start
                click.echo(f"{table.value}: {len(result.answered)} of {scanned} addresses answer "
                           f"({result.requests} requests): {runs}")
                if result.stopped_at is not None:
                    click.echo(f"  stopped at {result.stopped_at}: nothing answered in the {end_after} addresses after "
                               f"the last that did; --range {result.stopped_at}-{end - 1} looks further")
                if result.all_zero:
                    click.echo("  every answering address reads 0: some devices (and converters with nothing "
                               "behind them) answer any address with zeros; check an address whose value you know")
                for code, n in sorted(result.refusals.items()):
                    click.echo(f"  {n} block(s) refused with Modbus exception {code}")
        finally:
            link.close()
        return status

    sys.exit(asyncio.run(scan()))


async def _scan_areas(host: str, port: int, protocol: str, areas: str | None, series: str, start: int, end: int,
                      timeout: float) -> int:
    """``gateway scan --protocol mc|xgt``: which device areas answer, how far, and what the range holds."""
    from gateway.links import LinkError
    from gateway.mclink import McLink
    from gateway.scan import AreaScan, reachability, scan_area
    from gateway.xgtlink import XgtLink
    from plcprotocol import mc, xgt

    link: McLink | XgtLink
    if protocol == "mc":
        names = [a.strip().upper() for a in (areas or MC_SCAN_AREAS).split(",") if a.strip()]
        unknown = [a for a in names if a not in mc.DEVICE_KINDS]
        known = ", ".join(mc.DEVICE_KINDS)
        link, block = McLink(host, port, mc.Series(series)), mc.LIMITS[mc.Series(series)][0]
    else:
        names = [a.strip().upper().lstrip("%") for a in (areas or XGT_SCAN_AREAS).split(",") if a.strip()]
        unknown = [a for a in names if a not in xgt.AREAS]
        known = ", ".join(XGT_SCAN_AREAS.split(","))
        link, block = XgtLink(host, port), xgt.MAX_BYTES // 2
    if unknown:
        raise click.BadParameter(f"{', '.join(unknown)}: not an {protocol.upper()} device area; use {known}",
                                 param_hint="--areas")
    problem = await reachability(host, port, max(timeout, 3.0), protocol)
    if problem is not None:
        click.echo(f"{host}:{port}: {problem}", err=True)
        return 1

    def name(area: str, word: int, bit: int | None = None) -> str:
        """A word (or a bit device's point) as the PLC's manual writes it."""
        if protocol == "xgt":
            return f"%{area}W{word}" if bit is None else f"%{area}X{16 * word + bit}"
        kind = mc.DEVICE_KINDS[area]
        return str(mc.Device(kind, 16 * word + (bit or 0) if kind.is_bit else word))

    def runs(area: str, words: list[int]) -> str:
        out: list[tuple[int, int]] = []
        for w in words:
            if out and w == out[-1][1] + 1:
                out[-1] = (out[-1][0], w)
            else:
                out.append((w, w))
        text = [name(area, a) if a == b else f"{name(area, a)}-{name(area, b)}" for a, b in out[:12]]
        return ", ".join(text) + (f" and {len(out) - 12} more runs" if len(out) > 12 else "")

    def report(r: AreaScan) -> None:
        label = f"%{r.area}" if protocol == "xgt" else r.area
        if r.size is None:
            assert r.refused is not None
            click.echo(f"{label}: refused ({r.refused.detail})")
            return
        bit_device = protocol == "mc" and mc.DEVICE_KINDS[r.area].is_bit
        if protocol == "xgt":
            extent = f"%{r.area}B0-%{r.area}B{2 * r.size - 1} ({2 * r.size} bytes)"
        elif bit_device:
            extent = f"{name(r.area, 0)}-{name(r.area, r.size - 1, 15)} ({16 * r.size} points)"
        else:
            extent = f"{name(r.area, 0)}-{name(r.area, r.size - 1)} ({r.size} words)"
        more = "; answers up to the search limit, it may go further" if r.unbounded else ""
        click.echo(f"{label}: {extent} answer ({r.requests} requests){more}")
        if not r.values:
            return
        first, last = min(r.values), max(r.values)
        span = f"{name(r.area, first)}-{name(r.area, last, 15 if bit_device else None)}"
        if r.all_zero:
            click.echo(f"  {span} read: all zeros (a fresh or unused area; check an address whose value you know)")
        elif bit_device:
            on = [name(r.area, w, b) for w in r.nonzero() for b in range(16) if r.values[w] >> b & 1]
            click.echo(f"  {span} read: {len(on)} point(s) on: {', '.join(on[:20])}"
                       + (f" and {len(on) - 20} more" if len(on) > 20 else ""))
        else:
            click.echo(f"  {span} read: non-zero {runs(r.area, r.nonzero())}")

    limit_words = {"mc": 1 << 20, "xgt": 1 << 20}[protocol]
    status = 0
    try:
        for area in names:
            limit = limit_words if protocol == "xgt" or mc.DEVICE_KINDS[area].is_bit else 1 << 24
            try:
                result = await scan_area(lambda a, w, n: link.read(a, w, n, 0, timeout), area, start, end, block, limit)
            except LinkError as exc:
                frames = "binary 3E frames (not ASCII, not 4E)" if protocol == "mc" else "the FEnet dedicated protocol"
                click.echo(f"{area}: the device at {host}:{port} accepts connections but gave no usable answer within "
                           f"{timeout:g} s; check that the port speaks {frames}, or raise --timeout ({exc})", err=True)
                status = 1
                continue
            report(result)
    finally:
        link.close()
    return status


@gateway.command("browse")
@click.argument("endpoint")
@click.option("--node", "start", default=None, help="Start here instead of Objects (a node id, ns=... or i=...).")
@click.option("--depth", default=6, show_default=True, type=click.IntRange(1, 50), help="Levels below the start.")
@click.option("--limit", default=2000, show_default=True, type=click.IntRange(1, 100_000), help="Nodes at most.")
@click.option("--standard", is_flag=True, help="Also walk the standard Server object (namespace 0 diagnostics).")
@click.option("--certificate", type=click.Path(exists=True, dir_okay=False), help="Sign&Encrypt: the gateway's certificate.")
@click.option("--private-key", type=click.Path(exists=True, dir_okay=False), help="Sign&Encrypt: its private key.")
@click.option("--server-certificate", type=click.Path(exists=True, dir_okay=False), help="Sign&Encrypt: the server's certificate.")
@click.option("--username", default=None)
@click.option("--password", default=None, help="Or set SMARTFACTORY_OPCUA_PASSWORD.", envvar="SMARTFACTORY_OPCUA_PASSWORD")
@click.option("--timeout", default=4.0, show_default=True, type=click.FloatRange(0.1, 60))
def gateway_browse(endpoint: str, start: str | None, depth: int, limit: int, standard: bool, certificate: str | None,
                   private_key: str | None, server_certificate: str | None, username: str | None, password: str | None,
                   timeout: float) -> None:
    """Browse an OPC UA server: node ids (by namespace URI), browse paths, data types and values, to write a tag list."""
    from pydantic import ValidationError

    from gateway.opcua import browse, make_client
    from gateway.settings import DeviceSettings

    secure = any((certificate, private_key, server_certificate))
    try:
        device = DeviceSettings.model_validate({
            "name": "browse", "line": "browse", "protocol": "opcua", "endpoint": endpoint, "timeout_s": timeout,
            "tags": [{"name": "x", "node_id": "i=2253"}],
            **({"security": {"mode": "sign_and_encrypt", "certificate": certificate, "private_key": private_key,
                             "server_certificate": server_certificate}} if secure else {}),
            **({"username": username, "password": password} if username else {})})
    except ValidationError as exc:
        raise click.BadParameter("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None

    async def walk() -> int:
        from asyncua import ua

        client = await make_client(device, Path("."))
        try:
            await asyncio.wait_for(client.connect(), timeout * 4)
        except Exception as exc:  # noqa: BLE001 - any failure to connect is reported, not raised
            click.echo(f"{endpoint}: cannot open a session: {type(exc).__name__}: {exc or 'no answer'}", err=True)
            return 1
        try:
            array = await client.get_namespace_array()
            click.echo("namespaces (the index may change when the server restarts; configs name the URI):")
            for i, uri in enumerate(array):
                click.echo(f"  {i}: {uri}")
            nodes = await browse(client, ua.NodeId.from_string(start) if start else None, depth, limit, standard)
            click.echo(f"{len(nodes)} nodes{' (limit reached: --limit)' if len(nodes) >= limit else ''}:")
            for n in nodes:
                if n.node_class != "Variable":
                    click.echo(f"  {'/'.join(n.path)}  [{n.node_class}]  node_id: {n.node_id}")
                    continue
                value = repr(n.value)
                value = value if len(value) <= 40 else value[:37] + "..."
                click.echo(f"  {'/'.join(n.path)}  {n.data_type}  = {value}\n      node_id: \"{n.node_id}\"")
        finally:
            try:
                await client.disconnect()
            except Exception:  # noqa: BLE001 - the listing is out; a failed goodbye changes nothing
                pass
        return 0

    logging.getLogger("asyncua").setLevel(logging.CRITICAL)
    sys.exit(asyncio.run(walk()))


@cli.command()
@CONFIG_OPTION
@click.option("--retire", is_flag=True,
              help="Leave for good: unsubscribe, store what the broker still holds for this client id and the "
                   "spool, then delete the broker session and exit (scale-in of a shared group).")
def collector(config_path: Path, retire: bool) -> None:
    """Subscribe to telemetry and write it to the store (the 'collector', 'mqtt' and 'store' sections).

    Only machines in the plant model (collector.plant_database_url, default api.database_url) are
    stored, within the per-tenant limits; the rest goes to the dead letters (docs/collector.md).

    Metrics at http://127.0.0.1:9464/metrics (collector.metrics_host/metrics_port); spool and
    dead letters in collector.data_dir (see 'smartfactory dead-letters').
    """
    from collector.service import retire_collector, run_collector
    from tsstore import open_store

    config = _load(config_path)
    store = open_store(config.settings.store, config.base_dir)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    settings = config.settings.collector
    data_dir = settings.resolved_data_dir(config.base_dir)
    if retire:
        sys.exit(0 if retire_collector(settings, config.settings.mqtt, store, stop, data_dir) else 1)
    machine_list = None
    if settings.unknown_machines == "refuse":
        from plantmodel.db import database_url, redacted
        from plantmodel.machinelist import loader

        url = database_url(settings.plant_database_url or config.settings.api.database_url, config.base_dir)
        log.info("collector_machine_list plant_model=%s refresh_s=%g (collector.unknown_machines: refuse)",
                 redacted(url), settings.plant_refresh_s)
        machine_list = loader(url)
    run_collector(settings, config.settings.mqtt, store, stop, data_dir, machine_list=machine_list)


@cli.command("dead-letters")
@CONFIG_OPTION
@click.option("--reason", help="Only this reason (schema, topic, oversized, tenant_mismatch, store_rejected, ...).")
@click.option("--limit", type=click.IntRange(1), default=50, show_default=True, help="At most this many, oldest first.")
@click.option("--after-id", type=click.IntRange(0), default=0, show_default=True, help="Only letters after this id.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line, payload as text (or base64).")
@click.option("--summary", is_flag=True, help="Only the count per reason and the spool's size.")
def collector_dead_letters(config_path: Path, reason: str | None, limit: int, after_id: int, as_json: bool,
                           summary: bool) -> None:
    """Show what the collector could not store, with the reason (the 'collector' section; read-only,
    safe while the collector runs)."""
    from collector.letters import print_dead_letters

    config = _load(config_path)
    data_dir = config.settings.collector.resolved_data_dir(config.base_dir)
    print_dead_letters(data_dir, reason=reason, limit=limit, after_id=after_id, as_json=as_json, summary=summary)


@cli.command()
@CONFIG_OPTION
@click.option("--host", help="Override api.host.")
@click.option("--port", type=click.IntRange(1, 65535), help="Override api.port.")
@click.option("--workers", type=click.IntRange(1, 64), help="Override api.workers (processes serving requests).")
def api(config_path: Path, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API, its OpenAPI document (/docs) and the live dashboard (/).

    Also runs the alarm engine and keeps the analytics rollups up to date (in one worker).
    """
    import uvicorn

    from cli.apiserver import CONFIG_ENV, WORKERS_ENV, build_app, freeze_startup_objects

    config = _load(config_path)
    settings = config.settings.api
    workers = workers or settings.workers
    host, port = host or settings.host, port or settings.port
    plant = _open_plant(config)  # migrates the schema once, here, before any worker starts
    if workers == 1:
        app = build_app(config, plant)
        freeze_startup_objects()
        uvicorn.run(app, host=host, port=port, log_config=None, access_log=False)
        return
    plant.engine.dispose()
    os.environ[CONFIG_ENV] = str(config.path)
    os.environ[WORKERS_ENV] = str(workers)
    os.environ["SMARTFACTORY_LOG_LEVEL"] = logging.getLevelName(logging.getLogger().level)
    log.info("api_workers count=%d host=%s port=%d", workers, host, port)
    uvicorn.run("cli.apiserver:worker_app", factory=True, workers=workers, host=host, port=port, log_config=None,
                access_log=False)


def _open_plant(config: LoadedConfig):
    """The plant model database named by api.database_url, upgraded to the current schema."""
    from plantmodel.db import database_url, open_plant, redacted

    url = database_url(config.settings.api.database_url, config.base_dir)
    try:
        return open_plant(url)
    except Exception as exc:  # SQLAlchemy/Alembic errors: say which database and why, not a traceback
        detail = str(exc).replace(url, redacted(url))  # never print the database password
        click.echo(f"error: cannot open the plant database {redacted(url)}: {type(exc).__name__}: {detail}", err=True)
        sys.exit(2)


@cli.group()
def plant() -> None:
    """The plant model, users and tokens (the database in api.database_url)."""


@plant.command("seed")
@CONFIG_OPTION
@click.argument("seed_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def plant_seed(config_path: Path, seed_file: Path) -> None:
    """Create or update centre, tenants, sites, lines, machines, users and broker accounts from a YAML file."""
    import yaml
    from pydantic import ValidationError

    from plantmodel.admin import PlantSeed, apply_seed

    try:
        seed = PlantSeed.model_validate(yaml.safe_load(seed_file.read_text(encoding="utf-8")) or {})
    except (yaml.YAMLError, ValidationError) as exc:
        click.echo(f"error: {seed_file}: {exc}", err=True)
        sys.exit(2)
    try:
        apply_seed(_open_plant(_load(config_path)), seed)
    except (LookupError, ValueError) as exc:
        click.echo(f"error: {seed_file}: {exc}", err=True)
        sys.exit(2)
    click.echo(f"seeded {len(seed.tenants)} tenants, {len(seed.users)} users, "
               f"{len(seed.broker_accounts)} broker accounts")


@plant.command("user")
@CONFIG_OPTION
@click.argument("username")
@click.option("--role", type=click.Choice(["centre_admin", "centre_engineer", "sme_owner", "sme_operator"]),
              help="Required to create or reset a user.")
@click.option("--tenant", help="Required for sme_owner and sme_operator.")
@click.option("--password", help="Prompted when not given (env SMARTFACTORY_PASSWORD).",
              envvar="SMARTFACTORY_PASSWORD")
@click.option("--deactivate", "state", flag_value="deactivate",
              help="Refuse the user's logins and end every session and token of the user.")
@click.option("--activate", "state", flag_value="activate", help="Allow a deactivated user to log in again.")
def plant_user(config_path: Path, username: str, role: str | None, tenant: str | None, password: str | None,
               state: str | None) -> None:
    """Create a user, reset an existing user's password and role, or (de)activate a user.

    A new password must not be common, breached or guessable (zxcvbn); a changed password ends every
    session and API token of the user, on every API worker within seconds.
    """
    from plantmodel.admin import add_user, set_active
    from plantmodel.db import Role

    db = _open_plant(_load(config_path))
    if state is not None:
        if role or password:
            click.echo("error: --activate/--deactivate change nothing else: leave out --role and --password", err=True)
            sys.exit(2)
        try:
            sessions, tokens = set_active(db, username, state == "activate")
        except LookupError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        click.echo(f"user {username} {state}d" + (f"; ended {sessions} sessions and {tokens} API tokens"
                                                   if state == "deactivate" else ""))
        return
    if role is None:
        click.echo("error: give --role to create or reset a user (or --deactivate / --activate)", err=True)
        sys.exit(2)
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        with db.session() as s, s.begin():
            add_user(s, username, password, Role(role), tenant)
    except (LookupError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"user {username} ({role}{', tenant ' + tenant if tenant else ''}) saved")


@plant.command("token")
@CONFIG_OPTION
@click.argument("username")
@click.option("--name", default="script", show_default=True, help="What the token is for.")
@click.option("--days", "--expires-in-days", "days", type=click.FloatRange(min=0, min_open=True),
              help="Lifetime in days (default api.token_default_days; at most api.token_max_days).")
def plant_token(config_path: Path, username: str, name: str, days: float | None) -> None:
    """Create an API token for scripts ('Authorization: Bearer <token>'); printed once, with its expiry on stderr."""
    from plantmodel.admin import create_token_row

    config = _load(config_path)
    try:
        secret, row = create_token_row(_open_plant(config), username, name, days, config.settings.api.token_lifetime())
    except (LookupError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(secret)
    click.echo(f"token {row['id']} of {username} expires {_utc(row['expires_ms'])}", err=True)


@plant.command("tokens")
@CONFIG_OPTION
@click.argument("username", required=False)
def plant_tokens(config_path: Path, username: str | None) -> None:
    """List API tokens (of one user, or all): id, user, name, created, last used, expires. Never the secrets."""
    from plantmodel.admin import list_tokens

    try:
        rows = list_tokens(_open_plant(_load(config_path)), username)
    except LookupError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"{'id':>5}  {'user':<20} {'name':<24} {'created':<17} {'last used':<17} expires")
    for r in rows:
        click.echo(f"{r['id']:>5}  {r['user']:<20} {r['name'][:24]:<24} {_utc(r['created_ms']):<17} "
                   f"{_utc(r['last_used_ms']):<17} {_utc(r['expires_ms'])}{' (expired)' if r['expired'] else ''}")


@plant.command("revoke-token")
@CONFIG_OPTION
@click.argument("token_id", type=click.IntRange(1, 2**31 - 1))
def plant_revoke_token(config_path: Path, token_id: int) -> None:
    """Revoke an API token by its id (see `smartfactory plant tokens`); every API worker refuses it within seconds."""
    from plantmodel.admin import revoke_token

    try:
        row = revoke_token(_open_plant(_load(config_path)), token_id)
    except LookupError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"revoked token {token_id} ({row['name']}) of {row['user']}")


def _utc(ms: int | None) -> str:
    from datetime import datetime, timezone

    return "-" if ms is None else datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%d %H:%M")


@plant.command("broker-account")
@CONFIG_OPTION
@click.argument("username")
@click.option("--kind", type=click.Choice(["gateway", "collector"]), required=True,
              help="gateway: publishes for one tenant; collector: reads all telemetry (one account per process).")
@click.option("--tenant", help="The gateway's tenant (gateways only).")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="Prompted when not given (env SMARTFACTORY_PASSWORD).", envvar="SMARTFACTORY_PASSWORD")
def plant_broker_account(config_path: Path, username: str, kind: str, tenant: str | None, password: str) -> None:
    """Create a broker account, or reset its password; then run 'smartfactory broker-acl'.

    The account's username is also its MQTT client id (the broker binds the two), so give each
    gateway and each collector process its own account.
    """
    from pydantic import ValidationError

    from plantmodel.admin import BrokerSeed, add_broker_account

    try:
        seed = BrokerSeed(username=username, password=password, kind=kind, tenant=tenant)
    except ValidationError as exc:
        click.echo(f"error: {'; '.join(e['msg'] for e in exc.errors())}", err=True)
        sys.exit(2)
    db = _open_plant(_load(config_path))
    try:
        with db.session() as s, s.begin():
            add_broker_account(s, seed.username, seed.password, seed.kind, seed.tenant)
    except (LookupError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"broker account {username} ({kind}{', tenant ' + tenant if tenant else ''}) saved; "
               "run smartfactory broker-acl to update the broker's files")


@plant.command("orders")
@CONFIG_OPTION
@click.option("--tenant", required=True, help="The SME whose orders these are.")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def plant_orders(config_path: Path, tenant: str, csv_file: Path) -> None:
    """Import the ERP's order export (CSV) for the delivery KPIs (D of PQCD): all rows or none.

    Columns (English or Korean names, any order, others ignored): order_id/주문번호, quantity/수량,
    ordered/주문일, due/납기, completed/완료일 (empty while open), optional line/라인 and product/품목.
    Orders are updated by order id when a newer export is imported.
    """
    from plantmodel.orders import OrdersRejected, import_csv

    db = _open_plant(_load(config_path))
    try:
        out = import_csv(db, tenant, csv_file.read_bytes())
    except OrdersRejected as exc:
        click.echo(f"error: {csv_file}: {exc}", err=True)
        sys.exit(2)
    except LookupError as exc:
        click.echo(f"error: {exc}: create it first (smartfactory plant seed)", err=True)
        sys.exit(2)
    finally:
        db.close()
    click.echo(f"imported {out['imported']} orders for {tenant} ({out['created']} new, {out['updated']} updated)")


@plant.command("targets")
@CONFIG_OPTION
@click.option("--tenant", required=True, help="The SME whose rollout plan this is.")
@click.option("--line", help="Only this line (default: the targets apply to every line).")
@click.option("--set", "settings", multiple=True, metavar="KPI=CHANGE",
              help="A target change in percent, signed: output_per_hour=+10, scrap_rate=-20. Repeat for more.")
@click.option("--replace", is_flag=True, help="Remove the tenant's targets not given with --set.")
def plant_targets(config_path: Path, tenant: str, line: str | None, settings: tuple[str, ...], replace: bool) -> None:
    """List or set the target KPIs of the rollout plan; the before/after report shows 달성률 against them."""
    from plantmodel.targets import list_targets, set_targets

    wanted = []
    for item in settings:
        kpi, sep, change = item.partition("=")
        try:
            wanted.append({"kpi": kpi.strip(), "change_pct": float(change.strip().rstrip("%")), "line": line})
        except ValueError:
            click.echo(f"error: --set {item!r}: write KPI=CHANGE, e.g. output_per_hour=+10 or scrap_rate=-20", err=True)
            sys.exit(2)
        if not sep:
            click.echo(f"error: --set {item!r}: write KPI=CHANGE, e.g. output_per_hour=+10", err=True)
            sys.exit(2)
    db = _open_plant(_load(config_path))
    try:
        rows = set_targets(db, tenant, wanted, replace) if wanted or replace else list_targets(db, tenant)
    except LookupError as exc:
        click.echo(f"error: {exc}: create it first (smartfactory plant seed)", err=True)
        sys.exit(2)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        db.close()
    for r in rows:
        click.echo(f"{r['line'] or '*'}\t{r['kpi']}\t{r['change_pct']:+g}%" + (f"\t{r['note']}" if r["note"] else ""))
    if not rows:
        click.echo(f"no targets for {tenant}")


@cli.command("broker-acl")
@CONFIG_OPTION
@click.option("--password-file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--acl-file", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--conf-file", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the mosquitto.conf lines these files need (anonymous off, client id = username).")
def broker_acl(config_path: Path, password_file: Path, acl_file: Path, conf_file: Path | None) -> None:
    """Write mosquitto password_file and acl_file from the plant model: each gateway may publish only under
    sf/v1/<its tenant>/#; collectors may read all telemetry. mosquitto must also set
    use_username_as_clientid true and allow_anonymous false (--conf-file writes these lines)."""
    from plantmodel.brokerfiles import from_model, kinds, write_files

    plant = _open_plant(_load(config_path))
    files = from_model(plant)
    write_files(files, password_file, acl_file, conf_file)
    click.echo(f"wrote {password_file} and {acl_file}{' and ' + str(conf_file) if conf_file else ''} "
               f"({files.passwords.count(chr(10))} accounts); point mosquitto's password_file and acl_file at them, "
               "set use_username_as_clientid true and allow_anonymous false, and reload it (SIGHUP)")
    if not kinds(plant).get("collector"):
        click.echo("warning: no collector account: with anonymous access off no collector can subscribe. Add one "
                   "per collector process (smartfactory plant broker-account NAME --kind collector) and run "
                   "broker-acl again", err=True)


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=1883, show_default=True, type=click.IntRange(1, 65535))
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="mosquitto password file written by smartfactory broker-acl (re-read when it changes).")
@click.option("--acl-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="mosquitto ACL file written by smartfactory broker-acl.")
@click.option("-c", "--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Or: take the accounts from this config's plant database (api.database_url).")
@click.option("--allow-anonymous", is_flag=True,
              help="Let any client connect, publish and subscribe without an account (a demo on one machine only).")
def broker(host: str, port: int, password_file: Path | None, acl_file: Path | None, config_path: Path | None,
           allow_anonymous: bool) -> None:
    """Run the embedded MQTT broker (for the demo; use mosquitto in production).

    Like mosquitto with the files broker-acl writes: only known accounts, each client id bound to
    its account (it must connect with its username as client id), gateways publish only into
    their tenant, collectors read. Give --password-file and --acl-file, or -c CONFIG, or
    --allow-anonymous.
    """
    from cli.broker import broker_config, run_broker

    plant_url = None
    if config_path is not None:
        from plantmodel.db import database_url

        config = _load(config_path)
        plant_url = database_url(config.settings.api.database_url, config.base_dir)
        _open_plant(config).close()  # exists and is migrated, or a clear error now
    if allow_anonymous and (password_file or acl_file or config_path):
        click.echo("error: --allow-anonymous takes no accounts: drop it, or drop --password-file/--acl-file/-c",
                   err=True)
        sys.exit(2)
    if bool(password_file) != bool(acl_file):
        click.echo("error: give both --password-file and --acl-file (smartfactory broker-acl writes them)", err=True)
        sys.exit(2)
    try:
        broker_config(host, port, allow_anonymous=allow_anonymous, password_file=str(password_file or "") or None,
                      acl_file=str(acl_file or "") or None, plant_url=plant_url)
        if not allow_anonymous:
            from cli.brokerauth import _Source

            _Source.get(str(password_file) if password_file else None, str(acl_file) if acl_file else None, plant_url)
    except (ValueError, OSError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    _run_until_signal(lambda: run_broker(host, port, allow_anonymous=allow_anonymous,
                                         password_file=str(password_file) if password_file else None,
                                         acl_file=str(acl_file) if acl_file else None, plant_url=plant_url))


@cli.group(invoke_without_command=True)
@click.pass_context
@CONFIG_OPTION
@click.option("--tenant", help="The SME (tenant id).")
@click.option("--site", help="Only this site.")
@click.option("--line", help="Only this line (default: all the tenant's machines).")
@click.option("--machine", help="Only this machine.")
@click.option("--rollout", type=click.DateTime(["%Y-%m-%d"]), help="Rollout date: a before/after report.")
@click.option("--commissioning-days", type=click.IntRange(0, 365), help="Days after the rollout left out [14].")
@click.option("--pre-exclusion-days", type=click.IntRange(0, 365), help="Days before the rollout left out [0].")
@click.option("--days", type=click.IntRange(7, 730), help="Length of each window (default: the most the data allows, whole weeks).")
@click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]), help="First production day: a KPI report per day/shift.")
@click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]), help="Last production day (inclusive).")
@click.option("--by", type=click.Choice(["day", "shift"]), default="day", show_default=True)
@click.option("--portfolio", is_flag=True, help="Centre roll-up over every configured rollout (analytics.rollouts).")
@click.option("--format", "fmt", type=click.Choice(["json", "html", "csv", "pdf", "xlsx"]), default="html", show_default=True)
@click.option("--lang", type=click.Choice(["ko", "en"]), default="ko", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File to write (default: stdout).")
@click.option("--replicates", type=click.IntRange(200, 20000), default=2000, show_default=True, help="Bootstrap replicates.")
@click.option("--no-cache", "no_cache", is_flag=True, help="Do not use or fill the rollup cache of finished hours.")
@click.option("--refresh", is_flag=True, help="Recompute cached hours (after late data arrived).")
def report(ctx: click.Context, config_path: Path, tenant, site, line, machine, rollout, commissioning_days, pre_exclusion_days,
           days, first, last, by, portfolio, fmt, lang, output, replicates, no_cache, refresh) -> None:
    """KPIs (ISO 22400) and the before/after rollout report, as HTML, PDF, XLSX, CSV or JSON (the 'analytics' section).

    Scheduled e-mail delivery: 'report schedule' adds one, 'report schedules' lists them and their
    sends, 'report send --now' sends at once (the API leader sends on schedule; config 'mail').
    """
    if ctx.invoked_subcommand is not None:
        return
    from analytics.command import ReportOptions, run_report
    from tsstore import open_store

    config = _load(config_path)
    store = open_store(config.settings.store, config.base_dir)
    opts = ReportOptions(tenant, site, line, machine, rollout.date() if rollout else None, commissioning_days, days,
                         pre_exclusion_days, first.date() if first else None, last.date() if last else None, by,
                         portfolio, fmt, lang, output, replicates, not no_cache, refresh)
    plant_db = _existing_plant(config)
    try:
        code = run_report(opts, store, _analytics_with_plant(config),
                          lambda: _rollup_cache(config),
                          _orders_reader(plant_db), _annotator(plant_db))
    finally:
        store.close()
        if plant_db is not None:
            plant_db.close()
    sys.exit(code)


@report.command("schedule")
@CONFIG_OPTION
@click.option("--tenant", help="The SME whose before/after report is sent (default: the centre's portfolio).")
@click.option("--line", help="Only this line of the tenant.")
@click.option("--every", "kind", type=click.Choice(["weekly", "monthly", "after_commissioning"]), required=True,
              help="weekly (Mondays), monthly (the 1st) or once, a week after the commissioning window ends.")
@click.option("--to", "recipients", required=True, help="Recipients, comma-separated.")
@click.option("--lang", type=click.Choice(["ko", "en"]), default="ko", show_default=True)
@click.option("--hour", type=click.IntRange(0, 23), default=7, show_default=True, help="Local hour of the tenant.")
def report_schedule(config_path: Path, tenant, line, kind, recipients, lang, hour) -> None:
    """Add a scheduled report e-mail (sent by the API's leader worker; SMTP in the config's 'mail' section)."""
    from reportmail.delivery import add_schedule

    db = _open_plant(_load(config_path))
    try:
        sid = add_schedule(db, tenant, kind, [r.strip() for r in recipients.split(",") if r.strip()], lang, line, hour)
    except (LookupError, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        db.close()
    click.echo(f"schedule {sid}: {kind} {tenant or 'centre portfolio'} -> {recipients}")


@report.command("schedules")
@CONFIG_OPTION
def report_schedules(config_path: Path) -> None:
    """The report schedules and every send recorded for them (time, recipients, result)."""
    from datetime import datetime, timezone

    from reportmail.delivery import list_schedules, list_sends

    db = _open_plant(_load(config_path))
    try:
        for sc in list_schedules(db):
            click.echo(f"schedule {sc['id']}: {sc['kind']} {sc['tenant'] or 'centre'}{'/' + sc['line'] if sc['line'] else ''} "
                       f"{sc['hour']:02d}:00 {sc['lang']} -> {', '.join(sc['recipients'])}")
            for r in list_sends(db, sc["id"]):
                at = datetime.fromtimestamp(r["sent_ms"] / 1000, timezone.utc).isoformat(timespec="seconds") if r["sent_ms"] else "-"
                click.echo(f"  {r['key']}\t{r['status']}\tattempts={r['attempts']}\tsent={at}" + (f"\t{r['error']}" if r["error"] else ""))
    finally:
        db.close()


@report.command("send")
@CONFIG_OPTION
@click.option("--now", "now", is_flag=True, required=True, help="Send at once (a manual run, recorded like the others).")
@click.option("--schedule", "schedule_id", type=int, help="Only this schedule (default: every active one).")
def report_send(config_path: Path, now: bool, schedule_id: int | None) -> None:
    """Render and e-mail the scheduled reports now, over the config's 'mail' SMTP server."""
    from reportmail.delivery import list_schedules
    from reportmail.service import delivery_for
    from tsstore import open_store

    config = _load(config_path)
    if config.settings.mail is None:
        click.echo(f"error: {config_path}: no 'mail' section: add the SMTP server (host, port, sender; see docs/reports.md)",
                   err=True)
        sys.exit(2)
    db = _open_plant(config)
    store = open_store(config.settings.store, config.base_dir)
    cache = _rollup_cache(config)
    failed = 0
    try:
        delivery = delivery_for(config.settings.mail, config.settings.analytics, store, db, cache)
        ids = [schedule_id] if schedule_id is not None else [sc["id"] for sc in list_schedules(db) if sc["active"]]
        if not ids:
            click.echo("no report schedules: add one with 'smartfactory report schedule'", err=True)
            sys.exit(2)
        for sid in ids:
            try:
                r = delivery.send_now(sid)
            except LookupError as exc:
                click.echo(f"error: {exc}", err=True)
                sys.exit(2)
            failed += r["status"] != "sent"
            click.echo(f"schedule {sid}: {r['status']} to {', '.join(r['recipients'])}" + (f" ({r['error']})" if r["error"] else ""))
    finally:
        cache.close()
        store.close()
        db.close()
    sys.exit(1 if failed else 0)


def _rollup_cache(config: LoadedConfig):
    """The deployment's rollup cache: PostgreSQL tables beside a PostgreSQL plant database, else the SQLite file."""
    from analytics.command import open_cache
    from plantmodel.db import database_url

    s = config.settings
    return open_cache(s.analytics, s.store, config.base_dir, database_url(s.api.database_url, config.base_dir))


def _existing_plant(config: LoadedConfig):
    """The plant model database, or None when the config names a SQLite file that does not exist."""
    from plantmodel.db import database_url

    url = database_url(config.settings.api.database_url, config.base_dir)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return None
    return _open_plant(config)


def _orders_reader(plant_db):
    """tenant -> its order records from the plant model (the D of PQCD); None without a plant model."""
    if plant_db is None:
        return None
    from plantmodel.orders import orders_for_report

    return lambda tenant: orders_for_report(plant_db, tenant)


def _annotator(plant_db):
    """report -> the report with the plant model's names and target achievement; None without a plant model."""
    if plant_db is None:
        return None
    from plantmodel.targets import annotate

    return lambda report: annotate(report, plant_db)


def _analytics_with_plant(config: LoadedConfig):
    """The analytics section completed from the plant model (rollouts, ideal cycles), when there is one."""
    from plantmodel.db import database_url
    from plantmodel.policy import effective_settings

    url = database_url(config.settings.api.database_url, config.base_dir)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return config.settings.analytics  # no plant model here: the config alone
    plant = _open_plant(config)
    try:
        return effective_settings(config.settings.analytics, plant)
    finally:
        plant.close()


#: Top-level modules of each extra's libraries, to name the extra a command needs (see pyproject.toml).
_EXTRA_OF = {
    **dict.fromkeys(("pymodbus", "serial"), "gateway"),
    **dict.fromkeys(("fastapi", "starlette", "uvicorn", "httptools", "httpx", "sqlalchemy", "alembic", "argon2", "fpdf",
                     "zxcvbn", "prometheus_client", "amqtt", "cachetools", "openpyxl", "fastapi_offline",
                     "multipart", "python_multipart", "numpy"), "server"),
    "psycopg": "postgresql",
}


def main() -> None:
    try:
        cli(prog_name="smartfactory")
    except ModuleNotFoundError as exc:
        # a partial install (e.g. a shop PC with only the gateway extra) running a command of another part
        top = (exc.name or "").split(".")[0]
        if top not in _EXTRA_OF:
            raise
        extras = ("simulator", "server") if top == "numpy" else (_EXTRA_OF[top],)
        how = " or ".join(f"pip install 'smartfactory[{e}]'" for e in extras)
        click.echo(f"error: this command needs the Python package '{top}', which this install lacks; "
                   f"install it with: {how}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
