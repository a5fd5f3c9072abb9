// The safety governor per account (its mode, budgets and Telegram's waits; the owner sets the
// mode), and the outbound webhooks' deliveries (redeliver one that failed).
import { html, useState } from "../htm-preact.module.js";
import { api, Loading, query, useAction, useLoad, when } from "../lib.js";

const MODES = ["active", "draft", "off"];

function Safety({ t, account }) {
  const path = `/accounts/${encodeURIComponent(account.name)}/safety`;
  const [state, reload] = useLoad(() => api("GET", path), [account.name]);
  const [reason, setReason] = useState("");
  const [run, error] = useAction();
  if (!state.data) return html`<${Loading} t=${t} state=${state} />`;
  const s = state.data;
  const setMode = async (mode) => {
    await run(() => api("PUT", path, { mode, reason }));
    setReason(""); reload();
  };
  const id = "safety-reason-" + account.name;
  return html`<article class="card" data-safety-account=${account.name} aria-label=${account.name}>
    <h3>${account.name} <span class=${"badge mode-" + s.mode} data-mode>${t("m_" + s.mode)}</span></h3>
    ${s.reason && html`<p>${s.reason} <span class="muted">(${s.set_by || ""} ${when(s.changed_at)})</span></p>`}
    <table><caption>${t("budgets")}</caption>
      <thead><tr><th scope="col">${t("what")}</th><th scope="col">${t("lastHour")}</th>
        <th scope="col">${t("lastDay")}</th><th scope="col">${t("waitS")}</th></tr></thead>
      <tbody>${Object.entries(s.calls).map(([name, c]) => html`<tr><td>${name}</td><td>${c.last_hour}</td>
        <td>${c.last_day}</td><td>${c.blocked_for ? c.blocked_for.toFixed(0) : ""}</td></tr>`)}
        <tr><td>${t("floodWaits")}</td><td>${s.flood_waits.last_hour}</td><td>${s.flood_waits.last_24h}</td>
          <td>${s.flood_waits.seconds_24h ? s.flood_waits.seconds_24h.toFixed(0) : ""}</td></tr>
        <tr><td>${t("sends")}</td><td></td><td>${s.sends.last_24h} / ${s.sends.budget || "∞"}</td><td></td></tr>
        <tr><td>${t("firstContacts")}</td><td></td><td>${s.first_contacts.last_24h} / ${s.first_contacts.budget}</td><td></td></tr>
      </tbody></table>
    <div class="inline">
      <label for=${id}>${t("reason")}</label>
      <input id=${id} value=${reason} maxlength="300" onInput=${(e) => setReason(e.target.value)} />
      ${MODES.filter((m) => m !== s.mode).map((m) => html`<button class="secondary"
        onClick=${() => setMode(m)}>${t("setMode_" + m)}</button>`)}
    </div>
    ${error && html`<p role="alert" class="error">${error}</p>`}
  </article>`;
}

function Deliveries({ t }) {
  const [state, setState] = useState("");
  const [list, reload] = useLoad(() => api("GET", "/webhooks/deliveries" + query({ state, limit: 50 })), [state]);
  const [run, error] = useAction();
  const redeliver = async (delivery) => {
    await run(() => api("POST", `/webhooks/deliveries/${delivery.id}/redeliver`));
    reload();
  };
  return html`<section aria-labelledby="deliveries-h"><h2 id="deliveries-h">${t("deliveries")}</h2>
    <label for="delivery-state">${t("state")}</label>
    <select id="delivery-state" value=${state} onChange=${(e) => setState(e.target.value)}>
      <option value="">${t("all")}</option>
      ${["pending", "delivered", "dead"].map((s) => html`<option value=${s}>${s}</option>`)}
    </select>
    ${error && html`<p role="alert" class="error">${error}</p>`}
    ${!list.data ? html`<${Loading} t=${t} state=${list} />` : !list.data.deliveries.length
      ? html`<p class="muted">${t("noDeliveries")}</p>`
      : html`<table><thead><tr><th scope="col">#</th><th scope="col">${t("state")}</th>
          <th scope="col">${t("kind")}</th><th scope="col">URL</th><th scope="col">${t("attempts")}</th>
          <th scope="col">${t("lastError")}</th><th scope="col"><span class="sr-only">${t("redeliver")}</span></th></tr></thead>
        <tbody>${list.data.deliveries.map((d) => html`<tr data-delivery=${d.id}><td>${d.id}</td>
          <td><span class=${"badge " + d.state}>${d.state}</span></td><td>${d.wh_type || ""}</td>
          <td class="url">${d.url}</td><td>${d.attempts}</td>
          <td>${d.last_status ? "HTTP " + d.last_status + " " : ""}${d.last_error || ""}</td>
          <td>${d.state !== "pending" && html`<button class="secondary" aria-label=${t("redeliver") + " " + d.id}
            onClick=${() => redeliver(d)}>${t("redeliver")}</button>`}</td></tr>`)}</tbody></table>`}
  </section>`;
}

export default function System({ t }) {
  const [accounts] = useLoad(() => api("GET", "/accounts"), []);
  return html`<section aria-labelledby="safety-h"><h2 id="safety-h">${t("safety")}</h2>
      <p class="hint">${t("safetyHelp")}</p>
      ${!accounts.data ? html`<${Loading} t=${t} state=${accounts} />`
        : accounts.data.accounts.map((a) => html`<${Safety} t=${t} account=${a} />`)}
    </section>
    <${Deliveries} t=${t} />`;
}
