/* LR.Chat: one agent's conversation in the page.
 *
 * Sending posts to /api/ai/agents with stream:true and reads the SSE frames from the response
 * body (EventSource cannot POST): `attempt` shows which link is being tried, each `delta`'s text is
 * appended to a text node as it arrives, `done` replaces it with the rendered Markdown (see
 * markdown.js) and adds the badge, `error` shows why no link answered.
 *
 * The conversation id is kept in localStorage per user and agent, and the messages are read back
 * from GET /api/ai/conversations/{id} after a reload.
 */
"use strict";

(function () {
  const { el } = window.LR;

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

  /** The badge under an answer: provider · model · tokens · cost · latency, and the fallback. */
  function badge(meta) {
    const tokens = meta.tokensUsed || {};
    const parts = [
      el("span", { class: "b-provider" }, meta.usedProvider || meta.provider || "?"),
      el("span", { class: "b-model" }, meta.model || "?"),
      el("span", { class: "b-tokens", title: `prompt ${tokens.prompt ?? "?"} + completion ${tokens.completion ?? "?"}` },
        `${LR.int(tokens.total)} tokens`),
      el("span", { class: "b-cost", title: meta.costUsd === null ? "A model used has no known price" : "Exact cost" },
        LR.usd(meta.costUsd)),
      el("span", { class: "b-latency", title: "Generation time" }, LR.ms(meta.generationTime)),
    ];
    const row = el("div", { class: "answer-badge", dataset: { fallback: meta.fallbackUsed ? "yes" : "no" } }, parts);
    if (meta.fallbackUsed) {
      const failed = (meta.attemptedProviders || []).filter((a) => a.status !== "success");
      row.append(el("details", { class: "fallback" },
        el("summary", {}, `fallback: ${failed.length} link${failed.length === 1 ? "" : "s"} before this one`),
        attemptList(meta.attemptedProviders)));
    }
    return row;
  }

  class Chat {
    constructor(root, agent, userId) {
      this.root = root;
      this.agent = agent;
      this.storageKey = `llmrelay.conversation.${userId}.${agent.id}`;
      this.conversationId = localStorage.getItem(this.storageKey);
      this.busy = null;
      this.build();
    }

    build() {
      this.log = el("ol", { class: "chat-log plain", "aria-live": "polite", "aria-label": "Conversation" });
      this.input = el("textarea", { id: "chat-input", name: "message", rows: 3, required: true,
                                    placeholder: `Message ${this.agent.name}…` });
      this.sendButton = el("button", { type: "submit", class: "primary" }, "Send");
      this.form = el("form", { class: "composer", onsubmit: (e) => { e.preventDefault(); this.send(); } },
        el("label", { for: "chat-input", class: "visually-hidden" }, "Message"),
        this.input,
        el("div", { class: "composer-actions" },
          el("button", { type: "button", class: "secondary", onclick: () => this.reset() }, "New conversation"),
          this.sendButton));
      this.input.addEventListener("keydown", (e) => {
        if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); this.send(); }
      });
      this.root.replaceChildren(this.log, this.form);
    }

    async restore() {
      if (!this.conversationId) return;
      try {
        const conv = await LR.api(`/api/ai/conversations/${encodeURIComponent(this.conversationId)}`);
        for (const m of conv.messages) {
          if (m.role === "user") this.addUser(m.content);
          else if (m.role === "assistant") {
            const bubble = this.addAssistant();
            this.finish(bubble, m.content, null);
            // the badge again, from the ledger's rows of that request (just provider and model
            // while they are still being written)
            bubble.meta.replaceChildren(m.usage
              ? badge({ ...m.usage, usedProvider: m.provider, model: m.model })
              : el("div", { class: "answer-badge restored" },
                el("span", { class: "b-provider" }, m.provider || "?"), el("span", { class: "b-model" }, m.model || "?")));
          }
        }
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
      this.log.replaceChildren();
      this.input.focus();
    }

    addUser(text) {
      const body = el("div", { class: "msg-body" }, text);
      this.log.append(el("li", { class: "msg user" }, el("div", { class: "who" }, "You"), body));
    }

    addAssistant() {
      const text = document.createTextNode("");
      const body = el("div", { class: "msg-body streaming" }, text);
      const status = el("div", { class: "msg-status muted" });
      const meta = el("div", { class: "msg-meta" });
      const item = el("li", { class: "msg assistant" }, el("div", { class: "who" }, this.agent.name), status, body, meta);
      this.log.append(item);
      return { item, body, text, status, meta };
    }

    finish(bubble, fullText, meta) {
      bubble.body.classList.remove("streaming");
      bubble.body.replaceChildren(LR.markdown(fullText));
      bubble.status.textContent = "";
      if (meta) bubble.meta.replaceChildren(badge(meta));
    }

    scroll() {
      const last = this.log.lastElementChild;
      if (last) last.scrollIntoView({ block: "end" });
    }

    async send() {
      const message = this.input.value.trim();
      if (!message || this.busy) return;
      this.input.value = "";
      this.addUser(message);
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
          if (event === "attempt") {
            bubble.status.textContent = data.status === "skipped"
              ? `Skipped ${data.provider}/${data.model}: ${data.error || data.errorKind}`
              : `${data.provider}/${data.model}: ${data.status}${data.errorKind ? ` (${data.errorKind})` : ""}`;
          } else if (event === "delta") {
            full += data.text;
            bubble.text.appendData(data.text);
            bubble.status.textContent = "";
          } else if (event === "done") {
            this.remember(data.conversationId);
            this.finish(bubble, data.response, data);
          } else if (event === "error") {
            this.remember(data.conversationId);
            this.failed(bubble, full, data);
          }
          this.scroll();
        }
      } catch (err) {
        if (err.name !== "AbortError") {
          bubble.status.textContent = "";
          bubble.body.classList.remove("streaming");
          bubble.meta.replaceChildren(el("p", { class: "error", role: "alert" }, LR.errorText(err)),
                                      err.problem && err.problem.attemptedProviders
                                        ? attemptList(err.problem.attemptedProviders) : "");
        }
      } finally {
        this.busy = null;
        this.sendButton.disabled = false;
      }
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

  window.LR = Object.assign(window.LR || {}, { Chat, sseEvents, answerBadge: badge });
})();
