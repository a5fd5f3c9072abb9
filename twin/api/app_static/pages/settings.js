// An account's behaviour: replies, recipients, working hours (a weekly editor), away and
// greeting, human timing, voice replies. The API validates; each error is shown next to the
// field it names (`details[].field`, e.g. `schedule.hours.mon`, `humanize.typing_cps`).
import { html, useEffect, useRef, useState } from "../htm-preact.module.js";
import { api, everyAccount, Field, firstAccount, invalid, Loading, query, SignedOut, useLoad } from "../lib.js";

const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

// [section, key, kind, choices]: what the form edits, in the order shown, by group.
const GROUPS = [
  ["groupReplies", [["twin", "enabled", "bool"], ["twin", "mode", ["auto", "draft", "off"]],
    ["twin", "knowledge_gaps", ["general", "escalate"]]]],
  ["groupRecipients", [["twin", "existing_chats", "bool"], ["twin", "new_chats", "bool"],
    ["twin", "contacts", "bool"], ["twin", "non_contacts", "bool"],
    ["twin", "groups_when_mentioned", "bool"], ["twin", "include", "list"],
    ["twin", "exclude", "list"]]],
  ["groupHours", [["schedule", "timezone", "text"],
    ["schedule", "outside_hours", ["defer", "away", "ignore"]]]],
  ["groupAway", [["schedule", "away", ["off", "always", "outside_hours", "custom"]],
    ["schedule", "away_message", "textarea"], ["schedule", "away_start", "text"],
    ["schedule", "away_end", "text"], ["schedule", "away_only_if_offline", "bool"],
    ["twin", "greeting", "textarea"], ["twin", "greeting_after_days", "number"]]],
  ["groupHumanize", [["humanize", "enabled", "bool"], ["humanize", "read_delay_median", "number"],
    ["humanize", "typing_cps", "number"], ["humanize", "night_start", "text"],
    ["humanize", "night_end", "text"], ["humanize", "bubble_max_chars", "number"]]],
  ["groupVoice", [["twin", "voice_replies", ["never", "mirror", "always"]],
    ["twin", "voice_max_chars", "number"]]],
];

const idOf = (section, key) => `set-${section}-${key}`;

function toForm(effective) {
  const form = {};
  for (const [, fields] of GROUPS) {
    for (const [section, key, kind] of fields) {
      const value = effective[section][key];
      form[`${section}.${key}`] = kind === "list" ? (value || []).join(", ") : value;
    }
  }
  for (const day of DAYS) form[`schedule.hours.${day}`] = (effective.schedule.hours[day] || []).join(", ");
  return form;
}

const splitList = (text) => text.split(",").map((item) => item.trim()).filter(Boolean);

// Only what the owner changed is sent, as the API's sections.
function patchOf(form, original) {
  const patch = {};
  const put = (section, key, value) => { (patch[section] ||= {})[key] = value; };
  for (const [, fields] of GROUPS) {
    for (const [section, key, kind] of fields) {
      const name = `${section}.${key}`;
      if (form[name] === original[name]) continue;
      const value = form[name];
      put(section, key, kind === "list" ? splitList(value)
        : kind === "number" ? (value === "" ? value : Number(value)) : value);
    }
  }
  if (DAYS.some((day) => form[`schedule.hours.${day}`] !== original[`schedule.hours.${day}`])) {
    const hours = {};
    DAYS.forEach((day) => { hours[day] = splitList(form[`schedule.hours.${day}`]); });
    put("schedule", "hours", hours);
  }
  return patch;
}

function Input({ t, section, name, kind, value, error, onChange }) {
  const id = idOf(section, name);
  const label = t(`f_${section}_${name}`);
  if (kind === "bool") {
    return html`<div class="field check"><input id=${id} type="checkbox" checked=${value}
        onChange=${(e) => onChange(e.target.checked)} ...${invalid(id, error)} />
      <label for=${id}>${label}</label>
      ${error && html`<p id=${id + "-error"} class="error field-error">${error}</p>`}</div>`;
  }
  const common = { id, value: value ?? "", onInput: (e) => onChange(e.target.value), ...invalid(id, error) };
  return html`<${Field} id=${id} label=${label} error=${error}>
    ${Array.isArray(kind) ? html`<select ...${common} onChange=${common.onInput}>
        ${kind.map((choice) => html`<option value=${choice}>${t("c_" + choice)}</option>`)}</select>`
      : kind === "textarea" ? html`<textarea rows="2" ...${common}></textarea>`
      : html`<input type=${kind === "number" ? "number" : "text"} step="any" ...${common} />`}
  </${Field}>`;
}

// `#/settings`: an account's; `#/settings/<account>/<chat>`: one chat's own overrides (the
// same form without the recipients, which are the account's).
export default function Settings({ t, params }) {
  const chat = params.length >= 2 ? params[1] : null;
  const [picked, setAccount] = useState(chat ? decodeURIComponent(params[0]) : "");
  const path = chat ? `/chats/${chat}/settings` : "/settings";
  // one load: the accounts (for the picker; shared between pages), then the chosen one's
  const [loaded, reload] = useLoad(async () => {
    const names = await everyAccount();
    const account = picked || firstAccount(names);
    return { names, account, ...(await api("GET", path + query({ account }))) };
  }, [picked, chat]);
  const account = loaded.data?.account || picked;
  const accounts = { data: loaded.data?.names };
  const groups = chat ? GROUPS.filter(([group]) => group !== "groupRecipients") : GROUPS;
  const [original, setOriginal] = useState(null);
  const [form, setForm] = useState(null);
  const [errors, setErrors] = useState({});
  const [saved, setSaved] = useState("");
  const shown = useRef({ key: null, original: null }); // whose values the form holds
  useEffect(() => {
    if (!loaded.data) return;
    const values = toForm(loaded.data.effective);
    const key = path + "|" + loaded.data.account;
    const before = shown.current;
    // The same settings read again (after a save): what the owner typed since the save stays
    // — the reload lands whenever it does, and must not undo an edit made while it ran.
    setForm((current) => (current && before.key === key
      && Object.keys(patchOf(current, before.original)).length ? current : values));
    shown.current = { key, original: values };
    setOriginal(values);
  }, [loaded.data]);
  if (!form) return html`<${Loading} t=${t} state=${loaded} />`;
  const set = (name) => (value) => setForm({ ...form, [name]: value });
  const save = async (event) => {
    event.preventDefault();
    setSaved(""); setErrors({});
    const patch = patchOf(form, original);
    if (!Object.keys(patch).length) return setSaved(t("nothingChanged"));
    try {
      await api("PUT", path, { account, ...patch });
      setSaved(t("saved"));
      shown.current = { ...shown.current, original: form }; // what the reload will bring
      reload();
    } catch (failure) {
      if (failure instanceof SignedOut) return;
      const found = {};
      for (const detail of failure.details || []) {
        const known = detail.field in form ? detail.field
          : Object.keys(form).find((name) => detail.field.startsWith(name + "."));
        found[known || "form"] = [found[known || "form"], detail.error].filter(Boolean).join("; ");
      }
      if (!Object.keys(found).length) found.form = failure.message;
      setErrors(found);
    }
  };
  return html`<section aria-labelledby="settings-h">
    <h2 id="settings-h">${chat ? t("chatSettings") : t("settings")}</h2>
    ${chat && html`<p><a href=${`#/conversations/${encodeURIComponent(account)}/${chat}`}>← ${t("backToChat")}</a></p>
      <p class="hint">${t("chatSettingsHelp")}</p>`}
    ${!chat && accounts.data && (accounts.data.length > 1 || account !== "default") && html`
      <label for="settings-account">${t("account")}</label>
      <select id="settings-account" value=${account} onChange=${(e) => setAccount(e.target.value)}>
        ${accounts.data.map((name) => html`<option value=${name}>${name}</option>`)}
      </select>`}
    <form onSubmit=${save} class="settings">
      ${groups.map(([group, fields]) => html`<fieldset><legend>${t(group)}</legend>
        ${group === "groupHours" && html`<p class="hint">${t("hoursHelp")}</p>
          <div class="hours">${DAYS.map((day) => {
            const name = `schedule.hours.${day}`;
            const id = "hours-" + day;
            return html`<label for=${id}>${t("day_" + day)}</label>
              <input id=${id} value=${form[name]} onInput=${(e) => set(name)(e.target.value)}
                ...${invalid(id, errors[name])} />
              ${errors[name] ? html`<p id=${id + "-error"} class="error field-error">${errors[name]}</p>`
                : html`<span></span>`}`;
          })}</div>`}
        ${fields.map(([section, key, kind]) => html`<${Input} t=${t} section=${section} name=${key}
          kind=${kind} value=${form[`${section}.${key}`]} error=${errors[`${section}.${key}`]}
          onChange=${set(`${section}.${key}`)} />`)}
      </fieldset>`)}
      <button type="submit">${t("save")}</button>
      <p role="status">${saved}</p>
      ${errors.form && html`<p role="alert" class="error">${errors.form}</p>`}
    </form></section>`;
}
