// The centre engineer's workspace: the SME portfolio (#/centre) and one SME (#/centre/{tenant}).
// Vanilla JS, no external assets (factory and centre networks are often offline).
//
// The shell (index.html's router) calls
//   window.sfCentre.render(container, route, ctx)
// with
//   container  an Element the page owns while it is on screen (its children are replaced)
//   route      the part of the hash after "#/centre": "" or "/" (portfolio), "/{tenant}" (one SME);
//              or the shell's object {hash: "#/centre/{tenant}", tenant, parts}
//   ctx = {
//     lang:  "en" | "ko", or a function giving it   the UI language (centre roles default to English)
//     t(key) → string                    the glossary (i18n.js); returns the key itself when unknown
//     api(path) → Promise<JSON>          GET with the session; rejects with an Error carrying .status
//     me:    {username, role, ...}       who is logged in (GET /api/v1/me), may be absent
//     setWhere(text)                     optional: the shell's header line ("where am I")
//   }
// Every field is used defensively: a missing t falls back to the key, a missing api to fetch.
// A language switch re-renders the page when the shell changes <html lang> (as applyTexts does);
// search, filter and sort are kept across it.
// Drill-down ends on the owner's pages: #/line/{t}/{s}/{l} and #/machine/{t}/{s}/{l}/{m}.
"use strict";

(function () {
  const NS = "http://www.w3.org/2000/svg";
  const COLUMNS = [  // [sort key, glossary key]
    ["name", "centre.col.sme"], ["rollout", "centre.col.rollout"], ["gateway", "centre.col.gateway"],
    ["coverage", "centre.col.coverage"], ["alarms", "centre.col.alarms"], ["gains", "centre.col.gains"],
    ["attention", "centre.col.attention"],
  ];
  let seq = 0;  // a newer render wins over an answer still on its way for an older one

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
    return e;
  }
  /** Replace ``root``'s children, skipping the absent ones (replaceChildren would print "null"). */
  function put(root, ...kids) { root.replaceChildren(...kids.flat(2).filter((k) => k !== null && k !== undefined && k !== false)); }
  function svg(tag, attrs, ...children) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  }

  function context(ctx) {
    ctx = ctx || {};
    const raw = typeof ctx.lang === "function" ? ctx.lang() : ctx.lang;
    const lang = raw === "ko" ? "ko" : "en";
    const t = (key, params) => {
      let s = typeof ctx.t === "function" ? ctx.t(key) : key;
      if (typeof s !== "string") s = key;
      return params ? s.replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m)) : s;
    };
    const api = typeof ctx.api === "function" ? ctx.api : async (path) => {
      const r = await fetch(path, { credentials: "same-origin" });
      if (!r.ok) { const e = new Error(`${path}: HTTP ${r.status}`); e.status = r.status; throw e; }
      return r.json();
    };
    const setWhere = (text) => { if (typeof ctx.setWhere === "function") try { ctx.setWhere(text); } catch { /* the shell's */ } };
    // the zone the shell's header clock shows (the SME's, or the one the centre's SMEs share), not the browser's
    const tz = (typeof ctx.tz === "function" ? ctx.tz() : ctx.tz) || "UTC";
    return { lang, t, api, setWhere, tz, me: ctx.me || null, locale: lang === "ko" ? "ko-KR" : "en-GB" };
  }

  // -- words and numbers ---------------------------------------------------------------
  const MINUS = "\u2212";
  function signed(x, digits = 1) {
    const v = Number(x).toFixed(digits);
    return Number(v) > 0 ? `+${v}` : Number(v) < 0 ? `${MINUS}${v.slice(1)}` : v.replace("-", "");
  }
  function pct(x) { return x === null || x === undefined ? "–" : `${(x * 100).toFixed(0)}%`; }
  function nameOf(c, row) { return (c.lang === "en" ? row.name_en || row.name : row.name) || row.tenant || ""; }
  function otherName(c, row) {
    const other = c.lang === "en" ? row.name : row.name_en;
    return other && other !== nameOf(c, row) ? other : null;
  }
  function kpiLabel(c, g) { return (g.label && (g.label[c.lang] || g.label.en)) || g.key; }
  function ago(c, ms) {
    if (!ms) return c.t("centre.never");
    const s = Math.round((ms - Date.now()) / 1000);
    const rtf = new Intl.RelativeTimeFormat(c.locale, { numeric: "auto" });
    const a = Math.abs(s);
    if (a < 90) return rtf.format(Math.round(s), "second");
    if (a < 5400) return rtf.format(Math.round(s / 60), "minute");
    if (a < 172800) return rtf.format(Math.round(s / 3600), "hour");
    return rtf.format(Math.round(s / 86400), "day");
  }
  /** A moment as the reports print it, in the page's zone and naming it: "2026-12-02 09:14 (Asia/Seoul)". */
  function when(c, ms) {
    const p = {};
    const f = new Intl.DateTimeFormat("en-CA", { timeZone: c.tz, year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
    for (const x of f.formatToParts(new Date(ms))) p[x.type] = x.value;
    return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute} (${c.tz})`;
  }
  /** "Material input time per part −74.6% (reduced)": the report's label, the signed change, the direction. */
  function gainWords(c, g) {
    if (g.change_pct === null || g.change_pct === undefined) return `${kpiLabel(c, g)}: ${c.t("centre.no_change_data")}`;
    const dir = c.t(`centre.dir.${g.direction || "unchanged"}`);
    const pp = g.pp_change !== null && g.pp_change !== undefined ? `, ${c.t("centre.pp", { v: signed(g.pp_change, 2) })}` : "";
    return `${kpiLabel(c, g)} ${signed(g.change_pct)}% (${dir}${pp})`;
  }
  function reasonWords(c, r) {
    const p = r.params || {};
    const params = { ...p };
    if ("coverage" in p) params.coverage = pct(p.coverage);
    if ("threshold" in p) params.threshold = pct(p.threshold);
    if ("last_seen_ms" in p) params.ago = ago(c, p.last_seen_ms);
    if (r.code === "kpi_worse") {
      params.kpi = (p.label && (p.label[c.lang] || p.label.en)) || p.kpi;
      params.change = `${signed(p.change_pct)}%`;
      params.direction = c.t(`centre.dir.${p.direction || "unchanged"}`);
    }
    const key = `centre.reason.${r.code}`;
    const text = c.t(key, params);
    return text === key ? r.text || r.code : text;  // a reason this page does not know yet: the API's English
  }

  // -- the portfolio ---------------------------------------------------------------------
  // search, filter and sort of the portfolio: kept while the page lives (a language switch re-renders it)
  const VIEW = { q: "", attention: false, sort: "attention", dir: null };

  function sortValue(c, row, key) {
    switch (key) {
      case "name": return nameOf(c, row).toLocaleLowerCase(c.locale);
      case "rollout": return row.rollout_date || "";
      case "gateway": return { online: 3, offline: 1, never: 0, none: 0 }[row.gateway_status] ?? 0;
      case "coverage": return row.coverage_24h ?? -1;
      case "alarms": return row.active_alarms || 0;
      case "gains": {
        const g = (row.gains || []).filter((x) => x.improvement_pct !== null && x.improvement_pct !== undefined);
        return g.length ? Math.max(...g.map((x) => x.improvement_pct)) : -Infinity;
      }
      default: return (row.attention || []).length;  // "attention": the most reasons first
    }
  }
  const DEFAULT_DIR = { name: "asc", rollout: "desc", gateway: "asc", coverage: "asc", alarms: "desc", gains: "desc",
                        attention: "desc" };

  function renderPortfolio(root, data, c, view) {
    const rows = Array.isArray(data && data.tenants) ? data.tenants : [];
    const flagged = rows.filter((r) => (r.attention || []).length);
    const head = el("div", { class: "cx-head" },
      el("h2", { "data-testid": "centre-title" }, c.t("centre.title")),
      el("p", { class: "cx-summary", "data-testid": "centre-summary" },
        c.t("centre.summary", { n: rows.length, k: flagged.length, floor: pct(data.coverage_floor ?? 0.8) })));

    const search = el("input", { type: "search", id: "cx-search", value: view.q, autocomplete: "off",
                                 placeholder: c.t("centre.search_hint"), "data-testid": "centre-search" });
    const only = el("input", { type: "checkbox", id: "cx-attention", "data-testid": "centre-attention-only" });
    only.checked = view.attention;
    const sortSel = el("select", { id: "cx-sort", "data-testid": "centre-sort" },
      COLUMNS.filter(([k]) => k !== "gains" || true).map(([k, label]) => el("option", { value: k }, c.t(label))));
    sortSel.value = view.sort;
    const dirBtn = el("button", { type: "button", class: "btn cx-dir", "data-testid": "centre-sort-dir",
                                  "aria-label": c.t("centre.sort_dir") });
    const controls = el("div", { class: "cx-controls", role: "search" },
      el("label", { class: "cx-field", for: "cx-search" }, el("span", {}, c.t("centre.search")), search),
      el("label", { class: "cx-check", for: "cx-attention" }, only, el("span", {}, c.t("centre.attention_only"))),
      el("label", { class: "cx-field", for: "cx-sort" }, el("span", {}, c.t("centre.sort")), el("span", { class: "cx-sortpair" }, sortSel, dirBtn)));

    const table = el("table", { class: "cx-table", "data-testid": "centre-portfolio" });
    const caption = el("caption", { class: "cx-visually-hidden" }, c.t("centre.table_caption"));
    const thead = el("thead");
    const tbody = el("tbody");
    const empty = el("p", { class: "cx-empty", "data-testid": "centre-empty", hidden: true }, c.t("centre.no_match"));
    table.append(caption, thead, tbody);

    const chart = el("section", { class: "cx-panel", "aria-labelledby": "cx-dist-title" },
      el("h3", { id: "cx-dist-title" }, c.t("centre.distribution")),
      el("p", { class: "cx-note" }, c.t("centre.distribution_note")),
      distribution(c, rows, data.kpis || [], Math.max(300, Math.min(1200, (root.clientWidth || 720) - 40))));

    function dirOf() { return view.dir || DEFAULT_DIR[view.sort] || "asc"; }
    function draw() {
      const dir = dirOf();
      dirBtn.textContent = dir === "asc" ? "↑" : "↓";
      dirBtn.title = c.t(dir === "asc" ? "centre.ascending" : "centre.descending");
      thead.replaceChildren(el("tr", {}, COLUMNS.map(([k, label]) => {
        const active = k === view.sort;
        return el("th", { scope: "col", "aria-sort": active ? (dir === "asc" ? "ascending" : "descending") : "none" },
          el("button", { type: "button", class: "cx-th", "data-sort": k, onclick: () => {
            if (view.sort === k) view.dir = dirOf() === "asc" ? "desc" : "asc";
            else { view.sort = k; view.dir = null; }
            sortSel.value = view.sort; draw();
          } }, c.t(label), active ? (dir === "asc" ? " ↑" : " ↓") : ""));
      })));
      const needle = view.q.trim().toLocaleLowerCase(c.locale);
      const shown = rows.filter((r) => (!view.attention || (r.attention || []).length) &&
        (!needle || [r.name, r.name_en, r.tenant].some((s) => s && s.toLocaleLowerCase(c.locale).includes(needle))));
      const sign = dir === "asc" ? 1 : -1;
      shown.sort((a, b) => {
        const x = sortValue(c, a, view.sort), y = sortValue(c, b, view.sort);
        return (x < y ? -1 : x > y ? 1 : 0) * sign || nameOf(c, a).localeCompare(nameOf(c, b), c.locale);
      });
      tbody.replaceChildren(...shown.map((r) => portfolioRow(c, r)));
      empty.hidden = shown.length > 0;
      table.dataset.count = String(shown.length);
    }
    search.addEventListener("input", () => { view.q = search.value; draw(); });
    only.addEventListener("change", () => { view.attention = only.checked; draw(); });
    sortSel.addEventListener("change", () => { view.sort = sortSel.value; view.dir = null; draw(); });
    dirBtn.addEventListener("click", () => { view.dir = dirOf() === "asc" ? "desc" : "asc"; draw(); });
    draw();
    const asOf = data.gains_as_of_ms ? el("p", { class: "cx-note", "data-testid": "centre-gains-as-of" },
      c.t("centre.gains_as_of", { when: when(c, data.gains_as_of_ms) })) : null;
    put(root, head, controls, el("div", { class: "cx-tablewrap" }, table), empty, asOf, chart);
  }

  function portfolioRow(c, r) {
    const href = `#/centre/${encodeURIComponent(r.tenant)}`;
    const reasons = r.attention || [];
    const other = otherName(c, r);
    const gw = r.gateway_status || "none";
    const gains = (r.gains || []).filter((g) => g.change_pct !== null && g.change_pct !== undefined);
    const tr = el("tr", { class: reasons.length ? "cx-row cx-flagged" : "cx-row", "data-tenant": r.tenant,
                          onclick: (ev) => { if (!ev.target.closest("a")) location.hash = href; } },
      el("td", { "data-label": c.t("centre.col.sme"), class: "cx-name" },
        el("a", { href, "data-testid": "centre-sme-link" }, nameOf(c, r)),
        other ? el("span", { class: "cx-sub" }, other) : null),
      el("td", { "data-label": c.t("centre.col.rollout"), class: "cx-date" }, r.rollout_date || c.t("centre.no_rollout")),
      el("td", { "data-label": c.t("centre.col.gateway") },
        el("span", { class: `cx-badge cx-gw-${gw}`, "data-testid": "centre-gateway" }, c.t(`centre.gw.${gw}`)),
        r.last_seen_ms && gw !== "online" ? el("span", { class: "cx-sub" }, c.t("centre.last_seen", { ago: ago(c, r.last_seen_ms) })) : null),
      el("td", { "data-label": c.t("centre.col.coverage"), class: "cx-num" }, coverageBar(c, r.coverage_24h)),
      el("td", { "data-label": c.t("centre.col.alarms"), class: "cx-num" },
        el("span", { class: r.active_alarms ? "cx-alarms cx-hot" : "cx-alarms" }, String(r.active_alarms ?? 0))),
      el("td", { "data-label": c.t("centre.col.gains") },
        gains.length ? el("ul", { class: "cx-gains" }, gains.map((g) => gainItem(c, g))) : el("span", { class: "cx-sub" }, c.t("centre.no_report"))),
      el("td", { "data-label": c.t("centre.col.attention") },
        reasons.length ? el("ul", { class: "cx-reasons", "data-testid": "centre-reasons" },
          reasons.map((x) => el("li", { "data-code": x.code }, reasonWords(c, x))))
          : el("span", { class: "cx-ok" }, c.t("centre.ok"))));
    return tr;
  }
  function gainItem(c, g) {
    const cls = !g.significant ? "cx-neutral" : g.better === true ? "cx-better" : g.better === false ? "cx-worse" : "";
    return el("li", { class: cls, "data-kpi": g.key, title: g.line || "" }, gainWords(c, g),
      g.significant ? null : el("span", { class: "cx-ns" }, ` · ${c.t("centre.not_significant")}`));
  }
  function coverageBar(c, x) {
    if (x === null || x === undefined) return el("span", { class: "cx-sub" }, "–");
    const low = x < 0.8;
    return el("span", { class: "cx-cov" }, el("span", { class: "cx-covtxt" }, pct(x)),
      el("span", { class: "cx-covbar", "aria-hidden": "true" }, el("span", { class: low ? "cx-low" : "", style: `width:${Math.round(x * 100)}%` })));
  }

  // -- the distribution chart: one strip per KPI, a dot per SME line, the median marked ----------------
  function niceStep(span, ticks = 5) {
    const raw = span / ticks, p = Math.pow(10, Math.floor(Math.log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3 ? 2 : m < 7 ? 5 : 10) * p;
  }
  function distribution(c, rows, legend, W) {
    const series = legend.map((k) => ({
      k, points: rows.flatMap((r) => (r.gains || []).filter((g) => g.key === k.key && g.improvement_pct !== null && g.improvement_pct !== undefined)
        .map((g) => ({ v: g.improvement_pct, who: nameOf(c, r) + (g.line ? ` · ${g.line}` : ""), sig: g.significant }))),
    })).filter((s) => s.points.length);
    if (!series.length) return el("p", { class: "cx-empty", "data-testid": "centre-dist-empty" }, c.t("centre.no_gains"));
    const all = series.flatMap((s) => s.points.map((p) => p.v));
    // drawn at the width it is shown (W), so 12-13 px text stays 12-13 px on a phone
    const L = 14, R = 30, rowH = 64, top = 4, H = top + series.length * rowH + 40;
    const fit = (text, px) => { const n = Math.floor((W - L - R) / (px * 0.58)); return text.length > n ? text.slice(0, n - 1) + "…" : text; };
    let lo = Math.min(0, ...all), hi = Math.max(0, ...all);
    if (hi - lo < 10) { hi += 5; lo -= 5; }
    const step = niceStep(hi - lo, Math.max(2, Math.min(10, Math.floor(W / 90))));  // a tick label every ~90 px at most
    lo = Math.floor(lo / step) * step; hi = Math.ceil(hi / step) * step;
    const x = (v) => L + (v - lo) / (hi - lo) * (W - L - R);
    const g = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "cx-dist", role: "img", "data-testid": "centre-distribution",
                           style: `max-width:${W}px`,  // shrinks with the window, never grows its text
                           "aria-label": c.t("centre.distribution") });
    for (let v = lo; v <= hi + step / 2; v += step) {
      g.append(svg("line", { x1: x(v), x2: x(v), y1: top, y2: H - 32, class: v === 0 ? "cx-zero" : "cx-grid" }),
        svg("text", { x: x(v), y: H - 18, "text-anchor": "middle", class: "cx-tick" }, `${signed(v, 0)}%`));
    }
    g.append(svg("text", { x: W / 2, y: H - 3, "text-anchor": "middle", class: "cx-axis" }, c.t("centre.axis")));
    series.forEach((s, i) => {
      const y0 = top + i * rowH;
      const vals = s.points.map((p) => p.v).sort((a, b) => a - b);
      const med = vals.length % 2 ? vals[(vals.length - 1) / 2] : (vals[vals.length / 2 - 1] + vals[vals.length / 2]) / 2;
      const label = (s.k.label && (s.k.label[c.lang] || s.k.label.en)) || s.k.key;
      const name = svg("text", { x: L, y: y0 + 14, class: "cx-kpi" }, fit(label, 13));
      name.append(svg("title", {}, label));
      g.append(name, svg("text", { x: L, y: y0 + 30, class: "cx-stat" },
        `n=${vals.length} · ${c.t("centre.median")} ${signed(med)}%` +
        (vals.length > 1 ? ` · ${signed(vals[0])}% … ${signed(vals[vals.length - 1])}%` : "")));
      const cy = y0 + 48;
      g.append(svg("line", { x1: L, x2: W - R, y1: cy, y2: cy, class: "cx-strip" }));
      g.append(svg("line", { x1: x(med), x2: x(med), y1: cy - 10, y2: cy + 10, class: "cx-median" }));
      for (const p of s.points) {
        const dot = svg("circle", { cx: x(p.v), cy, r: 6, class: p.v >= 0 ? "cx-dot cx-dot-good" : "cx-dot cx-dot-bad",
                                    "fill-opacity": p.sig ? "0.9" : "0.35" });
        dot.append(svg("title", {}, `${p.who}: ${signed(p.v)}%`));
        g.append(dot);
      }
    });
    return g;
  }

  // -- one SME ---------------------------------------------------------------------------
  function renderSme(root, d, c) {
    const reasons = d.attention || [];
    const other = otherName(c, d);
    const gw = d.gateway_status || "none";
    const facts = el("dl", { class: "cx-facts" },
      el("dt", {}, c.t("centre.col.rollout")), el("dd", {}, d.rollout_date || c.t("centre.no_rollout")),
      el("dt", {}, c.t("centre.col.gateway")), el("dd", {}, el("span", { class: `cx-badge cx-gw-${gw}` }, c.t(`centre.gw.${gw}`)),
        d.last_seen_ms ? el("span", { class: "cx-sub" }, c.t("centre.last_seen", { ago: ago(c, d.last_seen_ms) })) : null),
      el("dt", {}, c.t("centre.col.coverage")), el("dd", {}, coverageBar(c, d.coverage_24h)),
      el("dt", {}, c.t("centre.col.alarms")), el("dd", {}, String(d.active_alarms ?? 0)));
    const attention = reasons.length ? el("section", { class: "cx-panel cx-attn", "data-testid": "sme-reasons" },
      el("h3", {}, c.t("centre.col.attention")), el("ul", { class: "cx-reasons" }, reasons.map((x) => el("li", { "data-code": x.code }, reasonWords(c, x)))))
      : null;
    const gains = (d.gains || []).filter((g) => g.change_pct !== null && g.change_pct !== undefined);
    const headline = el("section", { class: "cx-panel", "data-testid": "sme-headline" },
      el("h3", {}, c.t("centre.headline")),
      gains.length ? el("ul", { class: "cx-gains" }, gains.map((g) => gainItem(c, g))) : el("p", { class: "cx-sub" }, c.t("centre.no_report")));
    const sites = (d.sites || []).map((s) => el("section", { class: "cx-panel cx-site" },
      el("h3", {}, (c.lang === "en" ? s.name_en || s.name : s.name) || s.site),
      (s.lines || []).map((ln) => lineBlock(c, d.tenant, s, ln))));
    put(root,
      el("nav", { class: "cx-crumbs", "aria-label": c.t("centre.breadcrumb") },
        el("a", { href: "#/centre", "data-testid": "crumb-portfolio" }, c.t("centre.title")), " › ", el("span", {}, nameOf(c, d))),
      el("div", { class: "cx-head" }, el("h2", { "data-testid": "sme-title" }, nameOf(c, d)),
        other ? el("p", { class: "cx-sub" }, other) : null),
      el("div", { class: "cx-grid2" }, el("section", { class: "cx-panel" }, facts), attention || headline),
      attention ? headline : null,
      sites.length ? sites : el("p", { class: "cx-empty" }, c.t("centre.no_machines")));
  }
  function lineBlock(c, tenant, s, ln) {
    const path = [tenant, s.site, ln.line].map(encodeURIComponent).join("/");
    const name = (c.lang === "en" ? ln.name_en || ln.name : ln.name) || ln.line;
    const rows = (ln.machines || []).map((m) => {
      const state = m.state === null || m.state === undefined ? "none" : String(m.state);
      return el("tr", { "data-machine": m.machine },
        el("td", { "data-label": c.t("centre.machine") },
          el("a", { href: `#/machine/${path}/${encodeURIComponent(m.machine)}` }, (c.lang === "en" ? m.name_en || m.name : m.name) || m.machine)),
        el("td", { "data-label": c.t("centre.state") },
          el("span", { class: `cx-state cx-state-${state}` }, c.t(state === "none" ? "state.none" : `state.${state}`))),
        el("td", { "data-label": c.t("centre.last_data") }, m.last_data_ms ? ago(c, m.last_data_ms) : c.t("centre.never")),
        el("td", { "data-label": c.t("centre.col.coverage"), class: "cx-num" }, coverageBar(c, m.coverage_24h)),
        el("td", { "data-label": c.t("centre.col.alarms"), class: "cx-num" }, String(m.active_alarms ?? 0)),
        el("td", { "data-label": c.t("centre.col.gateway") }, m.gateway || c.t("centre.gw.none")));
    });
    return el("div", { class: "cx-line", "data-line": ln.line },
      el("h4", {}, el("a", { href: `#/line/${path}`, "data-testid": "sme-line-link" }, name),
        ln.active_alarms ? el("span", { class: "cx-alarms cx-hot" }, ` ${c.t("centre.col.alarms")}: ${ln.active_alarms}`) : null),
      rows.length ? el("table", { class: "cx-table cx-machines" },
        el("thead", {}, el("tr", {}, ["centre.machine", "centre.state", "centre.last_data", "centre.col.coverage",
          "centre.col.alarms", "centre.col.gateway"].map((k) => el("th", { scope: "col" }, c.t(k))))),
        el("tbody", {}, rows)) : el("p", { class: "cx-sub" }, c.t("centre.no_machines")));
  }

  // -- entry -----------------------------------------------------------------------------
  function failed(root, c, err) {
    const status = err && err.status;
    root.replaceChildren(el("p", { class: "cx-error", role: "alert", "data-testid": "centre-error" },
      status === 404 ? c.t("centre.not_found") : status === 403 ? c.t("centre.forbidden")
        : `${c.t("centre.load_failed")}${status ? ` (HTTP ${status})` : ""}`));
  }

  /** "" for the portfolio, "{tenant}" for one SME, from the route string or the shell's route object. */
  function routePath(route) {
    let r = route;
    if (r && typeof r === "object") {
      if (typeof r.hash === "string" && r.hash.startsWith("#/centre")) r = r.hash.slice("#/centre".length);
      else r = r.tenant ? `/${encodeURIComponent(r.tenant)}` : "";
    }
    return (typeof r === "string" ? r : "").split("?")[0].replace(/^\/+|\/+$/g, "");
  }

  let observer = null;
  /** Re-render in the new language when the shell switches <html lang>, while this page is on screen. */
  function watchLanguage(container, route, ctx) {
    if (observer) observer.disconnect();
    if (typeof MutationObserver !== "function") return;
    const before = document.documentElement.lang;
    observer = new MutationObserver(() => {
      if (document.documentElement.lang === before) return;
      const here = container.querySelector(":scope > .cx");
      if (!here || !container.isConnected) { observer.disconnect(); return; }
      const lang = document.documentElement.lang;
      render(container, route, typeof (ctx && ctx.lang) === "function" ? ctx : { ...(ctx || {}), lang });
    });
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  }

  function render(container, route, ctx) {
    if (!container) return;
    const c = context(ctx);
    const mine = ++seq;
    const path = routePath(route);
    watchLanguage(container, route, ctx);
    const root = el("div", { class: "cx", lang: c.lang, "data-testid": path ? "centre-sme" : "centre" },
      el("p", { class: "cx-loading", role: "status" }, c.t("centre.loading")));
    container.replaceChildren(root);
    if (!path) {
      c.setWhere(c.t("centre.title"));
      c.api("/api/v1/centre/portfolio").then((data) => { if (mine === seq) renderPortfolio(root, data || {}, c, VIEW); })
        .catch((err) => { if (mine === seq) failed(root, c, err); });
    } else {
      const tenant = decodeURIComponent(path.split("/")[0]);
      c.api(`/api/v1/centre/tenants/${encodeURIComponent(tenant)}`)
        .then((data) => { if (mine === seq) { renderSme(root, data || {}, c); c.setWhere(`${c.t("centre.title")} › ${nameOf(c, data || {})}`); } })
        .catch((err) => { if (mine === seq) failed(root, c, err); });
    }
  }

  // _words: the wording alone, for tests of reasons the demo does not produce (ctx as for render)
  window.sfCentre = { render, _words: { gain: (g, ctx) => gainWords(context(ctx), g), reason: (r, ctx) => reasonWords(context(ctx), r) } };
})();
