"""The centre's view of every SME: status cheap per machine (so it scales to hundreds of tenants), the
before/after gains in words, and the reasons an SME needs attention.

Data coverage over the last day comes from the hourly rollups the maintainer keeps
(``analytics.continuous``): the settled hours are rows in the rollup cache, and only the
last few hours are tallied from the store, for the state tag alone. Coverage here is what it
is in the reports: the share of time with a fresh state sample (a sample holds until the next
one, at most the staleness limit). Last data is the newest state sample (``latest``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from analytics.beforeafter import DELIVERY_KEYS
from analytics.delivery import DELIVERY_KPIS
from analytics.kpi import KPIS
from analytics.labels import LANGS, label
from analytics.report import HEADLINE, portfolio_reports
from analytics.rollup import RollupCache
from analytics.settings import AnalyticsSettings
from api.live import alarms_of
from plantmodel.db import Alarm, BrokerAccount, Line, PlantDb, Site, Tenant
from plantmodel.scoping import up_to_tenant
from plantmodel.orders import orders_for_report
from plant import MachineRef
from tsstore import TimeSeriesStore

DAY_MS = 86_400_000
log = logging.getLogger(__name__)
KPI_UNITS = {k.key: k.unit for k in (*KPIS, *DELIVERY_KPIS)}
HIGHER_IS_BETTER = {k.key: k.higher_is_better for k in (*KPIS, *DELIVERY_KPIS)}


@dataclass(frozen=True)
class MachineStatus:
    known_ms: int
    window_ms: int
    last_data_ms: int | None
    state: float | None = None  # the newest state sample's value (a state code)


def machine_status(store: TimeSeriesStore, cache: RollupCache | None, ref: MachineRef, settings: AnalyticsSettings,
                   now_ms: int) -> MachineStatus:
    """Time with data in the 24 h before now: settled hours from the cache, the edges from the store."""
    policy = settings.policy(ref.tenant)
    every, minute = policy.bucket_min * 60_000, 60_000
    codes, stale = [s.code for s in policy.states], int(policy.stale_s * 1000)

    def from_store(a: int, b: int, step: int) -> float:
        if b <= a:
            return 0.0
        return float(sum(min(c.held_ms, step) for c in store.state_durations(ref, policy.tags.state, a, b, step, codes, stale)))

    start = (now_ms - DAY_MS) // minute * minute
    first_whole = -(-start // every) * every
    settled = first_whole
    if cache is not None:
        settled = max(first_whole, (now_ms - cache.settle_ms) // every * every)
    known = from_store(start, first_whole, minute)  # the part-hour at the far edge, by the minute
    if settled > first_whole:
        known += float(cache.machine_buckets(store, ref, policy, first_whole, settled, now_ms).known_ms().sum())
    known += from_store(settled, -(-now_ms // every) * every, every)  # the hours too recent to be settled
    newest = store.latest(ref).get(policy.tags.state)
    state = newest.value if newest is not None and isinstance(newest.value, (int, float)) else None
    return MachineStatus(int(known), now_ms - start, newest.ts_ms if newest else None, state)


def tenant_row(t: Tenant, s, store: TimeSeriesStore, cache: RollupCache | None, settings: AnalyticsSettings,
               now_ms: int, stale_ms: int) -> dict:
    """One tenant's overview row as of ``now_ms``, without its active alarms (those are read live)."""
    machines = [(site, ln, m) for site in t.sites for ln in site.lines for m in ln.machines]
    status = {m.id: machine_status(store, cache, MachineRef(t.slug, site.slug, ln.slug, m.slug), settings, now_ms)
              for site, ln, m in machines}
    gateways = []
    for g in s.scalars(select(BrokerAccount).filter_by(tenant_id=t.id, kind="gateway")):
        seen = [status[m.id].last_data_ms for _, _, m in machines if m.gateway_id == g.id]
        newest = max((x for x in seen if x), default=None)
        gateways.append({"gateway": g.username, "machines": len(seen), "last_data_ms": newest,
                         "online": newest is not None and now_ms - newest < 60_000 + stale_ms})
    coverage = [min(1.0, st.known_ms / st.window_ms) for st in status.values()]
    return {
        "tenant": t.slug, "name": t.name,
        "rollout_date": t.rollout_date.isoformat() if t.rollout_date else None,
        "machines": len(machines), "gateways": gateways,
        "coverage_24h": round(sum(coverage) / len(coverage), 4) if coverage else None,
    }


def overview(plant: PlantDb, store: TimeSeriesStore, cache: RollupCache | None, settings: AnalyticsSettings,
             now_ms: int, stale_ms: int) -> list[dict]:
    """Every tenant's row computed now, machine by machine: the reference the summaries must equal, and the
    answer when there is no rollup cache to keep summaries in."""
    out = []
    with plant.session() as s:
        for t in s.scalars(select(Tenant).order_by(Tenant.slug)):
            row = tenant_row(t, s, store, cache, settings, now_ms, stale_ms)
            row["active_alarms"] = len(alarms_of(plant, t.slug, ("active",)))
            out.append(row)
    return out


def active_alarm_counts(plant: PlantDb) -> dict[str, int]:
    """Active (neither acknowledged nor cleared) alarms per tenant, in one query."""
    with plant.session() as s:
        q = up_to_tenant(select(Tenant.slug, func.count()).select_from(Alarm), Alarm).where(
            Alarm.cleared_ms.is_(None), Alarm.acknowledged_ms.is_(None)).group_by(Tenant.slug)
        return {slug: int(n) for slug, n in s.execute(q).all()}


# -- the portfolio: every SME with its status, gains in words and the reasons it needs attention ---------------

#: the KPIs whose before/after change the portfolio shows per SME (the report's headline KPIs and delivery)
GAIN_KEYS = HEADLINE + DELIVERY_KEYS
#: headline KPIs whose significant worsening flags an SME (delivery is shown, never a reason: few orders)
WATCHED_KEYS = HEADLINE


def gain(kpi: dict, scope: dict) -> dict:
    """One KPI's before/after as data for words: the report's labels, the signed change and whether it is better.

    ``change_pct`` is signed as the value moved (a shorter material input time is negative);
    ``improvement_pct`` is the programme's convention (positive is better), as in the reports.
    """
    change, imp = kpi.get("change_pct"), kpi.get("improvement_pct")
    direction = None if change is None else "unchanged" if change == 0 else "increased" if change > 0 else "reduced"
    return {
        "key": kpi["key"], "label": {lang: label(kpi["key"], lang) for lang in LANGS},
        "unit": kpi.get("unit"), "higher_is_better": kpi.get("higher_is_better"),
        "site": scope.get("site"), "line": scope.get("line"),
        "before": kpi.get("before"), "after": kpi.get("after"),
        "change_pct": change, "direction": direction, "improvement_pct": imp,
        "better": None if imp is None or imp == 0 else imp > 0,
        "significant": bool(kpi.get("significant")), "pp_change": kpi.get("pp_change"),
    }


def gains_by_tenant(reports: list[dict]) -> dict[str, list[dict]]:
    """The gains of each tenant's before/after reports (one per configured rollout line)."""
    out: dict[str, list[dict]] = {}
    for r in reports:
        scope = r.get("scope") or {}
        for k in r.get("kpis", []):
            if k.get("key") in GAIN_KEYS:
                out.setdefault(scope.get("tenant"), []).append(gain(k, scope))
    order = {k: i for i, k in enumerate(GAIN_KEYS)}
    for gs in out.values():
        gs.sort(key=lambda g: (g["line"] or "", order[g["key"]]))
    return out


def _reason(code: str, text: str, **params) -> dict:
    return {"code": code, "text": text, "params": params}


def _ago(now_ms: int, ts_ms: int) -> str:
    minutes = max(0, (now_ms - ts_ms) // 60_000)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h" if minutes < 48 * 60 else f"{minutes // 1440} days"


def attention(row: dict, gains: list[dict], problems: list[str], coverage_floor: float, now_ms: int) -> list[dict]:
    """Why an SME needs attention, as data (``code``, ``params``) and in English (``text``); empty when none.

    - ``no_machines``: the plant model lists no machine;
    - ``no_data``: none of its machines sent a state sample in the last 24 h;
    - ``no_gateway``: machines but no gateway account registered;
    - ``gateway_offline``: a gateway reported before but not recently; ``gateway_never``: never reported;
    - ``low_coverage``: data coverage over 24 h under the floor (but not zero: that is ``no_data``);
    - ``kpi_worse``: a headline KPI of a before/after report got significantly worse;
    - ``report_failed``: its configured before/after report could not be computed.
    """
    out = []
    coverage = row.get("coverage_24h")
    if not row.get("machines"):
        out.append(_reason("no_machines", "no machines in the plant model"))
    elif not coverage:
        out.append(_reason("no_data", "no data in the last 24 h", machines=row["machines"]))
    elif coverage < coverage_floor:
        out.append(_reason("low_coverage", f"data coverage {coverage:.0%} in 24 h, under the {coverage_floor:.0%} "
                           "threshold", coverage=coverage, threshold=coverage_floor))
    gateways = row.get("gateways") or []
    if row.get("machines") and not gateways:
        out.append(_reason("no_gateway", "no gateway registered"))
    for g in gateways:
        status = g.get("status") or gateway_status(g)
        if status == "never":
            out.append(_reason("gateway_never", f"gateway {g['gateway']} has never reported", gateway=g["gateway"]))
        elif status == "offline":
            out.append(_reason("gateway_offline", f"gateway {g['gateway']} offline, last seen "
                               f"{_ago(now_ms, g['last_data_ms'])} ago", gateway=g["gateway"],
                               last_seen_ms=g["last_data_ms"]))
    for g in gains:
        if g["key"] in WATCHED_KEYS and g["significant"] and g["better"] is False:
            out.append(_reason("kpi_worse", f"{g['label']['en']} got worse: {g['change_pct']:+.1f}% ({g['direction']})"
                               + (f" on {g['line']}" if g["line"] else ""), kpi=g["key"], line=g["line"],
                               change_pct=g["change_pct"], direction=g["direction"], label=g["label"]))
    for p in problems:
        out.append(_reason("report_failed", f"before/after report failed: {p}", problem=p))
    return out


def gateway_status(g: dict) -> str:
    return "online" if g.get("online") else "never" if g.get("last_data_ms") is None else "offline"


def portfolio_rows(overview_rows: list[dict], names_en: dict[str, str | None], reports: list[dict],
                   problems: list[str], coverage_floor: float, now_ms: int,
                   gains: dict[str, list[dict]] | None = None) -> list[dict]:
    """The centre overview rows joined with the report gains and the attention reasons (pure: unit-tested).

    ``gains``: the gains per tenant already taken from the reports (the precomputed summaries)."""
    gains = gains_by_tenant(reports) if gains is None else gains
    out = []
    for row in overview_rows:
        tenant = row["tenant"]
        gws = [{**g, "status": gateway_status(g)} for g in row.get("gateways", [])]
        statuses = {g["status"] for g in gws}
        overall = ("none" if not gws else "online" if statuses == {"online"} else
                   "never" if statuses == {"never"} else "offline")
        last_seen = max((g["last_data_ms"] for g in gws if g.get("last_data_ms")), default=None)
        r = {**row, "name_en": names_en.get(tenant), "gateways": gws, "gateway_status": overall,
             "last_seen_ms": last_seen, "gains": gains.get(tenant, [])}
        mine = [p for p in problems if p.split("/", 1)[0] == tenant]  # "tenant/line: why" (portfolio_reports)
        r["attention"] = attention(r, r["gains"], mine, coverage_floor, now_ms)
        out.append(r)
    return out


def kpi_legend() -> list[dict]:
    """The gain KPIs with the report's labels, unit and direction of goodness, for charts and legends."""
    return [{"key": k, "label": {lang: label(k, lang) for lang in LANGS}, "unit": KPI_UNITS.get(k),
             "higher_is_better": HIGHER_IS_BETTER.get(k), "flags_attention": k in WATCHED_KEYS} for k in GAIN_KEYS]


# -- kept per worker -------------------------------------------------------------------------------------------

STATUS_TTL_S = 30.0  # the status, as /centre/overview keeps it


class CentrePortfolio:
    """The portfolio's inputs kept per worker: the status for 30 s, the report gains for ``gains_ttl_s``.

    The gains come from a before/after report per configured rollout; they change by the day, so
    they are computed once per ``gains_ttl_s`` however many pages ask at the same time (a lock).
    A run with a failed report (often: data still arriving) is retried after ``STATUS_TTL_S``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._status: tuple[float, list[dict]] | None = None
        self._gains: tuple[float, float, list[dict], list[str]] | None = None

    def status(self, plant: PlantDb, store: TimeSeriesStore, cache: RollupCache | None, settings: AnalyticsSettings,
               stale_ms: int) -> list[dict]:
        hit = self._status
        if hit and time.monotonic() - hit[0] < STATUS_TTL_S:
            return hit[1]
        out = overview(plant, store, cache, settings, int(time.time() * 1000), stale_ms)
        self._status = (time.monotonic(), out)
        return out

    def gains(self, plant: PlantDb, store: TimeSeriesStore, cache: RollupCache | None, settings: AnalyticsSettings,
              ttl_s: float) -> tuple[float, list[dict], list[str]]:
        """(computed at, epoch ms; the reports; the problems)."""
        with self._lock:
            hit = self._gains
            if hit and time.monotonic() - hit[0] < (min(ttl_s, STATUS_TTL_S) if hit[3] else ttl_s):
                return hit[1], hit[2], hit[3]
            t0 = time.monotonic()
            reports, problems = portfolio_reports(store, settings, 1000, cache=cache,
                                                  orders_for=lambda t: orders_for_report(plant, t))
            log.info("centre_gains_computed reports=%d problems=%d seconds=%.2f", len(reports), len(problems),
                     time.monotonic() - t0)
            self._gains = (time.monotonic(), time.time() * 1000, reports, problems)
            return self._gains[1], reports, problems

    def portfolio(self, plant: PlantDb, store: TimeSeriesStore, cache: RollupCache | None, settings: AnalyticsSettings,
                  stale_ms: int, coverage_floor: float, gains_ttl_s: float) -> dict:
        rows = self.status(plant, store, cache, settings, stale_ms)
        as_of, reports, problems = self.gains(plant, store, cache, settings, gains_ttl_s)
        with plant.session() as s:
            names_en = {t.slug: t.name_en for t in s.scalars(select(Tenant))}
        now_ms = int(time.time() * 1000)
        return {"schema": "smartfactory.centre-portfolio/v1", "generated_ms": now_ms, "gains_as_of_ms": int(as_of),
                "coverage_floor": coverage_floor, "kpis": kpi_legend(),
                "tenants": portfolio_rows(rows, names_en, reports, problems, coverage_floor, now_ms)}


def tenant_detail(plant: PlantDb, store: TimeSeriesStore, cache: RollupCache | None, settings: AnalyticsSettings,
                  stale_ms: int, row: dict) -> dict | None:
    """One SME for the centre: its portfolio ``row``, and its sites, lines and machines with state and coverage."""
    tenant, now_ms = row["tenant"], int(time.time() * 1000)
    alarms = alarms_of(plant, tenant, ("active",))
    with plant.session() as s:
        t = s.scalars(select(Tenant).filter_by(slug=tenant)).first()
        if t is None:
            return None
        sites = []
        for site in t.sites:
            lines = []
            for ln in site.lines:
                machines = []
                for m in ln.machines:
                    st = machine_status(store, cache, MachineRef(t.slug, site.slug, ln.slug, m.slug), settings, now_ms)
                    fresh = st.last_data_ms is not None and now_ms - st.last_data_ms < stale_ms
                    machines.append({"machine": m.slug, "name": m.name, "name_en": m.name_en, "gateway": m.gateway.username if m.gateway else None,
                                     "state": int(st.state) if fresh and st.state is not None else None,
                                     "last_data_ms": st.last_data_ms, "fresh": fresh,
                                     "coverage_24h": round(min(1.0, st.known_ms / st.window_ms), 4),
                                     "active_alarms": sum(a["machine"] == m.slug and a["line"] == ln.slug
                                                          and a["site"] == site.slug for a in alarms)})
                lines.append({"line": ln.slug, "name": ln.name, "name_en": ln.name_en, "machines": machines,
                              "active_alarms": sum(m["active_alarms"] for m in machines),
                              "gains": [g for g in row["gains"] if g["line"] == ln.slug]})
            sites.append({"site": site.slug, "name": site.name, "name_en": site.name_en, "lines": lines})
    return {**row, "sites": sites, "kpis": kpi_legend()}


# -- precomputed per tenant, shared by every worker ------------------------------------------------------------

OVERVIEW_SUMMARY = "centre-overview/v1"
GAINS_SUMMARY = "centre-gains/v1"


class CentreSummaries:
    """The per-tenant rows the centre overview and portfolio read, kept by the rollup maintainer.

    After each pass the maintainer calls ``refresh`` with the tenants whose machines it tallied:
    their overview rows are computed (``tenant_row``, the same computation as ``overview``) and
    written to the rollup cache's summary table (PostgreSQL beside a PostgreSQL plant database,
    else the SQLite cache file), and their before/after gains too when older than
    ``gains_ttl_s``. A request then reads one row per tenant instead of walking every machine;
    active alarms are counted live, in one query.

    Fallback: a tenant with no summary yet (just created, or the maintainer has not reached it)
    or one older than ``max_age_s`` (no maintainer running) is computed in the request, once, and
    written back, so the next request reads it. A summary is as of its pass (``as_of_ms``): the
    overview's coverage and gateway status lag by at most one rollup interval.
    """

    def __init__(self, plant: PlantDb, store: TimeSeriesStore, cache: RollupCache,
                 settings: Callable[[], AnalyticsSettings], stale_ms: int, gains_ttl_s: float = 300.0,
                 max_age_s: float = 960.0) -> None:
        self.plant, self.store, self.cache, self.settings = plant, store, cache, settings
        self.stale_ms, self.gains_ttl_ms, self.max_age_ms = stale_ms, int(gains_ttl_s * 1000), int(max_age_s * 1000)
        self.computed_in_request = 0  # tenants the fallback computed (for tests and logs)

    # -- written by the maintainer --------------------------------------------------------------
    def refresh(self, tenants: set[str], now_ms: int) -> None:
        t0 = time.monotonic()
        rows = self._rows(tenants, now_ms)
        self.cache.put_summaries(OVERVIEW_SUMMARY, {t: (now_ms, json.dumps(r)) for t, r in rows.items()})
        gains = self._refresh_gains(tenants, now_ms, self.cache.summaries(GAINS_SUMMARY), self.gains_ttl_ms)
        log.info("centre_summaries_refreshed tenants=%d gains=%d seconds=%.2f", len(rows), gains, time.monotonic() - t0)

    def _rows(self, tenants: set[str], now_ms: int) -> dict[str, dict]:
        settings = self.settings()
        with self.plant.session() as s:
            tree = selectinload(Tenant.sites).selectinload(Site.lines).selectinload(Line.machines)
            return {t.slug: tenant_row(t, s, self.store, self.cache, settings, now_ms, self.stale_ms)
                    for t in s.scalars(select(Tenant).where(Tenant.slug.in_(sorted(tenants))).options(tree))}

    def _refresh_gains(self, tenants: set[str], now_ms: int, have: dict[str, tuple[int, str]], ttl_ms: int,
                       retry_failed: bool = True) -> int:
        """The gains of those of ``tenants`` whose gains summary is missing or older than ``ttl_ms`` (with
        ``retry_failed``, one with a failed report after ``STATUS_TTL_S``: data is often still arriving).
        A tenant without a rollout gets an empty one, so a request can tell "none" from "not computed yet"
        without merging the plant model's settings. Returns how many were written."""
        due = set()
        for t in tenants:
            hit = have.get(t)
            failed = retry_failed and hit is not None and bool(json.loads(hit[1])["problems"])
            if hit is None or now_ms - hit[0] >= (min(ttl_ms, int(STATUS_TTL_S * 1000)) if failed else ttl_ms):
                due.add(t)
        if not due:
            return 0
        settings = self.settings()
        subset = settings.model_copy(update={"rollouts": [r for r in settings.rollouts if r.tenant in due]})
        reports, problems = portfolio_reports(self.store, subset, 1000, cache=self.cache,
                                              orders_for=lambda t: orders_for_report(self.plant, t))
        gains = gains_by_tenant(reports)
        self.cache.put_summaries(GAINS_SUMMARY, {t: (now_ms, json.dumps({
            "gains": gains.get(t, []), "problems": [p for p in problems if p.split("/", 1)[0] == t]})) for t in due})
        return len(due)

    # -- read by requests -----------------------------------------------------------------------
    def overview(self, now_ms: int | None = None) -> list[dict]:
        """Every tenant's row from its summary (computed here, once, where there is none or it is too old)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        with self.plant.session() as s:
            slugs = list(s.scalars(select(Tenant.slug).order_by(Tenant.slug)))
        have = self.cache.summaries(OVERVIEW_SUMMARY)
        missing = {t for t in slugs if t not in have or now_ms - have[t][0] > self.max_age_ms}
        if missing:
            t0 = time.monotonic()
            rows = self._rows(missing, now_ms)
            fresh = {t: (now_ms, json.dumps(r)) for t, r in rows.items()}
            self.cache.put_summaries(OVERVIEW_SUMMARY, fresh)
            have.update(fresh)
            self.computed_in_request += len(rows)
            log.info("centre_summaries_computed_in_request tenants=%d seconds=%.2f reason=no summary yet or older "
                     "than %ds (is a rollup maintainer running?)", len(rows), time.monotonic() - t0,
                     self.max_age_ms // 1000)
        alarms = active_alarm_counts(self.plant)
        return [{**json.loads(have[t][1]), "active_alarms": alarms.get(t, 0)} for t in slugs if t in have]

    def gains(self, tenants: list[str], now_ms: int | None = None) -> tuple[int, dict[str, list[dict]], list[str]]:
        """(as of, epoch ms: the oldest tenant's; gains per tenant; problems), from the summaries (a tenant with
        none, one older than ``gains_ttl_s`` + ``max_age_s``, or one whose report failed ``STATUS_TTL_S`` ago,
        computed here once)."""
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        have = self.cache.summaries(GAINS_SUMMARY)
        # a failed report (data still arriving, as while a history is backfilled) is retried after STATUS_TTL_S
        # here too: the maintainer refreshes only the tenants it tallied, and may not tally one again for an hour
        if self._refresh_gains(set(tenants), now_ms, have, self.gains_ttl_ms + self.max_age_ms):
            have = self.cache.summaries(GAINS_SUMMARY)
        gains, problems, as_of = {}, [], now_ms
        for t in tenants:
            if t in have:
                at, body = have[t]
                data = json.loads(body)
                gains[t], as_of = data["gains"], min(as_of, at)
                problems += data["problems"]
        return as_of, gains, problems

    def portfolio(self, coverage_floor: float, now_ms: int | None = None) -> dict:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        rows = self.overview(now_ms)
        as_of, gains, problems = self.gains([r["tenant"] for r in rows], now_ms)
        with self.plant.session() as s:
            names_en = {t.slug: t.name_en for t in s.scalars(select(Tenant))}
        return {"schema": "smartfactory.centre-portfolio/v1", "generated_ms": now_ms, "gains_as_of_ms": int(as_of),
                "coverage_floor": coverage_floor, "kpis": kpi_legend(),
                "tenants": portfolio_rows(rows, names_en, [], problems, coverage_floor, now_ms, gains=gains)}
