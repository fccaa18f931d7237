/* llmrelay's shared page helpers, an ES module every page's script imports (`import * as LR from "./app.js"`):
 *   LR.api(path, {method, body, signal, raw})  fetch with the session cookie (same-origin) and, on
 *       anything but GET/HEAD, the page's X-CSRF-Token; JSON in and out; a problem+json error is
 *       thrown as LR.ApiError (status, title, detail, field); a 401 sends the page to /signin.
 *   LR.el(tag, attrs, ...children)  builds DOM; strings become text nodes (never parsed as HTML).
 *   LR.showError(err, where?)  a readable error in `where` (or the toast).
 *   LR.tierBadge(tier), LR.usd(str), LR.ms(n), LR.int(n), LR.tokensShort(n)  small formatters, the one set
 *       every page uses (LR.usd is exact: decimal strings, never floats).
 */

const SAFE = new Set(["GET", "HEAD"]);

function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

class ApiError extends Error {
  constructor(status, problem) {
    const detail = (problem && (problem.detail || problem.title)) || `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.title = (problem && problem.title) || "Error";
    this.detail = detail;
    this.field = problem && problem.field;
    this.problem = problem || {};
  }
}

function toSignIn() {
  const next = location.pathname + location.search;
  location.assign("/signin?next=" + encodeURIComponent(next));
}

async function errorFrom(response) {
  let problem = null;
  const type = response.headers.get("content-type") || "";
  if (type.includes("json")) {
    try { problem = await response.json(); } catch (_) { problem = null; }
  }
  return new ApiError(response.status, problem);
}

async function api(path, options = {}) {
  const method = (options.method || "GET").toUpperCase();
  const headers = { accept: "application/json", ...(options.headers || {}) };
  if (!SAFE.has(method)) headers["x-csrf-token"] = csrfToken();
  let body;
  if (options.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(options.body);
  }
  const response = await fetch(path, { method, headers, body, credentials: "same-origin", signal: options.signal });
  if (response.status === 401) {
    toSignIn();
    throw new ApiError(401, { title: "Signed out", detail: "Your session ended: please sign in again." });
  }
  if (!response.ok) throw await errorFrom(response);
  if (options.raw) return response;
  if (response.status === 204) return null;
  return response.json();
}

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function errorText(err) {
  if (err instanceof ApiError) return err.field ? `${err.detail}` : `${err.title}: ${err.detail}`;
  return (err && err.message) || String(err);
}

let toastTimer = null;
function toast(message, kind) {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = message;
  box.className = kind || "";
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, 6000);
}

function showError(err, where) {
  if (err && err.name === "AbortError") return;
  const text = errorText(err);
  if (where) {
    where.replaceChildren(el("p", { class: "error", role: "alert" }, text));
    where.hidden = false;
  } else {
    toast(text, "error");
  }
}

const TIERS = { free: "Free", low: "Low", medium: "Medium", high: "High" };
function tierBadge(tier) {
  if (!tier) return el("span", { class: "tier tier-unknown", title: "No known price" }, "Unpriced");
  return el("span", { class: `tier tier-${tier}`, title: `Cost tier: ${TIERS[tier] || tier}` }, TIERS[tier] || tier);
}

// "12.3456789" rounded half-up to `places` decimals, in exact decimal arithmetic (money arrives as
// exact decimal strings and is never turned into a float to be shown).
function roundDecimal(text, places) {
  const negative = text.startsWith("-");
  const [whole, frac = ""] = (negative ? text.slice(1) : text).split(".");
  const scaled = BigInt(whole + frac.padEnd(places + 1, "0").slice(0, places + 1));
  const rounded = scaled / 10n + (scaled % 10n >= 5n ? 1n : 0n);
  const digits = rounded.toString().padStart(places + 1, "0");
  const head = digits.slice(0, digits.length - places);
  const tail = places ? "." + digits.slice(-places) : "";
  return (negative && /[1-9]/.test(digits) ? "-" : "") + head + tail;
}

const thousands = (whole) => whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");

/** Dollars from an exact decimal string: cents from $1 up; below that up to six decimals (a call often
 * costs a fraction of a cent); `missing` for null (a cost nobody could price). */
function usd(text, missing = "unpriced") {
  if (text === null || text === undefined) return missing;
  text = String(text);
  const large = Number(text.replace("-", "").split(".")[0]) >= 1;
  let shown = roundDecimal(text, large ? 2 : 6);
  if (!large) shown = shown.replace(/(\.\d\d\d*?)0+$/, "$1"); // no trailing zeros past the cents
  if (/[1-9]/.test(text) && !/[1-9]/.test(shown)) return "< $0.000001";
  const [whole, frac] = shown.replace("-", "").split(".");
  return (shown.startsWith("-") ? "-$" : "$") + thousands(whole) + "." + frac;
}

const int = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
const ms = (n) => (n === null || n === undefined ? "–"
  : n < 1000 ? `${Math.round(n)} ms` : `${(n / 1000).toFixed(1)} s`);
function tokensShort(n) {
  if (!n) return "–";
  return n >= 1e6 ? `${+(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${Math.round(n / 1e3)}k` : String(n);
}

export { api, ApiError, el, errorText, showError, toast, tierBadge, usd, roundDecimal, int, ms, tokensShort,
         csrfToken };
