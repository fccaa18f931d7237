"""Anthropic Messages API adapter (shared/reference/providers.md §1, §6, §8).

Request translation (`POST {base}/v1/messages`, headers `x-api-key` and
`anthropic-version: 2023-06-01`):

- the system prompt goes in the top-level `system` field; a stray `system`-role message (the
  unified types do not allow one, but nothing stops it at runtime) is folded into it, since
  the API rejects that role;
- turns whose text is empty or whitespace are dropped, then consecutive same-role turns are
  merged (texts joined with a blank line) because the API wants alternation;
- the history is sent in order as it is, even when it starts with an `assistant` turn: the API
  accepts that today, and inventing a user turn (or dropping the assistant's text) would change
  what the model sees.  A trailing `assistant` turn is a prefill the reply continues; its
  trailing whitespace is stripped ("final assistant content cannot end with trailing
  whitespace" is a 400).  A request with no non-empty turn at all is refused here as
  `bad_request` without a round trip;
- `max_tokens` is required: the request's (at least 1), else `DEFAULT_MAX_TOKENS`;
- `temperature` is clamped from the unified 0–2 range into Anthropic's 0–1;
- `stop` becomes `stop_sequences`, without whitespace-only entries (the API rejects them).

Usage (§6): input = `input_tokens + cache_creation_input_tokens + cache_read_input_tokens`
(Anthropic's `input_tokens` excludes cached tokens), cached = `cache_read_input_tokens`,
cache_write = `cache_creation_input_tokens`, output = `output_tokens`,
reasoning = `output_tokens_details.thinking_tokens`.  In a stream the raw counts of
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
    TextDelta,
    Usage,
    UsageReport,
)
from .base import HTTPProvider, excerpt, kind_for_status, parse_retry_after, should_retry_header

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
MESSAGES_PATH = "/v1/messages"

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


class AnthropicProvider(HTTPProvider):
    name: ClassVar[str] = "anthropic"
    default_base_url: ClassVar[str] = "https://api.anthropic.com"
    model_pattern: ClassVar[re.Pattern[str] | None] = re.compile(r"^claude-[a-z0-9][a-z0-9.\-]{1,80}$")
    probe_model: ClassVar[str] = "claude-haiku-4-5"

    def headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        key = self.api_key()
        if key:
            headers["x-api-key"] = key
        return headers

    # -- request -------------------------------------------------------------------------------

    def request_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        system, messages = self._turns(request)
        max_tokens = DEFAULT_MAX_TOKENS if request.max_tokens is None else max(1, request.max_tokens)
        body: dict[str, Any] = {"model": request.model, "max_tokens": max_tokens, "messages": messages}
        if system:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = min(1.0, max(0.0, float(request.temperature)))
        stops = [s for s in request.stop if s.strip()]
        if stops:
            body["stop_sequences"] = stops
        if stream:
            body["stream"] = True
        return body

    def _turns(self, request: ChatRequest) -> tuple[str, list[dict[str, str]]]:
        """The system text and the alternating, non-empty wire turns (see the module docstring)."""
        system = [request.system] if request.system and request.system.strip() else []
        turns: list[dict[str, str]] = []
        for m in request.messages:
            if not m.content.strip():
                continue
            if m.role not in ("user", "assistant"):
                system.append(m.content)
            elif turns and turns[-1]["role"] == m.role:
                turns[-1]["content"] += "\n\n" + m.content
            else:
                turns.append({"role": m.role, "content": m.content})
        if not turns:
            raise self.error(ErrorKind.BAD_REQUEST, "no non-empty user or assistant turn to send",
                             request.model)
        if turns[-1]["role"] == "assistant":
            turns[-1]["content"] = turns[-1]["content"].rstrip()
        return "\n\n".join(system), turns

    # -- complete ------------------------------------------------------------------------------

    async def complete(self, request: ChatRequest) -> ChatResponse:
        body = self.request_body(request, stream=False)
        data = await self.post_json(MESSAGES_PATH, body, request.model)
        return self.parse_message(data, request.model)

    def parse_message(self, data: dict[str, Any], model: str) -> ChatResponse:
        if data.get("type") == "error":
            raise self.in_band_error(data, model)
        content, usage = data.get("content"), data.get("usage")
        if not isinstance(content, list) or not isinstance(usage, dict):
            raise self.malformed("reply", data, model)
        parts: list[str] = []
        for block in content:
            if not isinstance(block, dict):
                raise self.malformed("content block", block, model)
            if block.get("type") == "text":
                text = block.get("text")
                if not isinstance(text, str):
                    raise self.malformed("text block", block, model)
                parts.append(text)
        reported = data.get("model")
        raw_id = data.get("id")
        return ChatResponse(
            text="".join(parts),
            model=reported if isinstance(reported, str) and reported else model,
            provider=self.name,
            usage=self.usage(usage, model),
            finish_reason=finish_reason(data.get("stop_reason")),
            raw_id=raw_id if isinstance(raw_id, str) else None,
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
        return Usage(
            input_tokens=count(raw.get("input_tokens")) + cache_write + cache_read,
            output_tokens=count(raw.get("output_tokens")),
            cached_input_tokens=cache_read,
            reasoning_tokens=count(thinking),
            cache_write_tokens=cache_write,
        )

    # -- stream --------------------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Text deltas as they arrive, a `UsageReport` at `message_start` and at every
        `message_delta`, then `Finished` once `message_stop` has come and the body has ended."""
        body = self.request_body(request, stream=True)
        state = _StreamState(model=request.model)
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
        yield Finished(state.finish)

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
        if kind in ("content_block_start", "content_block_delta"):
            block = data.get("content_block" if kind == "content_block_start" else "delta")
            if not isinstance(block, dict):
                raise self.malformed(kind, data, model)
            if block.get("type") not in ("text", "text_delta"):
                return []  # thinking, tool input, citations: not part of the text
            text = block.get("text", "")
            if not isinstance(text, str):
                raise self.malformed(kind, data, model)
            return [TextDelta(text)] if text else []
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
