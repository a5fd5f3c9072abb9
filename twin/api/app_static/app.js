// The admin app: a client of the daemon's REST API (no logic the API lacks). Preact + htm as
// vendored ES modules, no build step. The session is a cookie the browser keeps (HttpOnly: this
// code never sees it); the CSRF token lives in memory only and is read again after a reload.
import { html, render, useEffect, useState, useCallback, useRef } from "./htm-preact.module.js";
import { LANGUAGES, initialLanguage, translator } from "./i18n.js";

const EVENTS = [
  "message.received", "message.skipped", "reply.scheduled", "reply.sent", "reply.skipped",
  "reply.failed", "reply.escalated", "draft.created", "draft.sent", "draft.skipped",
  "chat.paused", "chat.resumed", "account.mode", "account.authorized", "correction.recorded",
];
const SAFE = new Set(["GET", "HEAD"]);
let csrf = null;

class SignedOut extends Error {}

// An API error in the one shape: its message, the fields it names, and a wait (429).
class Failure extends Error {
  constructor(status, error, retryAfter) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.details = error?.details || [];
    this.retryAfter = retryAfter;
  }
}

// What to tell the owner of a failure: the fields' own words when the API named fields.
function said(failure, withField = false) {
  if (!failure.details?.length) return failure.message;
  return failure.details.map((d) => (withField ? `${d.field}: ${d.error}` : d.error)).join("; ");
}

async function api(method, path, body) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE.has(method) && csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 401) throw new SignedOut();
  if (response.status === 204) return null;
  const data = await response.json();
  if (!response.ok) {
    const wait = Number(response.headers.get("Retry-After")) || null;
    throw new Failure(response.status, data?.error, wait);
  }
  return data;
}

function SignIn({ t, onSignedIn, notice }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState(notice || "");
  const submit = async (event) => {
    event.preventDefault();
    try {
      const session = await api("POST", "/app/session", { key });
      csrf = session.csrf_token;
      onSignedIn();
    } catch (_) {
      setError(t("wrongKey"));
    }
  };
  return html`<main class="signin">
    <h1>${t("title")}</h1>
    <p>${t("signInLead")}</p>
    <form onSubmit=${submit}>
      <label for="key">${t("key")}</label>
      <input id="key" type="password" autocomplete="current-password" required
        value=${key} onInput=${(e) => setKey(e.target.value)} />
      <button type="submit">${t("signIn")}</button>
      <p role="alert" class="error">${error}</p>
    </form>
  </main>`;
}

function Failed({ error }) {
  return html`<p role="alert" class="error">${String(error?.message || error)}</p>`;
}

function useLoad(loader, deps) {
  const [state, setState] = useState({ data: null, error: null });
  const reload = useCallback(() => {
    loader().then((data) => setState({ data, error: null }),
                  (error) => setState({ data: null, error }));
  }, deps);
  useEffect(reload, [reload]);
  return [state, reload];
}

// Log an account out of Telegram: asked twice (the button turns into a confirmation).
function LogOut({ t, account, onDone }) {
  const [confirming, setConfirming] = useState(false);
  const [error, setError] = useState("");
  const logOut = async () => {
    if (!confirming) return setConfirming(true);
    try {
      await api("POST", "/auth/logout", { account: account.name });
      onDone();
    } catch (failure) {
      setError(failure.message);
    }
    setConfirming(false);
  };
  return html`<button class=${confirming ? "" : "secondary"} onClick=${logOut}
      aria-label=${(confirming ? t("confirmLogOut") : t("logOut")) + " " + account.name}>
      ${confirming ? t("confirmLogOut") : t("logOut")}</button>
    ${error && html`<span role="alert" class="error">${error}</span>`}`;
}

function Overview({ t, onSignedOut }) {
  const [accounts, reloadAccounts] = useLoad(() => api("GET", "/accounts"), []);
  const [stats, reloadStats] = useLoad(() => api("GET", "/stats?days=1"), []);
  const [drafts, reloadDrafts] = useLoad(() => api("GET", "/drafts"), []);
  const [events, setEvents] = useState([]);
  useEffect(() => {
    const source = new EventSource("/events");  // the cookie goes with it
    const seen = (event) => {
      const data = JSON.parse(event.data);
      setEvents((list) => [data, ...list].slice(0, 30));
      if (event.type.startsWith("draft.")) reloadDrafts();
      if (event.type.startsWith("reply.") || event.type.startsWith("message.")) reloadStats();
    };
    EVENTS.forEach((type) => source.addEventListener(type, seen));
    return () => source.close();
  }, []);
  for (const failed of [accounts.error, stats.error, drafts.error]) {
    if (failed instanceof SignedOut) onSignedOut();
  }
  const totals = stats.data?.totals;
  return html`<section aria-labelledby="accounts-h">
      <h2 id="accounts-h">${t("accounts")}</h2>
      ${accounts.data ? html`<table>
        <thead><tr><th scope="col">${t("name")}</th><th scope="col">${t("user")}</th><th scope="col">${t("status")}</th>
          <th scope="col"><span class="sr-only">${t("logOut")}</span></th></tr></thead>
        <tbody>${accounts.data.accounts.map((a) => html`<tr>
          <td>${a.name}</td><td>${a.username ? "@" + a.username : a.user_id ?? ""}</td>
          <td><span class=${"badge " + a.status}>${a.status}</span></td>
          <td>${a.authorized && html`<${LogOut} t=${t} account=${a} onDone=${reloadAccounts} />`}</td></tr>`)}</tbody>
      </table>` : accounts.error ? html`<${Failed} error=${accounts.error} />` : html`<p>${t("loading")}</p>`}
    </section>
    <section aria-labelledby="today-h">
      <h2 id="today-h">${t("today")}</h2>
      ${totals ? html`<ul class="figures">
        ${[["received", "received"], ["replied", "replied"], ["skipped_total", "skipped"],
           ["escalated", "escalated"], ["failed", "failed"]].map(([field, word]) => html`
          <li><strong data-figure=${word}>${Number(totals[field] ?? 0)}</strong> ${t(word)}</li>`)}
        <li><strong data-figure="drafts">${drafts.data?.drafts.length ?? 0}</strong> ${t("draftsWaiting")}</li>
      </ul>` : html`<p>${t("loading")}</p>`}
    </section>
    <section aria-labelledby="activity-h">
      <h2 id="activity-h">${t("activity")}</h2>
      <ol class="feed" aria-live="polite">
        ${events.length ? events.map((e) => html`<li data-type=${e.type}>
          <time>${new Date(e.created_at || Date.now()).toLocaleTimeString()}</time>
          <code>${e.type}</code> ${e.account ?? ""} ${e.chat ?? ""}</li>`)
          : html`<li class="muted">${t("noActivity")}</li>`}
      </ol>
    </section>`;
}

function Chats({ t, onSignedOut }) {
  const [chats, reload] = useLoad(() => api("GET", "/chats"), []);
  if (chats.error instanceof SignedOut) onSignedOut();
  const act = async (chat, action) => {
    try {
      await api("POST", `/chats/${chat.id}/${action}`, action === "pause" ? {} : undefined);
    } catch (error) {
      if (error instanceof SignedOut) return onSignedOut();
    }
    reload();
  };
  const setMode = async (chat, mode) => {
    try {
      await api("PUT", `/chats/${chat.id}/settings`, { twin: mode ? { mode } : { mode: null } });
    } catch (error) {
      if (error instanceof SignedOut) return onSignedOut();
    }
  };
  if (!chats.data) return html`<p>${t("loading")}</p>`;
  if (!chats.data.chats.length) return html`<p>${t("noChats")}</p>`;
  return html`<section aria-labelledby="chats-h"><h2 id="chats-h">${t("chats")}</h2><table>
    <thead><tr><th scope="col">${t("chat")}</th><th scope="col">${t("state")}</th><th scope="col">${t("lastMessage")}</th><th scope="col"><span class="sr-only">${t("pause")}</span></th><th scope="col">${t("mode")}</th></tr></thead>
    <tbody>${chats.data.chats.map((c) => html`<tr data-chat=${c.id}>
      <td>${c.title || c.username || c.id}</td>
      <td>${c.paused ? t("paused") : t("active")}</td>
      <td>${c.last_incoming_at ? new Date(c.last_incoming_at).toLocaleString() : ""}</td>
      <td>${c.paused
        ? html`<button onClick=${() => act(c, "resume")}>${t("resume")}</button>`
        : html`<button onClick=${() => act(c, "pause")}>${t("pause")}</button>`}</td>
      <td><label class="sr-only" for=${"mode-" + c.id}>${t("mode")}</label>
        <select id=${"mode-" + c.id} onChange=${(e) => setMode(c, e.target.value)}>
          <option value="">${t("modeDefault")}</option>
          ${["auto", "draft", "off"].map((m) => html`<option value=${m}>${t("mode_" + m)}</option>`)}
        </select></td>
    </tr>`)}</tbody></table></section>`;
}

// Connect a Telegram account: phone → code → two-step password, Telegram's refusals shown as
// the API words them (a wrong or expired code, a flood wait with the time left).
function Connect({ t, onSignedOut }) {
  const [step, setStep] = useState("phone");  // phone | code | password | done
  const [form, setForm] = useState({ account: "default", phone: "", code: "", password: "" });
  const [info, setInfo] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const field = (name) => (e) => setForm({ ...form, [name]: e.target.value });
  const run = async (event, call) => {
    event.preventDefault();
    setError(""); setBusy(true);
    try { await call(); } catch (failure) {
      if (failure instanceof SignedOut) return onSignedOut();
      const words = said(failure);
      setError(failure.retryAfter ? `${words} ${t("retryIn").replace("{s}", failure.retryAfter)}` : words);
    } finally { setBusy(false); }
  };
  const done = (result) => {
    const who = result.user?.username ? "@" + result.user.username : result.user?.name;
    setInfo(t("connectedAs").replace("{who}", who || form.account));
    setStep("done");
  };
  const sendCode = (e) => run(e, async () => {
    const sent = await api("POST", "/auth/request_code", { phone: form.phone, account: form.account });
    setInfo(t("codeSentBy").replace("{how}", sent.type));
    setStep("code");
  });
  const verify = (e) => run(e, async () => {
    const result = await api("POST", "/auth/verify_code",
      { phone: form.phone, code: form.code, account: form.account });
    if (result.status === "password_required") {
      setInfo(result.hint ? t("passwordHint").replace("{hint}", result.hint) : t("passwordNeeded"));
      setStep("password");
    } else done(result);
  });
  const password = (e) => run(e, async () => {
    done(await api("POST", "/auth/password", { password: form.password, account: form.account }));
  });
  return html`<section aria-labelledby="connect-h"><h2 id="connect-h">${t("connect")}</h2>
    <p role="status">${info}</p>
    ${step === "phone" && html`<form onSubmit=${sendCode} class="stack">
      <label for="account">${t("accountName")}</label>
      <input id="account" required value=${form.account} onInput=${field("account")} />
      <label for="phone">${t("phone")}</label>
      <input id="phone" type="tel" autocomplete="tel" required placeholder="+7 999 123 45 67"
        value=${form.phone} onInput=${field("phone")} />
      <button type="submit" disabled=${busy}>${t("sendCode")}</button></form>`}
    ${step === "code" && html`<form onSubmit=${verify} class="stack">
      <label for="code">${t("code")}</label>
      <input id="code" inputmode="numeric" autocomplete="one-time-code" required
        value=${form.code} onInput=${field("code")} />
      <button type="submit" disabled=${busy}>${t("verify")}</button></form>`}
    ${step === "password" && html`<form onSubmit=${password} class="stack">
      <label for="password">${t("password")}</label>
      <input id="password" type="password" autocomplete="current-password" required
        value=${form.password} onInput=${field("password")} />
      <button type="submit" disabled=${busy}>${t("verify")}</button></form>`}
    <p role="alert" class="error">${error}</p>
  </section>`;
}

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

// Working hours, a weekly editor: each day's spans as "09:00-13:00, 14:00-18:00" (empty:
// closed), and the time zone. The API validates; its errors are shown next to the field they
// name (`details[].field`, e.g. `schedule.hours.mon`).
function Settings({ t, onSignedOut }) {
  const [loaded, reload] = useLoad(() => api("GET", "/settings"), []);
  const [draft, setDraft] = useState(null);
  const [errors, setErrors] = useState({});
  const [saved, setSaved] = useState("");
  if (loaded.error instanceof SignedOut) onSignedOut();
  const schedule = loaded.data?.effective.schedule;
  useEffect(() => {
    if (!schedule) return;
    const days = {};
    DAYS.forEach((d) => { days[d] = (schedule.hours[d] || []).join(", "); });
    setDraft({ days, timezone: schedule.timezone });
  }, [loaded.data]);
  if (!draft) return loaded.error ? html`<${Failed} error=${loaded.error} />` : html`<p>${t("loading")}</p>`;
  const save = async (event) => {
    event.preventDefault();
    setSaved(""); setErrors({});
    const hours = {};
    DAYS.forEach((d) => {
      hours[d] = draft.days[d].split(",").map((span) => span.trim()).filter(Boolean);
    });
    try {
      await api("PUT", "/settings", { schedule: { hours, timezone: draft.timezone } });
      setSaved(t("saved"));
      reload();
    } catch (failure) {
      if (failure instanceof SignedOut) return onSignedOut();
      const found = {};
      for (const detail of failure.details || []) {
        const day = (detail.field.match(/^schedule\.hours\.(\w+)/) || [])[1];
        const key = day || (detail.field.startsWith("schedule.timezone") ? "timezone" : "form");
        found[key] = detail.error;
      }
      if (!Object.keys(found).length) found.form = failure.message;
      setErrors(found);
    }
  };
  const setDay = (day) => (e) => setDraft({ ...draft, days: { ...draft.days, [day]: e.target.value } });
  return html`<section aria-labelledby="hours-h"><h2 id="hours-h">${t("workingHours")}</h2>
    <p>${t("hoursHelp")}</p>
    <form onSubmit=${save} class="stack hours">
      ${DAYS.map((day) => html`<label for=${"hours-" + day}>${t("day_" + day)}</label>
        <input id=${"hours-" + day} value=${draft.days[day]} onInput=${setDay(day)}
          aria-invalid=${errors[day] ? "true" : null}
          aria-describedby=${errors[day] ? "hours-" + day + "-error" : null} />
        ${errors[day] && html`<p id=${"hours-" + day + "-error"} class="error field-error">${errors[day]}</p>`}`)}
      <label for="timezone">${t("timezone")}</label>
      <input id="timezone" value=${draft.timezone}
        onInput=${(e) => setDraft({ ...draft, timezone: e.target.value })}
        aria-invalid=${errors.timezone ? "true" : null}
        aria-describedby=${errors.timezone ? "timezone-error" : null} />
      ${errors.timezone && html`<p id="timezone-error" class="error field-error">${errors.timezone}</p>`}
      <button type="submit">${t("save")}</button>
      <p role="status">${saved}</p>
      ${errors.form && html`<p role="alert" class="error">${errors.form}</p>`}
    </form></section>`;
}

// The twin's drafts (copilot mode): send as written, edit and send, or skip — live, as drafts
// are written; the latest style score and the newest corrections beside them.
function Drafts({ t, onSignedOut }) {
  const [drafts, reload] = useLoad(() => api("GET", "/drafts"), []);
  const [score] = useLoad(() => api("GET", "/style/evals?limit=1"), []);
  const [corrections, reloadCorrections] = useLoad(() => api("GET", "/corrections?limit=10"), []);
  const [editing, setEditing] = useState({});  // draft id -> the owner's text
  const [error, setError] = useState("");
  useEffect(() => {
    const source = new EventSource("/events");
    const changed = () => { reload(); reloadCorrections(); };
    ["draft.created", "draft.sent", "draft.skipped", "draft.expired", "draft.cancelled"]
      .forEach((type) => source.addEventListener(type, changed));
    return () => source.close();
  }, []);
  for (const failed of [drafts.error, score.error, corrections.error]) {
    if (failed instanceof SignedOut) onSignedOut();
  }
  const decide = async (draft, action, text) => {
    setError("");
    try {
      await api("POST", `/drafts/${draft.id}/${action}`, action === "send" && text !== undefined ? { text } : {});
      setEditing((all) => { const rest = { ...all }; delete rest[draft.id]; return rest; });
    } catch (failure) {
      if (failure instanceof SignedOut) return onSignedOut();
      setError(said(failure));
    }
    reload(); reloadCorrections();
  };
  const latest = score.data?.evals?.[0];
  return html`<section aria-labelledby="drafts-h"><h2 id="drafts-h">${t("drafts")}</h2>
      ${error && html`<p role="alert" class="error">${error}</p>`}
      ${!drafts.data ? html`<p>${t("loading")}</p>` : !drafts.data.drafts.length
        ? html`<p class="muted">${t("noDrafts")}</p>`
        : html`<ul class="drafts">${drafts.data.drafts.map((d) => html`<li data-draft=${d.id}>
          <p><strong>${d.title || d.chat}</strong></p>
          ${d.id in editing
            ? html`<label for=${"edit-" + d.id}>${t("yourText")}</label>
              <textarea id=${"edit-" + d.id} rows="3" value=${editing[d.id]}
                onInput=${(e) => setEditing({ ...editing, [d.id]: e.target.value })}></textarea>
              <button onClick=${() => decide(d, "send", editing[d.id])}>${t("sendEdited")}</button>`
            : html`<blockquote>${d.text}</blockquote>
              <button onClick=${() => decide(d, "send")}>${t("send")}</button>
              <button class="secondary" onClick=${() => setEditing({ ...editing, [d.id]: d.text })}>${t("edit")}</button>`}
          <button class="secondary" onClick=${() => decide(d, "skip")}>${t("skip")}</button>
        </li>`)}</ul>`}
    </section>
    <section aria-labelledby="score-h"><h2 id="score-h">${t("styleScore")}</h2>
      ${latest ? html`<p><strong data-score>${latest.score}</strong> / 100 · ${latest.model} ·
          ${new Date(latest.created_at).toLocaleDateString()}</p>`
        : html`<p class="muted">${t("noScore")}</p>`}
    </section>
    <section aria-labelledby="corrections-h"><h2 id="corrections-h">${t("corrections")}</h2>
      ${corrections.data?.corrections?.length ? html`<ul>${corrections.data.corrections.map((c) =>
        html`<li><code>${c.kind}</code> ${c.context}</li>`)}</ul>`
        : html`<p class="muted">${t("noCorrections")}</p>`}
    </section>`;
}

const SCOPES = ["admin", "chat", "webhook:talkme", "external", "analytics", "conversation", "messaging"];

// API keys: create one (shown once, here only), see them all (never their secrets), revoke.
function Keys({ t, onSignedOut }) {
  const [keys, reload] = useLoad(() => api("GET", "/keys"), []);
  const [form, setForm] = useState({ name: "", scope: "chat" });
  const [shown, setShown] = useState(null);  // the new key, this once
  const [error, setError] = useState("");
  if (keys.error instanceof SignedOut) onSignedOut();
  const create = async (event) => {
    event.preventDefault();
    setError(""); setShown(null);
    try {
      const created = await api("POST", "/keys", { name: form.name, scopes: [form.scope] });
      setShown(created.key);
      setForm({ ...form, name: "" });
    } catch (failure) {
      if (failure instanceof SignedOut) return onSignedOut();
      setError(said(failure, true));
    }
    reload();
  };
  const revoke = async (key) => {
    try { await api("DELETE", `/keys/${encodeURIComponent(key.name)}`); } catch (failure) {
      if (failure instanceof SignedOut) return onSignedOut();
      setError(failure.message);
    }
    reload();
  };
  return html`<section aria-labelledby="keys-h"><h2 id="keys-h">${t("keys")}</h2>
    <form onSubmit=${create} class="stack">
      <label for="key-name">${t("keyName")}</label>
      <input id="key-name" required value=${form.name} onInput=${(e) => setForm({ ...form, name: e.target.value })} />
      <label for="key-scope">${t("scope")}</label>
      <select id="key-scope" value=${form.scope} onChange=${(e) => setForm({ ...form, scope: e.target.value })}>
        ${SCOPES.map((scope) => html`<option value=${scope}>${scope}</option>`)}
      </select>
      <button type="submit">${t("createKey")}</button>
    </form>
    ${error && html`<p role="alert" class="error">${error}</p>`}
    ${shown && html`<div class="shown" role="status"><p>${t("keyShownOnce")}</p>
      <code data-new-key>${shown}</code></div>`}
    ${keys.data && html`<table><thead><tr><th scope="col">${t("name")}</th><th scope="col">${t("scope")}</th>
      <th scope="col">${t("state")}</th><th scope="col"><span class="sr-only">${t("revoke")}</span></th></tr></thead>
      <tbody>${keys.data.keys.map((k) => html`<tr data-key=${k.name}><td>${k.name} <code>${k.prefix}…</code></td>
        <td>${k.scopes.join(", ")}</td><td>${k.revoked_at ? t("revoked") : t("active")}</td>
        <td>${!k.revoked_at && html`<button class="secondary" aria-label=${t("revoke") + " " + k.name}
          onClick=${() => revoke(k)}>${t("revoke")}</button>`}</td></tr>`)}</tbody></table>`}
  </section>`;
}

function stylesheet(name) {
  if (document.querySelector(`link[data-sheet="${name}"]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet"; link.href = name; link.dataset.sheet = name;
  document.head.append(link);
}

// Received and answered per day: a uPlot chart (loaded only here, not with the app) over the
// same figures as the table under it, which is what screen readers get.
function Stats({ t, onSignedOut }) {
  const [loaded] = useLoad(() => api("GET", "/stats?days=14"), []);
  const chart = useRef(null);
  if (loaded.error instanceof SignedOut) onSignedOut();
  const days = loaded.data?.days;
  useEffect(() => {
    if (!days || !chart.current) return undefined;
    let plot = null;
    let gone = false;
    (async () => {
      stylesheet(new URL("./uPlot.min.css", import.meta.url).href);
      const { default: uPlot } = await import("./uPlot.esm.js");
      if (gone) return;
      const xs = days.map((d) => Date.parse(d.date + "T00:00:00Z") / 1000);
      plot = new uPlot({
        width: Math.max(280, Math.min(chart.current.clientWidth || 640, 960)), height: 260,
        scales: { x: { time: true } },
        series: [{}, { label: t("received"), stroke: "#0b57d0", width: 2 },
                 { label: t("replied"), stroke: "#b3261e", width: 2, dash: [6, 4] }],
      }, [xs, days.map((d) => d.received), days.map((d) => d.replied)], chart.current);
    })();
    return () => { gone = true; plot?.destroy(); };
  }, [days, t]);
  if (!days) return loaded.error ? html`<${Failed} error=${loaded.error} />` : html`<p>${t("loading")}</p>`;
  return html`<section aria-labelledby="stats-h"><h2 id="stats-h">${t("stats")}</h2>
    <div class="chart" ref=${chart} aria-hidden="true"></div>
    <table class="days"><caption>${t("perDay")}</caption>
      <thead><tr><th scope="col">${t("date")}</th><th scope="col">${t("received")}</th>
        <th scope="col">${t("replied")}</th><th scope="col">${t("skipped")}</th>
        <th scope="col">${t("failed")}</th></tr></thead>
      <tbody>${[...days].reverse().map((d) => html`<tr data-date=${d.date}><td>${d.date}</td>
        <td>${d.received}</td><td>${d.replied}</td><td>${d.skipped_total}</td><td>${d.failed}</td></tr>`)}
      </tbody></table></section>`;
}

function App() {
  const [language, setLanguage] = useState(initialLanguage());
  const [state, setState] = useState("loading");  // loading | signedOut | signedIn
  const [notice, setNotice] = useState("");
  const pageOf = () =>
    (location.hash.match(/^#\/(chats|connect|settings|stats|drafts|keys)/) || [null, "overview"])[1];
  const [page, setPage] = useState(pageOf());
  const t = translator(language);
  useEffect(() => { document.documentElement.lang = language; }, [language]);
  useEffect(() => {
    const onHash = () => setPage(pageOf());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  useEffect(() => {
    (async () => {
      const link = location.hash.match(/^#login=(.+)$/);
      try {
        if (link) {
          history.replaceState(null, "", location.pathname);  // the token leaves the URL
          csrf = (await api("POST", "/app/session", { link: link[1] })).csrf_token;
        } else {
          csrf = (await api("GET", "/app/session")).csrf_token;
        }
        setState("signedIn");
      } catch (_) {
        setState("signedOut");
      }
    })();
  }, []);
  const signedOut = () => { csrf = null; setNotice(t("sessionEnded")); setState("signedOut"); };
  const signOut = async (everywhere) => {
    try { await api("DELETE", everywhere ? "/app/sessions" : "/app/session"); } catch (_) {}
    if (everywhere) { try { await api("DELETE", "/app/session"); } catch (_) {} }
    csrf = null; setNotice(""); setState("signedOut");
  };
  const chooseLanguage = (value) => { sessionStorage.setItem("twin-language", value); setLanguage(value); };
  const switcher = html`<label class="language">${t("language")}
    <select value=${language} onChange=${(e) => chooseLanguage(e.target.value)}>
      ${LANGUAGES.map((l) => html`<option value=${l}>${l.toUpperCase()}</option>`)}
    </select></label>`;
  if (state === "loading") return html`<p>${t("loading")}</p>`;
  if (state === "signedOut") {
    return html`${switcher}<${SignIn} t=${t} notice=${notice}
      onSignedIn=${() => { setNotice(""); setState("signedIn"); }} />`;
  }
  return html`<header>
      <strong class="brand">twin</strong>
      <nav aria-label="main"><a href="#/" aria-current=${page === "overview" ? "page" : null}>${t("dashboard")}</a>
        <a href="#/chats" aria-current=${page === "chats" ? "page" : null}>${t("chats")}</a>
        <a href="#/drafts" aria-current=${page === "drafts" ? "page" : null}>${t("drafts")}</a>
        <a href="#/stats" aria-current=${page === "stats" ? "page" : null}>${t("stats")}</a>
        <a href="#/settings" aria-current=${page === "settings" ? "page" : null}>${t("settings")}</a>
        <a href="#/keys" aria-current=${page === "keys" ? "page" : null}>${t("keys")}</a>
        <a href="#/connect" aria-current=${page === "connect" ? "page" : null}>${t("connect")}</a></nav>
      ${switcher}
      <button onClick=${() => signOut(false)}>${t("signOut")}</button>
      <button class="secondary" onClick=${() => signOut(true)}>${t("signOutEverywhere")}</button>
    </header>
    <main>${page === "chats" ? html`<${Chats} t=${t} onSignedOut=${signedOut} />`
      : page === "connect" ? html`<${Connect} t=${t} onSignedOut=${signedOut} />`
      : page === "settings" ? html`<${Settings} t=${t} onSignedOut=${signedOut} />`
      : page === "stats" ? html`<${Stats} t=${t} onSignedOut=${signedOut} />`
      : page === "drafts" ? html`<${Drafts} t=${t} onSignedOut=${signedOut} />`
      : page === "keys" ? html`<${Keys} t=${t} onSignedOut=${signedOut} />`
      : html`<${Overview} t=${t} onSignedOut=${signedOut} />`}</main>`;
}

render(html`<${App} />`, document.getElementById("app"));
