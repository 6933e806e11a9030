"""Report endpoints: a line's KPIs per day/shift, the before/after report, the centre portfolio.

The app-wide ``authorise`` keeps each tenant to its own reports because the path parameter
is named ``tenant``. Tenant policies and rollouts come from the plant model and the config's
``analytics`` section, merged by ``plantmodel.policy`` (``Services.analytics``).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import Response

from analytics.beforeafter import WindowError, portfolio_summary
from analytics.render import ATTACHMENTS, MEDIA_TYPES, PdfFontMissing, portfolio_html, render
from analytics.report import ReportError, before_after_report, data_extent, period_report, portfolio_reports, select_machines
from api import limits
from api.access import CentreOnly
from api.security_headers import REPORT_CONTENT_SECURITY_POLICY
from api.services import Services, ServicesDep
from plantmodel.orders import orders_for_report
from plantmodel.targets import annotate

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])
Format = Literal["json", "html", "csv", "pdf", "xlsx"]
Lang = Literal["ko", "en"]


def _answer(report: dict, fmt: str, lang: str, name: str) -> Response:
    try:
        body = render(report, fmt, lang)
    except PdfFontMissing as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None
    headers = {"Content-Disposition": f'attachment; filename="{name}.{fmt}"'} if fmt in ATTACHMENTS else {}
    if fmt == "html":  # inline style, no script: a stricter policy than the dashboards' (api.security_headers)
        headers["Content-Security-Policy"] = REPORT_CONTENT_SECURITY_POLICY
    return Response(content=body, media_type=MEDIA_TYPES[fmt], headers=headers)


def _machines(services: Services, tenant: str, site: str, line: str, machine: str | None = None):
    machines = select_machines(services.store, tenant, site, line, machine)
    if not machines:
        raise HTTPException(status_code=404, detail=f"no machine data for {tenant}/{site}/{line}/{machine or '*'}")
    return machines


@router.get("/{tenant}/{site}/{line}/kpis")
async def line_kpis(
    request: Request,
    services: ServicesDep,
    tenant: str,
    site: str,
    line: str,
    first: Annotated[date, Query(description="first production day (local), e.g. 2026-03-02")],
    last: Annotated[date | None, Query(description="last production day, inclusive; default: first; at most "
                                                   "api.max_range_days (400) days from first")] = None,
    by: Literal["day", "shift"] = "day",
    machine: Annotated[str | None, Query(description="only this machine of the line")] = None,
    format: Format = "json",
    lang: Lang = "ko",
) -> Response:
    """ISO 22400 KPIs of a line (or one machine) per production day or shift, with the stop classification used.

    Runs under ``api.report_budget_s`` and stops when the client disconnects (``api.limits``)."""
    limits.check_days(first, last or first, services.settings.max_range_days)

    def work() -> Response:
        try:
            report = period_report(services.store, _machines(services, tenant, site, line, machine),
                                   services.analytics.get().policy(tenant), first, last or first, by,
                                   cache=services.rollup_cache)
        except (ReportError, ValueError) as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return _answer(annotate(report, services.plant), format, lang, f"kpis-{tenant}-{line}-{first}")

    return await limits.computed(request, services.settings, work, "KPI report")


@router.get("/{tenant}/{site}/{line}/before-after")
async def line_before_after(
    request: Request,
    services: ServicesDep,
    tenant: str,
    site: str,
    line: str,
    rollout: Annotated[date | None, Query(description="rollout date; default: the configured one")] = None,
    commissioning_days: Annotated[int | None, Query(ge=0, le=365)] = None,
    days: Annotated[int | None, Query(ge=7, le=730, description="window length; default: the most the data allows, "
                                                                "at most api.max_range_days (400)")] = None,
    pre_exclusion_days: Annotated[int | None, Query(ge=0, le=365)] = None,
    replicates: Annotated[int, Query(ge=200, le=10_000)] = 2000,
    format: Format = "json",
    lang: Lang = "ko",
) -> Response:
    """Before/after the rollout: every KPI with change, 95% CI, p-value, n and coverage; PQCD summary.

    Runs under ``api.report_budget_s`` and stops when the client disconnects (``api.limits``)."""
    longest = services.settings.max_range_days
    if days is not None:
        limits.check_window_days("days", days, longest)

    def work() -> Response:
        settings = services.analytics.get()
        store = services.store
        machines = _machines(services, tenant, site, line)
        policy = settings.policy(tenant)
        configured = settings.rollout(tenant, line)
        day0 = rollout or (configured.date if configured else None)
        if day0 is None:
            raise HTTPException(status_code=422, detail="no rollout date: pass ?rollout=YYYY-MM-DD or configure "
                                                        "analytics.rollouts")
        comm = commissioning_days if commissioning_days is not None else (configured.commissioning_days if configured
                                                                          else 14)
        pre = pre_exclusion_days if pre_exclusion_days is not None else (configured.pre_exclusion_days if configured
                                                                         else 0)
        length = days or (configured.days if configured else None)
        try:
            first = last = None
            if length is None:
                first, last = data_extent(store, machines, policy, day0)
                # each window at most api.max_range_days: the data's extent, cut to that much on each side
                first = max(first, day0 - timedelta(days=pre + longest))
                last = min(last, day0 + timedelta(days=comm + longest - 1))
            report = before_after_report(store, machines, policy, day0, comm, length, pre, replicates,
                                         first_day=first, last_day=last, cache=services.rollup_cache,
                                         orders=orders_for_report(services.plant, tenant))
        except (ReportError, WindowError, ValueError) as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return _answer(annotate(report, services.plant), format, lang, f"before-after-{tenant}-{line}-{day0}")

    return await limits.computed(request, services.settings, work, "before/after report")


@router.get("/portfolio")
async def centre_portfolio(request: Request, services: ServicesDep, _p: CentreOnly,
                           format: Literal["json", "html"] = "json", lang: Lang = "ko") -> Response:
    """Centre roll-up over every configured rollout: how many improved, the median gain, who needs attention.

    Runs under ``api.report_budget_s`` and stops when the client disconnects (``api.limits``)."""

    def work() -> Response:
        settings, plant = services.analytics.get(), services.plant
        reports, problems = portfolio_reports(services.store, settings, 1000, cache=services.rollup_cache,
                                              orders_for=lambda t: orders_for_report(plant, t))
        data = portfolio_summary([annotate(r, plant) for r in reports], problems)
        if format == "html":
            return Response(content=portfolio_html(data, lang), media_type=MEDIA_TYPES["html"],
                            headers={"Content-Security-Policy": REPORT_CONTENT_SECURITY_POLICY})
        return Response(content=render(data, "json", lang), media_type=MEDIA_TYPES["json"])

    return await limits.computed(request, services.settings, work, "portfolio")
