// API keys: create one (shown once, here only), see them all (never their secrets), revoke.
import { html, useState } from "../htm-preact.module.js";
import { api, useAction, useLoad } from "../lib.js";

const SCOPES = ["admin", "chat", "webhook:talkme", "external", "analytics", "conversation", "messaging"];

export default function Keys({ t }) {
  const [keys, reload] = useLoad(() => api("GET", "/keys"), []);
  const [form, setForm] = useState({ name: "", scope: "chat" });
  const [shown, setShown] = useState(null);  // the new key, this once
  const [run, error] = useAction();
  const create = async (event) => {
    event.preventDefault();
    setShown(null);
    const created = await run(() => api("POST", "/keys", { name: form.name, scopes: [form.scope] }));
    if (created) { setShown(created.key); setForm({ ...form, name: "" }); }
    reload();
  };
  const revoke = async (key) => {
    await run(() => api("DELETE", `/keys/${encodeURIComponent(key.name)}`));
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
