// Line dashboard (live over server-sent events), centre overview, login and language switch.
// Vanilla JS, no external assets: factory networks are often offline.
"use strict";

let ME = null;
let SOURCE = null;  // the EventSource of the line on screen
let LAST = null;    // the last snapshot rendered, re-rendered on a language switch
let TICK = null;

const $ = (id) => document.getElementById(id);
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("data-")) e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

async function api(path, opts = {}) {
  const r = await fetch(path, { credentials: "same-origin", ...opts,
    headers: { "Content-Type": "application/json", ...(opts.headers || {}) } });
  if (r.status === 401) { showLogin(); throw new Error("401"); }
  if (!r.ok) { const e = new Error(`${path}: HTTP ${r.status}`); e.status = r.status; throw e; }
  return r.json();
}

function pct(x) { return x === null || x === undefined ? "–" : `${(x * 100).toFixed(1)}%`; }
function duration(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h ? `${h}h ${String(m).padStart(2, "0")}m` : `${m}m ${String(r).padStart(2, "0")}s`;
}
function clock(ms) { return new Date(ms).toLocaleTimeString(LANG === "ko" ? "ko-KR" : "en-GB"); }

// -- login -----------------------------------------------------------------------------
function showLogin() {
  if (SOURCE) { SOURCE.close(); SOURCE = null; }
  ME = null;
  $("app").hidden = true; $("logout").hidden = true; $("user").textContent = "";
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
  render();
});

// -- navigation ------------------------------------------------------------------------
async function start() {
  try { ME = await api("/api/v1/me"); } catch { return; }
  LANG = localStorage.getItem("sf-lang") || ME.language || "ko";
  $("login").hidden = true; $("app").hidden = false; $("logout").hidden = false;
  $("user").textContent = ME.username;
  applyTexts();
  const tenants = await api("/api/v1/tenants");
  const nav = $("lines");
  nav.replaceChildren();
  const centre = ME.role === "centre_admin" || ME.role === "centre_engineer";
  if (centre) nav.append(el("a", { href: "#/centre", "data-i18n": "centre" }, t("centre")));
  for (const tn of tenants) for (const s of tn.sites) for (const l of s.lines) {
    nav.append(el("a", { href: `#/line/${tn.tenant}/${s.site}/${l.line}`, "data-line": l.line },
      `${centre ? tn.name + " · " : ""}${l.name}`));
  }
  if (!location.hash || location.hash === "#") {
    const first = tenants.flatMap((tn) => tn.sites.flatMap((s) => s.lines.map((l) => `#/line/${tn.tenant}/${s.site}/${l.line}`)));
    location.hash = centre ? "#/centre" : (first[0] || "#/centre");
  } else {
    route();
  }
}

window.addEventListener("hashchange", route);

function route() {
  if (!ME) return;
  if (SOURCE) { SOURCE.close(); SOURCE = null; }
  LAST = null;
  const parts = location.hash.replace(/^#\//, "").split("/");
  if (parts[0] === "line" && parts.length === 4) openLine(parts[1], parts[2], parts[3]);
  else if (parts[0] === "centre") openCentre();
  else notFound();
}

function notFound() {
  $("view").replaceChildren(el("p", { class: "error", "data-testid": "not-found", "data-i18n": "not_found" }, t("not_found")));
  $("where").textContent = "";
}

// -- line dashboard --------------------------------------------------------------------
function openLine(tenant, site, line) {
  $("view").replaceChildren(el("p", { class: "muted" }, "…"));
  const path = `/api/v1/lines/${encodeURIComponent(tenant)}/${encodeURIComponent(site)}/${encodeURIComponent(line)}`;
  // a plain GET first: an unknown or foreign line is a 404 the page can show
  api(`${path}/dashboard`).then((snap) => {
    LAST = { kind: "line", snap };
    render();
    SOURCE = new EventSource(`${path}/events`);
    SOURCE.addEventListener("snapshot", (ev) => {
      LAST = { kind: "line", snap: JSON.parse(ev.data) };
      render();
      // source time of the newest sample → on screen, for the browser test's record (same clock here)
      const newest = Math.max(...LAST.snap.machines.map((m) => m.last_seen_ms || 0));
      if (newest) (window.sfLatencies = window.sfLatencies || []).push(Date.now() - newest);
    });
    SOURCE.addEventListener("logout", () => showLogin());
    SOURCE.onerror = () => { $("status").textContent = t("disconnected"); };
  }).catch((err) => { if (err.status === 404 || err.status === 403) notFound(); });
}

function render() {
  if (!LAST) return;
  if (LAST.kind === "line") renderLine(LAST.snap);
  else if (LAST.kind === "centre") renderCentre(LAST.data);
}

function renderLine(snap) {
  TZ = snap.timezone;
  $("where").textContent = `${snap.tenant} · ${snap.site} · ${snap.name}`;
  $("status").textContent = `${t("live")} · ${t("updated")} ${clock(snap.generated_ms)}`;
  const tiles = el("section", { class: "tiles" });
  for (const m of snap.machines) {
    const state = m.state === null ? "none" : String(m.state);
    const tile = el("article", { class: `tile state-${state}${m.stale ? " stale" : ""}`, "data-machine": m.machine,
      "data-state": state });
    const since = m.state_since_ms;
    tile.append(
      el("h2", {}, m.name),
      el("div", { class: "state", "data-testid": "state" }, t(`state.${state}`)),
      el("div", { class: "since", "data-since": since ?? "", "data-lower": m.state_since_is_lower_bound ? "1" : "" },
        since ? sinceText(since, m.state_since_is_lower_bound) : ""),
      el("div", { class: "count", "data-testid": "count" },
        `${t("count_today")} ${m.count_today.toLocaleString()} / ${t("target")} ${m.target_today ?? "–"}`),
      el("div", { class: "oee" }, `${t("oee")} ${pct(m.oee && m.oee.oee)}`),
    );
    if (m.counter_corrections_today) tile.append(el("div", { class: "muted small" }, `${t("counter_fixed")}: ${m.counter_corrections_today}`));
    if (m.stale) tile.append(el("div", { class: "muted small" }, t("stale")));
    tiles.append(tile);
  }
  const o = snap.oee;
  const kpi = el("section", { class: "panel kpi" },
    el("h3", {}, `${t("oee")} — ${snap.shift ? snap.shift.name : t("no_shift")}`),
    el("div", { class: "big", "data-testid": "line-oee" }, pct(o && o.oee)),
    el("div", {}, `${t("availability")} ${pct(o && o.availability)} · ${t("performance")} ${pct(o && o.performance)} · ${t("quality")} ${pct(o && o.quality)}`),
    el("div", { class: "muted small" }, `${t("coverage")} ${pct(o && o.coverage)} — ${t("oee.note")}`),
    el("div", {}, `${t("count_today")} ${snap.count_today.toLocaleString()} / ${t("target")} ${snap.target_today}`),
  );
  const alarms = el("section", { class: "panel alarms", "data-testid": "alarms" }, el("h3", {}, t("alarms")));
  if (!snap.alarms.length) alarms.append(el("p", { class: "muted" }, t("no_alarms")));
  for (const a of snap.alarms) {
    const row = el("div", { class: `alarm ${a.status}`, "data-alarm": a.id },
      el("b", {}, a.machine), ` ${a.rule} · ${clock(a.raised_ms)} · ${t(a.status)}`);
    if (a.status === "active" && ME.role !== undefined) {
      const b = el("button", { type: "button" }, t("ack"));
      b.addEventListener("click", () => api(`/api/v1/alarms/${snap.tenant}/${a.id}/ack`, { method: "POST" })
        .then(() => api(`/api/v1/lines/${snap.tenant}/${snap.site}/${snap.line}/dashboard`))
        .then((s) => { LAST = { kind: "line", snap: s }; render(); }).catch(() => {}));
      row.append(" ", b);
    }
    alarms.append(row);
  }
  $("view").replaceChildren(tiles, el("div", { class: "row" }, kpi, trendPanel(snap.material_input), alarms));
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

let TZ = undefined;  // the line's time zone (the tenant's), for hour labels
function hourIn(ms, tz) {
  try { return new Intl.DateTimeFormat("en-GB", { hour: "2-digit", hourCycle: "h23", timeZone: tz }).format(new Date(ms)); }
  catch { return String(new Date(ms).getHours()); }
}

function trendPanel(points) {
  const panel = el("section", { class: "panel trend" }, el("h3", {}, t("trend")));
  const values = points.map((p) => p.input_s_per_part ?? 0);
  const max = Math.max(1, ...values);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${Math.max(1, points.length) * 30} 100`);
  svg.setAttribute("class", "bars");
  svg.setAttribute("preserveAspectRatio", "xMinYMid meet");
  points.forEach((p, i) => {
    const h = ((p.input_s_per_part ?? 0) / max) * 80;
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", i * 30 + 4); r.setAttribute("y", 90 - h); r.setAttribute("width", 22); r.setAttribute("height", h);
    const title = document.createElementNS(ns, "title");
    title.textContent = `${clock(p.ts)} ${t("input_s_per_part")} ${p.input_s_per_part ?? "–"} · ${t("input_s")} ${p.input_s}`;
    r.append(title);
    svg.append(r);
    const lbl = document.createElementNS(ns, "text");
    lbl.setAttribute("x", i * 30 + 15); lbl.setAttribute("y", 99); lbl.setAttribute("text-anchor", "middle");
    lbl.textContent = hourIn(p.ts, TZ);
    svg.append(lbl);
  });
  panel.append(svg, el("div", { class: "muted small" }, t("input_s_per_part")));
  return panel;
}

// -- centre overview -------------------------------------------------------------------
function openCentre() {
  // the report gains come from the reports' portfolio; the overview shows without them if it fails
  const gains = api("/api/v1/reports/portfolio").catch(() => null);
  api("/api/v1/centre/overview").then(async (data) => {
    LAST = { kind: "centre", data };
    render();
    const portfolio = await gains;
    if (portfolio && LAST && LAST.kind === "centre") {
      data.gains = {};
      for (const r of portfolio.reports || []) {
        const t = r.scope && r.scope.tenant;
        if (!t) continue;
        (data.gains[t] = data.gains[t] || []).push(...r.kpis.filter((k) => k.improvement_pct !== null)
          .map((k) => `${r.scope.line ? r.scope.line + " " : ""}${k.key} ${k.improvement_pct > 0 ? "+" : ""}${k.improvement_pct.toFixed(1)}%${k.significant ? "" : " (n.s.)"}`));
      }
      render();
    }
  }).catch((err) => { if (err.status === 403 || err.status === 404) notFound(); });
}

function renderCentre(data) {
  $("where").textContent = t("centre");
  $("status").textContent = "";
  const table = el("table", { class: "centre", "data-testid": "centre" });
  table.append(el("tr", {}, ...["tenant", "rollout", "machines", "gateways", "coverage_24h", "alarms", "gains"]
    .map((k) => el("th", {}, t(k)))));
  for (const tn of data.tenants) {
    const gw = tn.gateways.map((g) => `${g.gateway}: ${g.online ? t("online") : t("offline")}`).join(", ") || t("none");
    const gains = (data.gains && data.gains[tn.tenant] && data.gains[tn.tenant].join(", ")) || t("none");
    table.append(el("tr", { "data-tenant": tn.tenant }, el("td", {}, tn.name), el("td", {}, tn.rollout_date ?? "–"),
      el("td", {}, tn.machines), el("td", {}, gw), el("td", {}, pct(tn.coverage_24h)), el("td", {}, tn.active_alarms),
      el("td", {}, gains)));
  }
  $("view").replaceChildren(table);
}

start().catch(() => showLogin());
