// The usage page: metric cards, three charts and the records table, all read from the JSON API
// with the one query the server put in #usage-config (so every request reads the same window).
// Money arrives as exact decimal strings: the cards round the string itself (full value in the
// tooltip); only the charts turn it into a float.

import * as LR from "./app.js";

const root = document.getElementById("usage");
const config = JSON.parse(document.getElementById("usage-config").textContent);
const query = config.apiQuery;
const $ = (id) => document.getElementById(id);

// -- numbers: the formatters every page shares (app.js): money exact from its decimal string, one duration --

const usd = (text) => LR.usd(text, "—");
const count = (n) => LR.int(n);
const percent = (rate) => (rate === null || rate === undefined ? "—" : (rate * 100).toFixed(1) + "%");
const ms = (v) => (v === null || v === undefined ? "—" : LR.ms(v));

// -- fetching --------------------------------------------------------------------------------

// LR.api (app.js): the session cookie, a 401 back to sign-in, a problem's detail as the error
const usage = (groupBy) => LR.api(`/api/ai/usage?groupBy=${groupBy}&${query}`);

function showError(error) {
  const box = $("usage-error");
  box.textContent = "Could not load the usage figures: " + error.message;
  box.hidden = false;
}

// -- cards -----------------------------------------------------------------------------------

function setCard(id, text, value, note, title) {
  const card = $(id);
  card.dataset.value = value === null || value === undefined ? "" : String(value);
  card.querySelector(".metric-value").textContent = text;
  card.querySelector(".metric-note").textContent = note || "";
  if (title) card.title = title;
}

function renderCards(t) {
  const unpriced = t.unpricedCalls
    ? `${count(t.unpricedCalls)} unpriced call${t.unpricedCalls === 1 ? "" : "s"}: cost incomplete` : "";
  setCard("card-cost", usd(t.costUsd), t.costUsd, unpriced, `Exactly $${t.costUsd}`);
  $("card-cost").classList.toggle("flagged", !t.costComplete);
  setCard("card-requests", count(t.requests), t.requests, `${count(t.calls)} attempts`);
  // per request: one answered after three failed attempts is one request answered
  const answered = Math.min(t.successes, t.requests);
  setCard("card-success", percent(t.requestSuccessRate), t.requestSuccessRate,
    `${count(answered)} of ${count(t.requests)} requests answered`);
  setCard("card-calls", count(t.calls), t.calls, "retries and fallback links included");
  setCard("card-failures", percent(t.attemptFailureRate), t.attemptFailureRate,
    `${count(t.failures)} of ${count(t.calls)} attempts failed`);
  setCard("card-fallback", percent(t.fallbackRate), t.fallbackRate, `${count(t.fallbacks)} by a fallback`);
  setCard("card-avg-latency", ms(t.avgLatencyMs), t.avgLatencyMs, "per call");
  setCard("card-p95-latency", ms(t.p95LatencyMs), t.p95LatencyMs, "95% of calls were faster or equal");
}

// -- charts ----------------------------------------------------------------------------------

const narrow = window.matchMedia("(max-width: 600px)").matches; // a phone: the mode bar would cover the chart
const PLOT_CONFIG = { responsive: true, displaylogo: false, displayModeBar: narrow ? false : "hover",
  modeBarButtonsToRemove: ["lasso2d", "select2d"] };
const layout = (extra) => Object.assign({
  autosize: true, height: 300, margin: { l: 56, r: 16, t: 8, b: 48 },
  paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
  font: { family: "system-ui, sans-serif", size: 12 },
}, extra);

const MONEY_AXIS = { tickprefix: "$", tickformat: ",.6~f", rangemode: "tozero" }; // not "$100µ"

function tokensPie(groups) {
  const used = groups.filter((g) => g.tokens.total > 0);
  const data = [{
    type: "pie", hole: 0.45, sort: false, labels: used.map((g) => g.provider),
    values: used.map((g) => g.tokens.total), textinfo: "percent", insidetextorientation: "horizontal",
    hovertemplate: "%{label}: %{value:,} tokens<extra></extra>",
  }];
  const legend = { orientation: "h", x: 0.5, xanchor: "center", y: -0.05 };
  Plotly.newPlot("chart-tokens", data, layout({ legend, margin: { l: 8, r: 8, t: 8, b: 8 } }), PLOT_CONFIG);
}

function costBar(groups) {
  const data = [{
    type: "bar", x: groups.map((g) => g.agentId), y: groups.map((g) => parseFloat(g.costUsd)),
    customdata: groups.map((g) => g.costUsd), marker: { color: "#2f5bd3" },
    hovertemplate: "%{x}: $%{customdata}<extra></extra>",
  }];
  Plotly.newPlot("chart-agents", data, layout({ xaxis: { automargin: true }, yaxis: MONEY_AXIS }), PLOT_CONFIG);
}

// Every UTC day of the window, so a quiet day is a 0 on the line rather than a gap.
function daysOf(from, to) {
  const days = [];
  const end = new Date(to);
  for (let d = new Date(from.slice(0, 10) + "T00:00:00Z"); d < end; d.setUTCDate(d.getUTCDate() + 1)) {
    days.push(d.toISOString().slice(0, 10));
  }
  return days;
}

function costLine(groups) {
  const byDay = new Map(groups.map((g) => [g.day, g.costUsd]));
  const days = daysOf(config.from, config.to);
  const data = [{
    type: "scatter", mode: "lines+markers", x: days, y: days.map((d) => parseFloat(byDay.get(d) || "0")),
    customdata: days.map((d) => byDay.get(d) || "0"), line: { color: "#2f5bd3" },
    hovertemplate: "%{x}: $%{customdata}<extra></extra>",
  }];
  Plotly.newPlot("chart-days", data, layout({ xaxis: { type: "date" }, yaxis: MONEY_AXIS }),
    PLOT_CONFIG);
}

// -- records table ---------------------------------------------------------------------------

let cursor = null;
let lastRequest = null;

function cell(row, text, className, title) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  if (title) td.title = title;
  row.appendChild(td);
  return td;
}

function recordRow(r) {
  const tr = document.createElement("tr");
  tr.dataset.request = r.requestId;
  tr.dataset.status = r.status;
  if (r.requestId === lastRequest) tr.classList.add("same-request");
  lastRequest = r.requestId;
  cell(tr, r.createdAt.replace("T", " ").replace(/(\.\d+)?(Z|\+00:00)$/, ""), "time", r.createdAt);
  cell(tr, `…${r.requestId.slice(-8)} · #${r.attempt}`, "request", r.requestId); // ids share their prefix
  if (config.isAdmin) cell(tr, config.userNames[r.userId] || r.userId, "user");
  cell(tr, r.agentId);
  cell(tr, r.provider);
  cell(tr, r.model, "model");
  const chip = document.createElement("span");
  chip.className = "chip chip-" + r.status;
  chip.textContent = r.status;
  cell(tr, "").appendChild(chip);
  cell(tr, count(r.totalTokens), "num", `${count(r.promptTokens)} in, ${count(r.completionTokens)} out`);
  cell(tr, r.unpriced ? "unpriced" : usd(r.costUsd), "num", r.costUsd === null ? "no price known" : `$${r.costUsd}`);
  cell(tr, r.status === "skipped" ? "—" : ms(r.latencyMs), "num");
  const error = r.errorKind ? `${r.errorKind}: ${r.errorMessage || ""}` : "";
  cell(tr, error, "error-text", error);
  return tr;
}

async function loadRecords() {
  const more = $("records-more");
  more.disabled = true;
  const page = await LR.api(`/api/ai/usage/records?limit=${config.pageSize}&${query}` +
    (cursor ? "&cursor=" + encodeURIComponent(cursor) : ""));
  const body = $("records-body");
  page.records.forEach((r) => body.appendChild(recordRow(r)));
  cursor = page.nextCursor;
  more.hidden = !cursor;
  more.disabled = false;
}

// -- filters ---------------------------------------------------------------------------------

function wireFilters() {
  const form = $("usage-filters");
  const range = $("f-range");
  const customDates = () => {
    const custom = range.value === "custom";
    $("custom-dates").hidden = !custom;
    $("f-from").disabled = $("f-to").disabled = !custom;
  };
  customDates();
  // a clean URL: only the filters in use (empty selects and unused dates are left out)
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const params = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) params.append(name, value);
    location.assign("/usage" + (params.toString() ? "?" + params : ""));
  });
  form.addEventListener("change", (event) => {
    if (event.target === range) customDates();
    if (event.target.tagName === "SELECT" && range.value !== "custom") form.requestSubmit();
  });
  $("records-more").addEventListener("click", () => loadRecords().catch(showError));
}

// -- budgets ---------------------------------------------------------------------------------

// The server renders each budget's numbers; the bar's lengths come as percentages in data
// attributes and are set through the CSSOM (no style attribute in the markup).
function drawBudgets() {
  for (const fill of root.querySelectorAll(".budget-fill[data-fill]")) fill.style.width = fill.dataset.fill + "%";
  for (const mark of root.querySelectorAll(".budget-mark[data-mark]")) mark.style.left = mark.dataset.mark + "%";
}

// -- the page --------------------------------------------------------------------------------

async function load() {
  const [byProvider, byAgent, byDay] = await Promise.all([usage("provider"), usage("agent"), usage("day")]);
  const totals = byProvider.totals;
  renderCards(totals);
  const empty = totals.requests === 0 && totals.calls === 0 && totals.skipped === 0;
  $("usage-empty").hidden = !empty;
  $("usage-charts").hidden = empty;
  $("usage-records").hidden = empty;
  if (!empty) {
    tokensPie(byProvider.groups);
    costBar(byAgent.groups);
    costLine(byDay.groups);
    await loadRecords();
  }
  root.dataset.state = empty ? "empty" : "ready";
}

wireFilters();
drawBudgets();
load().catch((error) => { root.dataset.state = "error"; showError(error); });

