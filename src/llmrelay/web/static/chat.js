/* LR.Chat: one agent's conversation in the page.
 *
 * Sending posts to /api/ai/agents with stream:true and reads the SSE frames from the response
 * body (EventSource cannot POST): `attempt` shows which link is being tried, each `delta`'s text is
 * appended to a text node as it arrives, `toolCall` / `toolCallDelta` fill a tool-call block and
 * `reasoning` a reasoning block (tools.js), `done` replaces the text with the rendered Markdown (see
 * markdown.js), redraws the tool calls pretty-printed and adds the badge, `error` shows why no link
 * answered.
 *
 * The message is a string, or parts when it carries images (attach.js) or tool results: after an
 * answer that called tools the composer asks for what each returned (nothing is ever run here).
 *
 * The conversation id is kept in localStorage per user and agent, and the messages (with their
 * images, tool calls and tool results) are read back from GET /api/ai/conversations/{id} after a
 * reload.
 */

import * as LR from "./app.js";
import { el } from "./app.js";
import { Attachments, imageView } from "./attach.js";
import { markdown } from "./markdown.js";
import { reasoningBlock, toolCallBlock, toolResultBlock } from "./tools.js";

async function* sseEvents(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    buffer = buffer.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) yield { event, data: JSON.parse(data.join("\n")) };
    }
    if (done) return;
  }
}

function attemptList(attempts) {
  const failed = (attempts || []).filter((a) => a.status !== "success");
  return el("ul", { class: "attempts" }, failed.map((a) =>
    el("li", { class: `attempt attempt-${a.status}` },
      el("span", { class: "link-name" }, `${a.provider}/${a.model}`), " ",
      el("span", { class: "status" }, a.status + (a.errorKind ? ` (${a.errorKind})` : "")),
      a.error ? el("span", { class: "why" }, `: ${a.error}`) : null)));
}

/** "downgraded by budget", its tooltip naming the links a budget skipped (their error starts "budget "). */
function budgetMarker(attempts) {
  const skipped = (attempts || []).filter((a) => a.status === "skipped" && (a.error || "").startsWith("budget "));
  const why = "A budget kept a dearer model of the chain from serving, so a cheaper one answered."
    + skipped.map((a) => `\n${a.provider}/${a.model}: ${a.error}`).join("");
  return el("span", { class: "b-budget", title: why }, "downgraded by budget");
}

const plural = (n, word) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** "fallback after 3 failed attempts on 1 link and 1 skipped link": attempts and links counted apart. */
function fallbackSummary(attempts) {
  const failed = (attempts || []).filter((a) => a.status === "failed");
  const skipped = (attempts || []).filter((a) => a.status === "skipped");
  const links = new Set(failed.map((a) => `${a.provider}/${a.model}`)).size;
  const pieces = [];
  if (failed.length) pieces.push(`${plural(failed.length, "failed attempt")} on ${plural(links, "link")}`);
  if (skipped.length) pieces.push(plural(skipped.length, "skipped link"));
  return pieces.length ? `fallback after ${pieces.join(" and ")}` : "fallback";
}

/** The time the providers took: every attempt's latency added up, as the ledger has it, so that the badge
 * says the same live and after a reload (the request's wall time would add llmrelay's own waits). */
function providerTime(meta) {
  const attempts = meta.attemptedProviders;
  if (!attempts || !attempts.length) return meta.generationTime;
  return attempts.reduce((sum, a) => sum + (a.latencyMs || 0), 0);
}

/** The badge under an answer: provider · model · tokens · cost · latency, the budget downgrade and the fallback. */
function badge(meta) {
  const tokens = meta.tokensUsed || {};
  const parts = [
    el("span", { class: "b-provider" }, meta.usedProvider || meta.provider || "?"),
    el("span", { class: "b-model" }, meta.model || "?"),
    el("span", { class: "b-tokens", title: `prompt ${tokens.prompt ?? "?"} + completion ${tokens.completion ?? "?"}` },
      `${LR.int(tokens.total)} tokens`),
    el("span", { class: "b-cost", title: meta.costUsd === null ? "A model used has no known price" : "Exact cost" },
      LR.usd(meta.costUsd)),
    el("span", { class: "b-latency", title: "Time the providers took (each attempt's latency added up)" },
      LR.ms(providerTime(meta))),
  ];
  if (meta.budgetDowngraded) parts.push(budgetMarker(meta.attemptedProviders));
  const row = el("div", { class: "answer-badge", dataset: { fallback: meta.fallbackUsed ? "yes" : "no",
                                                            budget: meta.budgetDowngraded ? "downgraded" : "no" } }, parts);
  if (meta.fallbackUsed) {
    row.append(el("details", { class: "fallback" },
      el("summary", {}, fallbackSummary(meta.attemptedProviders)),
      attemptList(meta.attemptedProviders)));
  }
  return row;
}

/** The tool calls of an assistant turn's stored parts, as the answer's `toolCalls`. */
const callsOf = (parts) => (parts || []).filter((p) => p.type === "toolCall");

class Chat {
  /** opts.images: {ok, reason}: whether the agent's serving model takes images (and why not). */
  constructor(root, agent, userId, opts = {}) {
    this.root = root;
    this.agent = agent;
    this.storageKey = `llmrelay.conversation.${userId}.${agent.id}`;
    this.conversationId = localStorage.getItem(this.storageKey);
    this.busy = null;
    this.pending = [];  // the tool calls of the last answer, still waiting for their results
    this.build();
    this.setImageSupport(opts.images || { ok: false, reason: "" });
  }

  build() {
    this.log = el("ol", { class: "chat-log plain", "aria-live": "polite", "aria-label": "Conversation" });
    this.input = el("textarea", { id: "chat-input", name: "message", rows: 3,
                                  placeholder: `Message ${this.agent.name}… (Enter sends, Shift+Enter: new line)` });
    this.results = el("div", { class: "tool-results-form", hidden: true });
    this.attachments = new Attachments(this.input);
    this.sendButton = el("button", { type: "submit", class: "primary" }, "Send");
    this.form = el("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); this.send(); } },
      this.results,
      el("label", { for: "chat-input", class: "visually-hidden" }, "Message"),
      this.input,
      this.attachments.list,
      el("div", { class: "composer-actions" },
        this.attachments.control,
        el("span", { class: "spacer" }),
        el("button", { type: "button", class: "secondary", onclick: () => this.reset() }, "New conversation"),
        this.sendButton));
    this.input.addEventListener("keydown", (e) => {  // Enter sends; Shift+Enter is a new line
      if (e.key !== "Enter" || e.shiftKey || e.isComposing) return;
      e.preventDefault();
      this.send();
    });
    this.root.replaceChildren(this.log, this.form);
  }

  setImageSupport(support) {
    this.attachments.setSupport(support);
  }

  async restore() {
    if (!this.conversationId) return;
    try {
      const conv = await LR.api(`/api/ai/conversations/${encodeURIComponent(this.conversationId)}`);
      const names = {};  // call id -> tool name, for the results that answer them
      let last = null;
      for (const m of conv.messages) {
        if (m.role === "user") this.addUser(m.content, m.parts, names);
        else if (m.role === "assistant") {
          const bubble = this.addAssistant();
          const calls = callsOf(m.parts);
          for (const c of calls) names[c.id] = c.name;
          this.finish(bubble, m.content, null, { toolCalls: calls,
            reasoning: (m.parts || []).filter((p) => p.type === "reasoning") });
          // the badge again, from the ledger's rows of that request (just provider and model
          // while they are still being written)
          bubble.meta.replaceChildren(m.usage
            ? badge({ ...m.usage, usedProvider: m.provider, model: m.model })
            : el("div", { class: "answer-badge restored" },
              el("span", { class: "b-provider" }, m.provider || "?"), el("span", { class: "b-model" }, m.model || "?")));
        }
        last = m;
      }
      this.setPending(last && last.role === "assistant" ? callsOf(last.parts) : []);
      this.scroll();
    } catch (err) {
      if (err.status === 404) this.forget();
      else LR.showError(err);
    }
  }

  forget() {
    this.conversationId = null;
    localStorage.removeItem(this.storageKey);
  }

  reset() {
    if (this.busy) this.busy.abort();
    this.forget();
    this.setPending([]);
    this.attachments.take();
    this.log.replaceChildren();
    this.input.focus();
  }

  /** The last answer called tools: the composer asks for what each returned (llmrelay runs none). */
  setPending(calls) {
    this.pending = calls || [];
    this.results.hidden = this.pending.length === 0;
    this.results.replaceChildren(...(this.pending.length ? [
      el("p", { class: "hint" }, `The answer called ${this.pending.length === 1 ? "a tool" : `${this.pending.length} tools`}. `
        + "llmrelay runs no tool: write what each returned to go on, or start a new conversation."),
      ...this.pending.map((c, i) => el("div", { class: "tool-result-field" },
        el("label", { for: `tool-result-${i}` }, "Result of ", el("code", {}, c.name)),
        el("textarea", { id: `tool-result-${i}`, rows: 2, dataset: { callId: c.id, tool: c.name } }))),
    ] : []));
  }

  addUser(text, parts, names = {}) {
    const extras = [];
    for (const p of parts || []) {
      if (p.type === "image") extras.push(imageView(p));
      else if (p.type === "toolResult") extras.push(toolResultBlock(p, names[p.callId]));
    }
    const body = el("div", { class: "msg-body" }, text || "");
    this.log.append(el("li", { class: "msg user" }, el("div", { class: "who" }, "You"), body,
      extras.length ? el("div", { class: "msg-extras" }, extras) : null));
  }

  addAssistant() {
    const text = document.createTextNode("");
    const body = el("div", { class: "msg-body streaming" }, text);
    const status = el("div", { class: "msg-status muted" });
    const tools = el("div", { class: "msg-tools" });
    const meta = el("div", { class: "msg-meta" });
    const item = el("li", { class: "msg assistant" }, el("div", { class: "who" }, this.agent.name), status, body,
      tools, meta);
    this.log.append(item);
    return { item, body, text, status, tools, meta, calls: [], reasoning: null };
  }

  /** The answer in full: its text as Markdown, its reasoning and tool calls as blocks. */
  finish(bubble, fullText, meta, extras = {}) {
    bubble.body.classList.remove("streaming");
    bubble.body.replaceChildren(markdown(fullText || ""));
    bubble.status.textContent = "";
    const blocks = [...(extras.reasoning || []).filter((r) => r.text).map((r) => reasoningBlock(r.text)),
                    ...(extras.toolCalls || []).map((c) => toolCallBlock(c))];
    if (blocks.length || extras.toolCalls) bubble.tools.replaceChildren(...blocks);
    if (meta) bubble.meta.replaceChildren(badge(meta));
  }

  scroll() {
    const last = this.log.lastElementChild;
    if (last) last.scrollIntoView({ block: "end" });
  }

  /** What the composer holds as the message: a string, or parts when it carries images or tool results. */
  compose() {
    const text = this.input.value.trim();
    const results = [...this.results.querySelectorAll("textarea")].map((t) =>
      ({ type: "toolResult", callId: t.dataset.callId, content: t.value }));
    const images = this.attachments.items.length ? this.attachments.take() : [];
    if (!results.length && !images.length) return { message: text, text, results, images };
    return { message: [...results, ...(text ? [{ type: "text", text }] : []), ...images], text, results, images };
  }

  async send() {
    if (this.busy) return;
    if (!this.input.value.trim() && !this.attachments.items.length && !this.pending.length) return;
    const { message, text, results, images } = this.compose();
    this.input.value = "";
    await this.ask(message, text, results, images);
  }

  /** Send `message` (what `compose` made) and show its answer as it comes in. */
  async ask(message, text, results, images) {
    const names = Object.fromEntries(this.pending.map((c) => [c.id, c.name]));
    this.setPending([]);
    this.addUser(text, [...images, ...results], names);
    const bubble = this.addAssistant();
    bubble.status.textContent = "Waiting for the first link…";
    this.busy = new AbortController();
    this.sendButton.disabled = true;
    const body = { agentId: this.agent.id, message, stream: true };
    if (this.conversationId) body.conversationId = this.conversationId;
    let full = "";
    try {
      const response = await LR.api("/api/ai/agents", { method: "POST", body, raw: true, signal: this.busy.signal });
      for await (const { event, data } of sseEvents(response)) {
        this.onEvent(bubble, event, data, (piece) => { full += piece; });
        if (event === "done") {
          this.remember(data.conversationId);
          this.finish(bubble, data.response, data, { toolCalls: data.toolCalls || [], reasoning: data.reasoning });
          this.setPending(data.toolCalls || []);
        } else if (event === "error") {
          this.remember(data.conversationId);
          this.failed(bubble, full, data);
          bubble.meta.append(this.retryButton(message, text, results, images));
        }
        this.scroll();
      }
    } catch (err) {
      if (err.name !== "AbortError") {
        bubble.status.textContent = "";
        bubble.body.classList.remove("streaming");
        bubble.meta.replaceChildren(el("p", { class: "error", role: "alert" }, LR.errorText(err)),
                                    err.problem && err.problem.attemptedProviders
                                      ? attemptList(err.problem.attemptedProviders) : "",
                                    this.retryButton(message, text, results, images));
      }
    } finally {
      this.busy = null;
      this.sendButton.disabled = false;
    }
  }

  /** One stream event while the answer comes in: which link is tried, text, tool calls, reasoning. */
  onEvent(bubble, event, data, keep) {
    if (event === "attempt") {
      bubble.status.textContent = data.status === "skipped"
        ? `Skipped ${data.provider}/${data.model}: ${data.error || data.errorKind}`
        : `${data.provider}/${data.model}: ${data.status}${data.errorKind ? ` (${data.errorKind})` : ""}`;
    } else if (event === "delta") {
      keep(data.text);
      bubble.text.appendData(data.text);
      bubble.status.textContent = "";
    } else if (event === "toolCall") {
      const block = toolCallBlock({ id: data.id, name: data.name, arguments: "" });
      bubble.calls[data.index] = block;
      bubble.tools.append(block);
      bubble.status.textContent = "";
    } else if (event === "toolCallDelta") {
      const block = bubble.calls[data.index];
      if (block) block.appendArguments(data.arguments);
    } else if (event === "reasoning") {
      if (!bubble.reasoning) {
        bubble.reasoning = reasoningBlock("");
        bubble.tools.prepend(bubble.reasoning);
      }
      bubble.reasoning.appendText(data.text);
    }
  }

  /** Ask the same again (a new turn: the failed one stays in the conversation, as it happened). */
  retryButton(message, text, results, images) {
    const button = el("button", { type: "button", class: "secondary retry", onclick: () => {
      if (this.busy) return;
      button.remove();
      this.ask(message, text, results, images);
    } }, "Retry");
    return button;
  }

  failed(bubble, full, data) {
    this.finish(bubble, full, null);
    bubble.meta.replaceChildren(
      el("p", { class: "error", role: "alert" }, data.error || "No provider answered."),
      attemptList(data.attemptedProviders));
  }

  remember(conversationId) {
    if (!conversationId) return;
    this.conversationId = conversationId;
    localStorage.setItem(this.storageKey, conversationId);
  }
}

export { Chat, sseEvents, badge as answerBadge, fallbackSummary };
