/* The agents page: the list of agents, and for the chosen one its header (tier, the model that
 * answers first, the model selector), its chat (chat.js) and its fallback chain editor (chain.js).
 *
 * Data: GET /api/ai/agents (agents, their links with enabled/disabledReason, your saved config),
 * GET /api/ai/models (prices, tiers, context windows, capability flags, each model's median latency
 * over the last day), GET /api/ai/providers (each provider's over the last hour: the speed indicator's
 * fallback). Choosing a model saves it as the primary through POST /api/ai/config, keeping the rest of
 * the chain. The chat offers image attachments when the model that answers first takes images.
 */

import * as LR from "./app.js";
import { el } from "./app.js";
import { chainEditor } from "./chain.js";
import { Chat } from "./chat.js";

const root = document.getElementById("agents-app");  // the agents page's mount point (this module runs there only)
const state = { agents: [], models: [], providers: {}, current: null, userId: root?.dataset.userId };

const linkKey = (l) => `${l.provider}/${l.model}`;

/** The chain in force for an agent: the saved config's, else the agent's own (by priority). */
function chainOf(agent) {
  if (agent.config) {
    return [{ provider: agent.config.primaryProvider, model: agent.config.primaryModel },
            ...agent.config.fallbackChain.map((l) => ({ provider: l.provider, model: l.model }))];
  }
  return [...agent.supportedProviders].sort((a, b) => a.priority - b.priority)
    .map((l) => ({ provider: l.provider, model: l.model }));
}

function providerStatus(provider) {
  const p = state.providers[provider];
  return p ? { enabled: p.enabled, reason: p.disabledReason } : { enabled: true, reason: null };
}

function modelInfo(provider, model) {
  return state.models.find((m) => m.provider === provider && m.model === model) || { provider, model };
}

/** The model a request goes to first: the chain's first link whose provider is enabled. */
function firstUsable(agent) {
  const chain = chainOf(agent);
  return chain.find((l) => providerStatus(l.provider).enabled) || chain[0];
}

/** The speed indicator: this model's median latency over the last day (GET /api/ai/models),
 * else its provider's over the last hour (GET /api/ai/providers), else "no data yet". */
function speed(info) {
  const own = info.recent && info.recent.calls ? info.recent : null;
  const p = state.providers[info.provider];
  const theirs = p && p.recent && p.recent.calls ? p.recent : null;
  const found = own || theirs;
  if (!found || found.p50LatencyMs === null) {
    return el("span", { class: "speed speed-none", title: "No calls to this model or its provider yet" }, "no data yet");
  }
  const p50 = found.p50LatencyMs;
  const [level, word] = p50 < 1500 ? [3, "fast"] : p50 < 5000 ? [2, "medium"] : [1, "slow"];
  const hours = Math.round(found.windowMinutes / 60);
  const title = own
    ? `Median latency of ${info.provider}/${info.model}: ${p50} ms over ${own.calls} calls in the last ${hours} h`
    : `No calls to this model yet; median latency of ${info.provider} (all its models): ${p50} ms over the last ${hours} h`;
  return el("span", { class: `speed speed-${level}`, title, dataset: { p50: String(p50), of: own ? "model" : "provider" } },
    "●".repeat(level) + "○".repeat(3 - level), ` ${word} · ${LR.ms(p50)}` + (own ? "" : " (provider)"));
}

const CAPS = [["tools", "tools", "Calls tools"], ["vision", "vision", "Takes images"],
              ["json", "JSON", "Answers in JSON that fits a schema"]];

/** The model's capability flags as small badges: one for each it has; unknown when the catalog
 * does not know the model. */
function capBadges(info) {
  const caps = info.capabilities;
  if (!caps) {
    return el("span", { class: "caps" },
      el("span", { class: "cap cap-unknown", title: "llmrelay does not know what this model can take" }, "?"));
  }
  return el("span", { class: "caps" }, CAPS.filter(([key]) => caps[key]).map(([key, label, title]) =>
    el("span", { class: `cap cap-${key}`, title, dataset: { cap: key } }, label)));
}

/** Whether the agent's chat may attach images: the model that answers first must take them. */
function imageSupport(agent) {
  const first = firstUsable(agent);
  const info = modelInfo(first.provider, first.model);
  const caps = info.capabilities;
  if (caps && caps.vision) return { ok: true, reason: "" };
  const why = caps ? "takes no images" : "is not known to take images";
  return { ok: false, reason: `${linkKey(first)}, which answers first, ${why}: choose a model with vision to attach one.` };
}

function price(info) {
  const p = info.pricePer1M;
  if (!p) return el("span", { class: "price muted" }, "no price known");
  return el("span", { class: "price", title: "USD per 1M tokens, input / output" },
    `$${+p.input} / $${+p.output} per 1M`);
}

function renderList() {
  const list = document.getElementById("agent-list");
  list.replaceChildren(...state.agents.map((agent) => {
    const first = firstUsable(agent);
    const current = state.current && state.current.id === agent.id;
    return el("li", {},
      el("a", { href: `/agents/${encodeURIComponent(agent.id)}`, class: "agent-item",
                "aria-current": current ? "page" : null, dataset: { agentId: agent.id },
                onclick: (e) => { e.preventDefault(); select(agent.id, true); } },
        el("span", { class: "agent-name" }, agent.name), " ", LR.tierBadge(agent.costTier),
        agent.description ? el("span", { class: "agent-desc" }, agent.description) : null,
        el("span", { class: "agent-model" }, linkKey(first), agent.config ? " (your choice)" : "")));
  }));
}

function modelOption(link, chosen, name) {
  const info = modelInfo(link.provider, link.model);
  const status = providerStatus(link.provider);
  const id = `opt-${name}-${linkKey(link).replace(/[^\w-]/g, "_")}`;
  return el("li", { class: "model-option" + (status.enabled ? "" : " disabled") },
    el("input", { type: "radio", name, id, value: linkKey(link), checked: chosen, disabled: !status.enabled,
                  dataset: { provider: link.provider, model: link.model } }),
    el("label", { for: id },
      el("span", { class: "opt-name" }, linkKey(link)), " ", LR.tierBadge(info.costTier), " ", capBadges(info),
      el("span", { class: "opt-facts" }, price(info),
        el("span", { class: "ctx" }, info.contextWindow ? `${LR.tokensShort(info.contextWindow)} context` : "context ?"),
        speed(info)),
      status.enabled ? null : el("span", { class: "reason" }, status.reason)));
}

function selector(agent) {
  const chain = chainOf(agent);
  const primary = chain[0];
  const own = agent.supportedProviders.map((l) => ({ provider: l.provider, model: l.model }));
  const ownKeys = new Set(own.map(linkKey));
  const others = state.models.filter((m) => !ownKeys.has(linkKey(m)))
    .map((m) => ({ provider: m.provider, model: m.model }));
  const fieldset = el("fieldset", { class: "model-selector", id: "model-selector" },
    el("legend", {}, "Primary model"),
    el("p", { class: "hint" }, "The model tried first; the rest of the chain stays as it is."),
    el("h4", {}, "This agent's links"),
    el("ul", { class: "plain options" }, own.map((l) => modelOption(l, linkKey(l) === linkKey(primary), "primary"))),
    el("h4", {}, "Other models"),
    el("ul", { class: "plain options" }, others.map((l) => modelOption(l, linkKey(l) === linkKey(primary), "primary"))));
  fieldset.addEventListener("change", async (e) => {
    if (e.target.name !== "primary") return;
    const picked = { provider: e.target.dataset.provider, model: e.target.dataset.model };
    const rest = chainOf(agent).filter((l) => linkKey(l) !== linkKey(picked)).slice(0, 7);
    const wrap = document.getElementById("model-selector-wrap");
    if (wrap) wrap.open = false;  // a choice closes the selector (the header is drawn again closed)
    const err = await saveChain(agent, [picked, ...rest], agent.config || {}, `Primary model: ${linkKey(picked)}`);
    if (err) {
      if (wrap) wrap.open = true;  // nothing changed: the choice is still to make
      LR.showError(err);
    }
  });
  return fieldset;
}

async function saveChain(agent, links, limits, message) {
  try {
    await LR.api("/api/ai/config", { method: "POST", body: {
      agentId: agent.id, primaryProvider: links[0].provider, primaryModel: links[0].model,
      fallbackChain: links.slice(1), maxTokens: limits.maxTokens ?? null, temperature: limits.temperature ?? null } });
    LR.toast(`Saved. ${message}`, "ok");
    await refresh(agent.id);
    return null;
  } catch (err) {
    return err;
  }
}

async function resetChain(agent) {
  try {
    await LR.api(`/api/ai/config/${encodeURIComponent(agent.id)}`, { method: "DELETE" });
    LR.toast("Back to the agent's own chain.", "ok");
    await refresh(agent.id);
  } catch (err) {
    LR.showError(err);
  }
}

function header(agent) {
  const first = firstUsable(agent);
  const info = modelInfo(first.provider, first.model);
  const open = document.getElementById("model-selector-wrap");
  const wrap = el("details", { class: "selector-wrap", id: "model-selector-wrap", open: open ? open.open : false },
    el("summary", { class: "model-badge", title: "Change the primary model" },
      el("span", { class: "label" }, "Model"), " ", el("strong", { id: "current-model" }, linkKey(first)), " ",
      LR.tierBadge(info.costTier), " ", capBadges(info)),
    selector(agent));
  return el("header", { class: "agent-header" },
    el("div", { class: "agent-title" }, el("h2", {}, agent.name), " ", LR.tierBadge(agent.costTier)),
    agent.description ? el("p", { class: "muted" }, agent.description) : null,
    wrap);
}

function renderPanel(agent, { keepChat } = {}) {
  const panel = document.getElementById("agent-panel");
  const oldHeader = panel.querySelector(".agent-header");
  const oldChain = panel.querySelector(".chain-editor");
  const newHeader = header(agent);
  const chainBox = chainEditor(agent, {
    chain: chainOf(agent), models: state.models, providerStatus, linkKey,
    save: (links, limits) => saveChain(agent, links, limits, "Fallback chain updated."),
    reset: () => resetChain(agent), openBefore: oldChain ? oldChain.open : false });
  if (keepChat && oldHeader && oldChain) {
    oldHeader.replaceWith(newHeader);
    oldChain.replaceWith(chainBox);
    if (state.chat) state.chat.setImageSupport(imageSupport(agent));
    return;
  }
  const chatBox = el("div", { class: "chat" });
  panel.replaceChildren(newHeader, chainBox, chatBox);
  state.chat = new Chat(chatBox, agent, state.userId, { images: imageSupport(agent) });
  state.chat.restore();
}

function select(agentId, push) {
  const agent = state.agents.find((a) => a.id === agentId);
  if (!agent) {
    if (agentId) LR.toast(`No agent ${agentId}`, "error");
    return;
  }
  state.current = agent;
  root.classList.add("has-agent");  // on a phone the chat then comes first, the list after it
  if (push) history.pushState({ agentId }, "", `/agents/${encodeURIComponent(agentId)}`);
  document.title = `${agent.name} · llmrelay`;
  renderList();
  renderPanel(agent);
}

async function refresh(agentId) {
  state.agents = await LR.api("/api/ai/agents");
  const agent = state.agents.find((a) => a.id === agentId);
  state.current = agent;
  renderList();
  if (agent) renderPanel(agent, { keepChat: true });
}

async function start() {
  try {
    const [agents, models, providers] = await Promise.all([
      LR.api("/api/ai/agents"), LR.api("/api/ai/models"), LR.api("/api/ai/providers")]);
    state.agents = agents;
    state.models = models;
    state.providers = Object.fromEntries(providers.map((p) => [p.provider, p]));
  } catch (err) {
    LR.showError(err, document.getElementById("agent-list"));
    return;
  }
  renderList();
  const wanted = root.dataset.agentId;
  if (wanted) select(wanted, false);
  root.dataset.state = "ready";
}

window.addEventListener("popstate", (e) => {
  const id = (e.state && e.state.agentId) || (location.pathname === "/" ? null : root.dataset.agentId);
  if (id) select(id, false);
  else location.reload();
});
if (root) start();
