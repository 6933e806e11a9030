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
}


def label(key: str, lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"language {lang!r} is not available: use one of {', '.join(LANGS)}")
    pair = _LABELS.get(key)
    if pair is None:
        return key
    return pair[0] if lang == "ko" else pair[1]


def keys() -> list[str]:
    return list(_LABELS)
