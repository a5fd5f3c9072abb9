// The admin app: a client of the daemon's REST API (no logic the API lacks). Preact + htm as
// vendored ES modules, no build step; each page is its own module, loaded when first opened.
// The session is a cookie the browser keeps (HttpOnly: this code never sees it); the CSRF
// token lives in memory only (lib.js) and is read again after a reload.
import { html, render, useEffect, useRef, useState } from "./htm-preact.module.js";
import { LANGUAGES, chosenLanguage, browserLanguage, translator } from "./i18n.js";
import { api, onSignedOut, setCsrf } from "./lib.js";

// [route, module, word]: the navigation, in order.
const PAGES = [
  ["overview", "overview", "dashboard"], ["conversations", "conversations", "conversations"],
  ["drafts", "drafts", "drafts"], ["twins", "twins", "twins"], ["stats", "stats", "stats"],
  ["settings", "settings", "settings"], ["system", "system", "safetyAndWebhooks"],
  ["keys", "keys", "keys"], ["connect", "connect", "connect"],
];
const loaded = {};  // module name -> its page component, once imported

// Once signed in and idle, the other pages' modules (and the charts') are fetched, so that a
// page's first visit is as quick as the next ones.
function prefetch() {
  setTimeout(() => {
    for (const [, module] of PAGES) {
      import(`./pages/${module}.js`).then((found) => { loaded[module] ||= found.default; }, () => {});
    }
    import("./uPlot.esm.js").catch(() => {});
  }, 300);
}

function route() {
  const [name, ...params] = location.hash.replace(/^#\/?/, "").split("/").filter(Boolean);
  const page = PAGES.find(([path]) => path === name);
  return { page: page ? page[0] : "overview", params: page ? params : [] };
}

// A page whose module could not be loaded (the daemon restarted, the network went away).
function Unreachable({ t }) {
  return html`<p role="alert" class="error">${t("pageUnreachable")}</p>`;
}

function Page({ t, name, params }) {
  const module = PAGES.find(([path]) => path === name)[1];
  const [component, setComponent] = useState(() => loaded[module] || null);
  useEffect(() => {
    if (loaded[module]) return setComponent(() => loaded[module]);
    let current = true;
    import(`./pages/${module}.js`).then((found) => {
      loaded[module] = found.default;
      if (current) setComponent(() => found.default);
    }, () => { if (current) setComponent(() => Unreachable); });
    return () => { current = false; };
  }, [module]);
  if (component === Unreachable) return html`<${Unreachable} t=${t} />`;
  if (!component || component !== loaded[module]) return html`<p>${t("loading")}</p>`;
  return html`<${component} t=${t} params=${params} key=${name} />`;
}

function SignIn({ t, onSignedIn, notice }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState(notice || "");
  const submit = async (event) => {
    event.preventDefault();
    try {
      const session = await api("POST", "/app/session", { key });
      setCsrf(session.csrf_token);
      onSignedIn();
    } catch (failure) {
      setError(failure?.status === 429 ? failure.message : t("wrongKey"));
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

function App() {
  const [language, setLanguage] = useState(chosenLanguage() || browserLanguage());
  const [state, setState] = useState("loading");  // loading | signedOut | signedIn
  const [notice, setNotice] = useState("");
  const [where, setWhere] = useState(route());
  const t = translator(language);
  const words = useRef(t);  // the handler below is set once: it reads the current words here
  words.current = t;
  useEffect(() => { document.documentElement.lang = language; }, [language]);
  useEffect(() => {
    const onHash = () => setWhere(route());
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  // The owner's language (as the session tells it) unless they chose one here.
  const signedIn = async () => {
    const session = await api("GET", "/app/session");
    setCsrf(session.csrf_token);
    if (!chosenLanguage() && session.language && LANGUAGES.includes(session.language)) {
      setLanguage(session.language);
    }
    setNotice(""); setState("signedIn");
    prefetch();
  };
  useEffect(() => {
    onSignedOut(() => { setCsrf(null); setNotice(words.current("sessionEnded")); setState("signedOut"); });
    (async () => {
      const link = location.hash.match(/^#login=(.+)$/);
      try {
        if (link) {
          history.replaceState(null, "", location.pathname);  // the token leaves the URL
          await api("POST", "/app/session", { link: link[1] });
          setWhere(route());
        }
        await signedIn();
      } catch (_) {
        setState("signedOut");
      }
    })();
  }, []);
  const signOut = async (everywhere) => {
    try { await api("DELETE", everywhere ? "/app/sessions" : "/app/session"); } catch (_) {}
    if (everywhere) { try { await api("DELETE", "/app/session"); } catch (_) {} }
    setCsrf(null); setNotice(""); setState("signedOut");
  };
  const chooseLanguage = (value) => { sessionStorage.setItem("twin-language", value); setLanguage(value); };
  const switcher = html`<label class="language">${t("language")}
    <select value=${language} onChange=${(e) => chooseLanguage(e.target.value)}>
      ${LANGUAGES.map((l) => html`<option value=${l}>${l.toUpperCase()}</option>`)}
    </select></label>`;
  if (state === "loading") return html`<p>${t("loading")}</p>`;
  if (state === "signedOut") {
    return html`${switcher}<${SignIn} t=${t} notice=${notice} onSignedIn=${signedIn} />`;
  }
  return html`<header>
      <strong class="brand">twin</strong>
      <nav aria-label="main">${PAGES.map(([path, , word]) => html`<a href=${"#/" + (path === "overview" ? "" : path)}
        aria-current=${where.page === path ? "page" : null}>${t(word)}</a>`)}</nav>
      ${switcher}
      <button onClick=${() => signOut(false)}>${t("signOut")}</button>
      <button class="secondary" onClick=${() => signOut(true)}>${t("signOutEverywhere")}</button>
    </header>
    <main><${Page} t=${t} name=${where.page} params=${where.params} /></main>`;
}

render(html`<${App} />`, document.getElementById("app"));
