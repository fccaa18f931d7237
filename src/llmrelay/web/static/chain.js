/* LR.chainEditor(agent, opts): the fallback chain editor, a <details> section of the agent page.
 *
 * Edits a local copy of the chain (move up/down, remove, add a model from the catalog) and the
 * limits (max tokens, temperature); nothing is sent until Save (POST /api/ai/config, which
 * validates and answers problem+json naming the field), and Reset goes back to the agent's own
 * chain (DELETE /api/ai/config/{agentId}).
 *   opts: {chain, models, providerStatus(provider), linkKey(link), save(links, limits) -> error | null,
 *          reset(), openBefore}
 */

import * as LR from "./app.js";
import { el } from "./app.js";

const MAX_LINKS = 8;

function chainEditor(agent, opts) {
  let links = opts.chain.map((l) => ({ ...l }));
  const key = opts.linkKey;
  const list = el("ol", { class: "chain-links", id: "chain-links" });
  const errors = el("div", { class: "chain-errors", hidden: true });
  const addSelect = el("select", { id: "chain-add", name: "add" });
  const cfg = agent.config || {};
  const maxTokens = el("input", { id: "chain-max-tokens", type: "number", min: 1, step: 1, inputmode: "numeric",
                                  value: cfg.maxTokens ?? "", placeholder: "default" });
  const temperature = el("input", { id: "chain-temperature", type: "number", min: 0, max: 2, step: 0.1,
                                    inputmode: "decimal", value: cfg.temperature ?? "", placeholder: "default" });

  function move(i, by) {
    const j = i + by;
    if (j < 0 || j >= links.length) return;
    [links[i], links[j]] = [links[j], links[i]];
    draw();
    list.querySelectorAll("li")[j].querySelector(by < 0 ? ".up" : ".down")?.focus();
  }

  function draw() {
    list.replaceChildren(...links.map((link, i) => {
      const status = opts.providerStatus(link.provider);
      const name = key(link);
      return el("li", { class: "chain-link" + (status.enabled ? "" : " disabled"), dataset: { link: name } },
        el("span", { class: "pos" }, i === 0 ? "primary" : `fallback ${i}`),
        el("span", { class: "link-name" }, name),
        status.enabled ? null : el("span", { class: "reason", title: status.reason }, `skipped: ${status.reason}`),
        el("span", { class: "link-actions" },
          el("button", { type: "button", class: "icon up", "aria-label": `Move ${name} up`, disabled: i === 0,
                         onclick: () => move(i, -1) }, "↑"),
          el("button", { type: "button", class: "icon down", "aria-label": `Move ${name} down`,
                         disabled: i === links.length - 1, onclick: () => move(i, 1) }, "↓"),
          el("button", { type: "button", class: "icon remove", "aria-label": `Remove ${name}`,
                         disabled: links.length === 1, onclick: () => { links.splice(i, 1); draw(); } }, "✕")));
    }));
    const used = new Set(links.map(key));
    addSelect.replaceChildren(el("option", { value: "" }, "Add a model…"),
      ...opts.models.filter((m) => !used.has(key(m))).map((m) => {
        const status = opts.providerStatus(m.provider);
        return el("option", { value: key(m), dataset: { provider: m.provider, model: m.model } },
          key(m) + (status.enabled ? "" : ` (disabled: ${status.reason})`));
      }));
    addSelect.disabled = links.length >= MAX_LINKS;
  }

  function add() {
    const option = addSelect.selectedOptions[0];
    if (!option || !option.value) return;
    links.push({ provider: option.dataset.provider, model: option.dataset.model });
    draw();
    addSelect.focus();
  }

  function number(input) {
    return input.value.trim() === "" ? null : Number(input.value);
  }

  async function save(e) {
    e.preventDefault();
    errors.hidden = true;
    const err = await opts.save(links, { maxTokens: number(maxTokens), temperature: number(temperature) });
    if (err) LR.showError(err, errors);
  }

  draw();
  const form = el("form", { class: "chain-form", onsubmit: save },
    list,
    el("div", { class: "chain-add" },
      el("label", { for: "chain-add" }, "Add a link"), addSelect,
      el("button", { type: "button", class: "secondary", onclick: add }, "Add")),
    el("div", { class: "chain-limits" },
      el("label", { for: "chain-max-tokens" }, "Max tokens"), maxTokens,
      el("label", { for: "chain-temperature" }, "Temperature"), temperature),
    errors,
    el("div", { class: "chain-actions" },
      el("button", { type: "submit", class: "primary" }, "Save chain"),
      el("button", { type: "button", class: "secondary", onclick: () => opts.reset(),
                     disabled: !agent.config, title: "Forget your chain: the agent's own applies" },
        "Reset to default")));
  return el("details", { class: "chain-editor", open: opts.openBefore },
    el("summary", {}, "Fallback chain ", el("span", { class: "muted" },
      agent.config ? "(yours)" : "(the agent's default)", ` · ${links.length} link${links.length === 1 ? "" : "s"}`)),
    form);
}

export { chainEditor };
