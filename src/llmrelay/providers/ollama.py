"""Ollama's native chat API: `POST {base}/api/chat` (shared/reference/providers.md §4).

A local Ollama (`http://localhost:11434`) needs no key; Ollama cloud takes
`Authorization: Bearer <OLLAMA_API_KEY>`, sent only when a key is configured.

Wire notes that shape this module:

- `stream` defaults to TRUE server-side, so it is always sent explicitly.
- The system prompt is a `system` message; max tokens, temperature and stop live in `options`
  (`num_predict`, `temperature`, `stop`).  Consecutive same-role turns are merged: the API
  accepts them, but several chat templates (Mistral's `[INST]` blocks, Gemma) assume turns
  alternate, and the merge loses nothing.
- Streams are NDJSON.  Every line is checked for `error` before anything else: after the
  status line a failure arrives as a bare `{"error": "..."}` line.  Usage arrives only on the
  `done: true` line; its metric fields are omitted when zero.  EOF before `done: true` is a
  truncated stream.
- Errors are `{"error": "<string>"}` and are classified by status; the text matters only for
  a 400 that says the prompt overflowed the context window.
- `done_reason`: `stop` -> stop (tool_calls when the message carried tool calls), `length` ->
  length.  `load` / `unload` answer a request with no messages (or `keep_alive: 0`): the model
  was (un)loaded and nothing was generated, so they map to `error` rather than pass an empty
  answer off as complete.  Absent (older servers) or unknown values map to `stop`: `done:
  true` already says the generation ended normally.
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
    ErrorKind,
    Finished,
    FinishReason,
    Message,
    ProviderError,
    StreamEvent,
    TextDelta,
    Usage,
    UsageReport,
)
from .base import HTTPProvider, excerpt, kind_for_status, parse_retry_after, should_retry_header

CHAT_PATH = "/api/chat"
TEMPERATURE_RANGE = (0.0, 2.0)
"""Ollama accepts any float; clamp to the unified range so a request means the same everywhere."""

_CONTEXT_OVERFLOW = re.compile(r"context (size|length)|exceeds", re.IGNORECASE)
_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "load": "error", "unload": "error"}


class OllamaProvider(HTTPProvider):
    name: ClassVar[str] = "ollama"
    default_base_url: ClassVar[str] = "http://localhost:11434"
    key_required: ClassVar[bool] = False
    model_pattern: ClassVar[re.Pattern[str] | None] = re.compile(
        r"^[a-z0-9][a-z0-9._\-]{0,80}(/[a-z0-9][a-z0-9._\-]{0,80})?(:[A-Za-z0-9._\-]{1,60})?$")
    probe_model: ClassVar[str] = "llama3.2"

    def headers(self) -> dict[str, str]:
        key = self.api_key()
        return {"authorization": f"Bearer {key}"} if key else {}

    # -- request ------------------------------------------------------------------------------

    def build_body(self, request: ChatRequest, *, stream: bool) -> dict[str, Any]:
        messages: list[dict[str, str]] = []
        if request.system:
            messages.append({"role": "system", "content": request.system})
        messages.extend({"role": m.role, "content": m.content} for m in merge_turns(request.messages))
        options: dict[str, Any] = {}
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if request.temperature is not None:
            low, high = TEMPERATURE_RANGE
            options["temperature"] = min(max(float(request.temperature), low), high)
        stop = [s for s in request.stop if s]
        if stop:
            options["stop"] = stop
        body: dict[str, Any] = {"model": request.model, "messages": messages, "stream": stream}
        if options:
            body["options"] = options
        return body

    # -- calls --------------------------------------------------------------------------------

    async def complete(self, request: ChatRequest) -> ChatResponse:
        model = request.model
        data = await self.post_json(CHAT_PATH, self.build_body(request, stream=False), model)
        self._raise_in_band(data, model)
        message = self._message(data, model)
        text = message.get("content") or ""
        return ChatResponse(
            text=text,
            model=_str(data.get("model")) or model,
            provider=self.name,
            usage=self._usage(data, model),
            finish_reason=finish_reason(data.get("done_reason"), bool(message.get("tool_calls"))),
            raw_id=None,  # Ollama replies carry no id
        )

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        model = request.model
        tool_calls = False
        async with self.open(CHAT_PATH, self.build_body(request, stream=True), model) as resp:
            async for line in self.iter_ndjson(resp, model):
                data = self.parse_json_object(line, model, what="stream line")
                self._raise_in_band(data, model)
                message = self._message(data, model)
                text = message.get("content")
                if text:
                    yield TextDelta(text)
                tool_calls = tool_calls or bool(message.get("tool_calls"))
                if data.get("done") is True:
                    yield UsageReport(self._usage(data, model), model=_str(data.get("model")) or None)
                    yield Finished(finish_reason(data.get("done_reason"), tool_calls))
                    return
        raise self.error(ErrorKind.SERVER_ERROR, "stream ended before done:true", model)

    # -- reply parsing ------------------------------------------------------------------------

    def _raise_in_band(self, data: dict[str, Any], model: str) -> None:
        """A `{"error": ...}` object with status 200: the model failed after the status line."""
        if "error" in data:
            raise self.error(ErrorKind.SERVER_ERROR, error_text(data["error"]) or "unknown error", model)

    def _message(self, data: dict[str, Any], model: str) -> dict[str, Any]:
        """`message` is always present (a Go struct, never omitted); its `content` a string."""
        message = data.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("content", ""), str | None):
            raise self.malformed("message", data, model)
        return message

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
        kind = kind_for_status(status)
        if status == 400 and _CONTEXT_OVERFLOW.search(message):
            kind = ErrorKind.CONTEXT_LENGTH_EXCEEDED
        return self.error(kind, message, model, status=status, retry_after=parse_retry_after(headers),
                          retryable=should_retry_header(headers))

    def transport_error(self, exc: BaseException, model: str) -> ProviderError:
        """A refused connection is the usual sign of a local Ollama that is not running: say so."""
        if isinstance(exc, aiohttp.ClientConnectorError):
            reason = exc.os_error.strerror or str(exc.os_error)
            return self.error(ErrorKind.CONNECTION, f"Ollama is not reachable at {self.base_url} "
                              f"({reason}); is it running (`ollama serve`)?", model)
        return super().transport_error(exc, model)


# -- helpers ----------------------------------------------------------------------------------


def merge_turns(messages: tuple[Message, ...]) -> list[Message]:
    """Drop empty turns and join consecutive same-role turns with a blank line."""
    merged: list[Message] = []
    for m in messages:
        if not m.content:
            continue
        if merged and merged[-1].role == m.role:
            merged[-1] = Message(m.role, merged[-1].content + "\n\n" + m.content)
        else:
            merged.append(m)
    return merged


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
