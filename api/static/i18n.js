// Dashboard texts in Korean (default for SME roles) and English. Served locally: no CDN.
const TEXTS = {
  ko: {
    "logout": "로그아웃", "switch": "English",
    "login.title": "로그인", "login.username": "아이디", "login.password": "비밀번호", "login.submit": "로그인",
    "login.failed": "아이디 또는 비밀번호가 올바르지 않습니다",
    "state.0": "대기", "state.1": "자재 투입", "state.2": "가공", "state.3": "하역", "state.4": "고장", "state.5": "계획 정지",
    "state.6": "순간 정지", "state.7": "품종 교체", "state.8": "비가동 계획",
    "state.none": "데이터 없음",
    "in_state": "상태 유지", "at_least": "이상", "count_today": "오늘 생산", "target": "목표",
    "oee": "OEE (교대)", "oee.note": "실시간 추정치: 상태 레지스터와 카운터 기준, 공식 수치는 보고서 참조",
    "availability": "가동률", "performance": "성능", "quality": "품질", "coverage": "데이터 수집률",
    "shift": "교대", "no_shift": "교대 없음",
    "trend": "자재 투입 시간 추이 (시간별)", "input_s_per_part": "개당 투입 시간(초)", "input_s": "투입 시간(초)",
    "alarms": "활성 알람", "no_alarms": "활성 알람 없음", "ack": "확인", "acknowledged": "확인됨", "active": "발생",
    "lines": "라인", "centre": "센터 현황", "not_found": "찾을 수 없습니다",
    "tenant": "기업", "rollout": "도입일", "machines": "설비", "gateways": "게이트웨이", "online": "연결됨",
    "offline": "끊김", "coverage_24h": "24시간 데이터 수집률", "gains": "최근 보고서 개선율", "none": "없음",
    "updated": "갱신", "live": "실시간", "disconnected": "연결 끊김, 재연결 중…", "stale": "데이터 지연",
    "counter_fixed": "카운터 보정",
  },
  en: {
    "logout": "Log out", "switch": "한국어",
    "login.title": "Log in", "login.username": "Username", "login.password": "Password", "login.submit": "Log in",
    "login.failed": "Wrong username or password",
    "state.0": "Idle", "state.1": "Loading material", "state.2": "Processing", "state.3": "Unloading", "state.4": "Fault",
    "state.5": "Planned stop", "state.6": "Micro-stop", "state.7": "Changeover", "state.8": "Not scheduled",
    "state.none": "No data",
    "in_state": "In state", "at_least": "at least", "count_today": "Today", "target": "target",
    "oee": "OEE (shift)", "oee.note": "Live estimate from the state register and counters; reports give the audited figure",
    "availability": "Availability", "performance": "Performance", "quality": "Quality", "coverage": "Data coverage",
    "shift": "Shift", "no_shift": "No shift",
    "trend": "Material input time (hourly)", "input_s_per_part": "Input s per part", "input_s": "Input time (s)",
    "alarms": "Active alarms", "no_alarms": "No active alarms", "ack": "Acknowledge", "acknowledged": "Acknowledged",
    "active": "Active",
    "lines": "Lines", "centre": "Centre overview", "not_found": "Not found",
    "tenant": "SME", "rollout": "Rollout", "machines": "Machines", "gateways": "Gateways", "online": "online",
    "offline": "offline", "coverage_24h": "Data coverage (24 h)", "gains": "Latest report gains", "none": "none",
    "updated": "updated", "live": "live", "disconnected": "disconnected, reconnecting…", "stale": "stale data",
    "counter_fixed": "counter corrections",
  },
};

let LANG = "ko";
function t(key) { return (TEXTS[LANG] && TEXTS[LANG][key]) ?? TEXTS.en[key] ?? key; }
function applyTexts(root = document) {
  document.documentElement.lang = LANG;
  for (const el of root.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  document.getElementById("lang").textContent = t("switch");
}
