"""OpenAI's chat-completions request, read into `Relay.run`'s terms (what `model` means is
`routing.targets`' business; the answer is rendered by `openai_answer`).

`parse_request` validates the raw body (`ChatCompletionRequest`) and refuses, with a 400 naming the
parameter, everything llmrelay cannot honour: each parameter OpenAI defines that is not relayed says
why (`REFUSED`; its null or off value is accepted), and a parameter OpenAI does not define is refused
as OpenAI refuses it ("Unrecognized request argument supplied: foo"), except OpenRouter's `models` and
the `top_k` of OpenRouter and vLLM.  `conversation` reads the messages (`openai_wire.messages_from_wire`,
its `param` kept in the 400) and checks that tool messages answer the calls before them, as OpenAI
does; `options` makes the request's `RequestOptions`: tools, tool choice, response format, sampling,
and the end user's id (`safety_identifier`, else `user`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from ..providers.openai_tools import output_from_wire, tool_choice_from_wire, tools_from_wire
from ..providers.openai_wire import WireError, messages_from_wire, split_client_id
from ..types import NO_SAMPLING, Message, RequestOptions, Sampling, Text
from .errors import Problem

MAX_TEXT = 1_000_000
_LOGS = "log probabilities are not relayed (not every provider returns them)"
_CACHE = "prompt cache settings are OpenAI's own and are not relayed"
_STORED = "llmrelay does not store completions for OpenAI (its ledger records every call)"
REFUSED: dict[str, tuple[tuple[Any, ...], str]] = {
    "audio": ((None,), "audio output is not relayed"),
    "function_call": ((None,), "the deprecated function calling is not relayed: use tools and tool_choice"),
    "functions": ((None, []), "the deprecated function calling is not relayed: use tools and tool_choice"),
    "logprobs": ((None, False), _LOGS),
    "top_logprobs": ((None,), _LOGS),
    "metadata": ((None,), _STORED),
    "store": ((None, False), _STORED),
    "moderation": ((None,), "OpenAI's moderation settings are not relayed"),
    "prediction": ((None,), "predicted outputs are OpenAI's own and are not relayed"),
    "prompt_cache_key": ((None,), _CACHE),
    "prompt_cache_options": ((None,), _CACHE),
    "prompt_cache_retention": ((None,), _CACHE),
    "service_tier": ((None, "auto"), "service tiers are OpenAI's own and are not relayed"),  # auto: the default
    "verbosity": ((None, "medium"), "verbosity is not relayed (no other provider has it)"),  # medium: the default
    "web_search_options": ((None,), "web search is not relayed"),
}
"""Parameters OpenAI defines that llmrelay refuses: (the values that ask for nothing, why)."""

# -- the request (its JSON schema is the OpenAPI document's) ------------------------------------------

_PART = {"oneOf": [
    {"type": "object", "required": ["type", "text"],
     "properties": {"type": {"const": "text"}, "text": {"type": "string"}}},
    {"type": "object", "required": ["type", "image_url"], "properties": {
        "type": {"const": "image_url"}, "image_url": {"type": "object", "required": ["url"], "properties": {
            "url": {"type": "string", "description": "http(s), or a base64 `data:` URL"},
            "detail": {"enum": ["auto", "low", "high"]}}}}}]}
_CALL = {"type": "object", "required": ["id", "type", "function"], "properties": {
    "id": {"type": "string"}, "type": {"const": "function"}, "function": {
        "type": "object", "required": ["name", "arguments"],
        "properties": {"name": {"type": "string"}, "arguments": {"type": "string", "description": "JSON text"}}}}}
_MESSAGES_DOC = {"items": {"type": "object", "required": ["role"], "properties": {
    "role": {"enum": ["system", "developer", "user", "assistant", "tool"]},
    "content": {"anyOf": [{"type": "string"}, {"type": "null"}, {"type": "array", "items": _PART}],
                "description": "Text, or parts: text and (user messages) image_url"},
    "tool_calls": {"type": "array", "items": _CALL, "description": "An assistant message's calls"},
    "tool_call_id": {"type": "string", "description": "A tool message: the call it answers"},
    "name": {"type": "string"}}}}
_TOOLS_DOC = {"items": {"type": "object", "required": ["type", "function"], "properties": {
    "type": {"const": "function"}, "function": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]{1,128}$"}, "description": {"type": "string"},
        "parameters": {"type": "object", "description": "JSON Schema of the arguments (an object)"},
        "strict": {"type": "boolean"}}}}}}
_CHOICE_DOC = {"anyOf": [{"enum": ["auto", "none", "required"]}, {
    "type": "object", "required": ["type", "function"], "properties": {
        "type": {"const": "function"}, "function": {"type": "object", "required": ["name"],
                                                    "properties": {"name": {"type": "string"}}}}}]}
_FORMAT_DOC = {"type": "object", "required": ["type"], "properties": {
    "type": {"enum": ["text", "json_object", "json_schema"]},
    "json_schema": {"type": "object", "required": ["name"], "properties": {
        "name": {"type": "string"}, "description": {"type": "string"}, "schema": {"type": "object"},
        "strict": {"type": "boolean"}}}}}
TokenId = Annotated[str, StringConstraints(pattern=r"^\d{1,10}$")]


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """OpenAI's request body as llmrelay takes it.  Also defined by OpenAI and refused unless null or
    off: audio, function_call, functions, logprobs, top_logprobs, metadata, store, moderation,
    prediction, prompt_cache_key, prompt_cache_options, prompt_cache_retention, service_tier, verbosity,
    web_search_options.  Any other parameter is unrecognized (400)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})
    """Extras are collected to be refused by name (`parse_request`), not taken."""

    model: str = Field(min_length=1, max_length=300,
                       description="`agent:<agentId>`, `<provider>/<model>`, or a model name the catalog knows")
    messages: list[Any] = Field(min_length=1, max_length=10_000, json_schema_extra=_MESSAGES_DOC)
    max_tokens: int | None = Field(None, ge=1, le=1_000_000)
    max_completion_tokens: int | None = Field(None, ge=1, le=1_000_000, description="Wins over max_tokens")
    temperature: float | None = Field(None, ge=0, le=2)
    stop: str | list[str] | None = Field(None, description="Up to 16 stop sequences")
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    tools: list[Any] | None = Field(None, max_length=128, json_schema_extra=_TOOLS_DOC,
                                    description="Function tools (added to an agent's own)")
    tool_choice: Any = Field(None, json_schema_extra=_CHOICE_DOC)
    parallel_tool_calls: bool | None = None
    response_format: Any = Field(None, json_schema_extra=_FORMAT_DOC)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0, description="OpenRouter's and vLLM's extension")
    seed: int | None = None
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    logit_bias: dict[TokenId, Annotated[float, Field(ge=-100, le=100)]] | None = None
    reasoning_effort: Literal["low", "medium", "high"] | None = None
    user: str | None = Field(None, max_length=256, description="Your end user's id, passed on where a provider "
                                                               "takes one")
    safety_identifier: str | None = Field(None, max_length=128, description="Wins over `user`")
    models: list[str] | None = Field(None, max_length=16,
                                     description="OpenRouter's fallbacks: tried in order after `model`'s chain")
    n: int | None = Field(None, description="Only 1 is supported")
    modalities: list[str] | None = Field(None, description='Only ["text"] is supported')

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
        data = orjson.loads(raw)  # then validated: about twice as fast as pydantic's own JSON parsing
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None
    try:
        body = ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None
    if body.model_extra:
        for name, value in body.model_extra.items():
            _refuse_extra(name, value)
    if body.n not in (None, 1):
        raise _unsupported("n", "llmrelay gives one answer per request")
    if body.modalities is not None and body.modalities != ["text"]:
        raise _unsupported("modalities", "only text output is relayed")
    if len(body.stop_sequences) > 16 or any(not s or len(s) > 1000 for s in body.stop_sequences):
        raise Problem(400, "'stop' takes up to 16 non-empty strings", field="stop", code="invalid_value")
    return body


def _refuse_extra(name: str, value: Any) -> None:
    refused = REFUSED.get(name)
    if refused is None:
        raise Problem(400, f"Unrecognized request argument supplied: {name}")
    harmless, why = refused
    if not any(value is h or (value == h and type(value) is type(h)) for h in harmless):
        raise _unsupported(name, why)


def _unsupported(name: str, why: str) -> Problem:
    return Problem(400, f"{name!r} is not supported: {why}", field=name, code="unsupported_parameter")


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
    """('messages', 0, 'role') -> 'messages[0].role', as OpenAI names parameters (a bad key of an object:
    the object)."""
    if "[key]" in loc:
        loc = loc[: list(loc).index("[key]") - 1]
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def _wire_problem(exc: WireError) -> Problem:
    return Problem(400, str(exc), field=exc.param, code="invalid_value")


# -- the conversation and the options ----------------------------------------------------------------


def conversation(messages: Sequence[Any]) -> tuple[list[str], list[Message]]:
    """(system texts, turns): system and developer messages become the system prompt, in order; tool
    messages join the user turn that answers the assistant's calls."""
    try:
        system, turns = messages_from_wire(messages)
        check_tool_answers(messages)
    except WireError as exc:
        raise _wire_problem(exc) from None
    for i, m in enumerate(turns):
        if any(type(p) is Text and len(p.text) > MAX_TEXT for p in m.parts):
            raise Problem(400, f"a message is over {MAX_TEXT} characters (turn {i})", field="messages",
                          code="invalid_value")
    if not turns:
        raise Problem(400, "messages needs at least one user or assistant message", field="messages",
                      code="invalid_value")
    return system, turns


def check_tool_answers(messages: Sequence[Mapping[str, Any]]) -> None:
    """OpenAI's rule: the tool messages right after an assistant message with tool calls answer each
    of its calls, and a tool message answers a call of the assistant message before it."""
    pending: dict[str, None] = {}
    asked_at = -1
    for i, m in enumerate(messages):
        role = m.get("role")
        if role == "tool":
            call_id = split_client_id(m["tool_call_id"])[0]
            if asked_at < 0 or call_id not in pending:
                raise WireError(f"tool_call_id {m['tool_call_id']!r} answers no tool call of the assistant message "
                                "before it", f"messages[{i}].tool_call_id")
            del pending[call_id]
            continue
        if pending:
            break
        calls = m.get("tool_calls") if role == "assistant" else None
        asked_at = i if calls else -1
        pending = {split_client_id(c["id"])[0]: None for c in calls or ()}
    if pending:
        raise WireError("an assistant message with tool_calls must be followed by tool messages answering each "
                        f"call; unanswered: {', '.join(pending)}", f"messages[{asked_at}].tool_calls")


def options(body: ChatCompletionRequest, system: Sequence[str], request_id: str) -> RequestOptions:
    """The request's options: its system and developer messages, limits, `models` fallbacks, tools,
    tool choice, response format, sampling and end user."""
    try:
        tools = tools_from_wire(body.tools) if body.tools else ()
        choice = tool_choice_from_wire(body.tool_choice)
        output = output_from_wire(body.response_format)
    except WireError as exc:
        raise _wire_problem(exc) from None
    sampling = NO_SAMPLING
    if (body.top_p, body.top_k, body.seed, body.presence_penalty, body.frequency_penalty, body.logit_bias,
            body.reasoning_effort) != (None,) * 7:
        sampling = Sampling(body.top_p, body.top_k, body.seed, body.presence_penalty, body.frequency_penalty,
                            body.logit_bias, body.reasoning_effort)
    return RequestOptions(
        system="\n\n".join(s for s in system if s) or None, max_tokens=body.max_completion_tokens or body.max_tokens,
        temperature=body.temperature, stop=body.stop_sequences, fallbacks=tuple(body.models or ()),
        request_id=request_id, tools=tools, tool_choice=choice, parallel_tool_calls=body.parallel_tool_calls,
        output=output, sampling=sampling, end_user=body.safety_identifier or body.user)
