"""Google Gemini through the generativelanguage v1beta API (shared/reference/providers.md §3).

Request: `POST {base}/v1beta/models/{model}:generateContent`, or
`:streamGenerateContent?alt=sse` for a stream, key in `x-goog-api-key`.  The system prompt goes
in `systemInstruction`, turns in `contents` with the roles `user` and `model`; the options live
in `generationConfig` (`maxOutputTokens`, `temperature` 0-2, `stopSequences` at most 5).

Tools, images, JSON output, sampling and thinking: google_wire.py (the wire shapes) and google_schema.py
(JSON Schema -> Gemini's Schema subset); a request Gemini cannot take is refused before it is sent, as
`bad_request` that falls through to the next link.

Reply: the text of the first candidate's parts; thought summaries (`"thought": true`) become the
answer's reasoning; `functionCall` parts its tool calls (ids: google_wire.call_id when Gemini gives none;
a `thoughtSignature` kept on the call it came with), and a STOP with calls finishes `tool_calls`;
usage from `usageMetadata`, whose zero fields are omitted (every one defaults to 0); a prompt
blocked before any answer is a 200 with `promptFeedback.blockReason` and no candidates, raised
as `content_filtered`.

Stream: each `data:` event is a whole `GenerateContentResponse` whose parts are deltas and whose
`usageMetadata` is cumulative; a function call arrives whole in one part (ToolCallStart, one
ToolCallDelta with all its arguments, ToolCallEnd), thoughts as ReasoningDelta.  There is no
terminal marker: the stream ends at EOF, and it is complete only if some chunk carried a
`finishReason` (older models repeat it on several chunks, so we read to EOF).  Errors after the 200
come as a `data:` payload with a top-level `error`, or as bare JSON lines outside SSE (python-genai
collects any non-`data:` line until its braces balance); the shared SSE decoder drops such lines, so
google_stream.StreamDecoder reads the stream.

Token counts: `models/{model}:countTokens` with the request as a `generateContentRequest` (`model`,
`contents`, `systemInstruction`, `tools`: what makes its input), read from `totalTokens`.

Prompt-cache breakpoints (`cache` on parts and tools, `system_cache`) are not sent: Gemini caches long
prompts by itself (implicit caching, reported as `cachedContentTokenCount`), and its explicit caches
(`cachedContents`) are resources made ahead, not marks in a request.  They are a hint about cost, so a
request that has them is served as it is.

Embeddings: `models/{model}:batchEmbedContents` (google_embed.py: batches of at most 100, and the input
tokens an estimate, since Gemini reports none); errors mapped as a chat's.

Errors: `{"error": {code, message, status, details[]}}`, sometimes wrapped in a one-element
array.  A bad key is a 400 `INVALID_ARGUMENT` with an ErrorInfo reason `API_KEY_INVALID`; the
retry hint is `RetryInfo.retryDelay`; a QuotaFailure on a per-day quota is not worth retrying.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar
from urllib.parse import quote

import aiohttp

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
    ReasoningDelta,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)
from .base import (
    HTTPProvider,
    excerpt,
    kind_for_status,
    parse_duration,
    parse_retry_after,
    should_retry_header,
)
from .google_embed import embed as embed_batches
from .google_stream import StreamDecoder
from .google_wire import Parts, WireError, read_parts, request_body

API_VERSION = "v1beta"
_COUNTED = ("contents", "systemInstruction", "tools")
"""The fields of a generateContent body that make its input (the generation settings count nothing)."""
__all__ = ["GoogleProvider", "StreamDecoder", "error_kind", "finish_reason", "model_id"]

_FILTERED = ("SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY")
_FINISH: dict[str, FinishReason] = {"STOP": "stop", "MAX_TOKENS": "length",
                                    **dict.fromkeys(_FILTERED, "content_filter")}

# google.rpc.Code name -> HTTP status, for an in-band error that names only its status.
_STATUS_CODES = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ABORTED": 409,
    "ALREADY_EXISTS": 409, "RESOURCE_EXHAUSTED": 429, "CANCELLED": 499, "UNKNOWN": 500,
    "INTERNAL": 500, "DATA_LOSS": 500, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_CONTEXT_OVERFLOW = re.compile(r"input token count.*exceeds the maximum", re.IGNORECASE | re.DOTALL)
_TYPE_PREFIX = "type.googleapis.com/google.rpc."


class GoogleProvider(HTTPProvider):
    name: ClassVar[str] = "google"
    default_base_url: ClassVar[str] = "https://generativelanguage.googleapis.com"
    model_pattern: ClassVar[re.Pattern[str] | None] = re.compile(
        r"^(models/)?((gemini|gemma|learnlm)-[a-z0-9.\-]{1,80}|(text-)?embedding-[a-z0-9.\-]{1,40})$")
    probe_model: ClassVar[str] = "gemini-2.5-flash-lite"
    takes: ClassVar[frozenset[str]] = frozenset({
        "tools", "tool_choice=required", "tool_choice=tool", "images", "image_url", "response_format=json_object",
        "response_format=json_schema", "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty",
        "reasoning_effort", "embeddings",
    })
    """Not `parallel_tool_calls=false` (Gemini cannot turn parallel calls off), not `logit_bias`."""

    def headers(self) -> dict[str, str]:
        key = self.api_key()
        return {"x-goog-api-key": key} if key else {}

    # -- requests -------------------------------------------------------------------------------

    async def complete(self, request: ChatRequest) -> ChatResponse:
        model = model_id(request.model)
        data = await self.post_json(self._path(model, "generateContent"), self._body(request, model),
                                    model)
        if "candidates" not in data:
            self._raise_if_blocked(data, model)
        raw_id = _str(data.get("responseId"))
        parts, native = self._candidate(data, model, raw_id, 0, required=True)
        thoughts = "".join(parts.thoughts)
        return ChatResponse(text="".join(parts.text), model=_str(data.get("modelVersion")) or model,
                            provider=self.name, usage=self._usage(data, model),
                            finish_reason=finish_reason(native, bool(parts.calls)), raw_id=raw_id,
                            tool_calls=tuple(parts.calls),
                            reasoning=(Reasoning(thoughts, provider=self.name),) if thoughts else (),
                            output_mode="native" if request.output is not None else None)

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        model = model_id(request.model)
        path = self._path(model, "streamGenerateContent")
        native: str | None = None
        raw_id: str | None = None
        calls = 0
        async with self.open(path, self._body(request, model), model, params={"alt": "sse"}) as resp:
            async for payload in self._payloads(resp, model):
                data = self._stream_chunk(self.parse_json(payload, model, "stream frame"), model)
                raw_id = _str(data.get("responseId")) or raw_id  # call ids as a whole answer's would be
                parts, finish = self._candidate(data, model, raw_id, calls, required=False)
                for thought in parts.thoughts:
                    if thought:
                        yield ReasoningDelta(thought)
                text = "".join(parts.text)
                if text:
                    yield TextDelta(text)
                for call in parts.calls:
                    yield ToolCallStart(calls, call.id, call.name, call.signature)
                    yield ToolCallDelta(calls, call.arguments)
                    yield ToolCallEnd(calls)
                    calls += 1
                native = finish or native
                if "usageMetadata" in data:
                    yield UsageReport(self._usage(data, model), model=_str(data.get("modelVersion")),
                                      raw_id=_str(data.get("responseId")))
                if "candidates" not in data:
                    self._raise_if_blocked(data, model)
        if native is None:
            raise self.error(ErrorKind.SERVER_ERROR, "stream ended before a chunk with a finishReason",
                             model)
        yield Finished(finish_reason(native, calls > 0), "native" if request.output is not None else None)

    async def count_tokens(self, request: ChatRequest) -> int | None:
        """The input tokens of the request `complete` would send (see the module docstring)."""
        model = model_id(request.model)
        body = self._body(request, model)
        counted = {"model": f"models/{model}", **{k: body[k] for k in _COUNTED if k in body}}
        data = await self.post_json(self._path(model, "countTokens"), {"generateContentRequest": counted}, model)
        total = data.get("totalTokens", 0)  # a zero field is omitted
        if isinstance(total, str) and total.isdigit():
            total = int(total)
        if isinstance(total, bool) or not isinstance(total, int) or total < 0:
            raise self.malformed("token count", data, model)
        return total

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        model = model_id(request.model)
        return await embed_batches(self, self._path(model, "batchEmbedContents"), model, request)

    @staticmethod
    def _path(model: str, method: str) -> str:
        return f"/{API_VERSION}/models/{quote(model, safe='')}:{method}"

    def _body(self, request: ChatRequest, model: str) -> dict[str, Any]:
        """The wire request (google_wire); what Gemini cannot take is refused here, before sending."""
        try:
            return request_body(request, model)
        except WireError as exc:
            raise self.error(ErrorKind.BAD_REQUEST, str(exc), model, retryable=False,
                             falls_through=exc.falls_through) from None

    # -- replies --------------------------------------------------------------------------------

    def _candidate(self, data: dict[str, Any], model: str, raw_id: str | None, calls_before: int, *,
                   required: bool) -> tuple[Parts, str | None]:
        """(the parts of candidate 0, its native finishReason); `calls_before`: calls earlier in the stream."""
        candidates = data.get("candidates")
        if candidates is None and not required:
            return Parts(), None
        if not isinstance(candidates, list) or not candidates or not isinstance(candidates[0], dict):
            raise self.malformed("candidates", data, model)
        cand = candidates[0]
        content = cand.get("content") or {}
        parts = (content.get("parts") or []) if isinstance(content, dict) else None
        if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
            raise self.malformed("candidate content", cand, model)
        try:
            read = read_parts(parts, raw_id, calls_before)
        except ValueError:
            raise self.malformed("functionCall part", cand, model) from None
        finish = cand.get("finishReason")
        if finish is not None and not isinstance(finish, str):
            raise self.malformed("finishReason", cand, model)
        return read, finish

    def _usage(self, data: dict[str, Any], model: str) -> Usage:
        """§6: input = prompt + tool-use prompt, output = candidates + thoughts; absent = 0."""
        meta = data.get("usageMetadata")
        if meta is None:
            return Usage()
        if not isinstance(meta, dict):
            raise self.malformed("usageMetadata", data, model)

        def count(key: str) -> int:
            value = meta.get(key)
            if isinstance(value, str) and value.isdigit():  # int64 fields travel as strings
                return int(value)
            return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

        thoughts = count("thoughtsTokenCount")
        return Usage(input_tokens=count("promptTokenCount") + count("toolUsePromptTokenCount"),
                     output_tokens=count("candidatesTokenCount") + thoughts,
                     cached_input_tokens=count("cachedContentTokenCount"), reasoning_tokens=thoughts)

    def _raise_if_blocked(self, data: dict[str, Any], model: str) -> None:
        """A prompt blocked before any answer: a 200 with no candidates and a blockReason."""
        feedback = data.get("promptFeedback")
        reason = feedback.get("blockReason") if isinstance(feedback, dict) else None
        if reason:
            raise self.error(ErrorKind.CONTENT_FILTERED, f"prompt blocked: {reason}", model)

    # -- the stream -----------------------------------------------------------------------------

    def _payloads(self, resp: aiohttp.ClientResponse, model: str) -> AsyncIterator[str]:
        return self.iter_decoded(resp, model, StreamDecoder())

    def _stream_chunk(self, data: Any, model: str) -> dict[str, Any]:
        """The chunk as a dict, or the in-band error it carries raised as a `ProviderError`."""
        if isinstance(data, list) and len(data) == 1:  # the array-wrapped error shape
            data = data[0]
        if not isinstance(data, dict):
            raise self.malformed("stream frame", data, model)
        err = data.get("error")
        if err is not None:
            if not isinstance(err, dict):
                raise self.error(ErrorKind.SERVER_ERROR, f"stream error: {excerpt(json.dumps(err))}",
                                 model)
            code = err.get("code")
            status = code if _is_int(code) else _STATUS_CODES.get(_str(err.get("status")) or "", 500)
            raise self.api_error(status, err, model, in_band=True)
        return data

    # -- errors ---------------------------------------------------------------------------------

    def error_from_response(self, status: int, headers: Mapping[str, str], body: bytes,
                            model: str) -> ProviderError:
        err = error_object(body)
        if err is None:
            return self.error(kind_for_status(status), f"HTTP {status}: {excerpt(body)!r}", model,
                              status=status, retry_after=parse_retry_after(headers),
                              retryable=should_retry_header(headers))
        return self.api_error(status, err, model, headers=headers)

    def api_error(self, status: int, err: dict[str, Any], model: str, *,
                  headers: Mapping[str, str] | None = None, in_band: bool = False) -> ProviderError:
        """One Google error object (`{code, message, status, details}`) as a `ProviderError`."""
        message = _str(err.get("message")) or f"HTTP {status}"
        rpc_status = _str(err.get("status")) or ""
        raw_details = err.get("details")
        details = [d for d in raw_details if isinstance(d, dict)] if isinstance(raw_details, list) else []
        kind = error_kind(status, rpc_status, message, details)
        headers = headers or {}
        retry_after = retry_delay(details) or parse_retry_after(headers)
        retryable = should_retry_header(headers)
        if kind is ErrorKind.RATE_LIMITED and per_day_quota(details):
            retryable = False  # §7: the quota is gone until tomorrow; move on to the next link
        return self.error(kind, message, model, status=None if in_band else status,
                          retry_after=retry_after, retryable=retryable)


# -- pure helpers (module level so tests can reach them) ------------------------------------------


def model_id(model: str) -> str:
    """`gemini-2.5-flash` from either `gemini-2.5-flash` or `models/gemini-2.5-flash`."""
    return model.removeprefix("models/")


def finish_reason(native: str | None, function_call: bool) -> FinishReason:
    """§8: STOP -> stop (tool_calls after a functionCall), MAX_TOKENS -> length, filter values ->
    content_filter, anything else (MALFORMED_FUNCTION_CALL, OTHER, unknown, absent) -> error."""
    reason = _FINISH.get(native or "", "error")
    return "tool_calls" if reason == "stop" and function_call else reason


def error_object(body: bytes | str) -> dict[str, Any] | None:
    """The `error` object of a body, plain or array-wrapped; None when there is none."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, list) and data:
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else None


def error_kind(status: int, rpc_status: str, message: str, details: list[dict[str, Any]]) -> ErrorKind:
    if status == 400:
        reasons = {d.get("reason") for d in details if d.get("@type") == _TYPE_PREFIX + "ErrorInfo"}
        if "API_KEY_INVALID" in reasons or rpc_status == "FAILED_PRECONDITION":
            return ErrorKind.AUTH
        if _CONTEXT_OVERFLOW.search(message):
            return ErrorKind.CONTEXT_LENGTH_EXCEEDED
        return ErrorKind.BAD_REQUEST
    return kind_for_status(status)


def retry_delay(details: list[dict[str, Any]]) -> float | None:
    """Seconds from `RetryInfo.retryDelay` ("58s", "1.5s"), if any."""
    for d in details:
        if d.get("@type") == _TYPE_PREFIX + "RetryInfo":
            value = d.get("retryDelay")
            wait = parse_duration(value) if isinstance(value, str) else None
            if wait is not None and wait > 0:
                return wait
    return None


def per_day_quota(details: list[dict[str, Any]]) -> bool:
    for d in details:
        if d.get("@type") == _TYPE_PREFIX + "QuotaFailure":
            for v in d.get("violations") or ():
                if isinstance(v, dict) and "PerDay" in str(v.get("quotaId", "")):
                    return True
    return False


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
