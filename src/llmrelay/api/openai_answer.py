"""OpenAI's chat-completions answer: the `chat.completion` body (`completion`) and the
`chat.completion.chunk` SSE frames of one stream (`Chunks`).

The message is `openai_wire.answer_to_wire`'s: text (null when the answer only calls tools), tool
calls (their ids as the client must send them back, `client_id`), and the model's reasoning as
`reasoning_content`.  In a stream, the first frame carries `role`; text deltas are pre-rendered
around their JSON-encoded text (the busiest path); a tool call is OpenAI's fragment sequence (its
first fragment with `index`, `id`, `type` and `function.name` with `arguments: ""`, then pieces of
`arguments`), reasoning a `reasoning_content` delta.
"""

from __future__ import annotations

from typing import Any

import orjson

from ..providers.openai_wire import answer_to_wire, client_id
from ..types import ChatResponse, ReasoningDelta, ToolCall, ToolCallDelta, ToolCallStart, Usage


def usage_json(u: Usage) -> dict[str, Any]:
    return {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.total_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens}}


def _finish(reason: str | None) -> str:
    return "stop" if reason in (None, "error") else reason  # type: ignore[return-value]


def completion(completion_id: str, created: int, resp: ChatResponse) -> bytes:
    """The `chat.completion` body."""
    message = answer_to_wire(resp.text, resp.tool_calls, resp.reasoning)
    return orjson.dumps({
        "id": completion_id, "object": "chat.completion", "created": created, "model": resp.model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(resp.finish_reason)}],
        "usage": usage_json(resp.usage), "system_fingerprint": None,
    })


class Chunks:
    """The `chat.completion.chunk` SSE frames of one stream, their constant parts rendered once."""

    DONE = b"data: [DONE]\n\n"

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        head = b"data: " + orjson.dumps({"id": completion_id, "object": "chat.completion.chunk", "created": created,
                                         "model": model})[:-1]
        end = b',"usage":null}\n\n' if include_usage else b"}\n\n"
        self._delta = head + b',"choices":[{"index":0,"delta":{'
        self._delta_end = b'},"logprobs":null,"finish_reason":null}]' + end
        self._finish = head + b',"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":'
        self._finish_end = b"}]" + end
        self._usage = head + b',"choices":[],"usage":'
        self._role = True
        """The next frame is the first: it carries the role."""

    def _frame(self, delta: bytes) -> bytes:
        if self._role:
            self._role = False
            delta = b'"role":"assistant",' + delta
        return self._delta + delta + self._delta_end

    def first(self, text: str) -> bytes:
        return self._frame(b'"content":' + orjson.dumps(text))

    def text(self, text: str) -> bytes:
        if self._role:
            return self.first(text)
        return self._delta + b'"content":' + orjson.dumps(text) + self._delta_end

    def tool_start(self, event: ToolCallStart) -> bytes:
        fragment = {"index": event.index, "id": client_id(ToolCall(event.id, event.name, "", event.signature)),
                    "type": "function", "function": {"name": event.name, "arguments": ""}}
        return self._frame(b'"tool_calls":' + orjson.dumps([fragment]))

    def tool_delta(self, event: ToolCallDelta) -> bytes:
        return self._frame(b'"tool_calls":' + orjson.dumps([{"index": event.index,
                                                              "function": {"arguments": event.arguments}}]))

    def reasoning(self, event: ReasoningDelta) -> bytes | None:
        """None for a delta without text (a signature: OpenAI's shape has no place for it)."""
        return self._frame(b'"reasoning_content":' + orjson.dumps(event.text)) if event.text else None

    def finish(self, reason: str | None) -> bytes:
        return self._finish + orjson.dumps(_finish(reason)) + self._finish_end

    def usage(self, u: Usage) -> bytes:
        return self._usage + orjson.dumps(usage_json(u)) + b"}\n\n"

    @staticmethod
    def error(message: str, code: str | None) -> bytes:
        """The frame that ends a stream that broke after output went out (OpenAI SDKs raise `APIError`)."""
        return b"data: " + orjson.dumps({"error": {"message": message, "type": "api_error", "param": None,
                                                   "code": code}}) + b"\n\n"
