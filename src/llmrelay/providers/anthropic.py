"""Anthropic Messages API adapter (shared/reference/providers.md §1, §6, §8).

`POST {base}/v1/messages` with headers `x-api-key` and `anthropic-version: 2023-06-01`.  The body is
`anthropic_request.request_to_wire`'s (turns by `anthropic_wire`):

- the system prompt goes in the top-level `system` field; empty turns are dropped and consecutive
  same-role turns merged (the API wants alternation); the history is sent in order as it is, even
  when it starts with an `assistant` turn; a trailing `assistant` turn is a prefill, its trailing
  whitespace stripped.  A request with no non-empty turn at all is refused here as `bad_request`
  without a round trip;
- `max_tokens` is required: the request's (at least 1), else `DEFAULT_MAX_TOKENS`, raised by the
  thinking budget when `reasoning_effort` asks for thinking;
- `temperature` is clamped from the unified 0–2 range into Anthropic's 0–1; `stop` becomes
  `stop_sequences`, without whitespace-only entries (the API rejects them);
- tools, tool choice, images, structured output (native on `native_output_models`, else a forced
  tool), top_p, top_k and thinking as `anthropic_request` says.  What cannot be sent as asked is a
  `bad_request` that falls through (another provider may take it), never a setting dropped;
- prompt-cache breakpoints (`cache` on parts and tools, `system_cache`) are `cache_control` on exactly
  those blocks, tools and the last system block (the system prompt then goes as text blocks); more
  than four, or one of 1h after one of 5m, is such a `bad_request`.  The cache reads and writes come
  back in the usage (below), which the ledger prices apart.

Answers: text blocks are the text, `tool_use` blocks tool calls (arguments: the input as JSON text),
`thinking` / `redacted_thinking` blocks reasoning; a forced output tool's input is the text.  Streams:
`tool_use` blocks become `ToolCallStart` / `ToolCallDelta` (each `input_json_delta`) / `ToolCallEnd`
(index: the ordinal of the answer's tool calls), thinking blocks `ReasoningDelta`s (index: the ordinal
of its thinking blocks), the output tool's input pieces `TextDelta`s.

`count_tokens` sends the same body, without what the count endpoint does not take (max_tokens, stream,
sampling, metadata), to `POST {base}/v1/messages/count_tokens` and reads its `input_tokens`.

Usage (§6): input = `input_tokens + cache_creation_input_tokens + cache_read_input_tokens`
(Anthropic's `input_tokens` excludes cached tokens), cached = `cache_read_input_tokens`,
cache_write = `cache_creation_input_tokens` (of it 1-hour: `cache_creation.ephemeral_1h_input_tokens`),
output = `output_tokens`, reasoning = `output_tokens_details.thinking_tokens`.  In a stream the raw counts of
`message_start` are overlaid by every later `message_delta` (cumulative: the last one wins).

Errors (§8) are mapped by HTTP status, refined for 400 by the message (context window, spend
limit) and, in a stream, by the `error` event's `error.type`.  A 429 without any retry-after
header is the monthly tier spend cap: `retryable=False`.  `x-should-retry`, when present,
decides retryability over everything else, as the official SDK does.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..types import (
    ChatRequest,
    ChatResponse,
    ErrorKind,
    Finished,
    FinishReason,
    ProviderError,
    StreamEvent,
    Usage,
    UsageReport,
)
from .anthropic_reply import OutputPlan, answer_from_wire
from .anthropic_request import DEFAULT_MAX_TOKENS as DEFAULT_MAX_TOKENS  # the default, re-exported
from .anthropic_request import request_to_wire
from .anthropic_stream import BlockReader
from .anthropic_wire import Unsendable
from .base import HTTPProvider, excerpt, kind_for_status, parse_retry_after, should_retry_header

API_VERSION = "2023-06-01"
MESSAGES_PATH = "/v1/messages"
COUNT_PATH = "/v1/messages/count_tokens"
_COUNTED = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config")
"""The fields of a Messages body that the count endpoint takes (it refuses the others)."""
CURRENT_MODELS = re.compile(r"^claude-(?:opus|sonnet|haiku)-(?:4-(?:[5-9]|\d\d)|(?:[5-9]|\d\d))(?:\D|$)")
"""The Claude 4.5 generation and later."""

_STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# `error.type` -> kind, for the in-band stream `error` event (an HTTP error maps by status).
_ERROR_TYPES: dict[str, ErrorKind] = {
    "invalid_request_error": ErrorKind.BAD_REQUEST,
    "request_too_large": ErrorKind.BAD_REQUEST,
    "conflict_error": ErrorKind.BAD_REQUEST,
    "authentication_error": ErrorKind.AUTH,
    "billing_error": ErrorKind.AUTH,
    "permission_error": ErrorKind.AUTH,
    "not_found_error": ErrorKind.NOT_FOUND,
    "rate_limit_error": ErrorKind.RATE_LIMITED,
    "api_error": ErrorKind.SERVER_ERROR,
    "timeout_error": ErrorKind.TIMEOUT,
    "overloaded_error": ErrorKind.OVERLOADED,
}

_CONTEXT_LENGTH = re.compile(r"prompt is too long|exceed context limit", re.IGNORECASE)
# "You have reached your specified API usage limits. You will regain access on …" and
# "Your credit balance is too low to access the Anthropic API. …", both 400 invalid_request_error.
_SPEND_LIMIT = re.compile(r"reached your specified (?:\w+ )?API usage limit|credit balance is too low",
                          re.IGNORECASE)


@dataclass(slots=True)
class _StreamState:
    model: str
    raw_id: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    """The raw usage counts seen so far, later frames overriding earlier ones."""
    finish: FinishReason = "stop"
    done: bool = False
    blocks: BlockReader = field(default_factory=BlockReader)

    def finished(self) -> Finished:
        blocks, plan = self.blocks, self.blocks.plan
        return Finished(_answer_finish(self.finish, blocks.answered_by_tool, blocks.calls),
                        plan.mode if plan is not None else None)


class AnthropicProvider(HTTPProvider):
    name: ClassVar[str] = "anthropic"
    default_base_url: ClassVar[str] = "https://api.anthropic.com"
    model_pattern: ClassVar[re.Pattern[str] | None] = re.compile(r"^claude-[a-z0-9][a-z0-9.\-]{1,80}$")
    probe_model: ClassVar[str] = "claude-haiku-4-5"
    takes: ClassVar[frozenset[str]] = frozenset({
        "tools", "tool_choice=required", "tool_choice=tool", "parallel_tool_calls=false", "images", "image_url",
        "response_format=json_object", "response_format=json_schema", "top_p", "top_k", "reasoning_effort"})
    native_output_models: ClassVar[re.Pattern[str] | None] = CURRENT_MODELS
    """Models that take structured output (`output_config.format`) and strict tools."""
    exclusive_sampling_models: ClassVar[re.Pattern[str] | None] = CURRENT_MODELS
    """Models that refuse temperature and top_p together."""

    def headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        key = self.api_key()
        if key:
            headers["x-api-key"] = key
        return headers

    # -- request -------------------------------------------------------------------------------

    def wire_request(self, request: ChatRequest, *, stream: bool) -> tuple[dict[str, Any], OutputPlan | None]:
        """(the body, how its answer is made JSON); a request that cannot be sent as asked is a
        `bad_request` (falling through unless no provider could take it)."""
        native, exclusive = self.native_output_models, self.exclusive_sampling_models
        try:
            return request_to_wire(request, stream=stream,
                                   native_output=native is not None and bool(native.match(request.model)),
                                   exclusive_sampling=exclusive is not None and bool(exclusive.match(request.model)))
        except Unsendable as exc:
            raise self.error(ErrorKind.BAD_REQUEST, str(exc), request.model, retryable=False,
                             falls_through=exc.falls_through) from None

    def request_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        return self.wire_request(request, stream=stream)[0]

    # -- complete ------------------------------------------------------------------------------

    async def complete(self, request: ChatRequest) -> ChatResponse:
        body, plan = self.wire_request(request, stream=False)
        data = await self.post_json(MESSAGES_PATH, body, request.model)
        return self.parse_message(data, request.model, plan)

    async def count_tokens(self, request: ChatRequest) -> int | None:
        """The input tokens of the body `complete` would send, by `POST /v1/messages/count_tokens`."""
        body, _ = self.wire_request(request, stream=False)
        data = await self.post_json(COUNT_PATH, {k: body[k] for k in _COUNTED if k in body}, request.model)
        count = data.get("input_tokens")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise self.malformed("token count", data, request.model)
        return count

    def parse_message(self, data: dict[str, Any], model: str, plan: OutputPlan | None = None) -> ChatResponse:
        if data.get("type") == "error":
            raise self.in_band_error(data, model)
        content, usage = data.get("content"), data.get("usage")
        if not isinstance(content, list) or not isinstance(usage, dict):
            raise self.malformed("reply", data, model)
        try:
            answer = answer_from_wire(content, plan)
        except ValueError:
            raise self.malformed("content block", content, model) from None
        reported = data.get("model")
        raw_id = data.get("id")
        finish = finish_reason(data.get("stop_reason"))
        return ChatResponse(
            text=answer.text,
            model=reported if isinstance(reported, str) and reported else model,
            provider=self.name,
            usage=self.usage(usage, model),
            finish_reason=_answer_finish(finish, answer.answered_by_tool, len(answer.tool_calls)),
            raw_id=raw_id if isinstance(raw_id, str) else None,
            tool_calls=answer.tool_calls,
            reasoning=answer.reasoning,
            output_mode=plan.mode if plan is not None else None,
        )

    def usage(self, raw: Mapping[str, Any], model: str) -> Usage:
        """Unified usage from Anthropic's raw counts (§6); absent or null counts are 0."""

        def count(value: Any) -> int:
            if value is None:
                return 0
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise self.malformed("usage", dict(raw), model)
            return value

        details = raw.get("output_tokens_details")
        thinking = details.get("thinking_tokens") if isinstance(details, dict) else None
        cache_write = count(raw.get("cache_creation_input_tokens"))
        cache_read = count(raw.get("cache_read_input_tokens"))
        by_ttl = raw.get("cache_creation")  # {ephemeral_5m_input_tokens, ephemeral_1h_input_tokens}
        hour = count(by_ttl.get("ephemeral_1h_input_tokens")) if isinstance(by_ttl, dict) else 0
        return Usage(
            input_tokens=count(raw.get("input_tokens")) + cache_write + cache_read,
            output_tokens=count(raw.get("output_tokens")),
            cached_input_tokens=cache_read,
            reasoning_tokens=count(thinking),
            cache_write_tokens=cache_write,
            cache_write_1h_tokens=min(hour, cache_write),
        )

    # -- stream --------------------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Text deltas as they arrive, a `UsageReport` at `message_start` and at every
        `message_delta`, then `Finished` once `message_stop` has come and the body has ended."""
        body, plan = self.wire_request(request, stream=True)
        state = _StreamState(model=request.model, blocks=BlockReader(plan))
        async with self.open(MESSAGES_PATH, body, request.model) as resp:
            try:
                async for sse in self.iter_sse(resp, request.model):
                    if state.done or sse.event == "ping" or not sse.data:
                        continue
                    data = self.parse_json_object(sse.data, request.model, "stream frame")
                    for event in self._on_frame(sse.event, data, state, request.model):
                        yield event
            except ProviderError:
                if not state.done:
                    raise
                # The answer was complete at message_stop: a failure while reading the
                # (empty) rest of the body changes nothing.
        if not state.done:
            raise self.error(ErrorKind.SERVER_ERROR, "stream ended before message_stop", request.model)
        yield state.finished()

    def _on_frame(self, event: str, data: dict[str, Any], state: _StreamState,
                  model: str) -> list[StreamEvent]:
        """The unified events one stream frame produces (unknown frames produce none)."""
        kind = data.get("type", event)
        if kind == "error" or event == "error":
            raise self.in_band_error(data, model)
        if kind == "message_start":
            message = data.get("message")
            if not isinstance(message, dict):
                raise self.malformed("message_start", data, model)
            reported, raw_id = message.get("model"), message.get("id")
            if isinstance(reported, str) and reported:
                state.model = reported
            state.raw_id = raw_id if isinstance(raw_id, str) else None
            return self._usage_report(message.get("usage"), state, model)
        if kind in ("content_block_start", "content_block_delta", "content_block_stop"):
            try:
                return state.blocks.read(kind, data)
            except ValueError:
                raise self.malformed(kind, data, model) from None
        if kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason") is not None:
                state.finish = finish_reason(delta["stop_reason"])
            return self._usage_report(data.get("usage"), state, model)
        if kind == "message_stop":
            state.done = True
        return []

    def _usage_report(self, raw: Any, state: _StreamState, model: str) -> list[StreamEvent]:
        if not isinstance(raw, dict):
            return []
        state.usage.update({k: v for k, v in raw.items() if v is not None})
        return [UsageReport(self.usage(state.usage, model), model=state.model, raw_id=state.raw_id)]

    # -- errors --------------------------------------------------------------------------------

    def in_band_error(self, data: Mapping[str, Any], model: str) -> ProviderError:
        """The stream `error` event (HTTP status already 200): the kind comes from `error.type`."""
        err = data.get("error")
        if not isinstance(err, dict):
            return self.malformed("error event", data, model)
        etype = err.get("type") if isinstance(err.get("type"), str) else "unknown_error"
        message = err.get("message") if isinstance(err.get("message"), str) else ""
        kind = _refine_invalid_request(message) if etype == "invalid_request_error" else None
        kind = kind or _ERROR_TYPES.get(etype, ErrorKind.SERVER_ERROR)
        return self.error(kind, f"{etype}: {message}" if message else etype, model)

    def error_from_response(self, status: int, headers: Mapping[str, str], body: bytes,
                            model: str) -> ProviderError:
        etype, message = _error_fields(body)
        kind = _refine_invalid_request(message) if status == 400 else None
        kind = kind or _kind_for_status(status)
        retryable = should_retry_header(headers)
        if retryable is None and status == 429 and not _has_retry_hint(headers):
            retryable = False  # the monthly tier spend cap: no retry-after, not worth retrying soon
        text = f"{etype}: {message}" if etype else f"HTTP {status}: {message}"
        return self.error(kind, text, model, status=status, retry_after=parse_retry_after(headers),
                          retryable=retryable)


def _answer_finish(finish: FinishReason, answered_by_tool: bool, calls: int) -> FinishReason:
    """A forced output tool's call is the answer, not a call for the caller to run: `stop`."""
    return "stop" if answered_by_tool and not calls and finish == "tool_calls" else finish


def finish_reason(stop_reason: Any) -> FinishReason:
    """Unified finish reason; an unknown or missing stop reason is `stop` (the answer came)."""
    return _STOP_REASONS.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"


def _kind_for_status(status: int) -> ErrorKind:
    """§8: 529 overloaded, 504 timeout, every other 5xx (503 included) server_error."""
    if status == 529:
        return ErrorKind.OVERLOADED
    if status >= 500 and status != 504:
        return ErrorKind.SERVER_ERROR
    return kind_for_status(status)


def _refine_invalid_request(message: str) -> ErrorKind | None:
    if _CONTEXT_LENGTH.search(message):
        return ErrorKind.CONTEXT_LENGTH_EXCEEDED
    if _SPEND_LIMIT.search(message):
        return ErrorKind.AUTH
    return None


def _has_retry_hint(headers: Mapping[str, str]) -> bool:
    return "retry-after" in headers or "retry-after-ms" in headers


def _error_fields(body: bytes) -> tuple[str | None, str]:
    """(`error.type`, `error.message`) of an error body; (None, an excerpt) if it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        data = None
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, dict) and isinstance(err.get("type"), str):
        message = err.get("message")
        return err["type"], message if isinstance(message, str) and message else excerpt(body)
    return None, excerpt(body) or "(empty body)"
