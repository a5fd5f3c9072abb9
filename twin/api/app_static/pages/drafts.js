// The twin's drafts (copilot mode): send as written, edit and send, or skip — live, as drafts
// are written; the latest style score and the newest corrections beside them.
import { html, useState } from "../htm-preact.module.js";
import { api, everyAccount, query, useAction, useEvents, useLoad } from "../lib.js";

export default function Drafts({ t }) {
  // every account's drafts and corrections (a bot or another Telegram account may draft too)
  const [drafts, reload] = useLoad(async (signal) => {
    const names = await everyAccount();
    const pages = await Promise.all(names.map((account) =>
      api("GET", "/drafts" + query({ account }), undefined, signal)
        .then((page) => page.drafts.map((d) => ({ ...d, account })))));
    return { drafts: pages.flat().sort((a, b) => String(b.created_at).localeCompare(String(a.created_at))) };
  }, []);
  const [score] = useLoad(() => api("GET", "/style/evals?limit=1"), []);
  const [corrections, reloadCorrections] = useLoad(async (signal) => {
    const names = await everyAccount();
    const pages = await Promise.all(names.map((account) =>
      api("GET", "/corrections" + query({ account, limit: 10 }), undefined, signal)
        .then((page) => page.corrections)));
    const all = pages.flat().sort((a, b) => String(b.created_at).localeCompare(String(a.created_at)));
    return { corrections: all.slice(0, 10) };
  }, []);
  const [editing, setEditing] = useState({});  // draft id -> the owner's text
  const [run, error] = useAction();
  useEvents(["draft.created", "draft.sent", "draft.skipped", "draft.expired", "draft.cancelled"],
    () => { reload(); reloadCorrections(); });
  const decide = async (draft, action, text) => {
    const body = { account: draft.account, ...(action === "send" && text !== undefined ? { text } : {}) };
    const done = await run(() => api("POST", `/drafts/${draft.id}/${action}`, body));
    if (done !== undefined) {
      setEditing((all) => { const rest = { ...all }; delete rest[draft.id]; return rest; });
    }
    reload(); reloadCorrections();
  };
  const latest = score.data?.evals?.[0];
  return html`<section aria-labelledby="drafts-h"><h2 id="drafts-h">${t("drafts")}</h2>
      ${error && html`<p role="alert" class="error">${error}</p>`}
      ${!drafts.data ? html`<p>${t("loading")}</p>` : !drafts.data.drafts.length
        ? html`<p class="muted">${t("noDrafts")}</p>`
        : html`<ul class="drafts">${drafts.data.drafts.map((d) => html`<li data-draft=${d.id}>
          <p><strong>${d.title || d.chat}</strong>${d.account !== "default" ? html` <span class="muted">${d.account}</span>` : null}</p>
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
