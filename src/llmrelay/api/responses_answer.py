"""OpenAI's Responses API answer: the `response` object (`response_object`, `finished`) and the typed
SSE events of one stream (`Events`), as the openai SDK's `Response` and `ResponseStreamEvent` types
read them.

The object echoes what the request asked for (`echo`: instructions, tools, tool_choice, text format,
sampling, metadata, store, …) around the answer: `output` (`responses_items.answer_items`), `usage`
(`input_tokens` with `input_tokens_details.cached_tokens` and `cache_write_tokens`, `output_tokens`
with `output_tokens_details.reasoning_tokens`, `total_tokens`), and `status`: `completed`, or
`incomplete` with `incomplete_details.reason` (`max_output_tokens` when the answer was cut by the token
limit, `content_filter` when a provider's filter stopped it), or, when a stream breaks after output went
out, `failed` with `error`.

A stream: `response.created` and `response.in_progress` (the object with status `in_progress`), then per
output item `response.output_item.added`, its content (a message: `response.content_part.added`,
`response.output_text.delta`…, `response.output_text.done`, `response.content_part.done`; a function
call: `response.function_call_arguments.delta`…, `.done`; reasoning: `response.reasoning_summary_part.added`,
`response.reasoning_summary_text.delta`…, `.done`, `response.reasoning_summary_part.done`) and
`response.output_item.done`; then `response.completed` (or `response.incomplete`) with the whole object,
usage included — or `response.failed` when the stream broke after output.  Every event has its
`sequence_number`, from 0.  An item is finished when the next kind of output begins; the items and
their ids are those the finished object lists.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from ..content import OutputFormat, Reasoning, Tool, ToolCall, ToolChoice
from ..types import (
    ChatResponse,
    ErrorKind,
    Outcome,
    ReasoningDelta,
    RequestOptions,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)
from .responses_format import ResponsesRequest
from .responses_items import answer_items, call_item, item_ids, message_item, reasoning_item


def usage_json(u: Usage) -> dict[str, Any]:
    return {"input_tokens": u.input_tokens, "input_tokens_details": {
                "cached_tokens": u.cached_input_tokens, "cache_write_tokens": u.cache_write_tokens},
            "output_tokens": u.output_tokens, "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            "total_tokens": u.total_tokens}


def _tool_json(t: Tool) -> dict[str, Any]:
    return {"type": "function", "name": t.name, "description": t.description or None, "parameters": t.parameters,
            "strict": t.strict}


def _choice_json(c: ToolChoice | None) -> Any:
    if c is None:
        return "auto"
    return {"type": "function", "name": c.name} if c.mode == "tool" else c.mode


def _format_json(o: OutputFormat | None) -> dict[str, Any]:
    if o is None:
        return {"type": "text"}
    if o.type == "json_object":
        return {"type": "json_object"}
    spec = {"type": "json_schema", "name": o.name, "schema": o.schema, "strict": o.strict}
    return {**spec, "description": o.description} if o.description else spec


def echo(body: ResponsesRequest, opts: RequestOptions) -> dict[str, Any]:
    """What every response object of the request repeats of it."""
    summary = (body.reasoning or {}).get("summary")
    return {
        "instructions": body.instructions, "metadata": body.metadata or {},
        "parallel_tool_calls": body.parallel_tool_calls is not False, "temperature": body.temperature,
        "top_p": body.top_p, "tool_choice": _choice_json(opts.tool_choice),
        "tools": [_tool_json(t) for t in opts.tools],
        "text": {"format": _format_json(opts.output)}, "max_output_tokens": body.max_output_tokens,
        "previous_response_id": body.previous_response_id,
        "reasoning": {"effort": opts.sampling.reasoning_effort, "summary": summary},
        "store": body.store is not False, "truncation": "disabled", "background": False, "user": body.user,
        "safety_identifier": body.safety_identifier,
    }


def response_object(response_id: str, created: int, model: str, status: str, output: list[dict[str, Any]],
                    echoed: dict[str, Any], *, usage: Usage | None = None, error: dict[str, Any] | None = None,
                    incomplete: dict[str, Any] | None = None) -> dict[str, Any]:
    done = status in ("completed", "incomplete", "failed")
    return {"id": response_id, "object": "response", "created_at": created, "status": status,
            "completed_at": int(time.time()) if done else None, "error": error, "incomplete_details": incomplete,
            "model": model, "output": output, **echoed, "usage": usage_json(usage) if usage is not None else None}


def status_of(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """(status, incomplete_details) of a finished answer."""
    if finish_reason == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if finish_reason == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def finished(response_id: str, created: int, resp: ChatResponse, echoed: dict[str, Any]) -> dict[str, Any]:
    """The response object of an answered request."""
    status, incomplete = status_of(resp.finish_reason)
    return response_object(response_id, created, resp.model, status,
                           answer_items(resp, response_id, "incomplete" if incomplete else "completed"),
                           echoed, usage=resp.usage, incomplete=incomplete)


def error_json(error: Exception) -> dict[str, Any]:
    """A `response.failed` object's `error` (its `code` one of those OpenAI's SDK knows)."""
    kind = getattr(error, "kind", None)
    code = "rate_limit_exceeded" if kind is ErrorKind.RATE_LIMITED else "server_error"
    return {"code": code, "message": f"the stream broke after output was sent: {error}"}


class Events:
    """The SSE events of one stream, numbered; `on` renders an output event, `end` the end."""

    def __init__(self, response_id: str, created: int, model: str, provider: str, echoed: dict[str, Any]) -> None:
        self.response_id, self.created, self.model, self.provider, self.echoed = (
            response_id, created, model, provider, echoed)
        self._rs, self._msg, self._fc = item_ids(response_id)
        self._seq = 0
        self.output: list[dict[str, Any] | None] = []
        """The items by output index (None while one is being streamed)."""
        self._open: tuple[str, int] | None = None
        """The message or reasoning item being streamed: (kind, output index)."""
        self._text: list[str] = []
        self._thought: list[Any] = []
        """The reasoning being streamed: [block index, [text pieces], signature, redacted, summary opened, item id]."""
        self._thoughts = 0
        self._calls: dict[int, tuple[int, dict[str, Any], list[str]]] = {}
        """The function calls being streamed, by call index: (output index, item, argument pieces)."""
        self._messages = 0

    def event(self, kind: str, data: dict[str, Any]) -> bytes:
        data = {"type": kind, **data, "sequence_number": self._seq}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def start(self) -> list[bytes]:
        body = response_object(self.response_id, self.created, self.model, "in_progress", [], self.echoed)
        return [self.event("response.created", {"response": body}),
                self.event("response.in_progress", {"response": body})]

    def _add(self, item: dict[str, Any]) -> tuple[int, bytes]:
        index = len(self.output)
        self.output.append(None)
        return index, self.event("response.output_item.added", {"output_index": index, "item": item})

    def _done(self, index: int, item: dict[str, Any]) -> bytes:
        self.output[index] = item
        return self.event("response.output_item.done", {"output_index": index, "item": item})

    def on(self, event: Any) -> list[bytes]:
        kind = type(event)
        if kind is TextDelta:
            return self._text_delta(event.text)
        if kind is ReasoningDelta:
            return self._reasoning(event)
        if kind is ToolCallStart:
            return [*self._close(), *self._call_start(event.index, event.id, event.name, event.signature)]
        if kind is ToolCallDelta:
            out = [] if event.index in self._calls else [*self._close(), *self._call_start(event.index, "", "", None)]
            index, item, pieces = self._calls[event.index]
            if event.arguments:
                pieces.append(event.arguments)
                out.append(self.event("response.function_call_arguments.delta",
                                      {"item_id": item["id"], "output_index": index, "delta": event.arguments}))
            return out
        if kind is ToolCallEnd:
            return self._call_end(event.index)
        return []

    def _text_delta(self, text: str) -> list[bytes]:
        out = self._open_message() if self._open is None or self._open[0] != "message" else []
        self._text.append(text)
        out.append(self.event("response.output_text.delta", {
            "item_id": self._message_id(), "output_index": self._open[1], "content_index": 0,  # type: ignore[index]
            "delta": text, "logprobs": []}))
        return out

    def _open_message(self) -> list[bytes]:
        out = self._close()
        item_id = self._msg if not self._messages else f"{self._msg}_{self._messages}"
        self._messages += 1
        index, frame = self._add({**message_item(item_id, "", "in_progress"), "content": []})
        self._open, self._text = ("message", index), []
        return [*out, frame, self.event("response.content_part.added", {
            "item_id": item_id, "output_index": index, "content_index": 0,
            "part": {"type": "output_text", "text": "", "annotations": []}})]

    def _message_id(self) -> str:
        return self._msg if self._messages == 1 else f"{self._msg}_{self._messages - 1}"

    def _reasoning(self, event: ReasoningDelta) -> list[bytes]:
        out: list[bytes] = []
        if self._open is None or self._open[0] != "reasoning" or self._thought[0] != event.index:
            out += self._close()
            item_id = f"{self._rs}_{self._thoughts}"
            self._thoughts += 1
            index, frame = self._add({"id": item_id, "type": "reasoning", "summary": []})
            self._open, self._thought = ("reasoning", index), [event.index, [], None, None, False, item_id]
            out.append(frame)
        index, thought, item_id = self._open[1], self._thought, self._thought[5]
        if event.text:
            if not thought[4]:
                thought[4] = True
                out.append(self.event("response.reasoning_summary_part.added", {
                    "item_id": item_id, "output_index": index, "summary_index": 0,
                    "part": {"type": "summary_text", "text": ""}}))
            thought[1].append(event.text)
            out.append(self.event("response.reasoning_summary_text.delta", {
                "item_id": item_id, "output_index": index, "summary_index": 0, "delta": event.text}))
        thought[2] = event.signature or thought[2]
        thought[3] = event.redacted or thought[3]
        return out

    def _call_start(self, call_index: int, call_id: str, name: str, signature: str | None) -> list[bytes]:
        item = call_item(f"{self._fc}_{call_index}", ToolCall(call_id, name, "", signature), "in_progress")
        index, frame = self._add(item)
        self._calls[call_index] = (index, item, [])
        return [frame]

    def _call_end(self, call_index: int, status: str = "completed") -> list[bytes]:
        found = self._calls.pop(call_index, None)
        if found is None:
            return []
        index, item, pieces = found
        out = []
        if not pieces:  # no arguments streamed: the call's arguments are the empty object, as the answer says
            pieces.append("{}")
            out.append(self.event("response.function_call_arguments.delta",
                                  {"item_id": item["id"], "output_index": index, "delta": "{}"}))
        arguments = "".join(pieces)
        out.append(self.event("response.function_call_arguments.done", {
            "item_id": item["id"], "output_index": index, "name": item["name"], "arguments": arguments}))
        return [*out, self._done(index, {**item, "arguments": arguments, "status": status})]

    def _close(self, status: str = "completed") -> list[bytes]:
        """Finish the message or reasoning item being streamed."""
        if self._open is None:
            return []
        kind, index = self._open
        self._open = None
        if kind == "message":
            item_id, text = self._message_id(), "".join(self._text)
            part = {"type": "output_text", "text": text, "annotations": []}
            return [self.event("response.output_text.done", {"item_id": item_id, "output_index": index,
                                                              "content_index": 0, "text": text, "logprobs": []}),
                    self.event("response.content_part.done", {"item_id": item_id, "output_index": index,
                                                              "content_index": 0, "part": part}),
                    self._done(index, message_item(item_id, text, status))]
        _, pieces, signature, redacted, summarised, item_id = self._thought
        text = "".join(pieces)
        out = []
        if summarised:
            out += [self.event("response.reasoning_summary_text.done", {
                        "item_id": item_id, "output_index": index, "summary_index": 0, "text": text}),
                    self.event("response.reasoning_summary_part.done", {
                        "item_id": item_id, "output_index": index, "summary_index": 0,
                        "part": {"type": "summary_text", "text": text}})]
        return [*out, self._done(index, reasoning_item(item_id, Reasoning(text, signature, redacted, self.provider)))]

    def end(self, outcome: Outcome) -> tuple[list[bytes], dict[str, Any]]:
        """The closing events but the last, and the finished response object; `final` renders the last.

        Split so that what happens between (storing the response) can still change the object the last
        event carries (`store: false` when it could not be stored)."""
        resp = outcome.response
        if outcome.error is None and resp is not None:
            status, incomplete = status_of(resp.finish_reason)
            out = [] if self.output else self._open_message()  # an empty answer is an empty message
            out += self._close("incomplete" if incomplete else "completed")
            for call_index in list(self._calls):
                out += self._call_end(call_index)
            body = response_object(self.response_id, self.created, resp.model, status,
                                   [i for i in self.output if i is not None], self.echoed, usage=resp.usage,
                                   incomplete=incomplete)
            return out, body
        out = self._close("incomplete")
        for call_index in list(self._calls):
            out += self._call_end(call_index, "incomplete")
        assert outcome.error is not None
        body = response_object(self.response_id, self.created, resp.model if resp else self.model, "failed",
                               [i for i in self.output if i is not None], self.echoed,
                               usage=resp.usage if resp else None, error=error_json(outcome.error))
        return out, body

    def final(self, body: dict[str, Any]) -> bytes:
        """The last event: `response.completed`, `.incomplete` or `.failed`, carrying the whole object."""
        return self.event(f"response.{body['status']}", {"response": body})
