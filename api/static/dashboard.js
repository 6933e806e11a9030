// The SME owner's and operator's workspace: the shell (header, navigation, hash router, language),
// the line overview (live over server-sent events), the machine page, the range picker, the reports,
// and the line's alarm rules. The centre engineer's pages come from centre.js (window.sfCentre).
// Vanilla JS plus the vendored uPlot, no external assets: factory networks are often offline.
"use strict";

let ME = null;
let TENANTS = [];   // the plant trees the user may see (names, time zones, shifts)
let SOURCE = null;  // the EventSource of the line on screen
let LAST = null;    // the last snapshot rendered, re-rendered on a language switch
let TICK = null;
let VIEW = null;    // {kind, rerender} of the page on screen
let TZ = undefined; // the time zone of the tenant on screen: clock, ranges and chart axes use it
const CHARTS = [];  // uPlot instances on screen, resized with the window

const $ = (id) => document.getElementById(id);
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role") e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) if (c !== null && c !== undefined && c !== "") e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

async function api(path, opts = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...opts,
    headers: { "Content-Type": "application/json", ...(opts.headers || {}) } });
  if (r.status === 401) { showLogin(); throw new Error("401"); }
  if (!r.ok) {
    const body = await r.json().catch(() => ({}));
    const e = new Error(typeof body.detail === "string" ? body.detail : `${path}: HTTP ${r.status}`);
    e.status = r.status; throw e;
  }
  return r.json();
}
const enc = encodeURIComponent;

/** A number with one decimal and its unit from the glossary: "10.2시간" in Korean, "10.2 h" in English. */
function withUnit(x, unitKey) {
  return x === null || x === undefined ? "–" : `${x.toFixed(1)}${LANG === "ko" ? "" : " "}${t(unitKey)}`;
}
function pct(x) { return x === null || x === undefined || Number.isNaN(x) ? "–" : `${(x * 100).toFixed(1)}%`; }
function num(x) { return x === null || x === undefined ? "–" : Number(x).toLocaleString(LANG === "ko" ? "ko-KR" : "en-GB"); }
function locale() { return LANG === "ko" ? "ko-KR" : "en-GB"; }

// -- time in the tenant's zone ----------------------------------------------------------------
function tzParts(ms, tz) {
  const f = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" });
  const p = Object.fromEntries(f.formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { y: +p.year, mo: +p.month, d: +p.day, h: +p.hour, mi: +p.minute, s: +p.second };
}
function tzOffset(ms, tz) {
  const p = tzParts(ms, tz);
  return Date.UTC(p.y, p.mo - 1, p.d, p.h, p.mi, p.s) - Math.floor(ms / 1000) * 1000;
}
/** Epoch ms of local midnight of the calendar day y-mo-d (mo 1-based; day overflow allowed) in tz. */
function midnight(y, mo, d, tz) {
  const guess = Date.UTC(y, mo - 1, d);
  return guess - tzOffset(guess - tzOffset(guess, tz), tz);
}
function dayOf(ms, tz) { const p = tzParts(ms, tz); return { y: p.y, mo: p.mo, d: p.d }; }
function isoDay(ms, tz) { const p = dayOf(ms, tz); return `${p.y}-${String(p.mo).padStart(2, "0")}-${String(p.d).padStart(2, "0")}`; }
function fmt(ms, opts) { return new Intl.DateTimeFormat(locale(), { timeZone: TZ, hourCycle: "h23", ...opts }).format(new Date(ms)); }
function clock(ms) { return fmt(ms, { hour: "2-digit", minute: "2-digit", second: "2-digit" }); }
/** When a figure was computed, in the tenant's zone and naming it: "22:45:10 (Asia/Seoul)". */
function stamp(ms) { return `${clock(ms)} (${TZ || Intl.DateTimeFormat().resolvedOptions().timeZone})`; }
function hm(ms) { return fmt(ms, { hour: "2-digit", minute: "2-digit" }); }
function dateHm(ms) { return fmt(ms, { month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit" }); }
function monthDay(ms) { return fmt(ms, { month: LANG === "ko" ? "numeric" : "short", day: "numeric" }); }
function shortDate(ms) { return fmt(ms, { month: LANG === "ko" ? "numeric" : "short", day: "numeric", weekday: "short" }); }

function tickClock() {
  const c = $("clock");
  if (!c || !ME) return;
  const tz = TZ || Intl.DateTimeFormat().resolvedOptions().timeZone;
  c.textContent = `${new Intl.DateTimeFormat(locale(), { timeZone: tz, month: "numeric", day: "numeric", weekday: "short",
    hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23", ...(LANG === "ko" ? {} : { month: "short" }) }).format(new Date())}`;
  c.title = `${t("clock.tz")}: ${tz}`;
  c.dataset.tz = tz;
}
setInterval(tickClock, 1000);

// -- login -----------------------------------------------------------------------------
function showLogin() {
  if (SOURCE) { SOURCE.close(); SOURCE = null; }
  ME = null;
  $("app").hidden = true; $("logout").hidden = true; $("menu").hidden = true; $("user").textContent = "";
  $("clock").textContent = ""; $("where").textContent = ""; $("status").textContent = "";
  $("login").hidden = false;
  applyTexts();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const r = await fetch("/api/v1/auth/login", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: form.get("username"), password: form.get("password") }) });
  if (!r.ok) { $("login-error").textContent = t("login.failed"); return; }
  $("login-error").textContent = "";
  localStorage.removeItem("sf-lang");  // a new user starts in their own default language
  await start();
});

$("logout").addEventListener("click", async () => {
  await fetch("/api/v1/auth/logout", { method: "POST" });
  showLogin();
});

$("lang").addEventListener("click", async () => {
  LANG = LANG === "ko" ? "en" : "ko";
  localStorage.setItem("sf-lang", LANG);
  applyTexts();
  if (ME) api("/api/v1/me", { method: "PATCH", body: JSON.stringify({ language: LANG }) }).catch(() => {});
  buildNav();
  render();
  if (VIEW && VIEW.rerender) VIEW.rerender();
  if (RULES && RULES.open) renderRulesList();  // the form's labels follow through data-i18n; its input stays
  tickClock();
});

$("menu").addEventListener("click", () => {
  const open = !$("lines").classList.contains("open");
  $("lines").classList.toggle("open", open);
  $("menu").setAttribute("aria-expanded", String(open));
});

// -- shell: plant names, navigation, router ---------------------------------------------------
/** A plant-model name in the page's language: the English name (name_en) when there is one. */
function nm(x, fallback) { return (x && ((LANG === "en" && x.name_en) || x.name)) || fallback; }
function isCentre() { return !!ME && (ME.role === "centre_admin" || ME.role === "centre_engineer"); }
function findLine(tenant, site, line) {
  const tn = TENANTS.find((x) => x.tenant === tenant);
  const s = tn && tn.sites.find((x) => x.site === site);
  const l = s && s.lines.find((x) => x.line === line);
  return l ? { tn, s, l } : null;
}
function machineName(tenant, site, line, machine) {
  const f = findLine(tenant, site, line);
  const m = f && f.l.machines.find((x) => x.machine === machine);
  return nm(m, machine);
}
function lineTitle(tenant, site, line) {
  const f = findLine(tenant, site, line);
  return f ? `${nm(f.tn, tenant)} · ${nm(f.s, site)} · ${nm(f.l, line)}` : `${tenant} · ${site} · ${line}`;
}

function buildNav() {
  const nav = $("lines");
  if (!ME) return;
  nav.replaceChildren();
  if (isCentre()) nav.append(el("a", { href: "#/centre", "data-i18n": "centre" }, t("centre")));
  for (const tn of TENANTS) {
    if (isCentre() || TENANTS.length > 1) nav.append(el("div", { class: "group" }, nm(tn, tn.tenant)));
    for (const s of tn.sites) for (const l of s.lines) {
      const base = `${tn.tenant}/${s.site}/${l.line}`;
      nav.append(el("a", { href: `#/line/${base}`, "data-line": l.line }, nm(l, l.line)));
      nav.append(el("a", { href: `#/reports/${base}`, "data-reports": l.line, class: "small" },
        `${nm(l, l.line)} · ${t("nav.reports")}`));
    }
  }
  markNav();
}
function markNav() {
  for (const a of $("lines").querySelectorAll("a")) {
    if (a.getAttribute("href") === location.hash) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
}

async function start() {
  // the shell's three answers at once (they were asked one after another; bench/page.py); the tenants
  // are asked with a plain fetch, so a logged-out visitor sees the login form once
  const glossary = loadGlossary();
  const tenants = fetch("/api/v1/tenants", { credentials: "same-origin" }).then((r) => (r.ok ? r.json() : null))
    .catch(() => null);
  try { ME = await api("/api/v1/me"); } catch { return; }
  LANG = localStorage.getItem("sf-lang") || ME.language || "ko";
  await glossary;
  $("login").hidden = true; $("app").hidden = false; $("logout").hidden = false; $("menu").hidden = false;
  $("user").textContent = ME.username;
  applyTexts();
  TENANTS = (await tenants) || await api("/api/v1/tenants");
  TZ = TENANTS[0] && TENANTS[0].timezone;
  buildNav();
  tickClock();
  if (!location.hash || location.hash === "#") {
    const first = TENANTS.flatMap((tn) => tn.sites.flatMap((s) => s.lines.map((l) => `#/line/${tn.tenant}/${s.site}/${l.line}`)));
    location.hash = isCentre() ? "#/centre" : (first[0] || "#/centre");
  } else {
    route();
  }
}

window.addEventListener("hashchange", route);
window.addEventListener("resize", () => {
  for (const c of CHARTS) { const w = c.root.parentElement && c.root.parentElement.clientWidth; if (w) c.setSize({ width: w, height: c.height }); }
});

let ROUTE_GEN = 0;  // bumped on every page change: answers that arrive for a page already left are dropped

function leave() {
  ROUTE_GEN += 1;
  if (SOURCE) { SOURCE.close(); SOURCE = null; }
  if (TICK) { clearInterval(TICK); TICK = null; }
  while (CHARTS.length) CHARTS.pop().destroy();
  LAST = null; VIEW = null; RULES = null;
}

function route() {
  if (!ME) return;
  leave();
  $("lines").classList.remove("open");
  $("menu").setAttribute("aria-expanded", "false");
  markNav();
  const parts = location.hash.replace(/^#\//, "").split("/").map(decodeURIComponent);
  const tn = TENANTS.find((x) => x.tenant === parts[1]);
  if (tn) TZ = tn.timezone;
  else if (parts[0] === "centre") TZ = centreZone();
  if (parts[0] === "line" && parts.length === 4) openLine(parts[1], parts[2], parts[3]);
  else if (parts[0] === "machine" && parts.length === 5) openMachine(parts[1], parts[2], parts[3], parts[4]);
  else if (parts[0] === "reports" && parts.length === 4) openReports(parts[1], parts[2], parts[3]);
  else if (parts[0] === "centre") openCentreRoute(parts);
  else notFound();
  tickClock();
}

/** The centre's pages of no one SME: the zone its SMEs share, else UTC (times are shown with their zone named). */
function centreZone() {
  const zones = [...new Set(TENANTS.map((x) => x.timezone).filter(Boolean))];
  return zones.length === 1 ? zones[0] : "UTC";
}

/** #/centre and #/centre/{tenant}: centre.js's workspace (the built-in overview it replaced is gone: a centre.js
 *  that did not load says so rather than showing the old raw-key table). */
function openCentreRoute(parts) {
  const go = () => {
    if (window.sfCentre && typeof window.sfCentre.render === "function") {
      $("where").textContent = t("centre"); $("status").textContent = "";
      window.sfCentre.render($("view"), { parts, tenant: parts[1] || null, hash: location.hash },
        { api, t, tf, el, me: ME, tenants: TENANTS, lang: () => LANG, tz: () => TZ, duration, pct, setWhere: (x) => { $("where").textContent = x; } });
    } else {
      $("where").textContent = t("centre"); $("status").textContent = "";
      $("view").replaceChildren(el("p", { class: "error", "data-testid": "centre-missing" }, t("load_failed")));
    }
  };
  if (window.sfCentre || document.readyState === "complete") go();
  else window.addEventListener("load", go, { once: true });
}

function notFound() {
  $("view").replaceChildren(el("p", { class: "error", "data-testid": "not-found", "data-i18n": "not_found" }, t("not_found")));
  $("where").textContent = "";
}

// -- the range picker: every panel below it follows; kept across pages ---------------------------
const RANGE_KEYS = ["shift", "today", "yesterday", "7d", "30d", "custom"];
let RANGE = JSON.parse(sessionStorage.getItem("sf-range") || "null") || { key: "today" };
let SHIFT = null;  // the line's shift {start_ms, end_ms, running} from its snapshot, for "this shift"

/** [start, end) in epoch ms for the chosen range, in the tenant's time zone. */
function rangeMs(now = Date.now()) {
  const tz = TZ || "UTC";
  const d = dayOf(now, tz);
  const day0 = midnight(d.y, d.mo, d.d, tz);
  switch (RANGE.key) {
    case "shift": return SHIFT ? [SHIFT.start_ms, Math.min(SHIFT.end_ms, now)] : [day0, now];
    case "yesterday": return [midnight(d.y, d.mo, d.d - 1, tz), day0];
    case "7d": return [midnight(d.y, d.mo, d.d - 6, tz), now];
    case "30d": return [midnight(d.y, d.mo, d.d - 29, tz), now];
    case "custom": {
      const [fy, fm, fd] = (RANGE.from || isoDay(now, tz)).split("-").map(Number);
      const [ty, tm, td] = (RANGE.to || isoDay(now, tz)).split("-").map(Number);
      return [midnight(fy, fm, fd, tz), Math.min(midnight(ty, tm, td + 1, tz), now)];
    }
    default: return [day0, now];
  }
}
function rangeQuery() {
  const [a, b] = rangeMs();
  return `start=${enc(new Date(a).toISOString())}&end=${enc(new Date(Math.max(b, a + 1000)).toISOString())}`;
}
function rangeText() {
  const [a, b] = rangeMs();
  const sameDay = isoDay(a, TZ) === isoDay(Math.max(a, b - 1), TZ);
  return sameDay ? `${shortDate(a)} ${hm(a)}–${hm(b)}` : `${shortDate(a)} ${hm(a)} – ${shortDate(b)} ${hm(b)}`;
}

function rangePicker(onChange) {
  const box = el("div", { class: "range", role: "group", "aria-label": t("range.label"), "data-testid": "range" });
  const text = el("span", { class: "range-text", "data-testid": "range-text" });
  const from = el("input", { type: "date", "aria-label": t("range.from"), "data-testid": "range-from" });
  const to = el("input", { type: "date", "aria-label": t("range.to"), "data-testid": "range-to" });
  const err = el("span", { class: "error small", role: "alert" });
  const apply = el("button", { type: "button", class: "btn", "data-i18n": "range.apply", "data-testid": "range-apply" }, t("range.apply"));
  const custom = el("span", { class: "custom" }, from, "–", to, apply, err);
  const buttons = RANGE_KEYS.map((k) => {
    const b = el("button", { type: "button", class: "btn", "data-range": k, "data-i18n": `range.${k}` }, t(`range.${k}`));
    b.addEventListener("click", () => {
      if (k === "custom") { RANGE = { ...RANGE, key: "custom" }; sync(); from.focus(); return; }
      RANGE = { key: k }; save(); sync(); onChange();
    });
    return b;
  });
  apply.addEventListener("click", () => {
    err.textContent = "";
    if (!from.value || !to.value || from.value > to.value) { err.textContent = t("range.bad"); return; }
    if ((Date.parse(to.value) - Date.parse(from.value)) / 86_400_000 > 399) { err.textContent = t("range.too_long"); return; }
    RANGE = { key: "custom", from: from.value, to: to.value }; save(); sync(); onChange();
  });
  function save() { sessionStorage.setItem("sf-range", JSON.stringify(RANGE)); }
  function sync() {
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.range === RANGE.key));
    custom.hidden = RANGE.key !== "custom";
    const today = isoDay(Date.now(), TZ || "UTC");
    from.max = to.max = today;
    from.value = RANGE.from || today; to.value = RANGE.to || today;
    text.textContent = rangeText();
  }
  box.append(...buttons, custom, text);
  box.sync = sync;
  sync();
  return box;
}

// -- charts --------------------------------------------------------------------------------------
function stateName(code) { return code === null || code === undefined ? t("state.none") : (TEXTS.en[`state.${code}`] ? t(`state.${code}`) : String(code)); }
function stateClass(code) { return code === null || code === undefined ? "none" : String(code); }

/** A state timeline (Gantt) as coloured spans; the legend under it gives every state's time in words. */
function gantt(segments, start, end) {
  const span = Math.max(1, end - start);
  const bar = el("div", { class: "gantt", role: "img", "data-testid": "gantt" });
  const totals = new Map();
  for (const s of segments) {
    const w = (100 * (s.end_ms - s.start_ms)) / span;
    const label = `${stateName(s.state)} ${dateHm(s.start_ms)}–${hm(s.end_ms)} (${duration(s.end_ms - s.start_ms)})`;
    bar.append(el("span", { class: `sw-${stateClass(s.state)}`, style: `width:${w}%`, title: label, "data-state": stateClass(s.state) }));
    totals.set(stateClass(s.state), (totals.get(stateClass(s.state)) || 0) + (s.end_ms - s.start_ms));
  }
  bar.setAttribute("aria-label", [...totals].map(([k, ms]) => `${stateName(k === "none" ? null : Number(k))} ${duration(ms)}`).join(", "));
  const ticks = el("div", { class: "axis" });
  const multiDay = end - start > 36 * 3_600_000;
  for (let i = 0; i <= 4; i++) {
    const at = start + (span * i) / 4;
    ticks.append(el("span", {}, multiDay ? monthDay(at) : hm(at)));
  }
  const legend = el("div", { class: "legend", "data-testid": "gantt-legend" });
  for (const [k, ms] of [...totals].sort((a, b) => b[1] - a[1])) {
    legend.append(el("span", {}, el("span", { class: `sw sw-${k}` }), `${stateName(k === "none" ? null : Number(k))} ${duration(ms)}`));
  }
  return el("div", {}, bar, ticks, legend);
}

/** Horizontal bars with their values written out (no hover needed). */
function hbars(rows) {
  const max = Math.max(1e-9, ...rows.map((r) => r.value));
  return el("div", { class: "hbars" }, ...rows.map((r) => el("div", { class: "hbar", "data-key": r.key ?? "" },
    el("span", {}, r.label),
    el("span", { class: "track" }, el("span", { class: `fill ${r.cls || ""}`, style: `width:${(100 * r.value) / max}%;display:block` })),
    el("span", { class: "val" }, r.text))));
}

/** The stop reasons as bars; time without data is no reason for a stop and stands apart, under them
 *  (kpi.pareto and time_elements' no_data_h: the report's one definition). */
function paretoPanel(rows, time) {
  const panel = el("section", { class: "panel", "data-testid": "pareto" }, el("h3", {}, t("report.pareto")));
  const noData = time && time.no_data_h > 0
    ? el("p", { class: "muted small", "data-testid": "pareto-no-data" },
      `${capital(t("report.no_data"))} ${duration(time.no_data_h * 3_600_000)} (${t("report.no_data_apart")})`) : "";
  if (!rows || !rows.length) { panel.append(el("p", { class: "muted" }, t("pareto.none")), noData); return panel; }
  panel.append(hbars(rows.map((r) => ({
    key: r.code ?? "none", label: stateName(r.code), value: r.hours, cls: `sw-${r.code}`,
    text: `${duration(r.hours * 3_600_000)} · ${(r.share * 100).toFixed(0)}% (${t("report.cumulative")} ${(r.cumulative_share * 100).toFixed(0)}%)`,
  }))), noData);
  return panel;
}

/** Good and scrap parts per hour or day as stacked bars with a y-axis and the numbers on the bars. */
function countsChart(series, everyMs) {
  const W = 400, H = 190, L = 40, B = 22, T = 14;  // about the panel's width on a phone and a desktop: text stays ~11 px
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
  const max = Math.max(1, ...series.map((p) => p.good + p.scrap));
  const n = Math.max(1, series.length);
  const bw = (W - L - 4) / n;
  for (let i = 0; i <= 4; i++) {
    const y = T + ((H - B - T) * i) / 4;
    s.append(svg("line", { x1: L, x2: W, y1: y, y2: y, class: "grid-line" }));
    s.append(svg("text", { x: L - 4, y: y + 4, "text-anchor": "end" }, Math.round(max * (1 - i / 4)).toLocaleString()));
  }
  series.forEach((p, i) => {
    const x = L + 2 + i * bw;
    const hg = ((H - B - T) * p.good) / max, hs = ((H - B - T) * p.scrap) / max;
    s.append(svg("rect", { x, y: H - B - hg, width: Math.max(1, bw - 2), height: hg, class: "good" }));
    s.append(svg("rect", { x, y: H - B - hg - hs, width: Math.max(1, bw - 2), height: hs, class: "scrap" }));
    if (n <= 31 && bw > 16) s.append(svg("text", { x: x + bw / 2 - 1, y: H - B - hg - hs - 2, "text-anchor": "middle" }, p.good + p.scrap));
    const every = Math.ceil(n / 6);
    if (i % every === 0) s.append(svg("text", { x: x + bw / 2, y: H - 6, "text-anchor": "middle" }, everyMs >= 86_400_000 ? monthDay(p.ts) : hm(p.ts)));
  });
  s.setAttribute("aria-label", series.map((p) => `${everyMs >= 86_400_000 ? shortDate(p.ts) : hm(p.ts)} ${p.good}/${p.scrap}`).join(", "));
  return s;
}

/** Material input seconds per part for each bucket, as bars with a y-axis in seconds and each value written. */
function inputChart(series, everyMs) {
  const pts = series.map((p) => ({ ts: p.ts, v: p.good + p.scrap ? p.input_s / (p.good + p.scrap) : null }));
  const W = 400, H = 170, L = 40, B = 22, T = 14;
  const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
  const max = Math.max(0.1, ...pts.map((p) => p.v || 0));
  const n = Math.max(1, pts.length), bw = (W - L - 4) / n;
  for (let i = 0; i <= 4; i++) {
    const y = T + ((H - B - T) * i) / 4;
    s.append(svg("line", { x1: L, x2: W, y1: y, y2: y, class: "grid-line" }));
    s.append(svg("text", { x: L - 4, y: y + 4, "text-anchor": "end" }, `${(max * (1 - i / 4)).toFixed(1)}${t("dur.s")}`));
  }
  pts.forEach((p, i) => {
    const x = L + 2 + i * bw, h = ((H - B - T) * (p.v || 0)) / max;
    s.append(svg("rect", { x, y: H - B - h, width: Math.max(1, bw - 2), height: h, class: "input" }));
    if (p.v !== null && n <= 31 && bw > 18) s.append(svg("text", { x: x + bw / 2 - 1, y: H - B - h - 2, "text-anchor": "middle" }, p.v.toFixed(1)));
    if (i % Math.ceil(n / 6) === 0) s.append(svg("text", { x: x + bw / 2, y: H - 6, "text-anchor": "middle" }, everyMs >= 86_400_000 ? monthDay(p.ts) : hm(p.ts)));
  });
  return s;
}

/** A tag's trend: uPlot with a time axis in the tenant's zone and the unit on the y-axis; min–max as a band. */
function trendChart(box, tag, points) {
  if (!points.length) { box.append(el("p", { class: "muted" }, t("trend.none"))); return; }
  if (!window.uPlot) { box.append(el("p", { class: "muted" }, `${points.length}`)); return; }
  const xs = points.map((p) => p.ts / 1000);
  const data = [xs, points.map((p) => p.mean), points.map((p) => p.min), points.map((p) => p.max)];
  const width = Math.max(260, box.clientWidth || 600);
  const spanMs = points[points.length - 1].ts - points[0].ts;
  const multiDay = spanMs > 36 * 3_600_000;
  // minutes of data only (a demo just started): ticks a minute apart or less need their seconds to differ
  const tick = (ms) => (multiDay ? monthDay(ms) : spanMs < 15 * 60_000 ? clock(ms) : hm(ms));
  const tzDate = (ts) => uPlot.tzDate(new Date(ts * 1000), TZ || "UTC");
  const unit = TAG_UNITS[tag] ? ` ${TAG_UNITS[tag]}` : "";
  const opts = {
    width, height: 220, tzDate,
    series: [{}, { label: t("trend.mean"), stroke: "#1d4ed8", width: 2 },
      { label: t("trend.min"), stroke: "#93c5fd", width: 1 }, { label: t("trend.max"), stroke: "#93c5fd", width: 1 }],
    bands: [{ series: [3, 2], fill: "rgba(29,78,216,.12)" }],
    axes: [{ stroke: "#4b5563", grid: { stroke: "#e5e7eb" },
      values: (u, splits) => splits.map((v) => tick(v * 1000)), space: 70 },
      // every tick says its unit ("800 kN"): a phone shows the chart without room for the axis title's context
      { stroke: "#4b5563", grid: { stroke: "#e5e7eb" }, label: tagLabel(tag), size: 78,
        values: (u, splits) => splits.map((v) => `${Number(v).toLocaleString(locale(), { maximumFractionDigits: 1 })}${unit}`) }],
    legend: { show: true, live: false },
    cursor: { drag: { x: false, y: false } },
  };
  const last = points[points.length - 1];
  box.append(el("div", { class: "small muted", "data-testid": "trend-last" },
    `${dateHm(last.ts)} ${t("trend.mean")} ${Number(last.mean).toFixed(1)}${TAG_UNITS[tag] ? " " + TAG_UNITS[tag] : ""}`));
  CHARTS.push(new uPlot(opts, data, box));
}

function kpiBox(labelKey, value, main = false, testid = "") {
  return el("div", { class: `kpi${main ? " main" : ""}`, ...(testid ? { "data-testid": testid } : {}) },
    // a main figure of over six characters ("2985.2%" of a wrong ideal cycle) would break before its "%"
    el("div", { class: "k" }, t(labelKey)), el("div", { class: main && String(value).length > 6 ? "v long" : "v" }, value));
}
/** Over 100%: the ideal cycle time is off (or the counts are): the real figure, marked, never capped. */
function perfOver(v) { return v !== null && v !== undefined && v > 1; }
function perfPct(v) { return perfOver(v) ? `${pct(v)} ⚠` : pct(v); }
/** The live estimate withholds performance (and OEE) until ten ideal cycles of running (analytics/live.py):
 *  a shift's first part would read 137%. Says when it comes, so a "–" is not taken for a fault. */
function perfAfter(k, testid) {
  const s = k && k.performance_after_s;
  return s ? [el("div", { class: "muted small", "data-testid": testid }, tf("perf.after", { n: Math.ceil(s / 60) }))] : [];
}
/** A live block's OEE line, "설비종합효율 (OEE) 71.3%", with the over-100% mark and its reason as a tooltip. */
function liveOee(label, k) {
  const over = perfOver(k && k.performance);
  return el("div", { class: "oee", ...(over ? { title: t("report.perf_over_100") } : {}) },
    `${label} ${pct(k && k.oee)}${over ? " ⚠" : ""}`);
}
/** 시간가동률 · 성능가동률 · 양품률 · 공정불량률: the report's own words (report.* from analytics/labels.py). */
function kpiGrid(k, prefix) {
  const grid = kpiCards(k, prefix);
  const after = perfAfter(k, `${prefix}-perf-after`);
  if (!perfOver(k.performance)) return after.length ? el("div", {}, grid, ...after) : grid;
  return el("div", {}, grid, el("p", { class: "warn-note", role: "note", "data-testid": `${prefix}-perf-warning` },
    `⚠ ${t("report.perf_over_100")}`));
}
function kpiCards(k, prefix) {
  const scrap = k.scrap_rate ?? (k.quality === null || k.quality === undefined ? null : 1 - k.quality);
  return el("div", { class: "kpis" },
    kpiBox("report.oee", pct(k.oee), true, `${prefix}-oee`),
    kpiBox("report.availability", pct(k.availability), false, `${prefix}-availability`),
    kpiBox("report.performance", perfPct(k.performance), false, `${prefix}-performance`),
    kpiBox("report.quality", pct(k.quality), false, `${prefix}-quality`),
    kpiBox("report.scrap_rate", pct(scrap), false, `${prefix}-scrap`),
    kpiBox("report.coverage", pct(k.coverage), false, `${prefix}-coverage`),
    // from the rollups only (the machine page and the range panels): the programme's headline KPIs
    k.output_per_hour === undefined ? "" : kpiBox("report.output_per_hour", k.output_per_hour === null ? "–" : `${k.output_per_hour.toFixed(1)}`, false, `${prefix}-oph`),
    k.material_input_s === undefined ? "" : kpiBox("report.material_input_s", k.material_input_s === null ? "–" : `${k.material_input_s.toFixed(2)} ${t("dur.s")}`, false, `${prefix}-mi`));
}

// -- line overview -------------------------------------------------------------------------------
function linePath(tenant, site, line) { return `/api/v1/lines/${enc(tenant)}/${enc(site)}/${enc(line)}`; }

/** Subscribe to the line's snapshots: a plain GET first (an unknown or foreign line is a 404 the page shows). */
function followLine(tenant, site, line, onSnap) {
  const path = linePath(tenant, site, line);
  const gen = ROUTE_GEN;
  return api(`${path}/dashboard`).then((snap) => {
    if (gen !== ROUTE_GEN) return;  // the user moved on: no stream for a page that is gone
    onSnap(snap);
    SOURCE = new EventSource(`${path}/events`);
    SOURCE.addEventListener("snapshot", (ev) => {
      if (gen !== ROUTE_GEN) return;
      const s = JSON.parse(ev.data);
      onSnap(s);
      // source time of the newest sample → on screen, for the browser test's record (same clock here)
      const newest = Math.max(...s.machines.map((m) => m.last_seen_ms || 0));
      if (newest) (window.sfLatencies = window.sfLatencies || []).push(Date.now() - newest);
    });
    SOURCE.addEventListener("logout", () => showLogin());
    SOURCE.onerror = () => { $("status").textContent = t("disconnected"); };
  });
}

function openLine(tenant, site, line) {
  // the live part is redrawn on every snapshot; the rules panel beside it is not, so a form keeps its input
  RULES = { tenant, site, line, open: false, rules: [], choices: null, editing: null };
  const toggle = el("button", { type: "button", class: "btn", "data-testid": "rules-toggle", "data-i18n": "rules.title" },
    t("rules.title"));
  toggle.setAttribute("aria-expanded", "false");
  toggle.addEventListener("click", () => toggleRules(toggle));
  const f = findLine(tenant, site, line);
  const title = el("h2", { class: "page-title" }, f ? nm(f.l, line) : line);
  const reports = el("a", { class: "btn", href: `#/reports/${tenant}/${site}/${line}`, "data-i18n": "nav.reports" }, t("nav.reports"));
  const rangeBox = el("section", { id: "range-panels", "data-testid": "range-panels" });
  const picker = rangePicker(() => loadLineRange(tenant, site, line, rangeBox));
  $("view").replaceChildren(
    el("div", { class: "toolbar" }, title, el("span", { class: "spacer" }), reports, toggle),
    el("div", { id: "live" }, el("p", { class: "muted" }, t("loading"))),
    el("section", { id: "rules", class: "panel rules", "data-testid": "rules", hidden: true }),
    el("h3", { class: "section-title" }, t("range_kpis")), picker, rangeBox);
  let first = true;
  VIEW = { kind: "line", rerender: () => {
    title.textContent = f ? nm(f.l, line) : line;
    picker.sync(); if (rangeBox.data) renderLineRange(rangeBox, rangeBox.data);
  } };
  followLine(tenant, site, line, (snap) => {
    LAST = { kind: "line", snap };
    SHIFT = snap.shift;
    render();
    if (first) { first = false; picker.sync(); loadLineRange(tenant, site, line, rangeBox); }
  }).catch((err) => { if (err.status === 404 || err.status === 403) notFound(); });
}

async function loadLineRange(tenant, site, line, box) {
  box.replaceChildren(el("p", { class: "muted" }, t("loading")));
  const gen = ROUTE_GEN;
  try {
    const data = await api(`/api/v1/history/${enc(tenant)}/${enc(site)}/${enc(line)}?${rangeQuery()}`);
    if (gen !== ROUTE_GEN) return;
    box.data = data;
    renderLineRange(box, data);
  } catch (err) {
    if (err.message !== "401") box.replaceChildren(el("p", { class: "error" }, `${t("load_failed")}: ${err.message}`));
  }
}

function renderLineRange(box, data) {
  const counts = el("section", { class: "panel", "data-testid": "range-counts" },
    el("h3", {}, `${t("counts")} (${t(data.counts.every_ms >= 86_400_000 ? "counts.per_day" : "counts.per_hour")})`),
    el("div", { class: "num" }, `${t("counts.good")} ${num(data.counts.good)}${t("pcs")} · ${t("counts.scrap")} ${num(data.counts.scrap)}${t("pcs")}`),
    countsChart(data.counts.series, data.counts.every_ms));
  // on a phone (≤ 480 px) each machine is a card and each cell says what it is (data-label, style.css): no inner scroll
  const heads = ["report.machines", "report.oee", "report.availability", "report.performance", "report.quality", "counts.good"];
  const td = (i, attrs, ...c) => el("td", { ...attrs, "data-label": t(heads[i]) }, ...c);
  const machines = el("div", { class: "table-wrap" }, el("table", { class: "data cards", "data-testid": "machine-table" },
    el("tr", {}, ...heads.map((k, i) => el("th", i ? { class: "n" } : {}, t(k)))),
    ...data.machines.map((m) => el("tr", { "data-machine": m.machine },
      td(0, { class: "name" }, el("a", { href: `#/machine/${data.tenant}/${data.site}/${data.line}/${m.machine}` },
        machineName(data.tenant, data.site, data.line, m.machine))),
      td(1, { class: "n" }, pct(m.kpis.oee)), td(2, { class: "n" }, pct(m.kpis.availability)),
      td(3, { class: "n" }, perfPct(m.kpis.performance)), td(4, { class: "n" }, pct(m.kpis.quality)),
      td(5, { class: "n" }, num(m.good))))));
  box.replaceChildren(el("div", { class: "grid" },
    el("section", { class: "panel", "data-testid": "range-kpis" }, el("h3", {}, `${t("report.oee")} · ${rangeText()}`),
      kpiGrid(data.kpis, "range")),
    counts, paretoPanel(data.pareto, data.time),
    el("section", { class: "panel", "data-testid": "range-input" },
      el("h3", {}, `${t("report.material_input_s")} (${t(data.counts.every_ms >= 86_400_000 ? "counts.per_day" : "counts.per_hour")})`),
      inputChart(data.counts.series, data.counts.every_ms))),
    el("section", { class: "panel", style: "margin-top:1rem", "data-testid": "range-machines" }, el("h3", {}, t("report.machine_table")), machines));
}

function render() {
  if (!LAST) return;
  if (LAST.kind === "line") renderLine(LAST.snap);
}

function shiftLine(sh) {
  if (!sh) return t("no_shift");
  const when = `${shortDate(sh.start_ms)} ${hm(sh.start_ms)}–${hm(sh.end_ms)}`;
  if (sh.running) return `${t("shift.running")}: ${sh.name} (${when})`;
  const next = sh.next ? ` · ${t("shift.next")}: ${sh.next.name} ${shortDate(sh.next.start_ms)} ${hm(sh.next.start_ms)}` : "";
  return `${t("shift.ended")}: ${sh.name} (${when})${next}`;
}

function renderLine(snap) {
  TZ = snap.timezone;
  $("where").textContent = lineTitle(snap.tenant, snap.site, snap.line);
  $("status").textContent = `${t("live")} · ${t("updated")} ${stamp(snap.generated_ms)}`;
  const openAlarms = {};
  for (const a of snap.alarms) if (a.status === "active") (openAlarms[a.machine] ??= []).push(a);
  const tiles = el("section", { class: "tiles" });
  for (const m of snap.machines) {
    const state = m.state === null ? "none" : String(m.state);
    const since = m.state_since_ms;
    const tile = el("a", { class: `tile state-${state}${m.stale ? " stale" : ""}`, "data-machine": m.machine, "data-state": state,
      href: `#/machine/${snap.tenant}/${snap.site}/${snap.line}/${m.machine}` });
    const share = m.target_today ? Math.min(1, m.count_today / m.target_today) : 0;
    tile.append(
      el("h2", {}, nm(m, m.machine)),
      el("div", { class: "state", "data-testid": "state" }, t(`state.${state}`)),
      el("div", { class: "since", "data-since": since ?? "", "data-lower": m.state_since_is_lower_bound ? "1" : "" },
        since ? sinceText(since, m.state_since_is_lower_bound) : ""),
      el("div", { class: "count", "data-testid": "count" },
        `${t("count_today")} ${num(m.count_today)} / ${t("target_so_far")} ${num(m.target_today)}`),
      el("div", { class: "bar", "aria-hidden": "true" }, el("span", { style: `width:${share * 100}%` })),
      liveOee(t("report.oee"), m.oee), ...perfAfter(m.oee, "perf-after"),
      ...activeAlarmLines(openAlarms[m.machine] || []),
    );
    if (m.counter_corrections_today) tile.append(el("div", { class: "muted small" }, `${t("counter_fixed")}: ${m.counter_corrections_today}`));
    if (m.stale) tile.append(el("div", { class: "muted small" }, t("stale")));
    tiles.append(tile);
  }
  const o = snap.oee || {};
  const kpi = el("section", { class: "panel", "data-testid": "shift-kpis" },
    el("h3", {}, t("shift_oee")),
    el("p", { class: "small", "data-testid": "shift" }, shiftLine(snap.shift)),
    kpiGrid(o, "line"),
    el("p", { class: "muted small" }, t("oee.note")));
  const ach = snap.target_today ? snap.count_today / snap.target_today : null;
  const output = el("section", { class: "panel", "data-testid": "output-today" },
    el("h3", {}, t("output_today")),
    el("div", { class: "big num", "data-testid": "line-count" }, `${num(snap.count_today)} / ${num(snap.target_today)}`),
    el("div", { class: "bar", "aria-hidden": "true" }, el("span", { style: `width:${Math.min(1, ach || 0) * 100}%` })),
    el("p", {}, `${t("achievement")} ${pct(ach)}`),
    el("p", { class: "muted small" }, `${t("target_so_far")}: ${t("target_so_far.note")}`));
  const alarms = el("section", { class: "panel alarms", "data-testid": "alarms" }, el("h3", {}, t("alarms")));
  if (!snap.alarms.length) alarms.append(el("p", { class: "muted" }, t("no_alarms")));
  for (const a of snap.alarms) {
    const row = el("div", { class: `alarm ${a.status}`, "data-alarm": a.id },
      el("b", {}, machineName(snap.tenant, snap.site, snap.line, a.machine)), ` ${alarmText(a)} · ${dateHm(a.raised_ms)} · ${t(a.status)}`);
    if (a.status === "active" && (ME.permissions || []).includes("alarms:ack")) {
      const b = el("button", { type: "button", class: "btn" }, t("ack"));
      b.addEventListener("click", () => api(`/api/v1/alarms/${enc(snap.tenant)}/${a.id}/ack`, { method: "POST" })
        .then(() => api(`${linePath(snap.tenant, snap.site, snap.line)}/dashboard`))
        .then((s) => { LAST = { kind: "line", snap: s }; render(); }).catch(() => {}));
      row.append(b);
    }
    alarms.append(row);
  }
  // a snapshot redraws the tiles: keep the keyboard focus on the same tile or button across it
  const focused = document.activeElement && $("live") && $("live").contains(document.activeElement) ? focusKey(document.activeElement) : null;
  $("live").replaceChildren(tiles, el("div", { class: "grid" }, kpi, output, alarms));
  if (focused) { const again = $("live").querySelector(focused); if (again) again.focus({ preventScroll: true }); }
  if (RULES && RULES.open) showOpenAlarmCounts(snap.alarms);
  startSinceTicker();
}

/** A selector that finds the same control in the next redraw of the live part. */
function focusKey(node) {
  const tile = node.closest(".tile[data-machine]");
  if (tile) return `.tile[data-machine="${CSS.escape(tile.dataset.machine)}"]`;
  const alarm = node.closest("[data-alarm]");
  if (alarm) return `[data-alarm="${CSS.escape(alarm.dataset.alarm)}"] button`;
  return null;
}

/** The rule and the value that crossed it: "프레스 압력 830 kN 초과 · 측정값 912.4". */
/** A machine's active alarms as tile lines: every one up to two, then "and N more", so a second alarm
 *  (a press over its force while it is also down) is never hidden behind the first. */
function activeAlarmLines(active) {
  const shown = active.slice(0, 2).map((a) =>
    el("div", { class: "alarm-now", "data-testid": "tile-alarm" }, `${t("alarm.now")}: ${alarmText(a)}`));
  if (active.length > 2) shown.push(el("div", { class: "alarm-now", "data-testid": "tile-alarm-more" },
    tf("alarm.more", { n: active.length - 2 })));
  return shown;
}

function alarmText(a) {
  if (a.value === null || a.value === undefined) return a.rule;
  return `${a.rule} · ${t("alarm.value")} ${alarmValue(a)}`;
}
/** The value that raised the alarm: a state by its name (a time-in-state rule), a number with its unit. */
function alarmValue(a) {
  if (a.value === null || a.value === undefined) return "–";
  if (a.kind === "state_duration") return stateName(a.value);
  return `${Number(a.value).toLocaleString(locale(), { maximumFractionDigits: 2 })}${TAG_UNITS[a.tag] ? " " + TAG_UNITS[a.tag] : ""}`;
}

function startSinceTicker() {
  if (TICK) clearInterval(TICK);
  TICK = setInterval(() => {
    for (const d of document.querySelectorAll(".since[data-since]")) {
      if (d.dataset.since) d.textContent = sinceText(Number(d.dataset.since), d.dataset.lower === "1");
    }
  }, 1000);
}

function sinceText(since, lower) {
  return `${t("in_state")} ${lower ? "≥ " : ""}${duration(Date.now() - since)}`;
}

// -- machine page --------------------------------------------------------------------------------
function openMachine(tenant, site, line, machine) {
  const f = findLine(tenant, site, line);
  const name = machineName(tenant, site, line, machine);
  $("where").textContent = `${lineTitle(tenant, site, line)} · ${name}`;
  const live = el("div", { class: "panel", "data-testid": "machine-live" }, el("p", { class: "muted" }, t("loading")));
  const body = el("div", { id: "machine-body", "data-testid": "machine-body" });
  const picker = rangePicker(() => loadMachine(tenant, site, line, machine, body));
  $("view").replaceChildren(
    el("div", { class: "toolbar" },
      el("div", {}, el("div", { class: "crumbs" }, el("a", { href: `#/line/${tenant}/${site}/${line}` }, f ? nm(f.l, line) : line)),
        el("h2", { class: "page-title", "data-testid": "machine-title" }, name)),  // set again on a language switch
      el("span", { class: "spacer" }),
      el("a", { class: "btn", href: `#/reports/${tenant}/${site}/${line}`, "data-i18n": "nav.reports" }, t("nav.reports"))),
    live, el("div", { style: "margin-top:1rem" }, picker), body);
  let first = true, lastSnap = null;
  const drawLive = () => {
    if (!lastSnap) return;
    const m = lastSnap.machines.find((x) => x.machine === machine);
    if (!m) { live.replaceChildren(el("p", { class: "muted" }, t("state.none"))); return; }
    const state = m.state === null ? "none" : String(m.state);
    live.className = `panel tile state-${state}`;
    live.dataset.state = state;
    const active = lastSnap.alarms.filter((a) => a.machine === machine && a.status === "active");
    live.replaceChildren(
      el("div", { class: "state", "data-testid": "state" }, t(`state.${state}`)),
      el("div", { class: "since", "data-since": m.state_since_ms ?? "", "data-lower": m.state_since_is_lower_bound ? "1" : "" },
        m.state_since_ms ? sinceText(m.state_since_ms, m.state_since_is_lower_bound) : ""),
      el("div", { class: "count", "data-testid": "count" }, `${t("count_today")} ${num(m.count_today)} / ${t("target_so_far")} ${num(m.target_today)}`),
      liveOee(`${t("shift_oee")}:`, m.oee), ...perfAfter(m.oee, "perf-after"),
      ...activeAlarmLines(active));
    startSinceTicker();
  };
  VIEW = { kind: "machine", rerender: () => {
    const again = machineName(tenant, site, line, machine);
    $("where").textContent = `${lineTitle(tenant, site, line)} · ${again}`;
    const title = document.querySelector("[data-testid=machine-title]");
    if (title) title.textContent = again;
    picker.sync(); drawLive(); if (body.data) renderMachine(body, body.data, body.trends || {}); } };
  followLine(tenant, site, line, (snap) => {
    lastSnap = snap; TZ = snap.timezone; SHIFT = snap.shift;
    $("status").textContent = `${t("live")} · ${t("updated")} ${stamp(snap.generated_ms)}`;
    drawLive();
    if (first) { first = false; picker.sync(); loadMachine(tenant, site, line, machine, body); }
  }).catch((err) => { if (err.status === 404 || err.status === 403) notFound(); });
  // only "this shift" needs the snapshot (its shift) to know the range: any other range loads beside it,
  // not after it (a cold snapshot takes a while; bench/page.py)
  if (RANGE.key !== "shift") { first = false; picker.sync(); loadMachine(tenant, site, line, machine, body); }
}

async function loadMachine(tenant, site, line, machine, body) {
  body.replaceChildren(el("p", { class: "muted" }, t("loading")));
  const base = `/api/v1/history/${enc(tenant)}/${enc(site)}/${enc(line)}/${enc(machine)}`;
  const q = rangeQuery();
  const gen = ROUTE_GEN;
  try {
    // the panels and every trend at once: the trends no longer wait for the panels' tag list (bench/page.py)
    const [data, all] = await Promise.all([api(`${base}?${q}`), api(`${base}/trends?${q}`)]);
    const trends = Object.fromEntries(all.trends.map((x) => [x.tag, x.points]));
    if (gen !== ROUTE_GEN) return;  // charts for a page already left would leak into CHARTS
    body.data = data; body.trends = trends;
    renderMachine(body, data, trends);
    body.dataset.loaded = q;
  } catch (err) {
    if (err.message !== "401") body.replaceChildren(el("p", { class: "error" }, `${t("load_failed")}: ${err.message}`));
  }
}

function renderMachine(body, data, trends) {
  while (CHARTS.length) CHARTS.pop().destroy();
  const timeline = el("section", { class: "panel", "data-testid": "timeline" },
    el("h3", {}, `${t("timeline")} · ${rangeText()}`), gantt(data.timeline.segments, data.start_ms, data.end_ms),
    el("p", { class: "muted small" }, `${t("timeline.step")}: ${duration(data.timeline.step_ms)} (${t("timeline.step_note")})`));
  const kpis = el("section", { class: "panel", "data-testid": "machine-kpis" }, el("h3", {}, t("range_kpis")), kpiGrid(data.kpis, "machine"),
    el("p", { class: "small muted", "data-testid": "machine-mtbf" }, `${t("report.mtbf_h")} ${withUnit(data.kpis.mtbf_h, "dur.h")} · ${t("report.mttr_min")} ${withUnit(data.kpis.mttr_min, "dur.m")}`));
  const counts = el("section", { class: "panel", "data-testid": "machine-counts" },
    el("h3", {}, `${t("counts")} (${t(data.counts.every_ms >= 86_400_000 ? "counts.per_day" : "counts.per_hour")})`),
    el("div", { class: "num" }, `${t("counts.good")} ${num(data.counts.good)}${t("pcs")} · ${t("counts.scrap")} ${num(data.counts.scrap)}${t("pcs")}` +
      (data.corrections ? ` · ${t("counter_fixed")} ${data.corrections}` : "")),
    countsChart(data.counts.series, data.counts.every_ms));
  const trendPanel = el("section", { class: "panel", "data-testid": "trends" }, el("h3", {}, t("trends")));
  // every alarm open at some time in the range, cleared ones too: not only the active ones
  const alarmPanel = el("section", { class: "panel", "data-testid": "machine-alarms" }, el("h3", {}, `${t("alarms.range")} · ${rangeText()}`));
  if (!data.alarms.length) alarmPanel.append(el("p", { class: "muted" }, t("alarm.none_range")));
  else {
    const heads = ["rules.name", "alarm.value", "alarm.raised", "alarm.cleared", "alarm.status"];
    const td = (i, attrs, text) => el("td", { ...attrs, "data-label": t(heads[i]) }, text);
    alarmPanel.append(el("div", { class: "table-wrap" }, el("table", { class: "data cards", "data-testid": "alarm-table" },
      el("tr", {}, ...heads.map((k) => el("th", {}, t(k)))),
      ...data.alarms.map((a) => el("tr", { class: `alarm-row ${a.status}`, "data-alarm": a.id }, td(0, { class: "name" }, a.rule),
        td(1, { class: "n" }, alarmValue(a)), td(2, {}, dateHm(a.raised_ms)),
        td(3, {}, a.cleared_ms ? dateHm(a.cleared_ms) : "–"), td(4, {}, t(a.status)))))));
  }
  body.replaceChildren(timeline, el("div", { class: "grid" }, kpis, counts, paretoPanel(data.pareto, data.time)), el("div", { class: "grid" }, trendPanel, alarmPanel));
  const tags = Object.keys(trends);
  if (!tags.length) trendPanel.append(el("p", { class: "muted" }, t("trend.none")));
  for (const tag of tags) {
    const box = el("div", { class: "trend-box", "data-tag": tag }, el("h4", {}, tagLabel(tag)));
    trendPanel.append(box);
    trendChart(box, tag, trends[tag]);
  }
}

// -- reports -------------------------------------------------------------------------------------
function openReports(tenant, site, line) {
  const f = findLine(tenant, site, line);
  if (!f) { notFound(); return; }
  $("where").textContent = `${lineTitle(tenant, site, line)} · ${t("reports.title")}`;
  $("status").textContent = "";
  const base = `/api/v1/reports/${enc(tenant)}/${enc(site)}/${enc(line)}`;
  const by = el("select", { "data-testid": "report-by", "aria-label": t("reports.by") },
    el("option", { value: "day" }, t("reports.by_day")), el("option", { value: "shift" }, t("reports.by_shift")));
  const periodBox = el("div", { class: "report-actions", "data-testid": "period-actions" });
  const baBox = el("div", { class: "report-actions", "data-testid": "ba-actions" });
  const frame = el("iframe", { class: "report-frame", title: t("reports.title"), "data-testid": "report-frame", hidden: true });
  function periodUrl(fmt, lang) {
    const [a, b] = rangeMs();
    return `${base}/kpis?first=${isoDay(a, TZ)}&last=${isoDay(Math.max(a, b - 1), TZ)}&by=${by.value}&format=${fmt}&lang=${lang}`;
  }
  const baUrl = (fmt, lang) => `${base}/before-after?format=${fmt}&lang=${lang}`;
  function actions(box, url, kind) {
    const view = el("button", { type: "button", class: "btn primary", "data-testid": `${kind}-view` }, t("reports.view"));
    view.addEventListener("click", () => { frame.hidden = false; frame.src = url("html", LANG); frame.focus(); });
    const links = [];
    for (const lang of ["ko", "en"]) for (const fmtName of ["pdf", "html", "csv", "xlsx"]) {
      links.push(el("a", { class: "btn", href: url(fmtName, lang), download: "", "data-testid": `${kind}-${fmtName}-${lang}`,
        "data-format": fmtName, "data-lang": lang }, `${fmtName.toUpperCase()} · ${t(`reports.lang_${lang}`)}`));
    }
    box.replaceChildren(view, el("span", { class: "muted small" }, `${t("reports.download")}:`), ...links);
  }
  const refresh = () => { actions(periodBox, periodUrl, "period"); actions(baBox, baUrl, "ba"); picker.sync(); };
  const picker = rangePicker(refresh);
  by.addEventListener("change", refresh);
  const draw = () => {
    $("view").replaceChildren(
      el("div", { class: "toolbar" }, el("div", {}, el("div", { class: "crumbs" }, el("a", { href: `#/line/${tenant}/${site}/${line}` }, nm(f.l, line))),
        el("h2", { class: "page-title" }, t("reports.title")))),
      el("section", { class: "panel", "data-testid": "period-report" }, el("h3", {}, t("reports.period")),
        el("p", { class: "muted small" }, t("reports.period_hint")), picker,
        el("label", { class: "report-actions" }, t("reports.by"), by), periodBox),
      el("section", { class: "panel", style: "margin-top:1rem", "data-testid": "ba-report" }, el("h3", {}, t("reports.before_after")),
        el("p", { class: "muted small" }, t("reports.ba_hint")), baBox),
      el("div", { style: "margin-top:1rem" }, frame));
    refresh();
  };
  VIEW = { kind: "reports", rerender: () => { const src = frame.hidden ? null : frame.src; draw(); if (src) { frame.hidden = false; frame.src = src.replace(/lang=\w+/, `lang=${LANG}`); } } };
  // "this shift" needs the line's shift: one snapshot, no live stream on this page
  const gen = ROUTE_GEN;
  api(`${linePath(tenant, site, line)}/dashboard`).then((s) => {
    if (gen !== ROUTE_GEN) return;
    SHIFT = s.shift; TZ = s.timezone; picker.sync(); refresh();
  }).catch(() => {});
  draw();
}

// -- alarm rules of the line on screen ---------------------------------------------------
// Owners (and centre roles) add, edit and delete; operators read. The server checks everything
// again and answers 422 per field; its message is shown next to that field.
let RULES = null;  // {tenant, site, line, open, rules, choices, editing}

function mayWriteRules() { return !!ME && (ME.permissions || []).includes("alarm_rules:write"); }
function rulesQuery() { return `site=${encodeURIComponent(RULES.site)}&line=${encodeURIComponent(RULES.line)}`; }
function stateLabel(code) {
  if (TEXTS.en[`state.${code}`]) return t(`state.${code}`);
  const s = RULES && RULES.choices && RULES.choices.states.find((x) => x.code === code);
  return s ? s.name : String(code);
}

function toggleRules(button) {
  RULES.open = !RULES.open;
  button.setAttribute("aria-expanded", String(RULES.open));
  $("rules").hidden = !RULES.open;
  if (RULES.open) {
    buildRulesPanel();
    loadRules();
  }
}

async function loadRules() {
  const base = `/api/v1/alarm-rules/${encodeURIComponent(RULES.tenant)}`;
  try {
    const [rules, choices] = await Promise.all([api(`${base}?${rulesQuery()}`), api(`${base}/choices?${rulesQuery()}`)]);
    RULES.rules = rules; RULES.choices = choices;
  } catch (err) {
    if (err.message !== "401") rulesStatus(`${t("rules.load_failed")} (${err.message})`, true);
    return;
  }
  fillMachineOptions();
  renderRulesList();
}

function rulesStatus(text, isError = false) {
  const p = $("rules-status");
  if (!p) return;
  p.textContent = text;
  p.className = isError ? "error" : "muted";
}

function buildRulesPanel() {
  const writer = mayWriteRules();
  const panel = $("rules");
  const head = el("div", { class: "panel-head" }, el("h3", { "data-i18n": "rules.title" }, t("rules.title")));
  if (writer) {
    const add = el("button", { type: "button", class: "btn primary", "data-testid": "rule-add", "data-i18n": "rules.add" },
      t("rules.add"));
    add.addEventListener("click", () => openRuleForm(null));
    head.append(add);
  }
  panel.replaceChildren(head,
    writer ? "" : el("p", { class: "muted", "data-testid": "rules-readonly", "data-i18n": "rules.readonly" }, t("rules.readonly")),
    el("div", { id: "rules-list" }, el("p", { class: "muted" }, "…")),
    el("p", { id: "rules-status", class: "muted", "data-testid": "rules-status", role: "status" }),
    writer ? ruleForm() : "");
}

function conditionText(r) {
  if (r.kind === "threshold") return `${r.tag} ${r.op} ${r.threshold}`;
  return tf("rules.cond_state", { tag: r.tag, state: stateLabel(r.state), s: r.duration_s });
}

/** Where a threshold rule's alarm clears: the threshold moved by the deadband towards normal (as api.alarms.clear_point). */
function clearPoint(r) {
  if (r.op === ">" || r.op === ">=") return r.threshold - r.deadband;
  if (r.op === "<" || r.op === "<=") return r.threshold + r.deadband;
  return r.threshold;
}

/** The rule's on-delay, deadband and off-delay in words: "발생 지연 2초 · 불감대 10 kN (820 kN 이하에서 해제) · 해제 지연 60초". */
function dampingText(r) {
  const num = (v) => Number(v).toLocaleString(locale(), { maximumFractionDigits: 3 });
  const unit = TAG_UNITS[r.tag] ? ` ${TAG_UNITS[r.tag]}` : "";
  const parts = [];
  if (r.on_delay_s > 0) parts.push(tf("rules.show_on_delay", { s: num(r.on_delay_s) }));
  if (r.kind === "threshold" && r.deadband > 0) {
    const back = { ">": "rules.clears_at_or_below", ">=": "rules.clears_below", "<": "rules.clears_at_or_above",
      "<=": "rules.clears_above" }[r.op];
    parts.push(tf("rules.show_deadband", { d: `${num(r.deadband)}${unit}`, clear: tf(back, { v: `${num(clearPoint(r))}${unit}` }) }));
  }
  if (r.off_delay_s > 0) parts.push(tf("rules.show_off_delay", { s: num(r.off_delay_s) }));
  return parts.length ? parts.join(" · ") : t("rules.at_once");
}

function renderRulesList() {
  const list = $("rules-list");
  if (!list) return;
  if (!RULES.rules.length) { list.replaceChildren(el("p", { class: "muted" }, t("rules.none"))); return; }
  const writer = mayWriteRules();
  const table = el("table", { class: "rules-table", "data-testid": "rules-table" });
  table.append(el("tr", {}, ...["rules.machine", "rules.name", "rules.condition", "rules.damping", "rules.open_alarms"]
    .map((k) => el("th", {}, t(k))), writer ? el("th", {}) : ""));
  // on a phone the rows become cards and each cell says what it is (data-label, style.css)
  const cell = (key, attrs, text) => el("td", { ...attrs, "data-label": t(key) }, text);
  const machines = (RULES.choices && RULES.choices.machines) || [];
  for (const r of RULES.rules) {
    const m = machines.find((x) => x.machine === r.machine);
    const tr = el("tr", { "data-rule-id": String(r.id), "data-rule-name": r.name },
      cell("rules.machine", {}, nm(m, r.machine)), cell("rules.name", {}, r.name),
      cell("rules.condition", { class: "mono" }, conditionText(r)),
      cell("rules.damping", { "data-testid": "rule-damping" }, dampingText(r)),
      cell("rules.open_alarms", { "data-open": "" }, r.open_alarms));
    if (writer) {
      const edit = el("button", { type: "button", class: "btn", "data-action": "edit" }, t("rules.edit"));
      edit.addEventListener("click", () => openRuleForm(r));
      const del = el("button", { type: "button", class: "btn danger", "data-action": "delete" }, t("rules.delete"));
      del.addEventListener("click", () => deleteRule(r));
      tr.append(el("td", { class: "actions" }, edit, " ", del));
    }
    table.append(tr);
  }
  list.replaceChildren(table);
}

/** The table's open-alarm counts from the live snapshot, so they follow the alarms panel above. */
function showOpenAlarmCounts(alarms) {
  const counts = {};
  for (const a of alarms) counts[a.rule_id] = (counts[a.rule_id] || 0) + 1;
  for (const r of RULES.rules) r.open_alarms = counts[r.id] || 0;
  for (const td of document.querySelectorAll("tr[data-rule-id] td[data-open]")) {
    td.textContent = counts[td.parentElement.dataset.ruleId] || 0;
  }
}

function field(name, labelKey, input, extraClass = "") {
  input.name = name;
  input.id = `rule-${name}`;
  return el("label", { class: `field ${extraClass}`.trim(), htmlFor: input.id },
    el("span", { "data-i18n": labelKey }, t(labelKey)), input,
    el("small", { class: "field-error", "data-error-for": name, role: "alert" }));
}

function option(value, labelKey, label) {
  const o = el("option", { value }, label ?? t(labelKey));
  if (labelKey) o.setAttribute("data-i18n", labelKey);
  return o;
}

function ruleForm() {
  const form = el("form", { id: "rule-form", class: "rule-form", "data-testid": "rule-form", noValidate: true, hidden: true });
  const kind = el("select", {}, option("threshold", "rules.kind.threshold"), option("state_duration", "rules.kind.state_duration"));
  const op = el("select", {}, ...[">", ">=", "<", "<=", "==", "!="].map((x) => option(x, null, x)));
  const state = el("select", {});
  const tag = el("input", { autocomplete: "off", maxLength: 64 });
  tag.setAttribute("list", "rule-tags");
  const machine = el("select", {});
  form.append(
    el("h4", { id: "rule-form-title", "data-i18n": "rules.add" }, t("rules.add")),
    el("div", { class: "fields" },
      field("machine", "rules.machine", machine),
      field("name", "rules.name", el("input", { maxLength: 100, autocomplete: "off" })),
      field("kind", "rules.kind", kind),
      field("tag", "rules.tag", tag),
      field("op", "rules.op", op, "kind-threshold"),
      field("threshold", "rules.threshold", el("input", { type: "number", step: "any", inputMode: "decimal" }), "kind-threshold"),
      field("state", "rules.state", state, "kind-state_duration"),
      field("duration_s", "rules.duration_s", el("input", { type: "number", step: "any", min: "0" }), "kind-state_duration"),
      field("on_delay_s", "rules.on_delay_s", el("input", { type: "number", step: "any", min: "0", max: "3600", inputMode: "decimal" }), "kind-threshold"),
      field("deadband", "rules.deadband", el("input", { type: "number", step: "any", min: "0", inputMode: "decimal" }), "kind-threshold"),
      field("off_delay_s", "rules.off_delay_s", el("input", { type: "number", step: "any", min: "0", max: "3600", inputMode: "decimal" }))),
    el("p", { class: "muted small", "data-i18n": "rules.damping_hint" }, t("rules.damping_hint")),
    el("datalist", { id: "rule-tags" }),
    el("p", { class: "muted small", "data-i18n": "rules.hint" }, t("rules.hint")),
    el("p", { class: "error", "data-error-for": "_form", role: "alert" }),
    el("div", { class: "form-actions" },
      el("button", { type: "submit", class: "btn primary", "data-testid": "rule-save", "data-i18n": "rules.save" }, t("rules.save")),
      (() => { const b = el("button", { type: "button", class: "btn", "data-i18n": "rules.cancel" }, t("rules.cancel"));
        b.addEventListener("click", closeRuleForm); return b; })()));
  kind.addEventListener("change", () => showKindFields(form));
  machine.addEventListener("change", () => fillTagList(form));
  form.addEventListener("submit", (ev) => { ev.preventDefault(); saveRule(form); });
  return form;
}

function fillMachineOptions() {
  const form = $("rule-form");
  if (!form || !RULES.choices) return;
  const keep = form.elements.machine.value;
  form.elements.machine.replaceChildren(...RULES.choices.machines.map((m) => option(m.machine, null, nm(m, m.machine))));
  if (keep) form.elements.machine.value = keep;
  const keepState = form.elements.state.value;
  form.elements.state.replaceChildren(...RULES.choices.states.map((s) => {
    const known = TEXTS.en[`state.${s.code}`];
    return option(String(s.code), known ? `state.${s.code}` : null, known ? undefined : s.name);
  }));
  if (keepState) form.elements.state.value = keepState;
  fillTagList(form);
}

function fillTagList(form) {
  const m = RULES.choices && RULES.choices.machines.find((x) => x.machine === form.elements.machine.value);
  const tags = (m && m.tags) ? m.tags.filter((x) => x.numeric).map((x) => x.tag) : [];
  $("rule-tags").replaceChildren(...tags.map((x) => el("option", { value: x })));
}

function showKindFields(form) {
  const kind = form.elements.kind.value;
  for (const f of form.querySelectorAll(".kind-threshold, .kind-state_duration")) f.hidden = !f.classList.contains(`kind-${kind}`);
  if (kind === "state_duration" && !form.elements.tag.value) form.elements.tag.value = "state";
}

function openRuleForm(rule) {
  const form = $("rule-form");
  RULES.editing = rule;
  clearRuleErrors(form);
  rulesStatus("");
  const title = $("rule-form-title");
  title.setAttribute("data-i18n", rule ? "rules.edit_title" : "rules.add");
  title.textContent = t(rule ? "rules.edit_title" : "rules.add");
  const e = form.elements;
  const first = RULES.choices && RULES.choices.machines[0];
  e.machine.value = rule ? rule.machine : (first ? first.machine : "");
  e.name.value = rule ? rule.name : "";
  e.kind.value = rule ? rule.kind : "threshold";
  e.tag.value = rule ? rule.tag : "";
  e.op.value = (rule && rule.op) || ">";
  e.threshold.value = rule && rule.threshold !== null ? rule.threshold : "";
  e.state.value = rule && rule.state !== null ? String(rule.state) : "4";
  e.duration_s.value = rule && rule.duration_s !== null ? rule.duration_s : "";
  e.on_delay_s.value = rule ? rule.on_delay_s : 0;
  e.off_delay_s.value = rule ? rule.off_delay_s : 0;
  e.deadband.value = rule ? rule.deadband : 0;
  fillTagList(form);
  showKindFields(form);
  form.hidden = false;
  e.name.focus();
}

function closeRuleForm() {
  const form = $("rule-form");
  if (form) { form.hidden = true; clearRuleErrors(form); }
  if (RULES) RULES.editing = null;
}

function clearRuleErrors(form) {
  for (const s of form.querySelectorAll("[data-error-for]")) s.textContent = "";
  for (const i of form.querySelectorAll(".invalid")) i.classList.remove("invalid");
}

function showRuleError(form, name, text) {
  const slot = form.querySelector(`[data-error-for="${name}"]`) || form.querySelector('[data-error-for="_form"]');
  slot.textContent = slot.textContent ? `${slot.textContent} ${text}` : text;
  if (form.elements[name]) form.elements[name].classList.add("invalid");
}

/** What the form can tell before asking the server: the fields a rule of this kind needs. */
function ruleHints(e) {
  const hints = [];
  const num = (v) => v.trim() !== "" && Number.isFinite(Number(v));
  if (!e.name.value.trim()) hints.push(["name", "hint.name"]);
  if (!e.tag.value.trim()) hints.push(["tag", "hint.tag"]);
  const delay = (v) => num(v) && Number(v) >= 0 && Number(v) <= 3600;
  if (e.kind.value === "threshold") {
    if (!num(e.threshold.value)) hints.push(["threshold", "hint.threshold"]);
    if (!delay(e.on_delay_s.value)) hints.push(["on_delay_s", "hint.delay"]);
    if (!num(e.deadband.value) || Number(e.deadband.value) < 0) hints.push(["deadband", "hint.deadband"]);
  } else {
    if (e.state.value === "") hints.push(["state", "hint.state"]);
    if (!num(e.duration_s.value) || Number(e.duration_s.value) <= 0) hints.push(["duration_s", "hint.duration_s"]);
  }
  if (!delay(e.off_delay_s.value)) hints.push(["off_delay_s", "hint.delay"]);
  return hints;
}

/** A 422 entry in the user's language when its type is known, otherwise the server's own message. */
function serverMessage(detail) {
  const key = `err.${detail.type}`;
  return LANG !== "en" && TEXTS[LANG] && TEXTS[LANG][key] ? tf(key, detail.ctx || {}) : detail.msg;
}

async function saveRule(form) {
  clearRuleErrors(form);
  const e = form.elements;
  const hints = ruleHints(e);
  if (hints.length) { for (const [name, key] of hints) showRuleError(form, name, t(key)); return; }
  const threshold = e.kind.value === "threshold";
  const body = { site: RULES.site, line: RULES.line, machine: e.machine.value, name: e.name.value.trim(), kind: e.kind.value,
    tag: e.tag.value.trim(), op: threshold ? e.op.value : null, threshold: threshold ? Number(e.threshold.value) : null,
    state: threshold ? null : Number(e.state.value), duration_s: threshold ? null : Number(e.duration_s.value),
    on_delay_s: threshold ? Number(e.on_delay_s.value) : 0, deadband: threshold ? Number(e.deadband.value) : 0,
    off_delay_s: Number(e.off_delay_s.value) };
  const base = `/api/v1/alarm-rules/${encodeURIComponent(RULES.tenant)}`;
  const editing = RULES.editing;
  const r = await fetch(editing ? `${base}/${editing.id}` : base, { method: editing ? "PUT" : "POST",
    credentials: "same-origin", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  if (r.status === 401) { showLogin(); return; }
  const data = await r.json().catch(() => ({}));
  if (r.status === 422 && Array.isArray(data.detail)) {
    for (const d of data.detail) showRuleError(form, d.loc[d.loc.length - 1], serverMessage(d));
    return;
  }
  if (!r.ok) { showRuleError(form, "_form", `${t("rules.save_failed")} (HTTP ${r.status}): ${data.detail ?? ""}`); return; }
  closeRuleForm();
  const notes = [t("rules.saved")];
  if (data.cleared_alarms) notes.push(tf("rules.cleared", { n: data.cleared_alarms }));
  rulesStatus([...notes, ...(data.warnings || [])].join(" · "));
  await loadRules();
}

async function deleteRule(rule) {
  if (!window.confirm(tf("rules.confirm_delete", { name: rule.name }))) return;
  const r = await fetch(`/api/v1/alarm-rules/${encodeURIComponent(RULES.tenant)}/${rule.id}`,
    { method: "DELETE", credentials: "same-origin" });
  if (r.status === 401) { showLogin(); return; }
  const data = await r.json().catch(() => ({}));
  if (!r.ok) { rulesStatus(`${t("rules.delete_failed")} (HTTP ${r.status}): ${data.detail ?? ""}`, true); return; }
  if (RULES.editing && RULES.editing.id === rule.id) closeRuleForm();
  rulesStatus([t("rules.deleted"), ...(data.cleared_alarms ? [tf("rules.cleared", { n: data.cleared_alarms })] : [])].join(" · "));
  await loadRules();
}

start().catch(() => showLogin());
