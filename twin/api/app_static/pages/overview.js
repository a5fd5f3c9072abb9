// At a glance: accounts and bots with their live state and the safety governor's mode, today's
// figures, drafts waiting, and the live activity feed (the event stream).
import { html, useState } from "../htm-preact.module.js";
import { api, everyAccount, Loading, query, useAction, useEvents, useLoad } from "../lib.js";

const EVENTS = [
  "message.received", "message.skipped", "reply.scheduled", "reply.sent", "reply.skipped",
  "reply.failed", "reply.escalated", "draft.created", "draft.sent", "draft.skipped",
  "chat.paused", "chat.resumed", "account.mode", "account.authorized", "account.logged_out",
  "correction.recorded", "bot.added", "message.sent",
];

// Log an account out of Telegram: asked twice (the button turns into a confirmation).
function LogOut({ t, account, onDone }) {
  const [confirming, setConfirming] = useState(false);
  const [run, error] = useAction();
  const logOut = async () => {
    if (!confirming) return setConfirming(true);
    await run(() => api("POST", "/auth/logout", { account: account.name }));
    setConfirming(false);
    onDone();
  };
  const word = confirming ? t("confirmLogOut") : t("logOut");
  return html`<button class=${confirming ? "" : "secondary"} onClick=${logOut}
      aria-label=${word + " " + account.name}>${word}</button>
    ${error && html`<span role="alert" class="error">${error}</span>`}`;
}

async function accountsWithSafety() {
  const { accounts } = await api("GET", "/accounts");
  const safety = await Promise.all(accounts.map((a) =>
    api("GET", `/accounts/${encodeURIComponent(a.name)}/safety`).catch(() => null)));
  return accounts.map((a, i) => ({ ...a, safety: safety[i] }));
}

export default function Overview({ t }) {
  const [accounts, reloadAccounts] = useLoad(accountsWithSafety, []);
  const [bots, reloadBots] = useLoad(() => api("GET", "/bots"), []);
  // today's figures and the drafts waiting, of every account and channel together
  const [stats, reloadStats] = useLoad(async (signal) => {
    const names = await everyAccount();
    const days = await Promise.all(names.map((account) =>
      api("GET", "/stats" + query({ days: 1, account }), undefined, signal)));
    const totals = {};
    for (const day of days) {
      for (const [field, value] of Object.entries(day.totals)) {
        if (typeof value === "number") totals[field] = (totals[field] || 0) + value;
      }
    }
    return { totals };
  }, []);
  const [drafts, reloadDrafts] = useLoad(async (signal) => {
    const names = await everyAccount();
    const pages = await Promise.all(names.map((account) =>
      api("GET", "/drafts" + query({ account }), undefined, signal)));
    return { drafts: pages.flatMap((page) => page.drafts) };
  }, []);
  const [events, setEvents] = useState([]);
  useEvents(EVENTS, (type, data) => {
    setEvents((list) => [data, ...list].slice(0, 30));
    if (type.startsWith("draft.")) reloadDrafts();
    if (type.startsWith("reply.") || type.startsWith("message.")) reloadStats();
    if (type.startsWith("account.")) reloadAccounts();
    if (type.startsWith("bot.")) reloadBots();
  });
  const totals = stats.data?.totals;
  return html`<section aria-labelledby="accounts-h">
      <h2 id="accounts-h">${t("accounts")}</h2>
      ${accounts.data ? html`<table>
        <thead><tr><th scope="col">${t("name")}</th><th scope="col">${t("user")}</th>
          <th scope="col">${t("status")}</th><th scope="col">${t("safety")}</th>
          <th scope="col"><span class="sr-only">${t("logOut")}</span></th></tr></thead>
        <tbody>${accounts.data.map((a) => html`<tr data-account=${a.name}>
          <td>${a.name}</td><td>${a.username ? "@" + a.username : a.user_id ?? ""}</td>
          <td><span class=${"badge " + a.status}>${a.status}</span></td>
          <td>${a.safety ? html`<span class=${"badge mode-" + a.safety.mode} data-safety>${a.safety.mode}</span>`
            : ""}</td>
          <td>${a.authorized && html`<${LogOut} t=${t} account=${a} onDone=${reloadAccounts} />`}</td>
        </tr>`)}</tbody>
      </table>` : html`<${Loading} t=${t} state=${accounts} />`}
      ${bots.data?.bots.length ? html`<h3>${t("bots")}</h3><ul class="plain">
        ${bots.data.bots.map((b) => html`<li data-bot=${b.id}>@${b.username || b.id}
          <span class=${"badge " + b.status}>${b.paused ? t("paused") : b.status}</span></li>`)}
      </ul>` : null}
    </section>
    <section aria-labelledby="today-h">
      <h2 id="today-h">${t("today")}</h2>
      ${totals ? html`<ul class="figures">
        ${[["received", "received"], ["replied", "replied"], ["skipped_total", "skipped"],
           ["escalated", "escalated"], ["failed", "failed"]].map(([field, word]) => html`
          <li><strong data-figure=${word}>${Number(totals[field] ?? 0)}</strong> ${t(word)}</li>`)}
        <li><strong data-figure="drafts">${drafts.data?.drafts.length ?? 0}</strong>
          <a href="#/drafts">${t("draftsWaiting")}</a></li>
      </ul>` : html`<${Loading} t=${t} state=${stats} />`}
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
