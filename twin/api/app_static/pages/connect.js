// Connect a Telegram account: phone → code → two-step password, Telegram's refusals shown as
// the API words them (a wrong or expired code, a flood wait with the time left).
import { html, useState } from "../htm-preact.module.js";
import { api, said, SignedOut } from "../lib.js";

export default function Connect({ t }) {
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
      if (failure instanceof SignedOut) return;
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
