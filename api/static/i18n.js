// Dashboard texts in Korean (default for SME roles) and English. Served locally: no CDN.
const TEXTS = {
  ko: {
    "logout": "로그아웃", "switch": "English",
    "login.title": "로그인", "login.username": "아이디", "login.password": "비밀번호", "login.submit": "로그인",
    "login.failed": "아이디 또는 비밀번호가 올바르지 않습니다",
    "nav.menu": "메뉴", "nav.line": "라인 현황", "nav.reports": "보고서", "nav.back_line": "라인 현황으로",
    "clock.tz": "기업 시간대",
    "range.label": "기간", "range.shift": "이번 근무조", "range.today": "오늘", "range.yesterday": "어제",
    "range.7d": "최근 7일", "range.30d": "최근 30일", "range.custom": "직접 지정", "range.from": "시작일", "range.to": "종료일",
    "range.apply": "적용", "range.bad": "시작일이 종료일보다 늦습니다: 날짜를 바꿔 주세요",
    "range.too_long": "최대 400일까지 볼 수 있습니다",
    "target_so_far": "현재까지 목표", "target_so_far.note": "오늘 계획 시간 중 지금까지 지난 시간 기준",
    "output_today": "오늘 생산량 (현재까지 목표 대비)", "achievement": "달성률",
    "shift.running": "현재 근무조", "shift.ended": "지난 근무조 (종료)", "shift.next": "다음 근무조",
    "shift_oee": "근무조 OEE (실시간 추정)",
    "perf.after": "성능가동률은 가동 {n}분 이후 산출",
    "alarm.now": "현재 알람", "alarm.more": "외 {n}건", "alarm.value": "측정값", "alarm.raised": "발생", "alarm.cleared": "해제",
    "alarm.none_range": "이 기간에 알람이 없습니다", "alarm.status": "상태", "cleared": "해제됨",
    "machine.open": "설비 상세", "machine.title": "설비 상세",
    "timeline": "상태 타임라인", "timeline.step": "칸 단위", "timeline.step_note": "칸마다 가장 오래 머문 상태, 정확한 시간은 파레토 참조", "timeline.total": "상태별 시간",
    "trends": "태그 추이", "trend.none": "이 기간에 값이 없습니다", "trend.mean": "평균", "trend.minmax": "최소–최대", "trend.min": "최소", "trend.max": "최대",
    "counts": "생산 수량", "counts.good": "양품", "counts.scrap": "불량", "counts.per_hour": "시간별", "counts.per_day": "일별",
    "pareto.none": "이 기간에 정지 시간이 없습니다", "pareto.hours": "시간", "pareto.episodes": "회",
    "range_kpis": "선택 기간 KPI (보고서와 같은 계산)", "loading": "불러오는 중…", "load_failed": "불러오지 못했습니다",
    "reports.title": "보고서", "reports.period": "기간 KPI 보고서", "reports.before_after": "도입 전후 성과 보고서",
    "reports.view": "화면에서 보기", "reports.download": "내려받기", "reports.lang_ko": "한국어", "reports.lang_en": "영어",
    "reports.by": "집계 단위", "reports.by_day": "일별", "reports.by_shift": "근무조별",
    "reports.period_hint": "아래에서 고른 기간의 생산일(기업 시간대 기준)로 만듭니다",
    "reports.ba_hint": "도입일 전후 같은 길이의 기간을 비교합니다. 계산에 몇 초 걸릴 수 있습니다.",
    "tag.press_force": "프레스 압력", "tag.energy_wh": "전력량", "tag.material_input": "자재 투입 신호",
    "tag.good_count": "양품 카운터", "tag.scrap_count": "불량 카운터", "tag.state": "상태 코드",
    "dur.h": "시간", "dur.m": "분", "dur.s": "초", "pcs": "개",
    "state.0": "대기", "state.1": "자재 투입", "state.2": "가공", "state.3": "취출", "state.4": "고장", "state.5": "계획 정지",
    "state.6": "순간 정지", "state.7": "품종 교체", "state.8": "근무 외 시간",
    "state.none": "데이터 없음",
    "in_state": "상태 유지", "at_least": "이상", "count_today": "오늘 생산", "target": "목표",
    "oee": "OEE", "oee.note": "실시간 추정치: 상태 레지스터와 카운터 기준, 공식 수치는 보고서 참조",
    "coverage": "데이터 수집률",
    "shift": "근무조", "no_shift": "근무조 없음",
    "trend": "자재 투입 시간 추이 (시간별)", "input_s_per_part": "개당 투입 시간(초)", "input_s": "투입 시간(초)",
    "alarms": "활성 알람", "alarms.range": "기간 중 알람", "no_alarms": "활성 알람 없음", "ack": "확인", "acknowledged": "확인됨", "active": "발생",
    "lines": "라인", "centre": "센터 현황", "not_found": "찾을 수 없습니다",
    "updated": "갱신", "live": "실시간", "disconnected": "연결 끊김, 재연결 중…", "stale": "데이터 지연",
    "counter_fixed": "카운터 보정",
    "rules.title": "알람 규칙", "rules.add": "규칙 추가", "rules.edit_title": "규칙 수정", "rules.edit": "수정",
    "rules.delete": "삭제", "rules.save": "저장", "rules.cancel": "취소", "rules.none": "이 라인에 알람 규칙이 없습니다",
    "rules.readonly": "읽기 전용: 규칙은 사업주 또는 센터 담당자가 변경할 수 있습니다",
    "rules.machine": "설비", "rules.name": "이름", "rules.kind": "종류", "rules.tag": "태그", "rules.op": "비교",
    "rules.threshold": "기준값", "rules.state": "상태", "rules.duration_s": "지속 시간(초)", "rules.condition": "조건",
    "rules.open_alarms": "발생 중 알람",
    "rules.on_delay_s": "발생 지연 (초)", "rules.off_delay_s": "해제 지연 (초)", "rules.deadband": "해제 불감대",
    "rules.damping": "발생·해제", "rules.at_once": "즉시 발생·해제",
    "rules.show_on_delay": "발생 지연 {s}초", "rules.show_off_delay": "해제 지연 {s}초",
    "rules.show_deadband": "불감대 {d} ({clear})",
    "rules.clears_at_or_below": "{v} 이하에서 해제", "rules.clears_below": "{v} 미만에서 해제",
    "rules.clears_at_or_above": "{v} 이상에서 해제", "rules.clears_above": "{v} 초과에서 해제",
    "rules.damping_hint": "발생 지연: 조건이 이 시간 동안 계속되어야 알람이 발생합니다. 해제 불감대: 값이 기준값에서 이만큼 정상 쪽으로 돌아와야 해제됩니다 (예: 830 초과, 불감대 10 → 820 이하에서 해제). 해제 지연: 해제 조건이 이 시간 동안 계속되어야 해제됩니다.",
    "rules.kind.threshold": "기준값 초과/미달", "rules.kind.state_duration": "상태 지속 시간",
    "rules.cond_state": "{tag}: {state} 상태 {s}초 이상",
    "rules.hint": "태그는 설비가 보고하는 값입니다(목록에서 선택). 규칙을 바꾸거나 지우면 발생 중인 알람은 해제되고, 새 조건은 1초 안에 적용됩니다.",
    "rules.saved": "저장했습니다", "rules.deleted": "삭제했습니다", "rules.cleared": "발생 중이던 알람 {n}건 해제",
    "rules.confirm_delete": "알람 규칙 '{name}'을(를) 삭제할까요? 발생 중인 알람은 해제됩니다.",
    "rules.save_failed": "저장하지 못했습니다", "rules.delete_failed": "삭제하지 못했습니다",
    "rules.load_failed": "알람 규칙을 불러오지 못했습니다",
    "hint.name": "이름을 입력하세요 (예: 프레스 압력 > 830 kN)", "hint.tag": "태그를 입력하세요 (예: press_force)",
    "hint.threshold": "비교할 숫자를 입력하세요 (예: 830)", "hint.state": "감시할 상태를 선택하세요",
    "hint.duration_s": "0초보다 큰 시간을 입력하세요 (예: 300)",
    "hint.delay": "0~3600초 사이로 입력하세요 (0이면 즉시)", "hint.deadband": "0 이상의 값을 태그 단위로 입력하세요 (0이면 기준값에서 해제)",
    "err.alarm_rule.name_blank": "이름이 비어 있습니다: 대시보드에서 알아볼 수 있는 이름을 입력하세요 (예: 프레스 압력 > 830 kN)",
    "err.alarm_rule.name_taken": "이 설비에 '{name}' 규칙이 이미 있습니다: 다른 이름을 입력하세요",
    "err.alarm_rule.op_missing": "비교 연산자를 선택하세요 (>, >=, <, <=, ==, !=)",
    "err.alarm_rule.threshold_missing": "기준값이 없습니다: 태그 값과 비교할 숫자를 입력하세요 (예: 830)",
    "err.alarm_rule.threshold_not_finite": "기준값은 유한한 숫자여야 합니다",
    "err.alarm_rule.state_missing": "감시할 상태를 선택하세요: {states}",
    "err.alarm_rule.state_unknown": "상태 코드 {state}은(는) 이 기업의 상태가 아닙니다: {states} 중에서 선택하세요",
    "err.alarm_rule.duration_missing": "지속 시간(초)을 입력하세요: 이 상태가 몇 초 이상 계속되면 알람을 울릴지 (예: 300)",
    "err.alarm_rule.duration_not_positive": "지속 시간은 0초보다 커야 합니다 (입력값 {value}): 상태가 몇 초 이상 계속되면 알람을 울릴지 입력하세요",
    "err.alarm_rule.tag_unknown": "이 설비는 '{tag}' 태그를 보고하지 않습니다: {tags} 중에서 선택하세요 (게이트웨이가 읽는 태그)",
    "err.alarm_rule.tag_text": "'{tag}' 태그는 문자 값입니다. 규칙은 숫자를 비교합니다: {tags} 중에서 선택하세요",
    "err.alarm_rule.delay_negative": "지연 시간은 0초 이상이어야 합니다 (입력값 {value}): 0이면 곧바로 발생·해제합니다",
    "err.alarm_rule.delay_too_long": "지연 시간은 최대 {max}초(1시간)입니다 (입력값 {value}): 더 길면 실제 이상을 너무 늦게 알립니다. 오래 계속될 때만 의미 있는 조건이면 '상태 지속 시간' 규칙을 쓰세요",
    "err.alarm_rule.deadband_negative": "해제 불감대는 0 이상이어야 합니다 (입력값 {value}): 값이 기준값에서 정상 쪽으로 얼마나 돌아와야 해제할지 태그 단위로 입력하세요. 0이면 기준값에서 바로 해제합니다",
    "err.alarm_rule.deadband_with_equality": "해제 불감대는 >, >=, <, <= 규칙에만 씁니다. 이 규칙은 {op} 비교이므로 불감대는 0으로 두고, 깜빡임은 해제 지연으로 막으세요",
    "err.alarm_rule.deadband_too_large": "해제 불감대 {deadband}이(가) 기준값 {threshold} 이상이라 알람이 {clear}에서야 해제됩니다(사실상 해제되지 않음): 불감대는 보통 측정 범위의 1~5 %로 정합니다 (예: {example})",
  },
  en: {
    "logout": "Log out", "switch": "한국어",
    "login.title": "Log in", "login.username": "Username", "login.password": "Password", "login.submit": "Log in",
    "login.failed": "Wrong username or password",
    "nav.menu": "Menu", "nav.line": "Line overview", "nav.reports": "Reports", "nav.back_line": "Back to the line",
    "clock.tz": "company time zone",
    "range.label": "Range", "range.shift": "This shift", "range.today": "Today", "range.yesterday": "Yesterday",
    "range.7d": "Last 7 days", "range.30d": "Last 30 days", "range.custom": "Custom", "range.from": "From", "range.to": "To",
    "range.apply": "Apply", "range.bad": "The start is after the end: change the dates",
    "range.too_long": "At most 400 days can be shown",
    "target_so_far": "target so far", "target_so_far.note": "for the planned time of today that has passed",
    "output_today": "Today's output (against the target so far)", "achievement": "Achievement",
    "shift.running": "Current shift", "shift.ended": "Last shift (ended)", "shift.next": "Next shift",
    "shift_oee": "Shift OEE (live estimate)",
    "perf.after": "Performance after {n} min of running",
    "alarm.now": "Alarm", "alarm.more": "and {n} more", "alarm.value": "value", "alarm.raised": "Raised", "alarm.cleared": "Cleared",
    "alarm.none_range": "No alarms in this range", "alarm.status": "Status", "cleared": "Cleared",
    "machine.open": "Machine details", "machine.title": "Machine",
    "timeline": "State timeline", "timeline.step": "step", "timeline.step_note": "each step shows the state held longest; the Pareto has the exact times", "timeline.total": "Time per state",
    "trends": "Tag trends", "trend.none": "No values in this range", "trend.mean": "mean", "trend.minmax": "min–max", "trend.min": "min", "trend.max": "max",
    "counts": "Parts", "counts.good": "Good", "counts.scrap": "Scrap", "counts.per_hour": "per hour", "counts.per_day": "per day",
    "pareto.none": "No stop time in this range", "pareto.hours": "h", "pareto.episodes": "times",
    "range_kpis": "KPIs of the range (computed as in the reports)", "loading": "Loading…", "load_failed": "Could not load",
    "reports.title": "Reports", "reports.period": "Period KPI report", "reports.before_after": "Before/after rollout report",
    "reports.view": "View here", "reports.download": "Download", "reports.lang_ko": "Korean", "reports.lang_en": "English",
    "reports.by": "Per", "reports.by_day": "day", "reports.by_shift": "shift",
    "reports.period_hint": "Made for the production days of the range chosen below (company time zone)",
    "reports.ba_hint": "Compares windows of equal length before and after the rollout; it can take a few seconds.",
    "tag.press_force": "Press force", "tag.energy_wh": "Energy", "tag.material_input": "Material input signal",
    "tag.good_count": "Good counter", "tag.scrap_count": "Scrap counter", "tag.state": "State code",
    "dur.h": "h", "dur.m": "min", "dur.s": "s", "pcs": "pcs",
    "state.0": "Idle", "state.1": "Loading", "state.2": "Processing", "state.3": "Unloading", "state.4": "Fault",
    "state.5": "Planned stop", "state.6": "Micro-stop", "state.7": "Changeover", "state.8": "Not scheduled",
    "state.none": "No data",
    "in_state": "In state", "at_least": "at least", "count_today": "Today", "target": "target",
    "oee": "OEE", "oee.note": "Live estimate from the state register and counters; reports give the audited figure",
    "coverage": "Data coverage",
    "shift": "Shift", "no_shift": "No shift",
    "trend": "Material input time (hourly)", "input_s_per_part": "Input s per part", "input_s": "Input time (s)",
    "alarms": "Active alarms", "alarms.range": "Alarms in the range", "no_alarms": "No active alarms", "ack": "Acknowledge", "acknowledged": "Acknowledged",
    "active": "Active",
    "lines": "Lines", "centre": "Centre overview", "not_found": "Not found",
    "updated": "updated", "live": "live", "disconnected": "disconnected, reconnecting…", "stale": "stale data",
    "counter_fixed": "counter corrections",
    "rules.title": "Alarm rules", "rules.add": "Add rule", "rules.edit_title": "Edit rule", "rules.edit": "Edit",
    "rules.delete": "Delete", "rules.save": "Save", "rules.cancel": "Cancel", "rules.none": "No alarm rules on this line",
    "rules.readonly": "Read-only: the SME's owner or the centre can change rules",
    "rules.machine": "Machine", "rules.name": "Name", "rules.kind": "Kind", "rules.tag": "Tag", "rules.op": "Operator",
    "rules.threshold": "Threshold", "rules.state": "State", "rules.duration_s": "Duration (s)", "rules.condition": "Condition",
    "rules.open_alarms": "Open alarms",
    "rules.on_delay_s": "On-delay (s)", "rules.off_delay_s": "Off-delay (s)", "rules.deadband": "Clear deadband",
    "rules.damping": "Raise · clear", "rules.at_once": "at once",
    "rules.show_on_delay": "on-delay {s} s", "rules.show_off_delay": "off-delay {s} s",
    "rules.show_deadband": "deadband {d} ({clear})",
    "rules.clears_at_or_below": "clears at {v} or below", "rules.clears_below": "clears below {v}",
    "rules.clears_at_or_above": "clears at {v} or above", "rules.clears_above": "clears above {v}",
    "rules.damping_hint": "On-delay: the condition must hold this long before the alarm is raised. Clear deadband: the value must come back this far past the threshold before the alarm clears (e.g. > 830 with deadband 10 clears at 820 or below). Off-delay: the clear condition must hold this long before the alarm clears.",
    "rules.kind.threshold": "Threshold", "rules.kind.state_duration": "Time in state",
    "rules.cond_state": "{tag} in {state} for ≥ {s} s",
    "rules.hint": "Tags are the values the machine reports (pick from the list). Changing or deleting a rule clears its open alarms; the new condition applies within a second.",
    "rules.saved": "Saved", "rules.deleted": "Deleted", "rules.cleared": "{n} open alarm(s) cleared",
    "rules.confirm_delete": "Delete the alarm rule '{name}'? Its open alarms will be cleared.",
    "rules.save_failed": "Could not save", "rules.delete_failed": "Could not delete",
    "rules.load_failed": "Could not load the alarm rules",
    "hint.name": "Enter a name, e.g. press force > 830 kN", "hint.tag": "Enter a tag, e.g. press_force",
    "hint.threshold": "Enter the number to compare with, e.g. 830", "hint.state": "Choose the state to watch",
    "hint.duration_s": "Enter a time of more than 0 seconds, e.g. 300",
    "hint.delay": "Enter 0 to 3600 seconds (0: at once)", "hint.deadband": "Enter 0 or more, in the tag's unit (0: clears at the threshold)",
  },
};

// Tag units where the store does not carry them (the gateway's register maps do: kN, Wh)
const TAG_UNITS = { press_force: "kN", energy_wh: "Wh" };

let LANG = "ko";

/** The default state register's names by code (plant/states.py), the glossary's keys for them. */
const STATE_KEYS = ["idle", "loading", "processing", "unloading", "fault", "planned_stop", "micro_stop", "changeover",
  "not_scheduled"];
function capital(s) { return s.charAt(0).toUpperCase() + s.slice(1); }

/** The reports' labels (analytics/labels.py) under "report.<key>": one glossary for the page and the reports. */
async function loadGlossary() {
  try {
    const r = await fetch("/api/v1/glossary");
    if (!r.ok) return;
    const g = await r.json();
    for (const lang of Object.keys(g)) {
      TEXTS[lang] = TEXTS[lang] || {};
      for (const [k, v] of Object.entries(g[lang])) TEXTS[lang][`report.${k}`] = v;
      // the tiles, the timeline and the Pareto name a state as the reports do (the texts above are the fallback)
      STATE_KEYS.forEach((k, code) => { if (g[lang][k]) TEXTS[lang][`state.${code}`] = capital(g[lang][k]); });
      if (g[lang].no_data) TEXTS[lang]["state.none"] = capital(g[lang].no_data);
    }
  } catch { /* offline API: the keys themselves show */ }
}

/** 0분 10초, 1시간 05분 in Korean; 0 min 10 s, 1 h 05 min in English. */
function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  const sp = LANG === "ko" ? "" : " ";
  if (h >= 48) return `${Math.floor(h / 24)}${LANG === "ko" ? "일" : " d"} ${h % 24}${sp}${t("dur.h")}`;
  return h ? `${h}${sp}${t("dur.h")} ${String(m).padStart(2, "0")}${sp}${t("dur.m")}`
    : `${m}${sp}${t("dur.m")} ${String(r).padStart(2, "0")}${sp}${t("dur.s")}`;
}

function tagLabel(tag) {
  const name = TEXTS.en[`tag.${tag}`] ? t(`tag.${tag}`) : tag;
  return TAG_UNITS[tag] ? `${name} (${TAG_UNITS[tag]})` : name;
}
function t(key) { return (TEXTS[LANG] && TEXTS[LANG][key]) ?? TEXTS.en[key] ?? key; }
function tf(key, params) { return t(key).replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m)); }
function applyTexts(root = document) {
  document.documentElement.lang = LANG;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  document.getElementById("lang").textContent = t("switch");
}

// -- the centre engineer's workspace (api/static/centre.js): keys under "centre." --------------
// KPI names are not here: they come with the data, from the report's labels (analytics/labels.py).
Object.assign(TEXTS.en, {
  "centre.title": "SME portfolio", "centre.summary": "{n} SMEs · {k} need attention · coverage threshold {floor}",
  "centre.search": "Search by name", "centre.search_hint": "Korean or English name",
  "centre.attention_only": "Needs attention only", "centre.sort": "Sort by", "centre.sort_dir": "Sort direction",
  "centre.ascending": "Ascending", "centre.descending": "Descending", "centre.table_caption": "SMEs in the programme",
  "centre.no_match": "No SME matches the search or filter",
  "centre.col.sme": "SME", "centre.col.rollout": "Rollout", "centre.col.gateway": "Gateway",
  "centre.col.coverage": "Data coverage (24 h)", "centre.col.alarms": "Active alarms", "centre.col.gains": "Headline gains",
  "centre.col.attention": "Needs attention",
  "centre.no_rollout": "not set", "centre.gw.online": "online", "centre.gw.offline": "offline",
  "centre.gw.never": "never reported", "centre.gw.none": "no gateway", "centre.last_seen": "last seen {ago}",
  "centre.no_report": "no before/after report yet", "centre.ok": "No issues", "centre.not_significant": "not significant",
  "centre.dir.reduced": "reduced", "centre.dir.increased": "increased", "centre.dir.unchanged": "unchanged",
  "centre.pp": "{v} pp", "centre.no_change_data": "no comparison",
  "centre.distribution": "Gains across SMEs, per KPI",
  "centre.distribution_note": "One dot per SME line (faded: not significant); the bar marks the median. Right of 0 is better.",
  "centre.axis": "Improvement (%), positive is better", "centre.median": "median",
  "centre.no_gains": "No before/after report has gains yet",
  "centre.gains_as_of": "Gains from the before/after reports computed {when}",
  "centre.headline": "Report headline (before/after)", "centre.breadcrumb": "Breadcrumb",
  "centre.no_machines": "No machines in the plant model", "centre.machine": "Machine", "centre.state": "State",
  "centre.last_data": "Last data", "centre.never": "never",
  "centre.loading": "Loading…", "centre.not_found": "Not found", "centre.forbidden": "This page is for centre roles",
  "centre.load_failed": "Could not load the portfolio",
  "centre.reason.no_machines": "No machines in the plant model",
  "centre.reason.no_data": "No data in the last 24 h",
  "centre.reason.no_gateway": "No gateway registered",
  "centre.reason.gateway_offline": "Gateway {gateway} offline, last seen {ago}",
  "centre.reason.gateway_never": "Gateway {gateway} has never reported",
  "centre.reason.low_coverage": "Data coverage {coverage} in 24 h, under the {threshold} threshold",
  "centre.reason.kpi_worse": "{kpi} got worse: {change} ({direction})",
  "centre.reason.report_failed": "Before/after report failed: {problem}",
});
Object.assign(TEXTS.ko, {
  "centre.title": "도입 기업 현황", "centre.summary": "기업 {n}곳 · 관심 필요 {k}곳 · 수집률 기준 {floor}",
  "centre.search": "기업명 검색", "centre.search_hint": "한글 또는 영문 기업명",
  "centre.attention_only": "관심 필요 기업만", "centre.sort": "정렬", "centre.sort_dir": "정렬 방향",
  "centre.ascending": "오름차순", "centre.descending": "내림차순", "centre.table_caption": "보급 사업 참여 기업",
  "centre.no_match": "검색·필터 조건에 맞는 기업이 없습니다",
  "centre.col.sme": "기업", "centre.col.rollout": "도입일", "centre.col.gateway": "게이트웨이",
  "centre.col.coverage": "데이터 수집률 (24시간)", "centre.col.alarms": "활성 알람", "centre.col.gains": "주요 개선율",
  "centre.col.attention": "관심 필요 사유",
  "centre.no_rollout": "미정", "centre.gw.online": "연결됨", "centre.gw.offline": "끊김",
  "centre.gw.never": "수신 이력 없음", "centre.gw.none": "게이트웨이 없음", "centre.last_seen": "마지막 수신 {ago}",
  "centre.no_report": "도입 전후 보고서 없음", "centre.ok": "이상 없음", "centre.not_significant": "유의하지 않음",
  "centre.dir.reduced": "감소", "centre.dir.increased": "증가", "centre.dir.unchanged": "변화 없음",
  "centre.pp": "{v}%p", "centre.no_change_data": "비교 불가",
  "centre.distribution": "지표별 기업 개선율 분포",
  "centre.distribution_note": "점 하나가 기업의 라인 하나입니다(흐린 점: 유의하지 않음). 세로선은 중앙값이며, 0보다 오른쪽이 개선입니다.",
  "centre.axis": "개선율 (%), 양수가 개선", "centre.median": "중앙값",
  "centre.no_gains": "아직 개선율이 계산된 보고서가 없습니다",
  "centre.gains_as_of": "개선율: {when}에 계산한 도입 전후 보고서 기준",
  "centre.headline": "보고서 주요 결과 (도입 전후)", "centre.breadcrumb": "경로",
  "centre.no_machines": "등록된 설비가 없습니다", "centre.machine": "설비", "centre.state": "상태",
  "centre.last_data": "마지막 데이터", "centre.never": "없음",
  "centre.loading": "불러오는 중…", "centre.not_found": "찾을 수 없습니다", "centre.forbidden": "센터 담당자만 볼 수 있는 화면입니다",
  "centre.load_failed": "현황을 불러오지 못했습니다",
  "centre.reason.no_machines": "등록된 설비 없음",
  "centre.reason.no_data": "최근 24시간 데이터 없음",
  "centre.reason.no_gateway": "게이트웨이 미등록",
  "centre.reason.gateway_offline": "게이트웨이 {gateway} 연결 끊김, 마지막 수신 {ago}",
  "centre.reason.gateway_never": "게이트웨이 {gateway} 수신 이력 없음",
  "centre.reason.low_coverage": "24시간 데이터 수집률 {coverage}, 기준 {threshold} 미만",
  "centre.reason.kpi_worse": "{kpi} 악화: {change} ({direction})",
  "centre.reason.report_failed": "도입 전후 보고서 계산 실패: {problem}",
});
