// Line dashboard (live over server-sent events), its alarm rules, centre overview, login and language switch.
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
  if (RULES && RULES.open) renderRulesList();  // the form's labels follow through data-i18n; its input stays
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
  // the live part is redrawn on every snapshot; the rules panel beside it is not, so a form keeps its input
  RULES = { tenant, site, line, open: false, rules: [], choices: null, editing: null };
  const toggle = el("button", { type: "button", class: "btn", "data-testid": "rules-toggle", "data-i18n": "rules.title" },
    t("rules.title"));
  toggle.setAttribute("aria-expanded", "false");
  toggle.addEventListener("click", () => toggleRules(toggle));
  $("view").replaceChildren(el("div", { class: "toolbar" }, toggle), el("div", { id: "live" }, el("p", { class: "muted" }, "…")),
    el("section", { id: "rules", class: "panel rules", "data-testid": "rules", hidden: true }));
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
  $("live").replaceChildren(tiles, el("div", { class: "row" }, kpi, trendPanel(snap.material_input), alarms));
  if (RULES && RULES.open) showOpenAlarmCounts(snap.alarms);
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

function renderRulesList() {
  const list = $("rules-list");
  if (!list) return;
  if (!RULES.rules.length) { list.replaceChildren(el("p", { class: "muted" }, t("rules.none"))); return; }
  const writer = mayWriteRules();
  const table = el("table", { class: "rules-table", "data-testid": "rules-table" });
  table.append(el("tr", {}, ...["rules.machine", "rules.name", "rules.condition", "rules.open_alarms"]
    .map((k) => el("th", {}, t(k))), writer ? el("th", {}) : ""));
  for (const r of RULES.rules) {
    const tr = el("tr", { "data-rule-id": String(r.id), "data-rule-name": r.name },
      el("td", {}, r.machine), el("td", {}, r.name), el("td", { class: "mono" }, conditionText(r)),
      el("td", { "data-open": "" }, r.open_alarms));
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
      field("duration_s", "rules.duration_s", el("input", { type: "number", step: "any", min: "0" }), "kind-state_duration")),
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
  form.elements.machine.replaceChildren(...RULES.choices.machines.map((m) => option(m.machine, null, m.name || m.machine)));
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
  if (e.kind.value === "threshold") {
    if (!num(e.threshold.value)) hints.push(["threshold", "hint.threshold"]);
  } else {
    if (e.state.value === "") hints.push(["state", "hint.state"]);
    if (!num(e.duration_s.value) || Number(e.duration_s.value) <= 0) hints.push(["duration_s", "hint.duration_s"]);
  }
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
    state: threshold ? null : Number(e.state.value), duration_s: threshold ? null : Number(e.duration_s.value) };
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
