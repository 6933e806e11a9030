"""What a scheduled e-mail carries: the report built as the API builds it, rendered as PDF and XLSX.

A tenant's schedule gets its before/after report (the configured rollout, completed days only,
names and targets from the plant model); a centre schedule gets the portfolio as HTML.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from analytics.beforeafter import portfolio_summary
from analytics.labels import label
from analytics.render import names, portfolio_html, render, sentence, when
from analytics.report import ReportError, before_after_report, data_extent, portfolio_reports, select_machines
from analytics.settings import AnalyticsSettings
from plantmodel.db import PlantDb
from plantmodel.orders import orders_for_report
from plantmodel.targets import annotate


@dataclass(frozen=True)
class Attachment:
    filename: str
    mime: str  # "application/pdf"
    data: bytes


@dataclass(frozen=True)
class Mail:
    subject: str
    text: str
    attachments: list[Attachment] = field(default_factory=list)


@dataclass(frozen=True)
class Job:
    """What one schedule asks for (a row of report_schedules, read out of its session)."""

    schedule_id: int
    tenant: str | None  # None: the centre's portfolio
    line: str | None
    lang: str
    recipients: tuple[str, ...]


def report_mail(job: Job, key: str, store, settings: Callable[[], AnalyticsSettings], plant: PlantDb,
                cache=None, replicates: int = 1000) -> Mail:
    """Builds the mail of one occurrence; a ReportError (no data, no rollout) is a failed attempt with its reason."""
    s = settings()
    if job.tenant is None:
        reports, problems = portfolio_reports(store, s, replicates, cache=cache,
                                              orders_for=lambda t: orders_for_report(plant, t))
        data = portfolio_summary([annotate(r, plant) for r in reports], problems)
        body = portfolio_html(data, job.lang)
        title = label("portfolio_title", job.lang)
        return Mail(f"[smartfactory] {title} ({key})", f"{title}: {data['tenants']} SME, {data['lines']} "
                    f"{label('line', job.lang)}.\n",
                    [Attachment(f"portfolio-{key}.html", "text/html", body.encode())])
    machines = select_machines(store, job.tenant, None, job.line)
    if not machines:
        raise ReportError(f"no machine data for {job.tenant}/{job.line or '*'}")
    configured = s.rollout(job.tenant, job.line)
    if configured is None:
        raise ReportError(f"no rollout date for {job.tenant}: set it in the plant model (rollout_date) or analytics.rollouts")
    policy = s.policy(job.tenant)
    first = last = None
    if configured.days is None:
        first, last = data_extent(store, machines, policy, configured.date)
    report = before_after_report(store, machines, policy, configured.date, configured.commissioning_days, configured.days,
                                 configured.pre_exclusion_days, replicates, first_day=first, last_day=last, cache=cache,
                                 orders=orders_for_report(plant, job.tenant))
    annotate(report, plant)
    n = names(report, job.lang)
    lang = job.lang
    title = label("title_before_after", lang)
    lines = [f"{title}: {n['tenant']} · {n['line']}",
             f"{label('data_as_of', lang)}: {when(report.get('data_as_of'), report)}", ""]
    lines += [f"- {sentence(c, lang)}" for c in report["kpis"] if c["headline"]]
    for t in report.get("targets") or []:
        if t.get("achievement_pct") is not None:
            lines.append(f"- {label('target', lang)} {label(t['key'], lang)}: {label('achievement', lang)} "
                         f"{t['achievement_pct']:.0f}%")
    if report["warnings"]:
        lines += ["", label("warnings", lang) + ":"] + [f"! {w}" for w in report["warnings"]]
    stem = f"before-after-{job.tenant}-{report['scope']['line'].replace(',', '+')}-{date.fromisoformat(report['windows']['rollout'])}"
    return Mail(f"[smartfactory] {title}: {n['tenant']} {n['line']} ({key})", "\n".join(lines) + "\n",
                [Attachment(f"{stem}.pdf", "application/pdf", render(report, "pdf", lang)),
                 Attachment(f"{stem}.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                            render(report, "xlsx", lang))])
