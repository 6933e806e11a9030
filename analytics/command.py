"""What ``smartfactory report`` does, apart from parsing its options (cli/main.py)."""

from __future__ import annotations
from typing import Any

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import click

from analytics.beforeafter import WindowError, portfolio_summary
from analytics.delivery import Order
from analytics.render import PdfFontMissing, render
from analytics.report import (
    ReportError,
    before_after_report,
    data_extent,
    period_report,
    portfolio_reports,
    select_machines,
)
from analytics.continuous import AfterPass, RollupMaintainer
from analytics.rollup import RollupCache
from analytics.settings import AnalyticsSettings
from tsstore import StoreError, TimeSeriesStore


@dataclass
class ReportOptions:
    tenant: str | None
    site: str | None
    line: str | None
    machine: str | None
    rollout: date | None
    commissioning_days: int | None
    days: int | None
    pre_exclusion_days: int | None
    first: date | None
    last: date | None
    by: str
    portfolio: bool
    fmt: str
    lang: str
    output: Path | None
    replicates: int
    cache: bool
    refresh: bool


def cache_path(settings: AnalyticsSettings, store_settings: object, base_dir: Path) -> Path:
    if settings.cache_path is not None:
        return settings.cache_path if settings.cache_path.is_absolute() else base_dir / settings.cache_path
    sqlite_path: Path | None = getattr(store_settings, "path", None)
    if sqlite_path is not None:
        p = sqlite_path if sqlite_path.is_absolute() else base_dir / sqlite_path
        return p.with_name(p.stem + ".rollups.db")
    return base_dir / "smartfactory-data" / "rollups.db"


def open_cache(settings: AnalyticsSettings, store_settings: object, base_dir: Path, database_url: str | None) -> RollupCache:
    """The rollup cache every process of a deployment shares: PostgreSQL tables when the plant database is
    PostgreSQL (API hosts, a new leader and the CLI then read the same rollups) and no ``cache_path`` is set;
    otherwise the SQLite file (the embedded default)."""
    if settings.cache_path is None and database_url and database_url.startswith("postgresql"):
        from analytics.rollup_pg import PostgresRollupCache

        return PostgresRollupCache(database_url)
    return RollupCache(cache_path(settings, store_settings, base_dir))


def maintainer_for(store: TimeSeriesStore, settings: AnalyticsSettings, cache: RollupCache,
                   after_pass: AfterPass | None = None) -> RollupMaintainer:
    """The rollup maintainer for this cache: leased workers (any number, any host) on PostgreSQL, else the single
    maintainer the API's leader runs."""
    from analytics.rollup_pg import PostgresRollupCache

    kw: dict[str, Any] = dict(interval_s=settings.rollup_interval_s,
                              recheck_ms=settings.rollup_recheck_hours * 3_600_000, after_pass=after_pass,
                              quick_recheck_ms=settings.rollup_quick_recheck_hours * 3_600_000,
                              full_recheck_s=settings.rollup_full_recheck_s)

    if isinstance(cache, PostgresRollupCache):
        from analytics.leases import LeasedRollupMaintainer

        leased = LeasedRollupMaintainer(store, settings, cache, lease_s=settings.rollup_lease_s,
                                        batch=settings.rollup_batch, **kw)
        leased.needs_leader = settings.rollups_in_api == "leader"  # the API's choice; the CLI runs it either way
        return leased
    return RollupMaintainer(store, settings, cache, **kw)


def run_report(opts: ReportOptions, store: TimeSeriesStore, settings: AnalyticsSettings, cache_file: Path | Callable[[], RollupCache],
               orders_for: Callable[[str], Sequence[Order]] | None = None,
               annotate: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> int:
    """Build, render and write one report; returns the exit code. Errors are one clear line.

    ``orders_for(tenant)``: the tenant's order records (the plant model's), for the D of PQCD;
    ``annotate(report)``: names and target achievement from the plant model (plantmodel.targets).
    """
    if opts.output is None and opts.fmt in ("pdf", "xlsx"):
        click.echo(f"report error: a {opts.fmt.upper()} file needs --output FILE", err=True)
        return 2
    cache = (cache_file() if callable(cache_file) else RollupCache(cache_file)) if opts.cache else None
    try:
        data = _build(opts, store, settings, cache, orders_for)
        if annotate is not None and not opts.portfolio:
            data = annotate(data)
        out = render(data, opts.fmt, opts.lang)
    except (ReportError, WindowError, PdfFontMissing) as exc:
        click.echo(f"report error: {exc}", err=True)
        return 2
    except StoreError as exc:
        click.echo(f"store error: {exc}", err=True)
        return 3
    finally:
        if cache is not None:
            cache.close()
    if opts.output is None:
        sys.stdout.buffer.write(out)
        sys.stdout.flush()
    else:
        opts.output.parent.mkdir(parents=True, exist_ok=True)
        opts.output.write_bytes(out)
        click.echo(f"wrote {opts.output} ({len(out):,} bytes, {opts.fmt}, {opts.lang})", err=True)
    return 0


def _bar(label: str) -> Callable[[int, int, str], None]:
    """A progress callback drawing a bar on stderr (hidden when stderr is not a terminal)."""
    state: dict[str, Any] = {}

    def progress(done: int, total: int, what: str) -> None:
        if "bar" not in state:
            state["bar"] = click.progressbar(length=total, label=label, file=sys.stderr, show_pos=True,
                                             item_show_func=lambda x: x)
            state["bar"].__enter__()
        state["bar"].update(1, what)
        if done >= total:
            state["bar"].__exit__(None, None, None)

    return progress


def _build(opts: ReportOptions, store: TimeSeriesStore, settings: AnalyticsSettings, cache: RollupCache | None,
           orders_for: Callable[[str], Sequence[Order]] | None = None) -> dict[str, Any]:
    if opts.portfolio:
        if not settings.rollouts:
            raise ReportError("no rollouts configured: add analytics.rollouts to the config (see analytics/settings.py)")
        reports, problems = portfolio_reports(store, settings, min(opts.replicates, 1000), _bar("tenants"), cache,
                                              orders_for)
        data = portfolio_summary(reports, problems)
        if opts.fmt not in ("json",):
            raise ReportError("the portfolio is JSON only from the CLI; the API serves it as HTML too")
        return data
    if not opts.tenant:
        raise ReportError("--tenant is required (or --portfolio)")
    machines = select_machines(store, opts.tenant, opts.site, opts.line, opts.machine)
    if not machines:
        known = sorted({f"{m.tenant}/{m.site}/{m.line}" for m in store.machines()})
        raise ReportError(f"no machines for tenant={opts.tenant} site={opts.site or '*'} line={opts.line or '*'} "
                          f"machine={opts.machine or '*'}; "
                          f"lines with data: {', '.join(known) or 'none'}")
    policy = settings.policy(opts.tenant)
    if opts.first or opts.last:
        if not (opts.first and opts.last):
            raise ReportError("give both --from and --to")
        return period_report(store, machines, policy, opts.first, opts.last, opts.by, _bar("machines"), cache, opts.refresh)
    configured = settings.rollout(opts.tenant, opts.line)
    rollout = opts.rollout or (configured.date if configured else None)
    if rollout is None:
        raise ReportError("give --rollout DATE, or --from/--to for plain KPIs, or configure analytics.rollouts")
    comm = opts.commissioning_days if opts.commissioning_days is not None else (configured.commissioning_days if configured else 14)
    pre = opts.pre_exclusion_days if opts.pre_exclusion_days is not None else (configured.pre_exclusion_days if configured else 0)
    days = opts.days or (configured.days if configured else None)
    first = last = None
    if days is None:
        first, last = data_extent(store, machines, policy, rollout)
    return before_after_report(store, machines, policy, rollout, comm, days, pre, opts.replicates, _bar("machines"),
                               first, last, cache, opts.refresh,
                               orders=orders_for(opts.tenant) if orders_for else None)


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1)
