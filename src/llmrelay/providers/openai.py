"""OpenAI Chat Completions (shared/reference/providers.md §2), and the base of every
OpenAI-compatible adapter.

OpenRouter (and any other server that speaks `/chat/completions`) subclasses
`OpenAIProvider` and changes only what differs, through these hooks:

==========================  =================================================================
``takes``                   what the adapter can send (the names of `ChatRequest.needs`)
``chat_path``               path appended to the base URL
``max_tokens_field``        ``max_completion_tokens`` here, ``max_tokens`` for older servers
``temperature_range``,      clamps and caps applied so the request is never a 400
``max_stop``
``no_sampling_models``      reasoning models: they refuse temperature (but 1), stop, top_p, the
                            penalties and logit_bias, and only they take reasoning_effort
``tool_name``               the tool names the server accepts (None: any)
``stream_options``          sent with ``stream: true`` (None: send nothing)
``merge_turns``             join consecutive same-role turns (for strict chat templates)
``extra_headers()``         e.g. attribution headers
``extra_body()``            provider-specific request fields
``reasoning_to_wire()``     how ``reasoning_effort`` is asked for
``read_usage()``,           the usage object -> `Usage`, and the provider's own cost
``read_cost()``
``error_kind()``            an error object (+ HTTP status, or None when in-band) -> kind
``on_completion()``,        see every non-streaming body / every stream chunk first, to raise
``on_chunk()``              on provider-specific in-band errors
==========================  =================================================================

The request body is built by `openai_request` (which refuses, before sending, what this adapter or
model cannot take), the conversation, tools and answers are translated by `openai_wire`, the
stream's deltas read by `openai_stream`.

Errors are mapped in one place, `classify`, for HTTP error bodies, in-band stream errors and
whatever a subclass's hooks find.

Embeddings: `POST {base}/embeddings` (``embeddings_path``) with every input in one list, floats, and
`dimensions` / `user` when asked (`providers.embeddings`); the input tokens are `usage.prompt_tokens`.
Its errors are mapped as a chat's.

Prompt-cache breakpoints (`cache` on parts and tools, `system_cache`) are not sent: OpenAI caches every
long prompt's prefix by itself (reported as `prompt_tokens_details.cached_tokens`) and takes no marks.
They are a hint about cost, never about the answer, so a request that has them is served as it is.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar, NamedTuple

from ..types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorKind,
    Finished,
    FinishReason,
    ProviderError,
    Reasoning,
    StreamEvent,
    ToolCall,
    Usage,
    UsageReport,
)
from .base import HTTPProvider, excerpt, kind_for_status, parse_retry_after, should_retry_header
from .embeddings import openai_body, openai_usage, openai_vectors, post_for_vectors
from .openai_request import OPENAI_TAKES, OpenAIRequests
from .openai_stream import MalformedDelta, StreamState, delta_events
from .openai_wire import answer_from_wire
from .sse import SSEEvent

_FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "error": "error",
}
_RETRY_HINT = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:ms|s|m|h))+)", re.IGNORECASE)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# In-band errors carry no HTTP status: their `type` says what happened.
_INBAND_TYPES: dict[str, ErrorKind] = {
    "server_error": ErrorKind.SERVER_ERROR,
    "invalid_request_error": ErrorKind.BAD_REQUEST,
    "requests": ErrorKind.RATE_LIMITED,
    "tokens": ErrorKind.RATE_LIMITED,
    "rate_limit_exceeded": ErrorKind.RATE_LIMITED,
}


class ErrorVerdict(NamedTuple):
    """An error's kind plus the per-error policy overrides of reference §7."""

    kind: ErrorKind
    retryable: bool | None = None
    falls_through: bool | None = None


class OpenAIProvider(OpenAIRequests, HTTPProvider):
    name: ClassVar[str] = "openai"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    model_pattern: ClassVar[re.Pattern[str] | None] = re.compile(
        r"^(gpt-|o\d|chatgpt-|ft:|text-embedding-)[A-Za-z0-9.:_\-]{1,120}$")
    probe_model: ClassVar[str] = "gpt-4o-mini"
    takes: ClassVar[frozenset[str]] = OPENAI_TAKES | {"embeddings"}

    chat_path: ClassVar[str] = "/chat/completions"
    embeddings_path: ClassVar[str] = "/embeddings"

    # -- non-streaming ------------------------------------------------------------------------

    async def complete(self, request: ChatRequest) -> ChatResponse:
        data = await self.post_json(self.chat_path, self.request_body(request, stream=False), request.model)
        return self.response_from(data, request.model, request)

    def on_completion(self, data: dict[str, Any], model: str) -> None:
        """Hook: inspect a 200 body before it is read (raise on an in-band error)."""

    def response_from(self, data: dict[str, Any], model: str, request: ChatRequest | None = None) -> ChatResponse:
        if data.get("error"):
            raise self.inband_error(data["error"], model)
        self.on_completion(data, model)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise self.malformed("completion", data, model)
        message = choices[0].get("message")
        if not isinstance(message, dict):
            raise self.malformed("completion", data, model)
        try:
            text, calls, thoughts = answer_from_wire(message)
        except (ValueError, AttributeError):
            raise self.malformed("completion", data, model) from None
        raw_id = _str(data.get("id"))
        if any(not c.id for c in calls):  # a compatible server that names no ids: make them
            calls = tuple(c if c.id else ToolCall(f"call_{raw_id}_{i}", c.name, c.arguments)
                          for i, c in enumerate(calls))
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return ChatResponse(
            text=text,
            model=_str(data.get("model")) or model,
            provider=self.name,
            usage=self.read_usage(usage),
            finish_reason=self.finish_reason(choices[0].get("finish_reason"), bool(message.get("refusal")),
                                             bool(calls)),
            raw_id=raw_id or None,
            provider_cost_usd=self.read_cost(usage),
            tool_calls=calls,
            reasoning=tuple(Reasoning(r.text, provider=self.name) for r in thoughts),
            output_mode="native" if request is not None and request.output is not None else None,
        )

    @staticmethod
    def finish_reason(native: Any, refused: bool, called: bool = False) -> FinishReason:
        """Reference §8: OpenAI's values are the unified ones (`function_call` -> tool_calls).
        A refusal is a content filter whatever the finish value; an absent or unknown value
        (compatible servers) counts as a normal stop, and a stop that called tools as `tool_calls`."""
        if refused:
            return "content_filter"
        reason = _FINISH.get(native, "stop") if isinstance(native, str) else "stop"
        return "tool_calls" if called and reason == "stop" else reason

    # -- usage --------------------------------------------------------------------------------

    def read_usage(self, usage: Mapping[str, Any]) -> Usage:
        """Reference §6: `prompt_tokens` includes the cached ones, `completion_tokens` the
        reasoning ones; the details objects may be absent or null."""
        prompt = usage.get("prompt_tokens_details") or {}
        completion = usage.get("completion_tokens_details") or {}
        return Usage(
            input_tokens=_count(usage.get("prompt_tokens")),
            output_tokens=_count(usage.get("completion_tokens")),
            cached_input_tokens=_count(prompt.get("cached_tokens")) if isinstance(prompt, dict) else 0,
            reasoning_tokens=(_count(completion.get("reasoning_tokens"))
                              if isinstance(completion, dict) else 0),
        )

    def read_cost(self, usage: Mapping[str, Any]) -> str | None:
        """The provider's own cost of the call as a decimal string; OpenAI reports none."""
        return None

    # -- embeddings ---------------------------------------------------------------------------

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        model = request.model
        data = await post_for_vectors(self, self.embeddings_path, openai_body(request), model)
        if data.get("error"):
            raise self.inband_error(data["error"], model)
        vectors = openai_vectors(self, data, len(request.inputs), model)
        return EmbeddingResponse(vectors, _str(data.get("model")) or model, self.name, openai_usage(data))

    # -- streaming ----------------------------------------------------------------------------

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        model, state = request.model, StreamState()
        async with self.open(self.chat_path, self.request_body(request, stream=True), model) as resp:
            async for sse in self.iter_sse(resp, model):
                if sse.data.startswith("[DONE]"):
                    state.done = True
                    break
                for event in self.stream_events(sse, state, model):
                    yield event
        if not state.done:
            raise self.error(ErrorKind.SERVER_ERROR, "stream ended before [DONE]", model)
        for event in state.end_calls():  # a server that never said its finish reason
            yield event
        # The usage chunk follows the finish chunk: Finished waits for [DONE].
        yield Finished(self.finish_reason(state.finish, state.refused, state.called),
                       "native" if request.output is not None else None)

    def on_chunk(self, chunk: dict[str, Any], model: str) -> None:
        """Hook: inspect every stream chunk before it is read (raise on an in-band error)."""

    def stream_events(self, sse: SSEEvent, state: StreamState, model: str) -> list[StreamEvent]:
        """The events one SSE frame carries; raises on an in-band error frame."""
        chunk = self.parse_json_object(sse.data, model, "stream frame")
        if sse.event == "error" or chunk.get("error"):
            raise self.inband_error(chunk.get("error") or chunk, model)
        self.on_chunk(chunk, model)
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise self.malformed("stream chunk", chunk, model)
        events: list[StreamEvent] = []
        if choices:
            choice = choices[0]
            delta = choice.get("delta") if isinstance(choice, dict) else None
            if not isinstance(delta, dict) or not isinstance(delta.get("content"), str | None):
                raise self.malformed("stream chunk", chunk, model)
            if not state.completion_id:
                state.completion_id = _str(chunk.get("id"))
            try:
                delta_events(delta, state, events)
            except MalformedDelta:
                raise self.malformed("stream chunk", chunk, model) from None
            if choice.get("finish_reason"):
                state.finish = choice["finish_reason"]
                events.extend(state.end_calls())
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            events.append(UsageReport(self.read_usage(usage), model=_str(chunk.get("model")) or None,
                                      raw_id=_str(chunk.get("id")) or None,
                                      provider_cost_usd=self.read_cost(usage)))
        return events

    # -- errors -------------------------------------------------------------------------------

    def error_from_response(self, status: int, headers: Mapping[str, str], body: bytes,
                            model: str) -> ProviderError:
        try:
            data = self.parse_json(body, model, "error body")
        except ProviderError:
            data = None
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, str):
            err = {"message": err}
        if not isinstance(err, dict):
            return self.classify(status, {}, headers, model, f"HTTP {status}: {excerpt(body)}")
        return self.classify(status, err, headers, model)

    def inband_error(self, err: Any, model: str) -> ProviderError:
        """An error reported inside a 200 reply (a stream frame, a choice)."""
        if isinstance(err, str):
            err = {"message": err}
        if not isinstance(err, dict):
            err = {"message": excerpt(repr(err))}
        return self.classify(None, err, {}, model, "error reported in the stream")

    def classify(self, status: int | None, err: Mapping[str, Any], headers: Mapping[str, str],
                 model: str, fallback_message: str = "") -> ProviderError:
        """The one place an error object becomes a `ProviderError`."""
        message = _str(err.get("message")) or fallback_message or f"HTTP {status}"
        verdict = self.error_kind(status, err, message, headers)
        retryable = verdict.retryable if verdict.retryable is not None else should_retry_header(headers)
        return self.error(verdict.kind, message, model, status=status,
                          retry_after=parse_retry_after(headers) or retry_hint(message),
                          retryable=retryable, falls_through=verdict.falls_through)

    def error_kind(self, status: int | None, err: Mapping[str, Any], message: str,
                   headers: Mapping[str, str]) -> ErrorVerdict:
        """Reference §2 errors table and §8 (OpenAI column); `status` is None when in-band."""
        etype, code = _str(err.get("type")), _str(err.get("code"))
        if "insufficient_quota" in (etype, code):
            return ErrorVerdict(ErrorKind.AUTH, retryable=False)  # billing: never retry
        if code == "context_length_exceeded":
            return ErrorVerdict(ErrorKind.CONTEXT_LENGTH_EXCEEDED)
        if code == "invalid_prompt":
            return ErrorVerdict(ErrorKind.CONTENT_FILTERED)
        if status == 429 or code == "rate_limit_exceeded" or (status is None and etype in ("requests", "tokens")):
            if message.startswith("Request too large"):
                # The request alone exceeds this account's TPM limit: waiting cannot help,
                # another provider may well accept it.
                return ErrorVerdict(ErrorKind.BAD_REQUEST, retryable=False, falls_through=True)
            return ErrorVerdict(ErrorKind.RATE_LIMITED)
        if status is None:
            return ErrorVerdict(_INBAND_TYPES.get(etype or code, ErrorKind.SERVER_ERROR))
        return ErrorVerdict(kind_for_status(status))


def retry_hint(message: str) -> float | None:
    """The wait an OpenAI rate-limit message asks for ("Please try again in 644ms", "20s",
    "1m30s"), in seconds."""
    m = _RETRY_HINT.search(message)
    if m is None:
        return None
    wait = sum(float(n) * _UNIT_SECONDS[u.lower()] for n, u in _DURATION_PART.findall(m.group(1)))
    return wait if wait > 0 else None


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
