/* Collapsible blocks for what an answer holds beside its text, and for what a tool returned:
 *   LR.toolCallBlock(call)              a tool the model called: its name, and its arguments pretty-printed
 *   LR.toolResultBlock(result, name)    a tool's result as the user sent it back (an error is marked)
 *   LR.reasoningBlock(text)             the model's thinking, when the provider showed it
 * They only show: nothing is ever run, and everything goes into the page as text (textContent), never
 * as HTML. A streaming call's block is filled piece by piece (block.appendArguments) and redrawn
 * pretty once the answer is done.
 */

import * as LR from "./app.js";
import { el } from "./app.js";

const PREVIEW = 80;

/** JSON text indented for reading; anything that is not JSON stays as it came. */
function pretty(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch (_) {
    return text;
  }
}

function preview(text) {
  const flat = String(text || "").replace(/\s+/g, " ").trim();
  return flat.length > PREVIEW ? flat.slice(0, PREVIEW - 1) + "…" : flat;
}

function block(kind, label, name, body, extra) {
  const summaryPreview = el("span", { class: "tool-preview" }, preview(body));
  const code = el("code", {}, pretty(body));
  const details = el("details", { class: `tool-block ${kind}` + (extra.error ? " tool-error" : ""),
                                  dataset: extra.dataset || {} },
    el("summary", {},
      el("span", { class: "tool-kind" }, label), " ",
      name ? el("code", { class: "tool-name" }, name) : null, " ",
      summaryPreview),
    el("pre", { class: "tool-body" }, code));
  let raw = body || "";
  details.appendArguments = (piece) => {  // a streaming call: its arguments arrive in pieces
    raw += piece;
    code.textContent = raw;
    summaryPreview.textContent = preview(raw);
  };
  return details;
}

function toolCallBlock(call) {
  return block("tool-call", "Tool call", call.name, call.arguments || "",
    { dataset: { callId: call.id || "", tool: call.name || "" } });
}

function toolResultBlock(result, name) {
  return block("tool-result", result.isError ? "Tool error" : "Tool result", name || result.name || null,
    result.content || "", { error: result.isError, dataset: { callId: result.callId || "" } });
}

function reasoningBlock(text) {
  const details = el("details", { class: "tool-block reasoning-block" },
    el("summary", {}, el("span", { class: "tool-kind" }, "Reasoning"), " ",
      el("span", { class: "tool-preview" }, preview(text))),
    el("div", { class: "reasoning-text" }, text));
  details.appendText = (piece) => {
    text += piece;
    details.querySelector(".reasoning-text").textContent = text;
    details.querySelector(".tool-preview").textContent = preview(text);
  };
  return details;
}

export { toolCallBlock, toolResultBlock, reasoningBlock, pretty as prettyJson };
