"""Reports from the store: a line's KPIs per day or shift, and the before/after report.

The JSON they return is the documented schema (docs/report-schema.md); the HTML, PDF and
CSV renderers and the API only reformat it.
"""

from __future__ import annotations
from typing import Any

import logging
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta

import numpy as np

from analytics import deadline, delivery, kpi
from analytics.beforeafter import compare, windows, xmr
from analytics.buckets import Buckets
from analytics.policy import Policy
from analytics.rollup import RollupCache, correct_edges, label_edges, machine_buckets
from plant import MachineRef
from tsstore import StoreUnavailable, TimeSeriesStore, machines_of

log = logging.getLogger(__name__)

SCHEMA = "smartfactory.report/v1"
#: The figures the programme asks for first: production efficiency, material input time, defect rate.
HEADLINE = ("output_per_hour", "material_input_s", "scrap_rate")

Progress = Callable[[int, int, str], None]  # (done, total, what)


class ReportError(ValueError):
    """A report that cannot be made as asked; the message says what to change."""


def local_midnight_ms(d: date, policy: Policy) -> int:
    ms = int(datetime(d.year, d.month, d.day, tzinfo=policy.zone()).timestamp() * 1000)
    if ms % (policy.bucket_min * 60_000):
        raise ReportError(f"midnight in {policy.timezone} is not on a {policy.bucket_min}-minute boundary: lower bucket_min")
    return ms


def last_completed_day(policy: Policy, now_ms: int | None = None) -> date:
    """The latest production day whose every shift has ended by ``now`` (tenant's zone).

    A night shift belongs to the day it starts, so with one running past midnight a day is
    complete only the next morning. The running day is never in a default report: its KPIs
    change from one run to the next and its missing hours read as no data.
    """
    now = datetime.fromtimestamp((now_ms if now_ms is not None else time.time() * 1000) / 1000, tz=policy.zone())
    spill = max([sh.start_min() + sh.length_min() - 1440 for sh in policy.shifts] + [0])
    day = now.date() - timedelta(days=1)
    while local_midnight_ms(day + timedelta(days=1), policy) + spill * 60_000 > now.timestamp() * 1000:
        day -= timedelta(days=1)
    return day


def _as_of(policy: Policy, through: date, now_ms: int | None) -> str:
    """'Data as of': the end of the last production day the report counts, in the tenant's zone."""
    end_ms = local_midnight_ms(through + timedelta(days=1), policy)
    if now_ms is not None:
        end_ms = min(end_ms, now_ms)
    return datetime.fromtimestamp(end_ms / 1000, tz=policy.zone()).isoformat(timespec="minutes")


def _generated_at(policy: Policy) -> str:
    """The creation time in the tenant's zone (with its offset), so a reader sees their own clock."""
    return datetime.now(policy.zone()).isoformat(timespec="seconds")


def load(store: TimeSeriesStore, machines: Sequence[MachineRef], policy: Policy, start_ms: int, end_ms: int,
         progress: Progress | None = None, cache: RollupCache | None = None, refresh: bool = False) -> dict[MachineRef, Buckets]:
    """Bucket tallies of each machine: from the rollup cache where finished, else from the store."""
    out = {}
    now_ms = int(time.time() * 1000)
    for i, m in enumerate(machines):
        deadline.check()
        if cache is not None:
            out[m] = cache.machine_buckets(store, m, policy, start_ms, end_ms, now_ms, refresh)
        else:
            out[m] = machine_buckets(store, m, policy, start_ms, end_ms)
        if progress:
            progress(i + 1, len(machines), f"{m.line}/{m.machine}")
    return out


def line_totals(data: dict[MachineRef, Buckets], policy: Policy, labels: np.ndarray, groups: int,
                now_ms: int | None = None) -> kpi.Totals:
    total = kpi.Totals.zeros(groups, [s.code for s in policy.states])
    for m, b in data.items():
        total = total + kpi.totals(b, labels, groups, policy, policy.ideal_cycle(m.line, m.machine), now_ms)
    return total


#: Below this, performance is more likely a wrong ideal cycle time than a real speed loss.
PERFORMANCE_IMPLAUSIBLE_BELOW = 0.5


def _ideal_warning(m: MachineRef, t: kpi.Totals, policy: Policy) -> list[str]:
    """Performance over 100% or under 50% means the configured ideal cycle time is off, not the machine."""
    perf = kpi.scalar(t)["performance"]
    ideal = policy.ideal_cycle(m.line, m.machine)
    if perf is None:
        return []
    if perf > 1.05:
        return [f"{m.line}/{m.machine}: performance {perf:.0%} is over 100%: its ideal cycle time "
                f"({ideal:g} s) is longer than its real cycles; set the machine's ideal_cycle_s "
                f"(plant model, or analytics ideal_cycle_s / ideal_cycle_by_product) so performance and OEE mean something"]
    if perf < PERFORMANCE_IMPLAUSIBLE_BELOW:
        return [f"{m.line}/{m.machine}: performance {perf:.0%} is implausibly low: its ideal cycle time "
                f"({ideal:g} s) is probably shorter than the machine can run (real cycles average about "
                f"{ideal / perf:.0f} s); check the machine's ideal_cycle_s (plant model, or analytics ideal_cycle_s / "
                f"ideal_cycle_by_product) before reading performance and OEE"]
    return []


def _clean(v: float | None) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


def _scope(machines: Sequence[MachineRef]) -> dict[str, Any]:
    if not machines:
        raise ReportError("no machines selected: check tenant, site and line (GET /api/v1/machines lists them)")
    tenants = {m.tenant for m in machines}
    lines = sorted({m.line for m in machines})
    if len(tenants) != 1:
        raise ReportError(f"a report covers one tenant; got {sorted(tenants)}")
    return {"tenant": machines[0].tenant, "site": machines[0].site, "line": ",".join(lines),
            "machines": [m.machine for m in machines]}


def period_report(store: TimeSeriesStore, machines: Sequence[MachineRef], policy: Policy, first: date, last: date,
                  by: str = "day", progress: Progress | None = None, cache: RollupCache | None = None,
                  refresh: bool = False) -> dict[str, Any]:
    """KPIs of a line for each production day (or shift) in [first, last], and for the whole period."""
    if by not in ("day", "shift"):
        raise ReportError(f"by={by!r}: use 'day' or 'shift'")
    if last < first:
        raise ReportError(f"last day {last} is before first day {first}")
    started = time.perf_counter()
    # a night shift that starts on the last day ends the next morning: then load one day more
    overnight = any(sh.start_min() + sh.length_min() > 1440 for sh in policy.shifts)
    start_ms = local_midnight_ms(first, policy)
    end_ms = local_midnight_ms(last + timedelta(days=2 if overnight else 1), policy)
    _scope(machines)
    data = load(store, machines, policy, start_ms, end_ms, progress, cache, refresh)
    starts = next(iter(data.values())).start_ms
    cal = kpi.calendar(starts, policy)
    in_range = np.array([first <= d <= last for d in cal.days] + [False])
    day_ok = in_range[cal.day_of_bucket]  # index -1 hits the trailing False
    nshift = len(policy.shifts)
    if by == "day":
        labels = np.where(day_ok, cal.day_of_bucket, -1)
        names = [{"date": d.isoformat()} for d in cal.days]
    else:
        labels = np.where(day_ok, cal.day_of_bucket * nshift + cal.shift_of_bucket, -1)
        names = [{"date": d.isoformat(), "shift": s.name} for d in cal.days for s in policy.shifts]
    groups = len(names)
    for m, b in data.items():
        correct_edges(store, m, policy, b, label_edges(labels))
    now_ms = int(time.time() * 1000)  # a period that reaches today: the hours still to come are no data yet
    total = line_totals(data, policy, labels, groups, now_ms)
    vals = kpi.values(total)
    rows = []
    for g, name in enumerate(names):
        deadline.check()
        if total.calendar_ms[g] <= 0:
            continue
        rows.append({**name, "kpis": {k: _clean(v[g]) for k, v in vals.items()},
                     "time": kpi.time_elements(total.take(np.arange(groups) == g))})
    corrections = [dict(c, machine=m.machine) for m, b in data.items() for c in b.corrections]
    warnings = [w for m, b in data.items() for w in _ideal_warning(
        m, kpi.totals(b, labels, groups, policy, policy.ideal_cycle(m.line, m.machine), now_ms), policy)]
    complete = last_completed_day(policy)
    if last > complete:
        warnings.insert(0, f"the period reaches past the last completed production day {complete}: the days after it "
                           "are running or still to come, so their figures will change")
    gaps = _gaps(data, policy, {"period": (local_midnight_ms(first, policy), local_midnight_ms(last + timedelta(days=1), policy))})
    warnings += gap_warnings(gaps) + correction_warnings(corrections)
    return {
        "schema": SCHEMA,
        "kind": "period",
        "generated_at": _generated_at(policy),
        "scope": _scope(machines),
        "period": {"first": first.isoformat(), "last": last.isoformat(), "by": by},
        "data_as_of": _as_of(policy, min(last, complete), int(time.time() * 1000)),
        "policy": policy.describe(),
        "kpis": {k: v for k, v in kpi.scalar(total).items()},
        "time": kpi.time_elements(total),
        "pareto": kpi.pareto(total, policy),
        "rows": rows,
        "corrections": corrections,
        "parts_across_gaps": gaps,
        "warnings": warnings,
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


def before_after_report(
    store: TimeSeriesStore,
    machines: Sequence[MachineRef],
    policy: Policy,
    rollout: date,
    commissioning_days: int = 14,
    days: int | None = None,
    pre_exclusion_days: int = 0,
    replicates: int = 2000,
    progress: Progress | None = None,
    first_day: date | None = None,
    last_day: date | None = None,
    cache: RollupCache | None = None,
    refresh: bool = False,
    orders: Sequence[delivery.Order] | None = None,
    orders_as_of: date | None = None,
    now_ms: int | None = None,
) -> dict[str, Any]:
    """Before/after report of one line (or a set of machines of one tenant) around a rollout.

    ``orders`` (the tenant's order records, read by the caller) give the D of PQCD; without
    them D stays empty. ``orders_as_of``: the day the orders stand for (default: today in the
    tenant's zone); an order open after its due date before then counts as late.

    Only completed production days count (``last_completed_day`` at ``now_ms``, default now):
    a window that would reach the running day or the future is cut there, and the report
    says so in ``warnings`` and ``windows.cut_short``.
    """
    started = time.perf_counter()
    complete = last_completed_day(policy, now_ms)
    if last_day is not None:
        last_day = min(last_day, complete)
    w = windows(rollout, commissioning_days, days, first_day, last_day, pre_exclusion_days)
    cutoff = complete + timedelta(days=1)  # days from here on are running or to come: left out
    cut_warnings = []
    for name, (a, b) in (("baseline", w.baseline), ("post", w.post)):
        if b > cutoff:
            kept = max(0, (cutoff - a).days)
            cut_warnings.append(f"the {name} window {a} – {b - timedelta(days=1)} reaches past the last completed "
                                f"production day {complete}: only {kept} of its {w.days} day(s) are counted; "
                                "rerun after it ends, or pass a shorter window (days)")
    start_ms = local_midnight_ms(w.baseline[0], policy)
    end_ms = local_midnight_ms(w.post[1] + timedelta(days=1), policy)  # + the tail of a night shift
    _scope(machines)
    data = load(store, machines, policy, start_ms, end_ms, progress, cache, refresh)
    starts = next(iter(data.values())).start_ms
    cal = kpi.calendar(starts, policy)
    phase_of_day = np.array([{"before": 0, "after": 1}.get(w.phase(d), -1) for d in cal.days] + [-1])
    phase_of_day[:-1][np.array([d >= cutoff for d in cal.days], dtype=bool)] = -1
    in_span = np.array([w.baseline[0] <= d < min(w.post[1], cutoff) for d in cal.days] + [False])
    day_labels = np.where(in_span[cal.day_of_bucket], cal.day_of_bucket, -1)
    ndays = len(cal.days)
    for m, b in data.items():
        correct_edges(store, m, policy, b, label_edges(day_labels))
    daily = line_totals(data, policy, day_labels, ndays)
    phase = phase_of_day[:ndays]
    before, after = daily.take(phase == 0), daily.take(phase == 1)
    for name, t, (a, b) in (("baseline", before, w.baseline), ("post", after, w.post)):
        if t.known_ms.sum() <= 0:
            raise ReportError(f"the {name} window {a} – {b} has no data for these machines: "
                              "move the rollout date or shorten the window (days)")

    comparisons = []
    for spec in kpi.KPIS:
        deadline.check()
        c = compare(spec, spec.num(before), spec.den(before), spec.num(after), spec.den(after), replicates=replicates)
        d = c.as_dict()
        d.update({"unit": spec.unit, "higher_is_better": spec.higher_is_better, "is_rate": spec.is_rate,
                  "pqcd": spec.pqcd, "headline": spec.key in HEADLINE})
        comparisons.append(d)

    d_report, d_daily = _delivery(orders, machines, policy, w, replicates, orders_as_of)
    comparisons += d_report.pop("comparisons") if d_report else []

    machine_rows = []
    slow_ideal = []
    for m, b in data.items():
        deadline.check()
        per = kpi.totals(b, day_labels, ndays, policy, policy.ideal_cycle(m.line, m.machine))
        slow_ideal += _ideal_warning(m, per, policy)
        pb, pa = per.take(phase == 0), per.take(phase == 1)
        row = {"machine": m.machine, "line": m.line, "kpis": {},
               "coverage": {p: _share(t.known_ms.sum(), t.calendar_ms.sum()) for p, t in (("before", pb), ("after", pa))},
               "parts_across_gaps": {p: {"good": float(t.gap_good.sum()), "scrap": float(t.gap_scrap.sum())}
                                     for p, t in (("before", pb), ("after", pa))}}
        for key in HEADLINE + ("oee",):
            spec = kpi.KPI_BY_KEY[key]
            c = compare(spec, spec.num(pb), spec.den(pb), spec.num(pa), spec.den(pa), replicates=min(replicates, 1000))
            row["kpis"][key] = {k: c.as_dict()[k] for k in ("before", "after", "improvement_pct", "ci95_improvement_pct",
                                                            "significant")}
        machine_rows.append(row)

    vals = kpi.values(daily)
    daily_rows = []
    for g, d in enumerate(cal.days):
        if not in_span[g] or daily.calendar_ms[g] <= 0:
            continue
        ph = w.phase(d) or ("commissioning" if w.baseline[1] <= d < w.post[0] else None)
        if ph is None:
            continue
        row = {k: _clean(v[g]) for k, v in vals.items()}
        if d_daily is not None:
            row.update({k: _clean(v[d_daily[0][d]]) if d in d_daily[0] else None for k, v in d_daily[1].items()})
        daily_rows.append({"date": d.isoformat(), "phase": ph, "kpis": row})

    charts = {}
    for key in HEADLINE + ("oee",):
        charts[key] = {p: xmr(vals[key][phase == i]) for i, p in enumerate(("before", "after"))}

    cov = kpi.KPI_BY_KEY["coverage"]
    coverage = {p: _clean(float(cov.num(t).sum() / cov.den(t).sum()) if cov.den(t).sum() else None)
                for p, t in (("before", before), ("after", after))}
    warnings = cut_warnings + list(slow_ideal)
    for p, v in coverage.items():
        if v is not None and v < policy.coverage_warning:
            warnings.append(f"data coverage {p} the rollout is {v:.1%}, under {policy.coverage_warning:.0%}: "
                            "figures rest on part of the time")
    warnings += coverage_warnings(machine_rows, policy)
    in_windows = {p: (local_midnight_ms(a, policy), local_midnight_ms(z, policy))
                  for p, (a, z) in (("before", w.baseline), ("after", w.post))}
    gaps = _gaps(data, policy, in_windows)
    warnings += gap_warnings(gaps)
    corrections_all = [dict(c, machine=m.machine) for m, b in data.items() for c in b.corrections]
    warnings += correction_warnings(corrections_all)
    for c in comparisons:
        if c["headline"] and c["n_before"] < 10:
            warnings.append(f"{c['key']}: only {c['n_before']} baseline day(s) with data")
        if c["pqcd"] == "D" and min(c["n_before"], c["n_after"]) < 10:
            warnings.append(f"{c['key']}: only {c['n_before']} baseline and {c['n_after']} post day(s) with judged "
                            "orders: the delivery figures rest on few days")
    if d_report and d_report.get("note"):
        warnings.append(d_report["note"])
    corrections = [dict(c, machine=m.machine) for m, b in data.items() for c in b.corrections]
    pqcd = {g: [c["key"] for c in comparisons if c["pqcd"] == g] for g in ("P", "Q", "C", "D")}
    report = {
        "schema": SCHEMA,
        "kind": "before_after",
        "generated_at": _generated_at(policy),
        "data_as_of": _as_of(policy, min(complete, w.post[1] - timedelta(days=1)), now_ms),
        "scope": _scope(machines),
        "windows": {**w.as_dict(), "last_day_counted": min(complete, w.post[1] - timedelta(days=1)).isoformat(),
                    "cut_short": bool(cut_warnings)},
        "policy": policy.describe(),
        "method": {
            "aggregation": "production day per line; KPI over a window = ratio of sums",
            "interval": "95% CI of the change: circular block bootstrap of days, t quantiles, AR(1) truncation correction",
            "replicates": replicates,
            "test": "two-sided t test on the block-bootstrap standard error; significant when the 95% CI excludes 0",
        },
        "coverage": coverage,
        "coverage_thresholds": {"min": policy.coverage_warning, "max_shift": policy.coverage_shift_warning},
        "parts_across_gaps": gaps,
        "material_input": {"headline": "material_input_s", "per_part": "material_input_s",
                           "per_cycle": "material_input_per_cycle_s",
                           "note": "the headline is input time per part produced; per input cycle (load) is "
                                   "beside it, unmoved by a change in parts per load"},
        "time": {"before": kpi.time_elements(before), "after": kpi.time_elements(after)},
        "kpis": comparisons,
        "pqcd": pqcd,
        "delivery": d_report,
        "machines": machine_rows,
        "daily": daily_rows,
        "control_charts": charts,
        "pareto": {"before": kpi.pareto(before, policy), "after": kpi.pareto(after, policy)},
        "corrections": corrections,
        "warnings": warnings,
        "elapsed_s": round(time.perf_counter() - started, 3),
    }
    log.info("report_done tenant=%s line=%s days=%d machines=%d elapsed_s=%.2f", report["scope"]["tenant"],
             report["scope"]["line"], w.days, len(machines), report["elapsed_s"])
    return report


def _share(num: float, den: float) -> float | None:
    return float(num / den) if den > 0 else None


def coverage_warnings(machine_rows: list[dict[str, Any]], policy: Policy) -> list[str]:
    """A machine's coverage under the threshold in either window, or moved between them by more than
    the allowed points: one machine's outage hides in a line's average (38 h off gave 98.8% for the line)."""
    out = []
    for r in machine_rows:
        cov = r["coverage"]
        name = f"{r['line']}/{r['machine']}"
        for p in ("before", "after"):
            v = cov.get(p)
            if v is not None and v < policy.coverage_warning:
                out.append(f"{name}: data coverage {p} the rollout is {v:.1%}, under {policy.coverage_warning:.0%}: "
                           "its figures rest on part of the time")
        if cov.get("before") is not None and cov.get("after") is not None:
            diff = cov["after"] - cov["before"]
            if abs(diff) > policy.coverage_shift_warning:
                out.append(f"{name}: data coverage moved {diff * 100:+.1f} points between the windows "
                           f"({cov['before']:.1%} -> {cov['after']:.1%}, more than {policy.coverage_shift_warning * 100:.0f}): "
                           "the windows are not measured alike")
    return out


def _gaps(data: dict[MachineRef, Buckets], policy: Policy, windows_ms: dict[str, tuple[int, int]]) -> dict[str, Any]:
    """Parts counted across data gaps in the report's windows: totals per window and one entry per gap."""
    zone = policy.zone()
    rows = []
    totals = {p: {"good": 0, "scrap": 0} for p in windows_ms}
    for m, b in data.items():
        for g in b.gaps:
            if g["tag"] not in ("good", "scrap") or g["parts"] <= 0:
                continue
            phase = next((p for p, (a, z) in windows_ms.items() if a <= g["to_ms"] < z), None)
            if phase is None:
                continue
            totals[phase][g["tag"]] += g["parts"]
            rows.append({"machine": m.machine, "line": m.line, "tag": g["tag"], "phase": phase,
                         "from": datetime.fromtimestamp(g["from_ms"] / 1000, zone).isoformat(timespec="minutes"),
                         "to": datetime.fromtimestamp(g["to_ms"] / 1000, zone).isoformat(timespec="minutes"),
                         "hours": round((g["to_ms"] - g["from_ms"]) / 3_600_000, 2), "parts": g["parts"]})
    return {**totals, "gaps": sorted(rows, key=lambda r: (r["from"], r["machine"], r["tag"])),
            "note": "parts a counter gained while the machine sent no data: counted here, kept out of every rate"}


def gap_warnings(gaps: dict[str, Any]) -> list[str]:
    per: dict[str, list[dict[str, Any]]] = {}
    for g in gaps["gaps"]:
        per.setdefault(f"{g['line']}/{g['machine']}", []).append(g)
    out = []
    for name, gs in per.items():
        spans = ", ".join("{} – {} ({:g} h)".format(g["from"], g["to"], g["hours"]) for g in gs[:3])
        more = ", ..." if len(gs) > 3 else ""
        out.append(f"{name}: {sum(g['parts'] for g in gs)} part(s) counted across {len(gs)} data gap(s) "
                   f"{spans}{more}: kept out of the rates, listed under parts_across_gaps")
    return out


def correction_warnings(corrections: list[dict[str, Any]]) -> list[str]:
    """Counter drops the readings could not decide, and small backward steps, said once per machine."""
    out = []
    for kind, text in (("wrap_or_reset", "counter drop(s) near the top that could be a wrap or a PLC restart "
                                          "(only the certain part counted)"),
                       ("step_back", "small backward counter step(s) read as corrections (nothing new counted)")):
        per: dict[str, int] = {}
        for c in corrections:
            if c["kind"] == kind:
                per[c["machine"]] = per.get(c["machine"], 0) + 1
        out += [f"{m}: {n} {text}" for m, n in sorted(per.items())]
    return out


def _delivery(orders: Sequence[delivery.Order] | None, machines: Sequence[MachineRef], policy: Policy, w,
              replicates: int, as_of: date | None) -> tuple[dict[str, Any] | None, tuple[dict[str, Any], dict[str, Any]] | None]:
    """D of PQCD from the orders of the report's lines: the comparisons, what they rest on, and daily values.

    None when there are no orders for these lines (D then stays empty with the report's note).
    """
    picked = delivery.for_lines(list(orders or []), {m.line for m in machines})
    if not picked:
        return None, None
    zone = policy.zone()
    as_of = as_of or datetime.now(zone).date()
    dd = delivery.daily(picked, zone, w.baseline[0], w.post[1], as_of)
    phase = np.array([w.phase(d) for d in dd.days], dtype=object)
    b, a = dd.take(phase == "before"), dd.take(phase == "after")
    out: dict[str, Any] = {"orders": len(picked), "as_of": as_of.isoformat(),
                 "before": b.totals(), "after": a.totals(),
                 "coverage": {"before": b.totals()["days_with_orders"] / max(1, w.days),
                              "after": a.totals()["days_with_orders"] / max(1, w.days)},
                 "comparisons": []}
    if b.judged.sum() == 0 and a.judged.sum() == 0:
        out["note"] = (f"{len(picked)} order(s) on record, none completed or past due in the windows: "
                       "delivery (D) not compared; import the orders of those weeks")
        return out, None
    for spec in delivery.DELIVERY_KPIS:
        deadline.check()
        c = compare(spec, spec.num(b), spec.den(b), spec.num(a), spec.den(a), replicates=replicates)
        d = c.as_dict()
        d.update({"unit": spec.unit, "higher_is_better": spec.higher_is_better, "is_rate": spec.is_rate,
                  "pqcd": spec.pqcd, "headline": False})
        out["comparisons"].append(d)
    return out, ({day: i for i, day in enumerate(dd.days)}, delivery.values(dd))


def data_extent(store: TimeSeriesStore, machines: Sequence[MachineRef], policy: Policy, around: date) -> tuple[date, date]:
    """First and last production day with data on the state tag, found without scanning history.

    The last from ``latest``; the first by bisection over single-day probes within two years
    before ``around`` (a gateway heartbeat gives every live day at least one sample).
    """
    zone = policy.zone()
    last_ms = 0
    for m in machines:
        v = store.latest(m).get(policy.tags.state)
        if v is not None:
            last_ms = max(last_ms, v.ts_ms)
    if not last_ms:
        raise ReportError(f"no '{policy.tags.state}' data for {', '.join(m.machine for m in machines)}")
    last = datetime.fromtimestamp(last_ms / 1000, tz=zone).date()

    def has_data(d: date) -> bool:
        a = local_midnight_ms(d, policy)
        return any(store.history(m, policy.tags.state, a, a + 86_400_000, 86_400_000, "last") for m in machines)

    lo, hi = around - timedelta(days=730), min(around, last)
    if not has_data(hi):
        hi = last
    while lo < hi:
        deadline.check()
        mid = lo + (hi - lo) // 2
        if has_data(mid):
            hi = mid
        else:
            lo = mid + timedelta(days=1)
    return lo, last


def select_machines(store: TimeSeriesStore, tenant: str, site: str | None = None, line: str | None = None,
                    machine: str | None = None) -> list[MachineRef]:
    return pick_machines(machines_of(store, {tenant}), tenant, site, line, machine)


def pick_machines(machines: Sequence[MachineRef], tenant: str, site: str | None = None, line: str | None = None,
                  machine: str | None = None) -> list[MachineRef]:
    return [m for m in machines if m.tenant == tenant and (site is None or m.site == site)
            and (line is None or m.line == line) and (machine is None or m.machine == machine)]


def portfolio_reports(store: TimeSeriesStore, settings, replicates: int = 1000, progress: Progress | None = None,
                      cache: RollupCache | None = None,
                      orders_for: Callable[[str], Sequence[delivery.Order]] | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """A before/after report for every configured rollout; problems are returned, not raised, so one
    tenant without data does not hide the others. ``orders_for(tenant)`` gives a tenant's orders (D)."""
    reports, problems = [], []
    every: list[MachineRef] | None = None
    if settings.rollouts:
        try:
            every = store.machines()  # once, not once per rollout (a walk of the whole store)
        except StoreUnavailable:
            every = None  # part of a sharded store is down: each tenant's own shard is asked below
    for i, r in enumerate(settings.rollouts):
        deadline.check()
        policy = settings.policy(r.tenant)
        try:
            machines = pick_machines(every if every is not None else machines_of(store, {r.tenant}),
                                     r.tenant, r.site, r.line)
            if not machines:
                raise ReportError("no machines with data")
            first = last = None
            if r.days is None:
                first, last = data_extent(store, machines, policy, r.date)
            reports.append(before_after_report(store, machines, policy, r.date, r.commissioning_days, r.days,
                                               r.pre_exclusion_days, replicates, None, first, last, cache,
                                               orders=orders_for(r.tenant) if orders_for else None))
        except (ReportError, ValueError, StoreUnavailable) as exc:  # one tenant's shard down hides only its own
            problems.append(f"{r.tenant}/{r.line or '*'}: {exc}")
            log.warning("portfolio_skipped tenant=%s line=%s reason=%r", r.tenant, r.line, str(exc))
        if progress:
            progress(i + 1, len(settings.rollouts), f"{r.tenant}/{r.line or '*'}")
    return reports, problems
