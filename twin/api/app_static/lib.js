// What every page shares: the API client (the session cookie goes by itself; the CSRF token
// is kept in memory only), the one error shape, loading, the event stream, small widgets.
import { html, useCallback, useEffect, useRef, useState } from "./htm-preact.module.js";

const SAFE = new Set(["GET", "HEAD"]);
let csrf = null;
let signedOut = () => {};

export function setCsrf(token) { csrf = token; }
// Called once when any request finds the session gone (the app shows the sign-in again).
export function onSignedOut(handler) { signedOut = handler; }

export class SignedOut extends Error {}

// An API error in the one shape: its message, the fields it names, and a wait (429).
export class Failure extends Error {
  constructor(status, error, retryAfter) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.details = error?.details || [];
    this.retryAfter = retryAfter;
  }
}

// What to tell the owner of a failure: the fields' own words when the API named fields.
export function said(failure, withField = false) {
  if (!failure.details?.length) return failure.message;
  return failure.details.map((d) => (withField ? `${d.field}: ${d.error}` : d.error)).join("; ");
}

// The API's field errors by field (`details[].field`, e.g. `twin.persona`).
export function fieldErrors(failure) {
  const found = {};
  for (const detail of failure.details || []) found[detail.field] = detail.error;
  return found;
}

export async function api(method, path, body, signal) {
  const headers = { Accept: "application/json" };
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers["Content-Type"] = "application/json";
  if (!SAFE.has(method) && csrf) headers["X-CSRF-Token"] = csrf;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", signal,
    body: body === undefined ? undefined : form ? body : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch (_) { /* not JSON: a proxy's page */ }
  // 401 is also how the API says a *Telegram* account is not logged in: only a refused
  // session or key signs the owner out of the app.
  if (response.status === 401 && data?.error?.type !== "not_logged_in") {
    if (!path.startsWith("/app/session")) signedOut();
    throw new SignedOut();
  }
  if (!response.ok || data === null) {
    const wait = Number(response.headers.get("Retry-After")) || null;
    throw new Failure(response.status, data?.error, wait);
  }
  return data;
}

// Every account's name: the Telegram accounts, then the other channels' instances. Pages ask
// for them first, so the answer is shared for a few seconds (a new account shows soon after).
let accounts = { at: 0, names: null };
export async function everyAccount() {
  if (accounts.names && performance.now() - accounts.at < 5000) return accounts.names;
  const [telegram, others] = await Promise.all([api("GET", "/accounts"), api("GET", "/channels")]);
  const names = [...telegram.accounts.map((a) => a.name), ...others.channels.map((c) => c.name)];
  accounts = { at: performance.now(), names };
  return names;
}

// The account a page shows before the owner picks one: `default`, else the first there is.
export function firstAccount(names) {
  return !names?.length || names.includes("default") ? "default" : names[0];
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(key, value);
  }
  const text = search.toString();
  return text ? "?" + text : "";
}

// Load with `loader` when `deps` change; `reload()` loads again. Only the newest request's
// answer is shown (an older one arriving late, e.g. while the owner types a search, is dropped).
// `loader(signal)` may pass the AbortSignal on to `api`: a newer load aborts the older request.
export function useLoad(loader, deps) {
  const [state, setState] = useState({ data: null, error: null });
  const latest = useRef({ n: 0, abort: null });
  const reload = useCallback(() => {
    latest.current.abort?.abort();
    const abort = new AbortController();
    const mine = { n: latest.current.n + 1, abort };
    latest.current = mine;
    loader(abort.signal).then(
      (data) => { if (latest.current === mine) setState({ data, error: null }); },
      (error) => {
        if (latest.current === mine && error?.name !== "AbortError") {
          setState((old) => ({ data: old.data, error }));
        }
      });
  }, deps);
  useEffect(reload, [reload]);
  useEffect(() => () => latest.current.abort?.abort(), []);
  return [state, reload];
}

// Listen to the event stream (the cookie goes with it) while the page is shown; `handler` is
// always the latest render's (it sees the page's current filters and chat).
export function useEvents(types, handler) {
  const current = useRef(handler);
  current.current = handler;
  useEffect(() => {
    const source = new EventSource("/events?" + new URLSearchParams({ types: types.join(",") }));
    const seen = (event) => current.current(event.type, JSON.parse(event.data));
    types.forEach((type) => source.addEventListener(type, seen));
    return () => source.close();
  }, []);
}

// Run an action, turning a failure into the words to show.
export function useAction() {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  const run = async (work) => {
    setError(""); setBusy(true);
    try { return await work(); } catch (failure) {
      if (!(failure instanceof SignedOut)) setError(said(failure, true));
      return undefined;
    } finally { setBusy(false); }
  };
  return [run, error, busy, setError];
}

export function Failed({ error }) {
  if (!error || error instanceof SignedOut) return null;
  return html`<p role="alert" class="error">${String(error?.message || error)}</p>`;
}

export function Loading({ t, state }) {
  return state.error ? html`<${Failed} error=${state.error} />` : html`<p>${t("loading")}</p>`;
}

// A labelled control with its error under it (aria-invalid, aria-describedby).
export function Field({ id, label, error, hint, children }) {
  return html`<div class="field">
    <label for=${id}>${label}</label>
    ${hint && html`<p class="hint" id=${id + "-hint"}>${hint}</p>`}
    ${children}
    ${error && html`<p id=${id + "-error"} class="error field-error">${error}</p>`}
  </div>`;
}

export function invalid(id, error) {
  return error ? { "aria-invalid": "true", "aria-describedby": id + "-error" } : {};
}

export function when(value) {
  return value ? new Date(value).toLocaleString() : "";
}
