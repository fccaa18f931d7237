// The usage page's budget editor (admins only): the "Set a budget" form and each card's Edit and
// Remove buttons, saving through PUT and DELETE /api/ai/budgets with LR.api (app.js: the session
// cookie and the page's CSRF token).  The limit is sent as the text the admin typed (never through
// a JS number: the API reads it as an exact decimal).  An error shows next to the field it names
// (aria-describedby on the control, an aria-live region), or under the form when it names none.
// A save reloads the page, which renders the new card; a removal takes the card away in place.

import * as LR from "./app.js";

const form = document.getElementById("budget-form");  // the admin's editor (this module runs with it only)
const config = JSON.parse(document.getElementById("usage-config").textContent);
const specs = config.budgetSpecs || {};
const $ = (id) => document.getElementById(id);
const editor = $("budget-editor");
const title = $("budget-form-title");
const status = $("budget-status");
const controls = { userId: $("b-user"), agentId: $("b-agent"), limitUsd: $("b-limit"), period: $("b-period"),
  resetDay: $("b-reset"), softPercent: $("b-soft"), unpriced: $("b-unpriced"), webhookUrl: $("b-webhook") };
const DECIMAL = /^[0-9]+(\.[0-9]+)?$/;
const SAVED = "llmrelay.budgetSaved";

// -- errors ----------------------------------------------------------------------------------

function clearErrors() {
  for (const box of form.querySelectorAll("[data-error-for]")) box.textContent = "";
  for (const control of Object.values(controls)) control.removeAttribute("aria-invalid");
  $("b-form-error").hidden = true;
}

// The message next to `field`'s control (which gets the focus), or under the form for no known field.
function fieldError(field, message) {
  const box = field && form.querySelector(`[data-error-for="${field}"]`);
  if (!box) {
    $("b-form-error").textContent = message;
    $("b-form-error").hidden = false;
    return;
  }
  box.textContent = message;
  controls[field].setAttribute("aria-invalid", "true");
  controls[field].focus();
}

// -- the form --------------------------------------------------------------------------------

function showResetDay() {
  const monthly = controls.period.value === "month";
  $("b-reset-field").hidden = !monthly;
  controls.resetDay.disabled = !monthly;
}

const wholeNumber = (text) => (/^[0-9]+$/.test(text) ? Number(text) : NaN);

// The PUT body from the form, or null after showing what is wrong (checked in the order of the form).
function body() {
  const userId = controls.userId.value;
  const agentId = controls.agentId.value;
  if (!userId && !agentId) {
    fieldError("userId", "Choose a user, an agent, or both: a budget is on at least one of them.");
    return null;
  }
  const limit = controls.limitUsd.value.trim();
  if (!DECIMAL.test(limit) || !/[1-9]/.test(limit)) {
    fieldError("limitUsd", limit && DECIMAL.test(limit) ? "The limit must be more than $0."
      : "Enter the limit as a plain decimal number of dollars, such as 25 or 0.50 (no $ sign or commas).");
    return null;
  }
  const out = { limitUsd: limit, period: controls.period.value, unpriced: controls.unpriced.value };
  if (userId) out.userId = userId;
  if (agentId) out.agentId = agentId;
  if (out.period === "month") {
    const day = wholeNumber(controls.resetDay.value.trim() || "1");
    if (!(day >= 1 && day <= 31)) { fieldError("resetDay", "The reset day is a whole number from 1 to 31."); return null; }
    out.resetDay = day;
  }
  const soft = wholeNumber(controls.softPercent.value.trim() || "80");
  if (!(soft >= 1 && soft <= 100)) {
    fieldError("softPercent", "The soft threshold is a whole number from 1 to 100.");
    return null;
  }
  out.softPercent = soft;
  out.webhookUrl = controls.webhookUrl.value.trim() || null;
  return out;
}

// Back to "Set a budget" with the defaults (and the user and agent free to choose again).
function clearForm() {
  form.reset();
  clearErrors();
  delete form.dataset.scope;
  controls.userId.disabled = controls.agentId.disabled = false;
  title.textContent = "Set a budget";
  $("b-save").textContent = "Save budget";
  showResetDay();
}

// The form filled with the budget of `scope`; its user and agent stay as they are (they name the budget).
function edit(scope, owner) {
  const spec = specs[scope];
  if (!spec) return;
  clearForm();
  form.dataset.scope = scope;
  controls.userId.value = spec.userId || "";
  controls.agentId.value = spec.agentId || "";
  controls.userId.disabled = controls.agentId.disabled = true;
  controls.limitUsd.value = spec.limitUsd;
  controls.period.value = spec.period;
  controls.resetDay.value = String(spec.resetDay || 1);
  controls.softPercent.value = String(spec.softPercent);
  controls.unpriced.value = spec.unpriced;
  controls.webhookUrl.value = spec.webhookUrl || "";
  title.textContent = `Edit the budget of ${owner}`;
  $("b-save").textContent = "Save changes";
  showResetDay();
  editor.open = true;
  controls.limitUsd.focus();
  controls.limitUsd.select();
}

async function save(event) {
  event.preventDefault();
  clearErrors();
  const sent = body();
  if (!sent) return;
  const button = $("b-save");
  button.disabled = true;
  form.setAttribute("aria-busy", "true");
  try {
    const saved = await LR.api("/api/ai/budgets", { method: "PUT", body: sent });
    sessionStorage.setItem(SAVED, saved.scope);
    location.reload();
  } catch (err) {
    fieldError(err instanceof LR.ApiError ? err.field : null, LR.errorText(err));
    button.disabled = false;
    form.removeAttribute("aria-busy");
  }
}

// -- the cards -------------------------------------------------------------------------------

function announce(text) {
  status.textContent = text;
}

async function remove(card, actions) {
  const spec = specs[card.dataset.scope] || {};
  const params = new URLSearchParams();
  if (spec.userId) params.set("userId", spec.userId);
  if (spec.agentId) params.set("agentId", spec.agentId);
  const error = actions.querySelector(".budget-error");
  error.hidden = true;
  try {
    await LR.api(`/api/ai/budgets?${params}`, { method: "DELETE" });
  } catch (err) {
    error.textContent = `Could not remove the budget: ${LR.errorText(err)}`;
    error.hidden = false;
    actions.querySelector(".budget-confirm-no").focus();
    return;
  }
  const list = card.parentElement;
  const next = card.nextElementSibling || card.previousElementSibling;
  card.remove();
  delete specs[card.dataset.scope];
  if (form.dataset.scope === card.dataset.scope) clearForm();
  announce(`Removed the budget of ${actions.dataset.owner}.`);
  if (!list.children.length) {
    list.remove();
    $("budgets-none-left").hidden = false;
  }
  (next ? next.querySelector(".budget-edit") : editor.querySelector("summary")).focus();
}

// The confirm step of Remove, inside the card: shown with the focus on "Keep it", or put away.
function confirming(actions, on) {
  actions.querySelector(".budget-confirm").hidden = !on;
  actions.querySelector(".budget-remove").hidden = on;
  actions.querySelector(".budget-edit").disabled = on;
  actions.querySelector(on ? ".budget-confirm-no" : ".budget-remove").focus();
}

function wireCards() {
  const section = $("usage-budgets");
  section.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    const actions = button && button.closest(".budget-actions");
    if (!actions) return;
    const card = actions.closest(".budget");
    if (button.classList.contains("budget-edit")) edit(card.dataset.scope, actions.dataset.owner);
    else if (button.classList.contains("budget-remove")) confirming(actions, true);
    else if (button.classList.contains("budget-confirm-no")) confirming(actions, false);
    else if (button.classList.contains("budget-confirm-yes")) {
      button.disabled = true;
      remove(card, actions).finally(() => { button.disabled = false; });
    }
  });
  section.addEventListener("keydown", (event) => {
    const actions = event.target.closest && event.target.closest(".budget-confirm");
    if (event.key === "Escape" && actions) confirming(actions.closest(".budget-actions"), false);
  });
}

// After a save's reload: say so, and bring the saved card into view.
function savedBefore() {
  const scope = sessionStorage.getItem(SAVED);
  if (!scope) return;
  sessionStorage.removeItem(SAVED);
  const card = document.querySelector(`.budget[data-scope="${CSS.escape(scope)}"]`);
  if (!card) return;
  card.classList.add("budget-saved");
  announce(`Saved the budget of ${card.querySelector(".budget-actions").dataset.owner}.`);
  card.scrollIntoView({ block: "nearest" });
}

form.addEventListener("submit", save);
controls.period.addEventListener("change", showResetDay);
$("b-cancel").addEventListener("click", () => { clearForm(); controls.userId.focus(); });
for (const name of ["userId", "agentId"]) {
  controls[name].addEventListener("change", () => {
    controls.userId.removeAttribute("aria-invalid");
    form.querySelector('[data-error-for="userId"]').textContent = "";
  });
}
showResetDay();
if (form) {
  wireCards();
  savedBefore();
}
