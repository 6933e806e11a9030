// The account menu: my API tokens (name, created, last used, expires; revoke) and a password change.
// Its own file and its own texts, so the dashboard (dashboard.js, i18n.js) can change without touching it;
// the only hooks are the #account button in index.html and this script tag. Follows the page language
// (<html lang>, set by i18n.js) and shows itself only while someone is logged in (the #logout button).
"use strict";

(() => {
  const TEXTS = {
    ko: {
      menu: "내 계정", title: "내 계정", close: "닫기",
      tokens: "API 토큰", "tokens.none": "발급한 토큰이 없습니다", name: "이름", created: "발급일",
      last_used: "마지막 사용", expires: "만료", never: "사용 안 함", expired: "만료됨", revoke: "폐기",
      "revoke.confirm": "토큰 '{name}'을(를) 폐기할까요? 이 토큰을 쓰는 스크립트는 곧바로 멈춥니다.",
      "new.title": "새 토큰", "new.name": "용도 (예: 야간 내보내기)", "new.days": "유효 기간(일, 비우면 기본값)",
      "new.submit": "발급", "new.secret": "이 토큰은 지금 한 번만 표시됩니다. 안전한 곳에 복사해 두세요:",
      "pw.title": "비밀번호 변경", "pw.current": "현재 비밀번호", "pw.new": "새 비밀번호", "pw.repeat": "새 비밀번호 확인",
      "pw.submit": "변경", "pw.mismatch": "새 비밀번호 두 칸이 다릅니다: 같은 값을 입력하세요",
      "pw.note": "바꾸면 다른 기기의 로그인과 모든 API 토큰이 끝납니다.",
      "pw.done": "비밀번호를 바꿨습니다. 다른 로그인 {s}개와 API 토큰 {t}개를 끝냈습니다.",
      "pw.wrong": "현재 비밀번호가 틀렸습니다: 로그인할 때 쓴 비밀번호를 입력하세요",
      "pw.short": "비밀번호가 8자보다 짧습니다",
      "pw.username": "아이디와 같은 비밀번호는 쓸 수 없습니다",
      "pw.guessable": "추측하기 쉬운 비밀번호입니다",
      "pw.fix": "서로 관계없는 단어 서너 개로 길게 만드세요 (예: lathe-morning-cactus-47). 아이디, 회사 이름, 키보드·숫자 순서는 피하세요.",
      throttled: "시도가 너무 많습니다. {s}초 뒤에 다시 하세요.", failed: "처리하지 못했습니다",
    },
    en: {
      menu: "Account", title: "My account", close: "Close",
      tokens: "API tokens", "tokens.none": "You have no tokens", name: "Name", created: "Created",
      last_used: "Last used", expires: "Expires", never: "never", expired: "expired", revoke: "Revoke",
      "revoke.confirm": "Revoke the token '{name}'? Scripts that use it stop at once.",
      "new.title": "New token", "new.name": "What it is for (e.g. nightly export)", "new.days": "Valid for (days; empty: default)",
      "new.submit": "Create", "new.secret": "This token is shown only now. Copy it somewhere safe:",
      "pw.title": "Change password", "pw.current": "Current password", "pw.new": "New password", "pw.repeat": "Repeat new password",
      "pw.submit": "Change", "pw.mismatch": "The two new passwords differ: type the same one twice",
      "pw.note": "Changing it ends your logins on other devices and all your API tokens.",
      "pw.done": "Password changed. Ended {s} other logins and {t} API tokens.",
      "pw.wrong": "The current password is wrong: type the password you logged in with",
      "pw.short": "The password is shorter than 8 characters",
      "pw.username": "The password may not be the username",
      "pw.guessable": "The password is too easy to guess",
      "pw.fix": "Use three or four unrelated words (e.g. lathe-morning-cactus-47); avoid your username, the company's name and keyboard or number sequences.",
      throttled: "Too many attempts. Try again in {s} s.", failed: "That did not work",
    },
  };
  const lang = () => (document.documentElement.lang === "en" ? "en" : "ko");
  const tx = (key, params = {}) => (TEXTS[lang()][key] ?? TEXTS.en[key] ?? key)
    .replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
  const make = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
    }
    for (const c of kids) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  };
  const when = (ms) => (ms === null || ms === undefined ? tx("never")
    : new Date(ms).toLocaleString(lang() === "ko" ? "ko-KR" : "en-GB", { dateStyle: "medium", timeStyle: "short" }));

  async function call(path, opts = {}) {
    const r = await fetch(path, { credentials: "same-origin", ...opts, headers: { "Content-Type": "application/json" } });
    const body = await r.json().catch(() => ({}));
    if (r.status === 401 && typeof showLogin === "function") { close(); showLogin(); }
    return { status: r.status, body, retry: r.headers.get("Retry-After") };
  }

  const button = document.getElementById("account");
  const panel = make("section", { id: "account-panel", class: "panel account", hidden: true, "data-testid": "account-panel" });
  // placed here, not in style.css, so the dashboard's stylesheet can be redesigned without this panel
  panel.style.cssText = "position:absolute;right:1rem;top:3.2rem;width:min(46rem,calc(100vw - 2rem));z-index:10;"
    + "box-shadow:0 4px 16px #0003;max-height:calc(100vh - 4rem);overflow:auto";
  document.body.append(panel);
  let secret = null;  // the token just created: shown until the panel closes, never fetched again

  function close() { panel.hidden = true; secret = null; panel.replaceChildren(); button.setAttribute("aria-expanded", "false"); }

  async function render() {
    const r = await call("/api/v1/me/tokens");
    if (r.status !== 200) return;
    const rows = r.body.map((tk) => make("tr", { "data-testid": "token-row" },
      make("td", {}, tk.name), make("td", {}, when(tk.created_ms)), make("td", {}, when(tk.last_used_ms)),
      make("td", { class: tk.expired ? "error" : "" }, tk.expired ? `${tx("expired")} (${when(tk.expires_ms)})` : when(tk.expires_ms)),
      make("td", { class: "actions" }, revokeButton(tk))));
    const table = rows.length
      ? make("table", { class: "rules-table" }, make("thead", {}, make("tr", {}, ...["name", "created", "last_used", "expires", ""]
        .map((k) => make("th", {}, k ? tx(k) : "")))), make("tbody", {}, ...rows))
      : make("p", { class: "muted" }, tx("tokens.none"));
    panel.replaceChildren(
      make("div", { class: "panel-head" }, make("h3", {}, tx("title")),
        make("button", { type: "button", class: "btn", onclick: close }, tx("close"))),
      make("h4", {}, tx("tokens")), table, newTokenForm(), passwordForm());
  }

  function revokeButton(tk) {
    return make("button", { type: "button", class: "btn danger", "data-testid": "token-revoke", onclick: async () => {
      if (!confirm(tx("revoke.confirm", { name: tk.name }))) return;
      await call(`/api/v1/me/tokens/${tk.id}`, { method: "DELETE" });
      render();
    } }, tx("revoke"));
  }

  function newTokenForm() {
    const name = make("input", { name: "token-name", required: true, maxLength: 100 });
    const days = make("input", { name: "token-days", type: "number", min: "1", step: "1" });
    const error = make("p", { class: "field-error", role: "alert" });
    const form = make("form", { class: "rule-form" }, make("h4", {}, tx("new.title")),
      make("div", { class: "fields" },
        make("label", { class: "field" }, make("span", {}, tx("new.name")), name),
        make("label", { class: "field" }, make("span", {}, tx("new.days")), days)),
      make("div", { class: "form-actions" }, make("button", { type: "submit", class: "btn primary" }, tx("new.submit"))), error);
    if (secret) form.append(make("p", {}, tx("new.secret")), make("p", { class: "mono", "data-testid": "token-secret" }, secret));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const body = { name: name.value };
      if (days.value) body.expires_in_days = Number(days.value);
      const r = await call("/api/v1/me/tokens", { method: "POST", body: JSON.stringify(body) });
      if (r.status === 201) { secret = r.body.token; render(); return; }
      error.textContent = (r.body.detail && r.body.detail[0] && r.body.detail[0].msg) || tx("failed");
    });
    return form;
  }

  function explain(err) {
    if (!err || err.type !== "password.weak") return (err && err.msg) || tx("failed");
    if (lang() === "en") return err.msg;
    const problem = err.ctx.problem;
    // zxcvbn's reasons come in English; the common ones in Korean, the rest left out (the fix says enough)
    const why = /common/i.test(problem) ? " (흔히 쓰이는 비밀번호)" : /username or the company/.test(problem)
      ? " (아이디나 회사 이름으로 만든 비밀번호)" : /sequence|repeat/i.test(problem) ? " (연속되거나 반복되는 문자)" : "";
    const what = problem.includes("fewer than") ? tx("pw.short") : problem.includes("is the username") ? tx("pw.username")
      : tx("pw.guessable") + why;
    return `${what}. ${tx("pw.fix")}`;
  }

  function passwordForm() {
    const field = (key, name, auto) => make("input", { name, type: "password", autocomplete: auto, required: true });
    const current = field("pw.current", "current-password", "current-password");
    const fresh = field("pw.new", "new-password", "new-password");
    const repeat = field("pw.repeat", "repeat-password", "new-password");
    const message = make("p", { class: "field-error", role: "alert", "data-testid": "password-message" });
    const form = make("form", { class: "rule-form" }, make("h4", {}, tx("pw.title")), make("p", { class: "muted small" }, tx("pw.note")),
      make("div", { class: "fields" },
        make("label", { class: "field" }, make("span", {}, tx("pw.current")), current),
        make("label", { class: "field" }, make("span", {}, tx("pw.new")), fresh),
        make("label", { class: "field" }, make("span", {}, tx("pw.repeat")), repeat)),
      make("div", { class: "form-actions" }, make("button", { type: "submit", class: "btn primary" }, tx("pw.submit"))), message);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      message.className = "field-error";
      if (fresh.value !== repeat.value) { message.textContent = tx("pw.mismatch"); return; }
      const r = await call("/api/v1/me/password", { method: "POST",
        body: JSON.stringify({ current_password: current.value, new_password: fresh.value }) });
      if (r.status === 200) {
        await render();
        const done = panel.querySelector("[data-testid=password-message]");
        done.className = "muted"; done.textContent = tx("pw.done", { s: r.body.sessions_ended - 1, t: r.body.tokens_ended });
        return;
      }
      if (r.status === 429) { message.textContent = tx("throttled", { s: r.retry || "?" }); return; }
      if (r.status === 403) { message.textContent = tx("pw.wrong"); return; }
      message.textContent = explain(Array.isArray(r.body.detail) ? r.body.detail[0] : null);
    });
    return form;
  }

  button.addEventListener("click", () => {
    if (!panel.hidden) { close(); return; }
    panel.hidden = false; button.setAttribute("aria-expanded", "true");
    render();
  });
  let shownIn = null;
  const follow = () => {
    const logout = document.getElementById("logout");
    button.hidden = !logout || logout.hidden;
    if (button.hidden) close();
    button.textContent = tx("menu");
    if (shownIn !== lang()) { shownIn = lang(); if (!panel.hidden) render(); }  // i18n.js sets lang on every redraw
  };
  new MutationObserver(follow).observe(document.getElementById("logout"), { attributes: true, attributeFilter: ["hidden"] });
  new MutationObserver(follow).observe(document.documentElement, { attributes: true, attributeFilter: ["lang"] });
  follow();
})();
