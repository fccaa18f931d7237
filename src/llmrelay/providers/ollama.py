"""Ollama's native chat API: `POST {base}/api/chat` (shared/reference/providers.md §4).

A local Ollama (`http://localhost:11434`) needs no key; Ollama cloud takes
`Authorization: Bearer <OLLAMA_API_KEY>`, sent only when a key is configured.

Wire notes that shape this module:

- `stream` defaults to TRUE server-side, so it is always sent explicitly.
- The system prompt is a `system` message; max tokens, temperature and stop live in `options`
  (`num_predict`, `temperature`, `stop`).  Consecutive same-role turns are merged: the API
  accepts them, but several chat templates (Mistral's `[INST]` blocks, Gemma) assume turns
  alternate, and the merge loses nothing.
- Tools, images, structured output and thinking: `ollama_wire` translates the turns and the
  request's `tools`, `format` (a JSON Schema, or "json") and `think`.  Ollama has no tool choice:
  `auto` is its behaviour, `none` is honoured by not sending the tools, and `required` or a named
  tool by constrained decoding (`ollama_forced`: `format` is the schema of a call, the JSON answer
  becomes the call).  `logit_bias` and images given by URL cannot be honoured, so they are not in
  `takes` (the fallback executor skips this provider for them; called anyway, the adapter refuses
  with a `bad_request` that falls through rather than drop them silently).  Parallel calls cannot be
  turned off either: the fallback executor keeps the first call of such an answer.
- `reasoning_effort` becomes `think`: the level itself ("low" | "medium" | "high") for gpt-oss, the
  one family that takes levels (any other model answers a level with a 400), else `true`; `none` is
  `false`.  Without an effort nothing is sent and a thinking model (qwen3, deepseek-r1) thinks by
  default, as Ollama decides.  Thinking comes back in `message.thinking` -> `Reasoning(provider=
  "ollama")` / `ReasoningDelta`, and only Ollama's own goes back to it.
- Tool calls arrive whole (arguments an object) in a line's `message.tool_calls`: each becomes
  `ToolCallStart` + one `ToolCallDelta` + `ToolCallEnd`.  A call the server gave no id gets a stable
  one (`ollama_wire.stable_call_id`).
- Streams are NDJSON.  Every line is checked for `error` before anything else: after the
  status line a failure arrives as a bare `{"error": "..."}` line.  Usage arrives only on the
  `done: true` line; its metric fields are omitted when zero.  EOF before `done: true` is a
  truncated stream.
- Errors are `{"error": "<string>"}` and are classified by status; the text matters only for
  a 400 that says the prompt overflowed the context window, and for one that says the model lacks
  a capability the request uses (thinking, tools): a `bad_request` that falls through, since
  another model may have it.
- Embeddings: `POST /api/embed` with `truncate: false` (`ollama_embed`: an input too long for the model
  fails rather than being cut); errors mapped as a chat's, and "does not support embeddings" falls
  through like the other capabilities a model may lack.
- `done_reason`: `stop` -> stop (tool_calls when the message carried tool calls), `length` ->
  length.  `load` / `unload` answer a request with no messages (or `keep_alive: 0`): the model
  was (un)loaded and nothing was generated, so they map to `error` rather than pass an empty
  answer off as complete.  Absent (older servers) or unknown values map to `stop`: `done:
  true` already says the generation ended normally.
- Prompt-cache breakpoints (`cache` on parts and tools, `system_cache`) are not sent: Ollama keeps the
  loaded model's KV cache of the last prompt by itself, and bills nothing.  A request that has them is
  served as it is.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, ClassVar

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
    ToolCall,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)
from .base import HTTPProvider, excerpt, kind_for_status, parse_retry_after, should_retry_header
from .ollama_embed import embed as embed_inputs
from .ollama_forced import ForcedCall, forced_call
from .ollama_wire import (
    Unsendable,
    WireError,
    calls_from_wire,
    format_to_wire,
    messages_to_wire,
    sampling_to_wire,
    stable_call_id,
    think_to_wire,
    tools_to_wire,
)

CHAT_PATH = "/api/chat"
TEMPERATURE_RANGE = (0.0, 2.0)
"""Ollama accepts any float; clamp to the unified range so a request means the same everywhere."""

_CONTEXT_OVERFLOW = re.compile(r"context (size|length)|exceeds", re.IGNORECASE)
_MODEL_LACKS = re.compile(r"does not support (thinking|tools|chat|embeddings?)|think value .* is not supported",
                         re.IGNORECASE)
"""A 400 saying this model lacks a capability the request uses (`"llama3.2" does not support thinking`,
`registry.ollama.ai/library/gemma3:latest does not support tools`): another model may have it."""
_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "load": "error", "unload": "error"}


class OllamaProvider(HTTPProvider):
    name: ClassVar[str] = "ollama"
    default_base_url: ClassVar[str] = "http://localhost:11434"
    key_required: ClassVar[bool] = False
    model_pattern: ClassVar[re.Pattern[str] | None] = re.compile(
        r"^[a-z0-9][a-z0-9._\-]{0,80}(/[a-z0-9][a-z0-9._\-]{0,80})?(:[A-Za-z0-9._\-]{1,60})?$")
    probe_model: ClassVar[str] = "llama3.2"
    takes: ClassVar[frozenset[str]] = frozenset({
        "tools", "tool_choice=required", "tool_choice=tool", "images", "response_format=json_object",
        "response_format=json_schema",
        "top_p", "top_k", "seed", "presence_penalty", "frequency_penalty", "reasoning_effort", "embeddings"})

    def headers(self) -> dict[str, str]:
        key = self.api_key()
        return {"authorization": f"Bearer {key}"} if key else {}

    # -- request ------------------------------------------------------------------------------

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        """The `/api/chat` body; a `bad_request` that falls through for what Ollama cannot be sent."""
        forced = forced_call(request)
        try:
            refuse_unsendable(request, forced)
            system = request.system
            if forced is not None:
                system = f"{system}\n\n{forced.instructions}" if system else forced.instructions
            messages = messages_to_wire(system, request.messages)
        except Unsendable as exc:
            raise self.error(ErrorKind.BAD_REQUEST, str(exc), request.model, retryable=False,
                             falls_through=True) from None
        body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": stream}
        if forced is not None:
            body["format"] = forced.format
        elif request.tools and (request.tool_choice is None or request.tool_choice.mode != "none"):
            body["tools"] = tools_to_wire(request.tools)
        if request.output is not None:
            body["format"] = format_to_wire(request.output)
        think = think_to_wire(request.model, request.sampling.reasoning_effort)
        if think is not None:
            body["think"] = think
        options = sampling_to_wire(request.sampling)
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.temperature is not None:
            low, high = TEMPERATURE_RANGE
            options["temperature"] = min(max(float(request.temperature), low), high)
        stop = [s for s in request.stop if s]
        if stop:
            options["stop"] = stop
        if options:
            body["options"] = options
        return body

    # -- calls --------------------------------------------------------------------------------

    async def complete(self, request: ChatRequest) -> ChatResponse:
        model = request.model
        data = await self.post_json(CHAT_PATH, self.build_body(request, stream=False), model)
        self._raise_in_band(data, model)
        message = self._message(data, model)
        forced = forced_call(request)
        calls = self._calls(message, data, request) if forced is None else [
            self._forced(forced, message.get("content") or "", request, data)]
        thinking = message.get("thinking")
        return ChatResponse(
            text=message.get("content") or "" if forced is None else "",
            model=_str(data.get("model")) or model,
            provider=self.name,
            usage=self._usage(data, model),
            finish_reason=finish_reason(data.get("done_reason"), bool(calls)),
            raw_id=None,  # Ollama replies carry no id
            tool_calls=tuple(calls),
            reasoning=(Reasoning(thinking, provider=self.name),) if thinking else (),
            output_mode=output_mode(request),
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        model = request.model
        n_calls = 0
        forced = forced_call(request)
        held: list[str] = []
        """A forced call's JSON, held until it is whole."""
        async with self.open(CHAT_PATH, self.build_body(request, stream=True), model) as resp:
            async for line in self.iter_ndjson(resp, model):
                data = self.parse_json_object(line, model, what="stream line")
                self._raise_in_band(data, model)
                message = self._message(data, model)
                if message.get("thinking"):
                    yield ReasoningDelta(message["thinking"])
                text = message.get("content")
                if text and forced is not None:
                    held.append(text)
                elif text:
                    yield TextDelta(text)
                if forced is not None and data.get("done") is True:
                    call = self._forced(forced, "".join(held), request, data)
                    yield ToolCallStart(0, call.id, call.name)
                    yield ToolCallDelta(0, call.arguments)
                    yield ToolCallEnd(0)
                    n_calls = 1
                for call in self._calls(message, data, request, start=n_calls):
                    yield ToolCallStart(n_calls, call.id, call.name)
                    yield ToolCallDelta(n_calls, call.arguments)
                    yield ToolCallEnd(n_calls)
                    n_calls += 1
                if data.get("done") is True:
                    yield UsageReport(self._usage(data, model), model=_str(data.get("model")) or None)
                    yield Finished(finish_reason(data.get("done_reason"), n_calls > 0), output_mode(request))
                    return
        raise self.error(ErrorKind.SERVER_ERROR, "stream ended before done:true", model)

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        return await embed_inputs(self, request)

    # -- reply parsing ------------------------------------------------------------------------

    def _raise_in_band(self, data: dict[str, Any], model: str) -> None:
        """A `{"error": ...}` object with status 200: the model failed after the status line."""
        if "error" in data:
            raise self.error(ErrorKind.SERVER_ERROR, error_text(data["error"]) or "unknown error", model)

    def _message(self, data: dict[str, Any], model: str) -> dict[str, Any]:
        """`message` is always present (a Go struct, never omitted); its `content` and `thinking`
        strings."""
        message = data.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("content", ""), str | None) \
                or not isinstance(message.get("thinking", ""), str | None):
            raise self.malformed("message", data, model)
        return message

    def _calls(self, message: dict[str, Any], data: dict[str, Any], request: ChatRequest,
               start: int = 0) -> list[ToolCall]:
        """The message's tool calls, the `start`-th of the answer first."""
        try:
            return calls_from_wire(message.get("tool_calls"), request.model, len(request.messages), start)
        except WireError:
            raise self.malformed("tool_calls", data, request.model) from None

    def _forced(self, forced: ForcedCall, content: str, request: ChatRequest, data: dict[str, Any]) -> ToolCall:
        """The call a forced answer makes; a `server_error` when the answer is not one (the grammar should
        have made it one)."""
        found = forced.call(content)
        if found is None:
            raise self.error(ErrorKind.SERVER_ERROR, f"the answer to a forced tool call is not a call of one of "
                             f"the tools: {excerpt(content)!r}", request.model)
        name, arguments = found
        return ToolCall(stable_call_id(request.model, len(request.messages), 0, name, arguments), name, arguments)

    def _usage(self, data: dict[str, Any], model: str) -> Usage:
        counts = []
        for key in ("prompt_eval_count", "eval_count"):
            value = data.get(key, 0)  # omitempty: absent means 0
            if value is None:
                value = 0
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise self.malformed(key, data, model)
            counts.append(value)
        return Usage(input_tokens=counts[0], output_tokens=counts[1])

    # -- errors -------------------------------------------------------------------------------

    def error_from_response(self, status: int, headers: Mapping[str, str], body: bytes,
                            model: str) -> ProviderError:
        message = error_body_text(body) or f"HTTP {status}"
        kind, falls_through = kind_for_status(status), None
        if status == 400 and _CONTEXT_OVERFLOW.search(message):
            kind = ErrorKind.CONTEXT_LENGTH_EXCEEDED
        elif status == 400 and _MODEL_LACKS.search(message):
            falls_through = True
        return self.error(kind, message, model, status=status, retry_after=parse_retry_after(headers),
                          retryable=should_retry_header(headers), falls_through=falls_through)

    def transport_error(self, exc: BaseException, model: str) -> ProviderError:
        """A refused connection is the usual sign of a local Ollama that is not running: say so."""
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = exc.os_error.strerror or str(exc.os_error)
            return self.error(ErrorKind.CONNECTION, f"Ollama is not reachable at {self.base_url} "
                              f"({reason}); is it running (`ollama serve`)?", model)
        return super().transport_error(exc, model)


# -- helpers ----------------------------------------------------------------------------------


def refuse_unsendable(request: ChatRequest, forced: ForcedCall | None) -> None:
    """`Unsendable` for what the request asks that Ollama has no way to honour (none is in `takes`:
    only a caller that bypasses the fallback executor's check gets here)."""
    if forced is not None and request.output is not None:
        raise Unsendable("Ollama has one `format`: it cannot both force a tool call and shape the answer")
    if request.sampling.logit_bias is not None:
        raise Unsendable("Ollama takes no logit_bias")


def output_mode(request: ChatRequest) -> str | None:
    """A structured answer comes from Ollama's own `format`."""
    return "native" if request.output is not None else None


def finish_reason(done_reason: Any, tool_calls: bool) -> FinishReason:
    reason = _FINISH.get(done_reason, "stop") if isinstance(done_reason, str) else "stop"
    return "tool_calls" if tool_calls and reason == "stop" else reason


def error_text(value: Any) -> str:
    """The message of an `error` field: Ollama's plain string, or an OpenAI-style object
    (a proxy or the cloud's OpenAI layer in front)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("message"), str):
        return value["message"]
    return excerpt(str(value)) if value else ""


def error_body_text(body: bytes) -> str:
    """The message of an error body; an excerpt when it is not Ollama's JSON (an HTML proxy page)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return excerpt(body)
    if isinstance(data, dict) and "error" in data:
        return error_text(data["error"]) or excerpt(body)
    return excerpt(body)


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
