// Stats with charts (uPlot, loaded on this page only): received and answered per day, time to
// reply (median and p95), tokens and cost per day, and the messages of each channel. Every
// chart has the same figures as a table under it, which is what screen readers get.
import { html, useEffect, useRef, useState } from "../htm-preact.module.js";
import { api, everyAccount, firstAccount, Loading, query, useLoad } from "../lib.js";

const DAYS = 14;

function stylesheet(href) {
  if (document.querySelector(`link[data-sheet="${href}"]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet"; link.href = href; link.dataset.sheet = href;
  document.head.append(link);
}

// One uPlot chart over the days: `lines` are [label, values, colour, options].
function Chart({ name, days, lines, axes }) {
  const box = useRef(null);
  useEffect(() => {
    if (!days || !box.current) return undefined;
    let plot = null;
    let gone = false;
    (async () => {
      stylesheet(new URL("../uPlot.min.css", import.meta.url).href);
      const { default: uPlot } = await import("../uPlot.esm.js");
      if (gone) return;
      const xs = days.map((d) => Date.parse(d.date + "T00:00:00Z") / 1000);
      plot = new uPlot({
        width: Math.max(280, Math.min(box.current.clientWidth || 640, 960)), height: 220,
        scales: { x: { time: true } },
        axes: axes || [{}, {}],
        series: [{}, ...lines.map(([label, , stroke, options]) => ({ label, stroke, width: 2, ...options }))],
      }, [xs, ...lines.map(([, values]) => values)], box.current);
    })();
    return () => { gone = true; plot?.destroy(); };
  }, [days, lines]);
  return html`<div class="chart" data-chart=${name} ref=${box} aria-hidden="true"></div>`;
}

const seconds = (value) => (value === null || value === undefined ? "" : Number(value).toFixed(1));
const money = (value) => Number(value || 0).toFixed(4);

export default function Stats({ t }) {
  const [picked, setAccount] = useState("");
  // one load: the accounts (for the picker; shared between pages), then the chosen one's days
  const [loaded] = useLoad(async () => {
    const names = await everyAccount();
    const account = picked || firstAccount(names);
    return { names, account, ...(await api("GET", "/stats" + query({ days: DAYS, account }))) };
  }, [picked]);
  const account = loaded.data?.account || picked;
  const accounts = { data: loaded.data?.names };
  const [channels] = useLoad(() => {
    const end = new Date();
    const start = new Date(end.getTime() - (DAYS - 1) * 86400000);
    const day = (d) => d.toISOString().slice(0, 10);
    return api("GET", "/api/v1/analytics/metrics" + query({ start_date: day(start), end_date: day(end) }));
  }, []);
  const days = loaded.data?.days;
  const [charts, setCharts] = useState(null);
  useEffect(() => {
    if (!days) return;
    setCharts({
      volume: [[t("received"), days.map((d) => d.received), "#0b57d0"],
               [t("replied"), days.map((d) => d.replied), "#b3261e", { dash: [6, 4] }]],
      latency: [[t("medianReply"), days.map((d) => d.median_reply_seconds), "#146c2e"],
                [t("p95Reply"), days.map((d) => d.p95_reply_seconds), "#8a4b00", { dash: [6, 4] }]],
      usage: [[t("tokens"), days.map((d) => d.prompt_tokens + d.completion_tokens), "#6d28d9"],
              [t("cost"), days.map((d) => d.cost_usd), "#b3261e", { scale: "usd", dash: [6, 4] }]],
    });
  }, [days, t]);
  if (!days) return html`<${Loading} t=${t} state=${loaded} />`;
  const platforms = Object.entries(channels.data?.platforms || {});
  const most = Math.max(1, ...platforms.map(([, p]) => p.messages));
  return html`<section aria-labelledby="stats-h"><h2 id="stats-h">${t("stats")}</h2>
    ${accounts.data && (accounts.data.length > 1 || account !== "default") && html`
      <label for="stats-account">${t("account")}</label>
      <select id="stats-account" value=${account} onChange=${(e) => setAccount(e.target.value)}>
        ${accounts.data.map((name) => html`<option value=${name}>${name}</option>`)}
      </select>`}
    <h3>${t("volume")}</h3>
    ${charts && html`<${Chart} name="volume" days=${days} lines=${charts.volume} />`}
    <h3>${t("timeToReply")}</h3>
    ${charts && html`<${Chart} name="latency" days=${days} lines=${charts.latency} />`}
    <h3>${t("usage")}</h3>
    ${charts && html`<${Chart} name="usage" days=${days} lines=${charts.usage}
      axes=${[{}, {}, { side: 1, scale: "usd", grid: { show: false } }]} />`}
    <table class="days"><caption>${t("perDay")}</caption>
      <thead><tr><th scope="col">${t("date")}</th><th scope="col">${t("received")}</th>
        <th scope="col">${t("replied")}</th><th scope="col">${t("skipped")}</th>
        <th scope="col">${t("failed")}</th><th scope="col">${t("medianReply")}</th>
        <th scope="col">${t("tokens")}</th><th scope="col">${t("cost")}</th></tr></thead>
      <tbody>${[...days].reverse().map((d) => html`<tr data-date=${d.date}><td>${d.date}</td>
        <td>${d.received}</td><td>${d.replied}</td><td>${d.skipped_total}</td><td>${d.failed}</td>
        <td>${seconds(d.median_reply_seconds)}</td><td>${d.prompt_tokens + d.completion_tokens}</td>
        <td>${money(d.cost_usd)}</td></tr>`)}
      </tbody></table>
    <h3 id="channels-h">${t("byChannel")}</h3>
    ${platforms.length ? html`<table class="channels" aria-labelledby="channels-h">
      <thead><tr><th scope="col">${t("channel")}</th><th scope="col">${t("messages")}</th>
        <th scope="col">${t("conversationsWord")}</th></tr></thead>
      <tbody>${platforms.map(([name, p]) => html`<tr data-channel=${name}><td>${name}</td>
        <td><span class="bar" style=${{ width: (100 * p.messages) / most + "%" }}></span>${p.messages}</td>
        <td>${p.users}</td></tr>`)}</tbody></table>`
      : html`<p class="muted">${t("noData")}</p>`}
  </section>`;
}
