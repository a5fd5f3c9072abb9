// Conversations across channels: a list with search and filters, and one conversation as a
// messenger shows it — both sides, voice notes playable with their transcripts, and for each
// twin message why and when (the decision's reasons, delays, tokens, cost, sources). Pause,
// resume, take over, send as the owner, retry a failed reply, the chat's own mode — live.
import { html, useEffect, useRef, useState } from "../htm-preact.module.js";
import { api, Failed, Loading, query, useAction, useEvents, useLoad, when } from "../lib.js";

const CHANNELS = ["telegram", "telegram_bot", "http_chat", "talkme", "external", "api"];
const STATES = ["paused", "escalated", "failed"];
const LIVE = ["message.received", "message.sent", "message.skipped", "message.edited",
  "message.deleted", "message.recovered", "reply.scheduled", "reply.sent", "reply.skipped",
  "reply.failed", "reply.escalated", "reply.cancelled", "reply.requeued", "reply.expired",
  "reply.retry", "reply.rescheduled", "chat.paused", "chat.resumed",
  "chat.settings_changed", "conversation.escalated", "conversation.operator", "draft.created",
  "draft.sent"];

const UNANSWERED = new Set(["skipped", "failed", "cancelled"]);  // shown under a contact's message
const href = (c) => `#/conversations/${encodeURIComponent(c.account)}/${c.chat_key}`;
const forChat = (account) => "?" + new URLSearchParams({ account }).toString();

function PauseButton({ t, conversation, onDone }) {
  const [run, error] = useAction();
  const path = `/chats/${conversation.chat_key}/${conversation.paused ? "resume" : "pause"}`;
  const act = async () => {
    await run(() => api("POST", path, { account: conversation.account }));
    onDone();
  };
  return html`<button class="secondary" onClick=${act}
      aria-label=${(conversation.paused ? t("resume") : t("pause")) + " " + (conversation.title || conversation.chat_key)}>
      ${conversation.paused ? t("resume") : t("pause")}</button>
    ${error && html`<span role="alert" class="error">${error}</span>`}`;
}

function Badges({ t, c }) {
  return html`<span class="badges">
    ${c.paused && html`<span class="badge paused">${t("paused")}</span>`}
    ${c.escalated && html`<span class="badge escalated">${t("escalated")}</span>`}
    ${c.failed > 0 && html`<span class="badge failed">${t("failed")} ${c.failed}</span>`}
  </span>`;
}

function List({ t }) {
  const [filters, setFilters] = useState({ q: "", channel: "", state: "" });
  const [search, setSearch] = useState("");
  useEffect(() => {  // search as the owner types (a burst of input, e.g. a paste, is one request)
    const timer = setTimeout(() => setFilters((f) => ({ ...f, q: search.trim() })), 25);
    return () => clearTimeout(timer);
  }, [search]);
  const [list, reload] = useLoad(
    (signal) => api("GET", "/conversations" + query({ ...filters, limit: 100 }), undefined, signal),
    [filters.q, filters.channel, filters.state]);
  useEvents(LIVE, () => reload());
  const pick = (name) => (e) => setFilters({ ...filters, [name]: e.target.value });
  return html`<section aria-labelledby="conv-h"><h2 id="conv-h">${t("conversations")}</h2>
    <form class="filters" role="search" onSubmit=${(e) => e.preventDefault()}>
      <label for="conv-q">${t("search")}</label>
      <input id="conv-q" type="search" maxlength="200" value=${search}
        onInput=${(e) => setSearch(e.target.value)} />
      <label for="conv-channel">${t("channel")}</label>
      <select id="conv-channel" value=${filters.channel} onChange=${pick("channel")}>
        <option value="">${t("all")}</option>
        ${CHANNELS.map((c) => html`<option value=${c}>${c}</option>`)}
      </select>
      <label for="conv-state">${t("state")}</label>
      <select id="conv-state" value=${filters.state} onChange=${pick("state")}>
        <option value="">${t("all")}</option>
        ${STATES.map((s) => html`<option value=${s}>${t(s)}</option>`)}
      </select>
    </form>
    ${list.data && html`<${Failed} error=${list.error} />`}
    ${list.data?.total > list.data?.conversations.length
      ? html`<p class="hint">${t("showingOf").replace("{n}", list.data.conversations.length).replace("{total}", list.data.total)}</p>` : null}
    ${!list.data ? html`<${Loading} t=${t} state=${list} />`
      : !list.data.conversations.length ? html`<p class="muted">${t("noChats")}</p>`
      : html`<ul class="conversations">${list.data.conversations.map((c) => html`
        <li data-chat=${c.chat_key} data-account=${c.account}>
          <a href=${href(c)}><strong>${c.title || c.username || c.thread_id || c.chat_key}</strong></a>
          <span class="badge channel">${c.channel}</span>
          ${c.account !== "default" && html`<span class="muted">${c.account}</span>`}
          <${Badges} t=${t} c=${c} />
          <time>${when(c.last_activity_at)}</time>
          <p class="last">${c.last_text || ""}</p>
          <${PauseButton} t=${t} conversation=${c} onDone=${reload} />
        </li>`)}</ul>`}
  </section>`;
}

function Why({ t, reply, sources }) {
  const figure = (label, value) => value === null || value === undefined || value === ""
    ? null : html`<dt>${label}</dt><dd>${value}</dd>`;
  return html`<details class="why" data-reply=${reply.id}>
    <summary>${t("whyAndWhen")}</summary>
    <dl>
      ${figure(t("decision"), reply.action)}
      ${reply.explain.length ? html`<dt>${t("reasons")}</dt><dd><ul>${reply.explain.map((r) => html`<li>${r}</li>`)}</ul></dd>` : null}
      ${figure(t("decidedAt"), when(reply.decided_at))}
      ${figure(t("delay"), reply.delay_s !== null ? reply.delay_s.toFixed(1) + " s" : null)}
      ${figure(t("dueAt"), when(reply.reply_at))}
      ${figure(t("finishedAt"), when(reply.finished_at))}
      ${figure(t("state"), [reply.state, reply.reason, reply.failure].filter(Boolean).join(" · "))}
      ${figure(t("attempts"), reply.attempts)}
      ${figure(t("tokens"), reply.prompt_tokens !== null ? `${reply.prompt_tokens} + ${reply.completion_tokens}` : null)}
      ${figure(t("cost"), reply.cost_usd !== null ? "$" + reply.cost_usd.toFixed(5) : null)}
      ${sources?.given?.length ? html`<dt>${t("sources")}</dt><dd><ul>${sources.given.map((s) => html`
        <li>${s.label} ${s.document}${s.heading ? " · " + s.heading : ""}
          ${sources.used.some((u) => u.chunk_id === s.chunk_id) ? html` <strong>(${t("used")})</strong>` : ""}</li>`)}</ul></dd>` : null}
    </dl>
  </details>`;
}

// Where each reply job is explained: its first sent bubble, else the newest message it answers.
function anchors(messages) {  // newest first
  const found = {};
  for (const m of messages) {
    if (m.reply_id === null) continue;
    if (m.direction === "outgoing" || !(m.reply_id in found)) found[m.reply_id] = m.id;
  }
  return new Set(Object.values(found));
}

function Bubble({ t, message, account, replies, anchor, onRetry }) {
  const reply = message.reply_id !== null ? replies[message.reply_id] : null;
  const mine = message.direction === "outgoing";
  const who = mine ? (message.reply_id !== null ? t("twinSaid") : t("youSaid")) : t("theySaid");
  const audio = message.kind === "voice" || message.kind === "audio";
  return html`<li class=${"bubble " + (mine ? "out" : "in")} data-message=${message.id}>
    <span class="who">${who}</span>
    ${message.text && html`<p>${message.text}</p>`}
    ${audio && html`<audio controls preload="none" aria-label=${t("voiceNote")}
      src=${`/messages/${message.id}/audio` + forChat(account)}></audio>`}
    ${message.transcript && html`<p class="transcript"><span class="sr-only">${t("transcript")}: </span>${message.transcript}</p>`}
    <time>${when(message.date)}</time>
    ${!mine && UNANSWERED.has(message.state) && html` <span class="muted">${t("s_" + message.state)}${message.state_reason ? " · " + message.state_reason : ""}</span>`}
    ${reply && anchor && html`<${Why} t=${t} reply=${reply} sources=${message.sources} />`}
    ${reply && anchor && reply.state === "failed" && html`<button onClick=${() => onRetry(reply)}>${t("retry")}</button>`}
  </li>`;
}

function ChatSettings({ t, account, chat }) {
  const [loaded, reload] = useLoad(() => api("GET", `/chats/${chat}/settings` + forChat(account)), [account, chat]);
  const [run, error] = useAction();
  if (!loaded.data) return html`<${Failed} error=${loaded.error} />`;
  const own = loaded.data.overrides.twin || {};
  const change = (key) => async (e) => {
    await run(() => api("PUT", `/chats/${chat}/settings`, { account, twin: { [key]: e.target.value || null } }));
    reload();
  };
  return html`<div class="chat-settings">
    <label for="chat-mode">${t("mode")}</label>
    <select id="chat-mode" value=${own.mode || ""} onChange=${change("mode")}>
      <option value="">${t("modeDefault")} (${t("mode_" + loaded.data.effective.twin.mode)})</option>
      ${["auto", "draft", "off"].map((m) => html`<option value=${m}>${t("mode_" + m)}</option>`)}
    </select>
    <label for="chat-voice">${t("f_twin_voice_replies")}</label>
    <select id="chat-voice" value=${own.voice_replies || ""} onChange=${change("voice_replies")}>
      <option value="">${t("modeDefault")} (${t("c_" + loaded.data.effective.twin.voice_replies)})</option>
      ${["never", "mirror", "always"].map((m) => html`<option value=${m}>${t("c_" + m)}</option>`)}
    </select>
    <a href=${`#/settings/${encodeURIComponent(account)}/${chat}`}>${t("allChatSettings")}</a>
    ${error && html`<span role="alert" class="error">${error}</span>`}
  </div>`;
}

function Conversation({ t, account, chat }) {
  const [pages, setPages] = useState({ messages: [], replies: {}, before: null, error: null, loaded: false });
  const [info, reloadInfo] = useLoad(() => api("GET", "/conversations" + query({ account, chat })), [account, chat]);
  const [settings] = useLoad(() => api("GET", `/chats/${chat}/settings` + forChat(account)), [account, chat]);
  const [text, setText] = useState("");
  const composer = useRef(null);
  const [run, error, busy] = useAction();
  const newest = useRef(0);  // the newest page's request: an older answer arriving late is dropped
  // `before`: an older page, added at the end; else the newest page, merged over what is
  // loaded (older pages the owner opened stay).
  const load = async (before) => {
    const mine = before ? null : ++newest.current;
    try {
      const page = await api("GET", "/messages" + query({ chat, account, before, limit: 50 }));
      if (mine !== null && mine !== newest.current) return;
      const replies = Object.fromEntries(page.replies.map((r) => [r.id, r]));
      setPages((old) => {
        if (before) {
          return { ...old, messages: [...old.messages, ...page.messages],
            replies: { ...old.replies, ...replies }, before: page.next_before };
        }
        const oldest = page.messages.length ? page.messages[page.messages.length - 1] : null;
        const kept = oldest && old.loaded ? old.messages.filter((m) => m.id < oldest.id && !page.messages.some((n) => n.id === m.id)) : [];
        return {
          messages: [...page.messages, ...kept], replies: { ...old.replies, ...replies },
          before: kept.length ? old.before : page.next_before, error: null, loaded: true,
        };
      });
    } catch (failure) { setPages((old) => ({ ...old, error: failure, loaded: true })); }
  };
  useEffect(() => { load(null); }, [account, chat]);
  useEvents(LIVE, (type, data) => {
    // (an event's chat id went through a JavaScript number: compared as one)
    if (data.chat === undefined || data.chat === Number(chat)) { load(null); reloadInfo(); }
  });
  const conversation = info.data?.conversations.find((c) => c.chat_key === chat);
  const refresh = () => { load(null); reloadInfo(); };
  const takeOver = async () => {
    const minutes = settings.data?.effective.twin.takeover_minutes || 30;
    await run(() => api("POST", `/chats/${chat}/pause`, { account, minutes }));
    refresh();
    composer.current?.focus();
  };
  const send = async (event) => {
    event.preventDefault();
    const sent = await run(() => api("POST", "/send_message", { account, chat: Number(chat), text }));
    if (sent) setText("");
    refresh();
  };
  const retry = async (reply) => {
    await run(() => api("POST", `/replies/${reply.id}/retry`, { account }));
    refresh();
  };
  const explained = anchors(pages.messages);
  const title = conversation ? conversation.title || conversation.username || conversation.thread_id || chat : chat;
  const telegram = !conversation || conversation.channel === "telegram";
  return html`<section aria-labelledby="chat-h" class="conversation">
    <p><a href="#/conversations">← ${t("conversations")}</a></p>
    <h2 id="chat-h">${title}</h2>
    ${conversation && html`<p><span class="badge channel">${conversation.channel}</span> ${conversation.account}
      <${Badges} t=${t} c=${conversation} />
      ${conversation.paused && conversation.paused_until && !conversation.paused_until.startsWith("9999")
        ? html` <span class="muted">${t("until")} ${when(conversation.paused_until)}</span>` : null}</p>
      <div class="actions"><${PauseButton} t=${t} conversation=${conversation} onDone=${refresh} />
        ${!conversation.paused && html`<button class="secondary" onClick=${takeOver}>${t("takeOver")}</button>`}</div>
      ${telegram && html`<${ChatSettings} t=${t} account=${account} chat=${chat} />`}`}
    ${error && html`<p role="alert" class="error">${error}</p>`}
    ${!pages.loaded ? html`<p>${t("loading")}</p>` : pages.error ? html`<${Failed} error=${pages.error} />` : html`
      ${pages.before && html`<button class="secondary" onClick=${() => load(pages.before)}>${t("older")}</button>`}
      <ol class="messages" aria-label=${t("messages")}>
        ${[...pages.messages].reverse().map((m) => html`<${Bubble} t=${t} message=${m} account=${account}
          replies=${pages.replies} anchor=${explained.has(m.id)} onRetry=${retry} />`)}
      </ol>`}
    ${telegram ? html`<form class="composer" onSubmit=${send}>
      <label for="composer">${t("sendAsYou")}</label>
      <textarea id="composer" ref=${composer} rows="2" required value=${text}
        onInput=${(e) => setText(e.target.value)}></textarea>
      <button type="submit" disabled=${busy}>${t("send")}</button>
    </form>` : html`<p class="muted">${t("sendTelegramOnly")}</p>`}
  </section>`;
}

export default function Conversations({ t, params }) {
  if (params.length >= 2) {
    const account = decodeURIComponent(params[0]);
    return html`<${Conversation} t=${t} account=${account} chat=${params[1]} key=${account + "/" + params[1]} />`;
  }
  return html`<${List} t=${t} />`;
}
