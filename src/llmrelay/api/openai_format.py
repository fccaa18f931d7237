"""OpenAI's chat-completions format, in and out (what `model` means is `routing.targets`' business).

In: `ChatCompletionRequest` (validated from the raw body; unknown fields ignored), its messages
turned into a system prompt and text turns (`conversation`), and the request's `RequestOptions`
(`options`).  Out: the `chat.completion` body (`completion`), the pre-rendered
`chat.completion.chunk` SSE frames of one stream (`Chunks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..types import ChatResponse, Message, RequestOptions, Usage
from .errors import Problem

MAX_TEXT = 1_000_000

# -- the request ------------------------------------------------------------------------------------

_CONTENT_DOC = {"anyOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": {
    "type": "object", "required": ["type", "text"],
    "properties": {"type": {"const": "text"}, "text": {"type": "string"}}}}]}


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Any = Field(None, json_schema_extra=_CONTENT_DOC,
                         description="A string, or an array of text parts (other parts are refused)")
    tool_calls: list[Any] | None = Field(None, description="Not supported: refused")
    function_call: Any = Field(None, description="Not supported: refused")


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=300,
                       description="`agent:<agentId>`, `<provider>/<model>`, or a model name the catalog knows")
    messages: list[ChatMessage] = Field(min_length=1, max_length=10_000)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(None, ge=1, le=1_000_000, description="Wins over max_tokens")
    temperature: float | None = Field(None, ge=0, le=2)
    stop: str | list[str] | None = Field(None, description="Up to 16 stop sequences")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = Field(None, description="Accepted and ignored: the API key says who is asking")
    models: list[str] | None = Field(None, max_length=16,
                                     description="OpenRouter's fallbacks: tried in order after `model`'s chain")
    n: int | None = Field(None, description="Only 1 is supported")
    tools: list[Any] | None = Field(None, description="Not supported: a non-empty list is refused")
    functions: list[Any] | None = Field(None, description="Not supported: a non-empty list is refused")

    @property
    def include_usage(self) -> bool:
        return self.stream_options is not None and self.stream_options.include_usage

    @property
    def stop_sequences(self) -> tuple[str, ...]:
        stop = self.stop
        return () if not stop else (stop,) if isinstance(stop, str) else tuple(stop)


def parse_request(raw: bytes) -> ChatCompletionRequest:
    """The body validated, or a 400 in OpenAI's terms naming the parameter."""
    try:
        body = ChatCompletionRequest.model_validate_json(raw)
    except ValidationError as exc:
        raise _invalid(exc) from None
    unsupported = ("tools" if body.tools else "functions" if body.functions else
                   "n" if body.n not in (None, 1) else None)
    if unsupported is not None:
        raise Problem(400, f"{unsupported!r} is not supported: llmrelay relays text conversations "
                           "(one answer, no tool calls)", field=unsupported, code="unsupported_parameter")
    if len(body.stop_sequences) > 16 or any(not s or len(s) > 1000 for s in body.stop_sequences):
        raise Problem(400, "'stop' takes up to 16 non-empty strings", field="stop", code="invalid_value")
    return body


def _invalid(exc: ValidationError) -> Problem:
    err = exc.errors(include_url=False, include_input=False)[0]
    if err["type"] == "json_invalid":
        return Problem(400, f"the body is not valid JSON: {err['msg']}", code="invalid_json")
    param = _param(err["loc"])
    if err["type"] == "missing":
        return Problem(400, f"missing required parameter: {param!r}", field=param, code="missing_required_parameter")
    where = f"invalid {param!r}: " if param else "invalid body: "
    return Problem(400, where + err["msg"], field=param, code="invalid_value")


def _param(loc: Sequence[int | str]) -> str | None:
    """('messages', 0, 'role') -> 'messages[0].role', as OpenAI names parameters."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def conversation(messages: Sequence[ChatMessage]) -> tuple[list[str], list[Message]]:
    """(system texts, turns): system and developer messages become the system prompt, in order."""
    system: list[str] = []
    turns: list[Message] = []
    for i, m in enumerate(messages):
        if m.role in ("tool", "function") or m.tool_calls or m.function_call:
            raise Problem(400, f"messages[{i}]: tool and function messages are not supported: llmrelay relays "
                               "text conversations", field=f"messages[{i}]", code="unsupported_message")
        text = _text(m.content, i)
        if m.role in ("system", "developer"):
            system.append(text)
        else:
            turns.append(Message(m.role, text))  # type: ignore[arg-type]
    if not turns:
        raise Problem(400, "messages needs at least one user or assistant message", field="messages",
                      code="invalid_value")
    return system, turns


def options(body: ChatCompletionRequest, system: Sequence[str], request_id: str) -> RequestOptions:
    """The request's options: its system and developer messages, limits, and `models` fallbacks."""
    return RequestOptions(
        system="\n\n".join(system) or None, max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature, stop=body.stop_sequences, fallbacks=tuple(body.models or ()),
        request_id=request_id)


def _text(content: Any, i: int) -> str:
    if isinstance(content, str):
        if len(content) > MAX_TEXT:
            raise Problem(400, f"messages[{i}].content is over {MAX_TEXT} characters", field=f"messages[{i}].content",
                          code="invalid_value")
        return content
    if isinstance(content, list):
        return "".join(_part_text(part, i, j) for j, part in enumerate(content))
    what = "missing" if content is None else f"a {type(content).__name__}"
    raise Problem(400, f"messages[{i}].content must be a string or an array of text parts, not {what}",
                  field=f"messages[{i}].content", code="invalid_value")


def _part_text(part: Any, i: int, j: int) -> str:
    """One content part's text (parts are joined without a separator, as OpenAI reads them)."""
    param = f"messages[{i}].content[{j}]"
    kind = part.get("type") if isinstance(part, dict) else None
    if kind != "text":
        raise Problem(400, f"{param}: only text parts are supported, not {kind or 'this'!r}", field=param,
                      code="unsupported_content")
    text = part.get("text")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        raise Problem(400, f"{param}.text must be a string of at most {MAX_TEXT} characters", field=f"{param}.text",
                      code="invalid_value")
    return text


# -- the response ------------------------------------------------------------------------------------


def usage_json(u: Usage) -> dict[str, Any]:
    return {"prompt_tokens": u.input_tokens, "completion_tokens": u.output_tokens, "total_tokens": u.total_tokens,
            "prompt_tokens_details": {"cached_tokens": u.cached_input_tokens},
            "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens}}


def _finish(reason: str | None) -> str:
    return "stop" if reason in (None, "error") else reason  # type: ignore[return-value]


def completion(completion_id: str, created: int, resp: ChatResponse) -> bytes:
    """The `chat.completion` body."""
    return orjson.dumps({
        "id": completion_id, "object": "chat.completion", "created": created, "model": resp.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": resp.text, "refusal": None},
                     "logprobs": None, "finish_reason": _finish(resp.finish_reason)}],
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

    def first(self, text: str) -> bytes:
        return self._delta + b'"role":"assistant","content":' + orjson.dumps(text) + self._delta_end

    def text(self, text: str) -> bytes:
        return self._delta + b'"content":' + orjson.dumps(text) + self._delta_end

    def finish(self, reason: str | None) -> bytes:
        return self._finish + orjson.dumps(_finish(reason)) + self._finish_end

    def usage(self, u: Usage) -> bytes:
        return self._usage + orjson.dumps(usage_json(u)) + b"}\n\n"

    @staticmethod
    def error(message: str, code: str | None) -> bytes:
        """The frame that ends a stream that broke after text went out (OpenAI SDKs raise `APIError`)."""
        return b"data: " + orjson.dumps({"error": {"message": message, "type": "api_error", "param": None,
                                                   "code": code}}) + b"\n\n"
