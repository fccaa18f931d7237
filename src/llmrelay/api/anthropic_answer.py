"""Anthropic's Messages answer, whichever provider served: the `message` body (`message`) and the SSE
events of one stream (`Frames`).

Content, in order: the model's thinking (`thinking` blocks; Anthropic's own with their `signature`, so a
client can send them back in a tool loop; another provider's reasoning with an empty signature, which
Anthropic's shape requires and which is never sent back to anyone; Anthropic's encrypted thinking as
`redacted_thinking`), the text, then one `tool_use` block per call (`input` the arguments object; ids
carry a Gemini thought signature as `<id>__thought__<signature>`, as on /v1/chat/completions, so that the
id a client echoes back brings it along).  Arguments a model produced that are not a JSON object (a
malformed call) are given whole as `{"arguments": "<the text>"}` rather than dropped.

`stop_reason`: `end_turn`, `max_tokens` (the answer hit its limit, or the context window), `tool_use`
(the answer calls tools), `refusal` (the provider filtered or refused it).  `stop_sequence` is always
null and a stop by a stop sequence is `end_turn`: the providers' answers reach llmrelay as one
"stopped" reason, without which sequence stopped them.

Usage: `input_tokens` excludes the input read from (`cache_read_input_tokens`) or written to
(`cache_creation_input_tokens`) a prompt cache, as Anthropic counts it; `output_tokens` includes thinking,
whose share is `output_tokens_details.thinking_tokens` when the provider reports one.

Streams: `message_start` (content empty; its usage is zero, because the first output event is the
earliest point a stream can commit to a provider and llmrelay's stream events carry no usage before the
answer ends: the whole usage, input side included, comes in `message_delta`, cumulative, as Anthropic
sends it there too), `ping`, then per content block `content_block_start` / `content_block_delta`
(`text_delta`, `input_json_delta`, `thinking_delta`, `signature_delta`) / `content_block_stop`, indexes
from 0 in the order the blocks begin: a block ends when the next one begins (or the answer ends), a
tool call's block also when its call ends (an argument piece of a call whose block has ended, which no
provider llmrelay knows sends, still goes to that call's block by its index).  Then `message_delta`
(stop reason, usage) and `message_stop`.  A stream that breaks after output ends with Anthropic's
`error` event and no `message_stop`.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..providers.openai_wire import client_id
from ..types import (
    AttemptEvent,
    ChatResponse,
    ErrorKind,
    Reasoning,
    ReasoningDelta,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
_ERROR_TYPES = {ErrorKind.OVERLOADED: "overloaded_error", ErrorKind.RATE_LIMITED: "rate_limit_error",
                ErrorKind.TIMEOUT: "timeout_error", ErrorKind.BAD_REQUEST: "invalid_request_error",
                ErrorKind.AUTH: "api_error", ErrorKind.NOT_FOUND: "api_error"}
"""The `error.type` of a stream that broke after output, by what broke it (the caller's own key is not
what failed, so a provider's auth failure is llmrelay's `api_error`)."""


def stop_reason(resp: ChatResponse) -> str:
    if resp.tool_calls and resp.finish_reason in ("stop", "tool_calls"):
        return "tool_use"  # some providers say "stop" when the answer calls tools: the client must run them
    if resp.finish_reason == "tool_calls":
        return "end_turn"  # no call left (a structured answer's forced tool is the text)
    return _STOP.get(resp.finish_reason, "end_turn")


def usage_json(u: Usage, by_ttl: bool = True) -> dict[str, Any]:
    """Anthropic's usage object; `by_ttl`: with the cache writes split by lifetime (`cache_creation`), as a whole
    message has it (a stream's `message_delta` has not)."""
    out: dict[str, Any] = {
        "input_tokens": max(0, u.input_tokens - u.cached_input_tokens - u.cache_write_tokens),
        "cache_creation_input_tokens": u.cache_write_tokens, "cache_read_input_tokens": u.cached_input_tokens,
        "output_tokens": u.output_tokens}
    if by_ttl:
        out["cache_creation"] = {"ephemeral_5m_input_tokens": u.cache_write_tokens - u.cache_write_1h_tokens,
                                 "ephemeral_1h_input_tokens": u.cache_write_1h_tokens}
    if u.reasoning_tokens:
        out["output_tokens_details"] = {"thinking_tokens": u.reasoning_tokens}
    return out


def thinking_block(r: Reasoning) -> dict[str, Any]:
    if r.redacted:
        return {"type": "redacted_thinking", "data": r.redacted}
    ours = r.provider in ("anthropic", None)
    return {"type": "thinking", "thinking": r.text, "signature": (r.signature or "") if ours else ""}


def tool_input(call: ToolCall) -> dict[str, Any]:
    value = call.arguments_object()
    return value if value is not None else {"arguments": call.arguments}


def tool_use_block(call: ToolCall) -> dict[str, Any]:
    return {"type": "tool_use", "id": client_id(call), "name": call.name, "input": tool_input(call)}


def message(message_id: str, resp: ChatResponse) -> bytes:
    """The non-streaming `message` body."""
    content = [thinking_block(r) for r in resp.reasoning]
    if resp.text:
        content.append({"type": "text", "text": resp.text})
    content += [tool_use_block(c) for c in resp.tool_calls]
    return orjson.dumps({"id": message_id, "type": "message", "role": "assistant", "model": resp.model,
                         "content": content, "stop_reason": stop_reason(resp), "stop_sequence": None,
                         "usage": usage_json(resp.usage)})


def error_body(kind: ErrorKind | None, message: str, request_id: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _ERROR_TYPES.get(kind, "api_error") if kind else "api_error",
                                       "message": message}, "request_id": request_id}


def _sse(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


_TEXT_HEAD = b'event: content_block_delta\ndata: {"type":"content_block_delta","index":'
_TEXT_MID = b',"delta":{"type":"text_delta","text":'


class Frames:
    """The SSE events of one stream: `start`, then `event` for each of the run's events, then `finish`
    (or `error`).  Keeps which content block is open and which index each tool call and thinking block
    was given."""

    __slots__ = ("_count", "_open", "_thoughts", "_tools", "message_id", "model")

    def __init__(self, message_id: str, model: str) -> None:
        self.message_id, self.model = message_id, model
        self._count = 0
        """Blocks begun so far (the next block's index)."""
        self._open: tuple[str, int] | None = None
        """The open block: (`text`, -1), (`tool`, call index) or (`thinking`, thinking index)."""
        self._tools: dict[int, int] = {}
        self._thoughts: dict[int, int] = {}

    def start(self) -> bytes:
        usage = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                 "output_tokens": 0}
        return _sse("message_start", {"type": "message_start", "message": {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": usage}}) + _sse("ping", {"type": "ping"})

    def event(self, ev: Any) -> bytes:
        """The events one run event makes (b"" for none)."""
        kind = type(ev)
        if kind is TextDelta:
            head = b"" if self._open == ("text", -1) else self._begin(("text", -1), {"type": "text", "text": ""})
            return head + _TEXT_HEAD + str(self._count - 1).encode() + _TEXT_MID + orjson.dumps(ev.text) + b"}}\n\n"
        if kind is ToolCallStart:
            call = ToolCall(ev.id, ev.name, "", ev.signature)
            out = self._begin(("tool", ev.index), {"type": "tool_use", "id": client_id(call), "name": ev.name,
                                                   "input": {}})
            self._tools[ev.index] = self._count - 1
            return out
        if kind is ToolCallDelta:
            out = b"" if ev.index in self._tools else self.event(ToolCallStart(ev.index, "", ""))
            if not ev.arguments:
                return out
            return out + self._delta(self._tools[ev.index], {"type": "input_json_delta", "partial_json": ev.arguments})
        if kind is ToolCallEnd:
            return self._close() if self._open == ("tool", ev.index) else b""
        if kind is ReasoningDelta:
            return self._reasoning(ev)
        assert kind is AttemptEvent, kind  # attempts are not for the client
        return b""

    def _reasoning(self, ev: ReasoningDelta) -> bytes:
        if ev.redacted:
            out = self._begin(("thinking", ev.index), {"type": "redacted_thinking", "data": ev.redacted})
            self._thoughts[ev.index] = self._count - 1
            return out + self._close()
        out = b""
        if self._open != ("thinking", ev.index):
            out = self._begin(("thinking", ev.index), {"type": "thinking", "thinking": "", "signature": ""})
            self._thoughts[ev.index] = self._count - 1
        index = self._thoughts[ev.index]
        if ev.text:
            out += self._delta(index, {"type": "thinking_delta", "thinking": ev.text})
        if ev.signature:
            out += self._delta(index, {"type": "signature_delta", "signature": ev.signature})
        return out

    def finish(self, resp: ChatResponse) -> bytes:
        return self._close() + _sse("message_delta", {
            "type": "message_delta", "delta": {"stop_reason": stop_reason(resp), "stop_sequence": None},
            "usage": usage_json(resp.usage, by_ttl=False)}) + _sse("message_stop", {"type": "message_stop"})

    @staticmethod
    def error(kind: ErrorKind | None, message: str, request_id: str) -> bytes:
        """The event that ends a stream that broke after output went out (the SDKs raise on it)."""
        return _sse("error", error_body(kind, message, request_id))

    # -- blocks ------------------------------------------------------------------------------------

    def _begin(self, key: tuple[str, int], block: dict[str, Any]) -> bytes:
        out = self._close()
        self._open = key
        self._count += 1
        return out + _sse("content_block_start", {"type": "content_block_start", "index": self._count - 1,
                                                  "content_block": block})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _sse("content_block_stop", {"type": "content_block_stop", "index": self._count - 1})

    @staticmethod
    def _delta(index: int, delta: dict[str, Any]) -> bytes:
        return _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
