// Twins: create one; edit its persona, facts, boundaries and voice; link accounts and bots to
// it; its knowledge documents (upload, remove, try a question); what it remembers about each
// contact (see, edit, forget).
import { html, useEffect, useState } from "../htm-preact.module.js";
import { api, Field, fieldErrors, invalid, Loading, query, useAction, useLoad, when } from "../lib.js";

const PERSONA = [["owner_name", "text"], ["persona", "textarea"], ["facts", "lines"],
  ["boundaries", "lines"], ["language", "text"], ["disclose_assistant", "bool"]];
const KINDS = ["fact", "preference", "date", "promise", "followup"];
const lines = (text) => text.split("\n").map((line) => line.trim()).filter(Boolean);
const twinPath = (name) => `/twins/${encodeURIComponent(name)}`;

function Persona({ t, twin, onSaved }) {
  const start = () => {
    const form = {};
    for (const [key, kind] of PERSONA) {
      const value = twin.effective.twin[key];
      form[key] = kind === "lines" ? (value || []).join("\n") : value ?? "";
    }
    form.voice_provider = twin.voice.provider || "";
    form.voice_id = twin.voice.voice_id || "";
    return form;
  };
  const [form, setForm] = useState(start);
  const [errors, setErrors] = useState({});
  const [saved, setSaved] = useState("");
  useEffect(() => setForm(start()), [twin.name, twin.updated_at]);
  const save = async (event) => {
    event.preventDefault();
    setErrors({}); setSaved("");
    const before = start();
    const mine = {};  // what the owner changed only: the rest stays as stored or as config.toml
    for (const [key, kind] of PERSONA) {
      if (form[key] === before[key]) continue;
      mine[key] = kind === "lines" ? lines(form[key]) : kind === "bool" ? Boolean(form[key])
        : key === "language" && !form[key] ? null : form[key];
    }
    const body = { ...twin.overrides, twin: { ...(twin.overrides.twin || {}), ...mine },
      voice: { provider: form.voice_provider || null, voice_id: form.voice_id || null } };
    try {
      await api("PUT", twinPath(twin.name), body);
      setSaved(t("saved")); onSaved();
    } catch (failure) {
      const shown = new Set([...PERSONA.map(([key]) => key), "provider", "voice_id"]);
      const mapped = {};
      for (const [field, error] of Object.entries(fieldErrors(failure))) {
        const key = field.replace(/^(twin|voice)\./, "").split(".")[0];
        const where = shown.has(key) ? key : "form";  // a field this form does not show
        mapped[where] = [mapped[where], where === "form" ? `${field}: ${error}` : error].filter(Boolean).join("; ");
      }
      setErrors(Object.keys(mapped).length ? mapped : { form: failure.message });
    }
  };
  const input = (key, kind) => {
    const id = `twin-${key}`;
    const common = { id, ...invalid(id, errors[key]) };
    if (kind === "bool") {
      return html`<div class="field check"><input type="checkbox" checked=${form[key]} ...${common}
        onChange=${(e) => setForm({ ...form, [key]: e.target.checked })} />
        <label for=${id}>${t("f_twin_" + key)}</label></div>`;
    }
    const change = (e) => setForm({ ...form, [key]: e.target.value });
    return html`<${Field} id=${id} label=${t("f_twin_" + key)} error=${errors[key]}
        hint=${kind === "lines" ? t("onePerLine") : null}>
      ${kind === "text" ? html`<input value=${form[key]} onInput=${change} ...${common} />`
        : html`<textarea rows=${kind === "textarea" ? 4 : 3} value=${form[key]} onInput=${change} ...${common}></textarea>`}
    </${Field}>`;
  };
  return html`<form class="stack wide" onSubmit=${save} aria-labelledby="persona-h">
    <h3 id="persona-h">${t("persona")}</h3>
    ${PERSONA.map(([key, kind]) => input(key, kind))}
    <${Field} id="twin-voice_provider" label=${t("voiceProvider")} error=${errors.provider}>
      <select id="twin-voice_provider" value=${form.voice_provider}
        onChange=${(e) => setForm({ ...form, voice_provider: e.target.value })}>
        <option value="">${t("none")}</option><option value="elevenlabs">ElevenLabs</option>
        <option value="openai">OpenAI</option></select></${Field}>
    <${Field} id="twin-voice_id" label=${t("voiceId")} error=${errors.voice_id}>
      <input id="twin-voice_id" value=${form.voice_id} ...${invalid("twin-voice_id", errors.voice_id)}
        onInput=${(e) => setForm({ ...form, voice_id: e.target.value })} /></${Field}>
    <button type="submit">${t("save")}</button>
    <p role="status">${saved}</p>
    ${errors.form && html`<p role="alert" class="error">${errors.form}</p>`}
  </form>`;
}

function Links({ t, twin, onChanged }) {
  const [accounts, reloadAccounts] = useLoad(async () => {
    const [telegram, others] = await Promise.all([api("GET", "/accounts"), api("GET", "/channels")]);
    return [...telegram.accounts.map((a) => ({ ...a, channel: "telegram" })), ...others.channels];
  }, []);
  const [bots, reloadBots] = useLoad(() => api("GET", "/bots"), []);
  const [account, setAccount] = useState("");
  const [token, setToken] = useState("");
  const [run, error] = useAction();
  const link = async (event) => {
    event.preventDefault();
    if (!account) return;
    await run(() => api("PUT", `/accounts/${encodeURIComponent(account)}`, { twin: twin.name }));
    setAccount(""); reloadAccounts(); onChanged();
  };
  const addBot = async (event) => {
    event.preventDefault();
    const added = await run(() => api("POST", "/bots", { token, twin: twin.name }));
    if (added) setToken("");
    reloadBots();
  };
  const botAction = async (bot, action) => {
    await run(() => action === "delete" ? api("DELETE", `/bots/${bot.id}`) : api("POST", `/bots/${bot.id}/${action}`));
    reloadBots();
  };
  const mine = (bots.data?.bots || []).filter((b) => b.twin === twin.name);
  return html`<section aria-labelledby="links-h"><h3 id="links-h">${t("linked")}</h3>
    <p>${twin.accounts.length ? twin.accounts.join(", ") : t("noneLinked")}</p>
    <form class="inline" onSubmit=${link}>
      <label for="link-account">${t("linkAccount")}</label>
      <select id="link-account" value=${account} onChange=${(e) => setAccount(e.target.value)}>
        <option value="">—</option>
        ${(accounts.data || []).filter((a) => a.twin !== twin.name)
          .map((a) => html`<option value=${a.name}>${a.name} (${a.channel})</option>`)}
      </select>
      <button type="submit">${t("link")}</button>
    </form>
    <h4>${t("bots")}</h4>
    <ul class="plain">${mine.map((b) => html`<li data-bot=${b.id}>@${b.username || b.id}
      <span class=${"badge " + b.status}>${b.paused ? t("paused") : b.status}</span>
      ${b.last_error && html`<span class="error">${b.last_error}</span>`}
      <button class="secondary" onClick=${() => botAction(b, b.paused ? "resume" : "pause")}>
        ${b.paused ? t("resume") : t("pause")}</button>
      <button class="secondary" onClick=${() => botAction(b, "delete")}
        aria-label=${t("remove") + " @" + (b.username || b.id)}>${t("remove")}</button></li>`)}</ul>
    <form class="inline" onSubmit=${addBot}>
      <label for="bot-token">${t("botToken")}</label>
      <input id="bot-token" type="password" autocomplete="off" required value=${token}
        onInput=${(e) => setToken(e.target.value)} />
      <button type="submit">${t("addBot")}</button>
    </form>
    ${error && html`<p role="alert" class="error">${error}</p>`}
  </section>`;
}

function Knowledge({ t, twin }) {
  const base = twinPath(twin.name) + "/knowledge";
  const [docs, reload] = useLoad(() => api("GET", base), [twin.name]);
  const [question, setQuestion] = useState("");
  const [found, setFound] = useState(null);
  const [run, error] = useAction();
  const upload = async (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const added = await run(() => api("POST", base, form));
    if (added) event.target.reset();
    reload();
  };
  const remove = async (doc) => {
    await run(() => api("DELETE", `${base}/${encodeURIComponent(doc.name)}`));
    reload();
  };
  const search = async (event) => {
    event.preventDefault();
    setFound(await run(() => api("GET", `${base}/search` + query({ q: question }))) || null);
  };
  return html`<section aria-labelledby="knowledge-h"><h3 id="knowledge-h">${t("knowledge")}</h3>
    ${!docs.data ? html`<${Loading} t=${t} state=${docs} />` : docs.data.documents.length
      ? html`<table><thead><tr><th scope="col">${t("document")}</th><th scope="col">${t("chunks")}</th>
          <th scope="col">${t("updated")}</th><th scope="col"><span class="sr-only">${t("remove")}</span></th></tr></thead>
        <tbody>${docs.data.documents.map((d) => html`<tr data-doc=${d.name}><td>${d.name}</td><td>${d.chunks}</td>
          <td>${when(d.updated_at)}</td><td><button class="secondary" aria-label=${t("remove") + " " + d.name}
            onClick=${() => remove(d)}>${t("remove")}</button></td></tr>`)}</tbody></table>`
      : html`<p class="muted">${t("noDocuments")}</p>`}
    <form class="inline" onSubmit=${upload}>
      <label for="doc-file">${t("uploadDocument")}</label>
      <input id="doc-file" name="file" type="file" required accept=".txt,.md,.html,.htm,.pdf,.json,.csv" />
      <button type="submit">${t("upload")}</button>
    </form>
    <form class="inline" onSubmit=${search} role="search">
      <label for="doc-q">${t("tryQuestion")}</label>
      <input id="doc-q" value=${question} required onInput=${(e) => setQuestion(e.target.value)} />
      <button type="submit">${t("search")}</button>
    </form>
    ${found && html`<ol class="passages">${found.passages.map((p) => html`<li><strong>${p.document}</strong>
      ${p.heading && " · " + p.heading}<p>${p.text}</p></li>`)}</ol>`}
    ${error && html`<p role="alert" class="error">${error}</p>`}
  </section>`;
}

function Memory({ t, twin }) {
  const [contacts, reload] = useLoad(() => api("GET", "/contacts" + query({ twin: twin.name })), [twin.name]);
  const [open, setOpen] = useState(null);  // {contact, facts: [{kind, text}]}
  const [run, error] = useAction();
  const show = async (contact) => {
    const memory = await run(() => api("GET", `/contacts/${contact.id}/memory`));
    if (memory) setOpen({ contact, facts: memory.facts.map(({ kind, text }) => ({ kind, text })) });
  };
  const edit = (index, change) => setOpen({ ...open,
    facts: open.facts.map((fact, i) => (i === index ? { ...fact, ...change } : fact)) });
  const save = async (event) => {
    event.preventDefault();
    const facts = open.facts.filter((f) => f.text.trim());
    const memory = await run(() => api("PUT", `/contacts/${open.contact.id}/memory`, { facts }));
    if (memory) setOpen({ ...open, facts: memory.facts.map(({ kind, text }) => ({ kind, text })) });
  };
  const forget = async () => {
    await run(() => api("DELETE", `/contacts/${open.contact.id}/memory`));
    setOpen(null); reload();
  };
  return html`<section aria-labelledby="memory-h"><h3 id="memory-h">${t("memory")}</h3>
    ${!contacts.data ? html`<${Loading} t=${t} state=${contacts} />` : contacts.data.contacts.length
      ? html`<ul class="plain">${contacts.data.contacts.map((c) => html`<li data-contact=${c.id}>
          <button class="link" onClick=${() => show(c)}>${c.name || c.phone || c.telegram_user_id || c.id}</button></li>`)}</ul>`
      : html`<p class="muted">${t("noMemory")}</p>`}
    ${open && html`<form class="memory" onSubmit=${save} aria-label=${t("memoryOf") + " " + (open.contact.name || open.contact.id)}>
      <h4>${t("memoryOf")} ${open.contact.name || open.contact.id}</h4>
      ${open.facts.map((fact, i) => html`<div class="fact">
        <label class="sr-only" for=${"fact-kind-" + i}>${t("kind")}</label>
        <select id=${"fact-kind-" + i} value=${fact.kind} onChange=${(e) => edit(i, { kind: e.target.value })}>
          ${KINDS.map((k) => html`<option value=${k}>${t("k_" + k)}</option>`)}</select>
        <label class="sr-only" for=${"fact-text-" + i}>${t("fact")} ${i + 1}</label>
        <input id=${"fact-text-" + i} value=${fact.text} maxlength="300" onInput=${(e) => edit(i, { text: e.target.value })} />
      </div>`)}
      <button type="button" class="secondary" onClick=${() => setOpen({ ...open, facts: [...open.facts, { kind: "fact", text: "" }] })}>${t("addFact")}</button>
      <button type="submit">${t("save")}</button>
      <button type="button" class="secondary" onClick=${forget}>${t("forget")}</button>
    </form>`}
    ${error && html`<p role="alert" class="error">${error}</p>`}
  </section>`;
}

export default function Twins({ t, params }) {
  const [twins, reload] = useLoad(() => api("GET", "/twins"), []);
  const [name, setName] = useState("");
  const [run, error] = useAction();
  const chosen = params[0] ? decodeURIComponent(params[0]) : twins.data?.twins[0]?.name;
  const twin = twins.data?.twins.find((x) => x.name === chosen);
  const create = async (event) => {
    event.preventDefault();
    const created = await run(() => api("POST", "/twins", { name }));
    if (created) { setName(""); location.hash = "#/twins/" + encodeURIComponent(created.name); }
    reload();
  };
  return html`<section aria-labelledby="twins-h"><h2 id="twins-h">${t("twins")}</h2>
    ${!twins.data ? html`<${Loading} t=${t} state=${twins} />` : html`<nav class="tabs" aria-label=${t("twins")}>
      ${twins.data.twins.map((x) => html`<a href=${"#/twins/" + encodeURIComponent(x.name)}
        aria-current=${x.name === chosen ? "page" : null}>${x.name}</a>`)}</nav>`}
    <form class="inline" onSubmit=${create}>
      <label for="new-twin">${t("newTwin")}</label>
      <input id="new-twin" required value=${name} onInput=${(e) => setName(e.target.value)} />
      <button type="submit">${t("create")}</button>
    </form>
    ${error && html`<p role="alert" class="error">${error}</p>`}
    ${twin && html`<${Persona} t=${t} twin=${twin} onSaved=${reload} key=${"p-" + twin.name} />
      <${Links} t=${t} twin=${twin} onChanged=${reload} key=${"l-" + twin.name} />
      <${Knowledge} t=${t} twin=${twin} key=${"k-" + twin.name} />
      <${Memory} t=${t} twin=${twin} key=${"m-" + twin.name} />`}
  </section>`;
}
