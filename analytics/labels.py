"""Report labels in Korean and English: one table, so every output says the same thing."""

from __future__ import annotations

LANGS = ("ko", "en")

_LABELS: dict[str, tuple[str, str]] = {
    # KPIs
    "oee": ("설비종합효율 (OEE)", "OEE"),
    "availability": ("시간가동률", "Availability"),
    "performance": ("성능가동률", "Performance"),
    "quality": ("양품률", "Quality rate"),
    "output_per_hour": ("생산효율 (계획시간당 양품 수)", "Production efficiency (good parts per planned hour)"),
    "throughput_rate": ("가동시간당 생산량", "Throughput rate (parts per run hour)"),
    "standard_output": ("표준시간 산출 (제품 구성 보정)", "Standard-time output (product-mix controlled)"),
    "material_input_s": ("자재 투입시간 (개당)", "Material input time per part"),
    "material_input_per_cycle_s": ("자재 투입시간 (투입 1회당)", "Material input time per load"),
    "mtbf_h": ("평균고장간격 (MTBF)", "MTBF"),
    "mttr_min": ("평균수리시간 (MTTR)", "MTTR"),
    "scrap_rate": ("공정불량률", "In-process defect rate"),
    "energy_per_good_wh": ("양품당 에너지", "Energy per good part"),
    "coverage": ("데이터 수집률", "Data coverage"),
    "on_time_delivery": ("납기 준수율", "On-time delivery rate"),
    "lead_time_days": ("제조 리드타임 (주문~완료)", "Manufacturing lead time (order to completion)"),
    # PQCD
    "P": ("생산성 (P)", "Productivity (P)"),
    "Q": ("품질 (Q)", "Quality (Q)"),
    "C": ("원가 (C)", "Cost (C)"),
    "D": ("납기 (D)", "Delivery (D)"),
    "D_note": ("설비 신호로는 측정되지 않음: 수주 데이터(CSV)를 가져오면 계산됨 (smartfactory plant orders)",
               "not measured from machine signals: import the order records (CSV, smartfactory plant orders)"),
    "as_of": ("기준일", "as of"),
    "delivery_line": ("납기 (수주 데이터)", "Delivery (order records)"),
    "orders_judged": ("판정된 주문 (완료/납기 경과 미완료)", "Orders judged (completed / open past due)"),
    "orders_coverage": ("완료 주문이 있는 날의 비율", "Share of window days with judged orders"),
    # words
    "title_before_after": ("스마트공장 도입 전후 성과 보고서", "Smart-factory rollout: before/after report"),
    "title_period": ("생산 KPI 보고서", "Production KPI report"),
    "tenant": ("기업", "Company"),
    "line": ("라인", "Line"),
    "machines": ("설비", "Machines"),
    "rollout": ("도입일", "Rollout"),
    "baseline": ("도입 전 기간", "Baseline window"),
    "post": ("도입 후 기간", "Post window"),
    "commissioning": ("시운전 제외", "Commissioning excluded"),
    "days": ("일", "days"),
    "kpi": ("지표", "KPI"),
    "before": ("도입 전", "Before"),
    "after": ("도입 후", "After"),
    "change": ("변화", "Change"),
    "improvement": ("개선율", "Improvement"),
    "pp": ("%p 변화", "Change (points)"),
    "ci95": ("95% 신뢰구간", "95% CI"),
    "p_value": ("p값", "p-value"),
    "significant": ("유의", "Significant"),
    "yes": ("예", "yes"),
    "no": ("아니오", "no"),
    "n_days": ("일수 (전/후)", "Days (before/after)"),
    "pqcd_summary": ("PQCD 요약", "PQCD summary"),
    "daily_trend": ("일별 추이", "Daily trend"),
    "distribution": ("도입 전후 분포", "Before/after distribution"),
    "control_chart": ("관리도 (XmR, 단계별 한계)", "Control chart (XmR, limits per phase)"),
    "pareto": ("비가동 사유 파레토", "Downtime by reason (Pareto)"),
    "reason": ("사유", "Reason"),
    "hours": ("시간", "Hours"),
    "share": ("비율", "Share"),
    "cumulative": ("누적", "Cumulative"),
    "classification": ("정지 분류 (기업별 설정)", "Stop classification (tenant setting)"),
    "state": ("상태", "State"),
    "kind": ("분류", "Class"),
    "run": ("가동", "run"),
    "speed_loss": ("속도 손실", "speed loss"),
    "unplanned": ("비계획 정지", "unplanned stop"),
    "planned": ("계획 정지", "planned stop"),
    "unknown": ("데이터 없음", "no data"),
    "no_data": ("데이터 없음", "no data"),
    "warnings": ("주의", "Warnings"),
    "method": ("방법", "Method"),
    "method_text": (
        "라인·생산일 단위 집계, 기간 지표는 합계의 비율. 95% 신뢰구간은 일 단위 순환 블록 부트스트랩 표준오차와 t 분위수(AR(1) 보정)로 계산.",
        "Aggregated per line and production day; a window's KPI is a ratio of sums. 95% CI from a circular block "
        "bootstrap of days (standard error, t quantiles, AR(1) correction).",
    ),
    "coverage_line": ("데이터 수집률 (계획시간 대비)", "Data coverage (share of time with data)"),
    "corrections": ("카운터 보정 (롤오버/리셋)", "Counter corrections (wrap/reset)"),
    "machine_table": ("설비별 결과", "Per machine"),
    "date": ("일자", "Date"),
    "shift": ("근무조", "Shift"),
    "phase": ("구간", "Phase"),
    "ucl": ("관리상한", "UCL"),
    "lcl": ("관리하한", "LCL"),
    "mean": ("평균", "Mean"),
    "failure": ("고장", "failure"),
    "portfolio_title": ("센터 포트폴리오: 도입 기업 성과", "Centre portfolio: results across SMEs"),
    "improved": ("유의하게 개선", "Improved significantly"),
    "median_gain": ("개선율 중앙값", "Median improvement"),
    "attention": ("관심 필요 기업", "SMEs that need attention"),
    "period": ("기간", "Period"),
    "generated": ("작성", "Generated"),
    # machine states (the default classification's names; a tenant's own names print as they are)
    "idle": ("대기", "idle"),
    "loading": ("자재 투입", "loading"),
    "processing": ("가공", "processing"),
    "unloading": ("취출", "unloading"),
    "fault": ("고장", "fault"),
    "planned_stop": ("계획 정지", "planned stop"),
    "micro_stop": ("순간 정지", "micro-stop"),
    "changeover": ("품종 교체", "changeover"),
    "not_scheduled": ("근무 외 시간", "not scheduled"),
    "state_code": ("상태 코드", "State code"),
    # change in words, the same in every format
    "reduced": ("감소", "reduced"),
    "increased": ("증가", "increased"),
    "unchanged": ("변화 없음", "unchanged"),
    "not_measured": ("미측정", "not measured"),
    "better": ("개선", "better"),
    "worse": ("악화", "worse"),
    "sign_legend": (
        "변화: 도입 후 값이 도입 전보다 늘었으면 증가(+), 줄었으면 감소(-)와 그 비율. "
        "개선율: 지표가 좋아진 쪽으로 움직였으면 +, 나빠졌으면 - (시간·불량률처럼 낮을수록 좋은 지표는 감소가 개선).",
        "Change: whether the value after the rollout increased (+) or reduced (-) against before, and by how much. "
        "Improvement: + when the KPI moved the good way, - when it moved the bad way (for times and defect rates, "
        "lower is better, so a reduction is an improvement).",
    ),
    "findings": ("핵심 결과", "Key findings"),
    "sentence_down": ("{kpi} {pct}% 줄었습니다", "{kpi} reduced by {pct}%"),
    "sentence_up": ("{kpi} {pct}% 늘었습니다", "{kpi} increased by {pct}%"),
    "sentence_flat": ("{kpi} 변하지 않았습니다", "{kpi} did not change"),
    "sentence_ci": ("95% 신뢰구간 {lo}–{hi}%", "95% CI {lo}–{hi}%"),
    "sentence_not_significant": ("통계적으로 유의하지 않음", "not statistically significant"),
    "sentence_not_measured": ("{kpi}: 측정되지 않았습니다", "{kpi}: not measured"),
    "ci_note": (
        "95% 신뢰구간은 일별 변동을 감안할 때 실제 변화가 있을 법한 범위입니다. '유의'는 이 구간이 0을 포함하지 "
        "않는다는 뜻으로, 변화가 날마다의 우연한 변동만으로는 설명되지 않습니다.",
        "The 95% confidence interval is the range the true change most likely lies in, given how much the days vary. "
        "'Significant' means the interval does not include zero: the change is not explained by day-to-day chance alone.",
    ),
    "same_ratio": (
        "{other} 같은 비율: 제품 하나, 이상 사이클 시간 하나이면 두 지표는 같은 비율로 움직입니다",
        "same ratio as {other}: with one product and one ideal cycle time the two move together",
    ),
    "appendix": ("부록: 계산 방법과 설정", "Appendix: method and settings"),
    "data_as_of": ("데이터 기준", "Data as of"),
    "last_day": ("마지막 날", "last day"),
    "unit": ("단위", "Unit"),
    "legend": ("범례", "Legend"),
    "legend_before": ("도입 전 일별 값", "daily value, before"),
    "legend_after": ("도입 후 일별 값", "daily value, after"),
    "legend_commissioning": ("시운전 기간 (비교 제외)", "commissioning day (not compared)"),
    "legend_mean": ("구간 평균", "phase mean"),
    "legend_limits": ("관리한계 (평균 ± 2.66·MR)", "control limits (mean ± 2.66·MR)"),
    "legend_box": ("상자: 사분위 범위, 굵은 선: 중앙값, 점: 하루", "box: quartiles, bold line: median, dot: one day"),
    "site": ("사업장", "Site"),
    "shifts": ("근무조", "Shifts"),
    "ideal_cycle": ("이상 사이클 시간", "Ideal cycle time"),
    "stale": ("데이터 유효 시간", "A sample holds for"),
    "timezone": ("시간대", "Time zone"),
    "corrections_none": ("없음", "none"),
    "u_%": ("%", "%"),
    "u_pcs/h": ("개/시간", "pcs/h"),
    "u_s": ("초", "s"),
    "u_h": ("시간", "h"),
    "u_min": ("분", "min"),
    "u_Wh/pc": ("Wh/개", "Wh/pc"),
    "u_h/h": ("표준시간/시간", "std h/h"),
    "u_d": ("일", "days"),
    "per_part": ("개당", "per part"),
    "pareto_losses": ("사유별 정지 시간", "stop time by reason"),
    "no_data_apart": ("정지 사유가 아니어서 파레토에서 제외", "not a stop reason: left out of the Pareto"),
    "perf_over_100": ("성능가동률이 100%를 넘습니다: 기준 사이클 타임을 확인하세요",
                      "Performance over 100%: check the ideal cycle time"),
    "targets": ("도입 목표 달성률", "Rollout targets: achievement"),
    "target": ("목표", "Target"),
    "actual": ("실적", "Actual"),
    "achievement": ("달성률", "Achievement"),
    "achieved": ("달성", "achieved"),
    "not_achieved": ("미달", "not achieved"),
    "no_targets": ("등록된 목표 없음 (smartfactory plant targets)", "no targets on record (smartfactory plant targets)"),
}


def label(key: str, lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"language {lang!r} is not available: use one of {', '.join(LANGS)}")
    pair = _LABELS.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "ko" else pair[1]


def unit_label(unit: str, lang: str) -> str:
    """A KPI unit as a reader writes it (개/시간, 초); unknown units print as they are."""
    return label(f"u_{unit}", lang) if f"u_{unit}" in _LABELS else unit


def change_words(change_pct: float | None, lang: str) -> str:
    """The signed change said in words: 감소 −74.6% / reduced −74.6%; 미측정 when not measured.

    The one phrasing every format (PDF, HTML, XLSX, the centre page) prints beside a change.
    """
    if change_pct is None:
        return label("not_measured", lang)
    if round(change_pct, 1) == 0:
        return f"{label('unchanged', lang)} 0.0%"
    word = label("increased" if change_pct > 0 else "reduced", lang)
    return f"{word} {'+' if change_pct > 0 else '-'}{abs(change_pct):.1f}%"


def keys() -> list[str]:
    return list(_LABELS)
