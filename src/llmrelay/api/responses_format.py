"""OpenAI's Responses API request (`POST /v1/responses`), read into `Relay.run`'s terms; its input items
are `responses_items`' business, the answer `responses_answer`'s.

`parse_request` validates the raw body (`ResponsesRequest`) and refuses, with a 400 naming the
parameter, everything llmrelay cannot honour: each parameter OpenAI defines that is not relayed says
why (`REFUSED`; its null or off value is accepted), and one OpenAI does not define is refused as OpenAI
refuses it ("Unrecognized request argument supplied: foo"), except OpenRouter's `models` (more fallback
links, as on /v1/chat/completions).  Then:

- `tools`: function tools `{type: "function", name, description, parameters, strict}`; a built-in
  (hosted) tool (web_search, file_search, computer_use, code_interpreter, image_generation, mcp, shell,
  custom, …) is refused naming its type: those run at OpenAI or only its models take them.
- `tool_choice`: auto, none, required, `{type: "function", name}`; any other (allowed_tools, a hosted
  tool's) is refused.
- `text.format`: text, json_object, json_schema `{name, schema, strict, description}`; `text.verbosity`
  is refused (no provider but OpenAI has it).
- `reasoning.effort` low, medium or high (as /v1/chat/completions' `reasoning_effort`); `summary` auto
  (the reasoning a provider shows is returned as the reasoning items' summary, as it is).
- `include`: only `reasoning.encrypted_content` (llmrelay's reasoning items always carry it);
  `truncation` only "disabled" (the default: an input over the context window is an error).
- `stream_options.include_obfuscation` only false: llmrelay's events carry no obfuscation padding.

`options` makes the request's `RequestOptions`: its system prompt (`instructions`, then the
conversation's system and developer messages), max output tokens, tools, tool choice, output format,
sampling and end user (`safety_identifier`, else `user`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..content import TOOL_NAME, OutputFormat, Tool, ToolChoice
from ..providers.openai_wire import WireError
from ..types import NO_SAMPLING, RequestOptions, Sampling
from .errors import Problem

MAX_TEXT = 1_000_000
_CACHE = "prompt cache settings are OpenAI's own and are not relayed"
_HOSTED = ("built-in (hosted) tools are OpenAI's own: they run at OpenAI, or only its models take them; llmrelay "
           "relays function tools, which your code runs")
REFUSED: dict[str, tuple[tuple[Any, ...], str]] = {
    "access_programs": ((None,), "access programs are OpenAI's own and are not relayed"),
    "background": ((None, False), "background responses are not supported: llmrelay answers while you wait"),
    "background_options": ((None,), "background responses are not supported: llmrelay answers while you wait"),
    "context_management": ((None, []), "server-side context compaction is OpenAI's own and is not relayed"),
    "conversation": ((None,), "OpenAI's conversation objects are not supported: continue a stored response with "
                              "previous_response_id"),
    "image": ((None,), "image context compression is OpenAI's own and is not relayed"),
    "max_tool_calls": ((None,), "it limits hosted tool calls, which llmrelay does not relay"),
    "moderation": ((None,), "OpenAI's moderation settings are not relayed"),
    "prompt": ((None,), "OpenAI's stored prompts are not supported: send the instructions and input"),
    "prompt_cache_key": ((None,), _CACHE),
    "prompt_cache_options": ((None,), _CACHE),
    "prompt_cache_retention": ((None,), _CACHE),
    "service_tier": ((None, "auto"), "service tiers are OpenAI's own and are not relayed"),  # auto: the default
    "top_logprobs": ((None, 0), "log probabilities are not relayed (not every provider returns them)"),
}
"""Parameters OpenAI defines that llmrelay refuses: (the values that ask for nothing, why)."""
HOSTED_TOOLS = ("web_search", "web_search_preview", "file_search", "computer_use", "computer_use_preview",
                "computer", "code_interpreter", "image_generation", "mcp", "local_shell", "shell", "apply_patch",
                "custom", "namespace", "tool_search", "programmatic_tool_calling")
"""The tool types OpenAI runs itself (or that only its models take), named in the 400 that refuses them."""
INCLUDABLE = ("reasoning.encrypted_content",)

# -- the request (its JSON schema is the OpenAPI document's) ------------------------------------------

_INPUT_DOC = {"anyOf": [{"type": "string"}, {"type": "array", "items": {
    "type": "object", "description": "A message {role, content} (content text, or input_text / input_image / "
                                     "output_text parts), function_call {call_id, name, arguments}, "
                                     "function_call_output {call_id, output} or reasoning item"}}]}
_TOOLS_DOC = {"items": {"type": "object", "required": ["type", "name"], "properties": {
    "type": {"const": "function"}, "name": {"type": "string", "pattern": r"^[A-Za-z0-9_.\-]{1,128}$"},
    "description": {"type": ["string", "null"]},
    "parameters": {"type": ["object", "null"], "description": "JSON Schema of the arguments (an object)"},
    "strict": {"type": ["boolean", "null"]}}}}
_CHOICE_DOC = {"anyOf": [{"enum": ["auto", "none", "required"]}, {
    "type": "object", "required": ["type", "name"],
    "properties": {"type": {"const": "function"}, "name": {"type": "string"}}}]}
_TEXT_DOC = {"type": "object", "properties": {"format": {"type": "object", "required": ["type"], "properties": {
    "type": {"enum": ["text", "json_object", "json_schema"]}, "name": {"type": "string"},
    "schema": {"type": "object"}, "description": {"type": "string"}, "strict": {"type": ["boolean", "null"]}}}}}
_REASONING_DOC = {"type": "object", "properties": {"effort": {"enum": ["low", "medium", "high", None]},
                                                   "summary": {"enum": ["auto", None]}}}


class ResponsesRequest(BaseModel):
    """The Responses API's request body as llmrelay takes it.  Also defined by OpenAI and refused unless
    null or off: access_programs, background, background_options, context_management, conversation, image,
    max_tool_calls, moderation, prompt, prompt_cache_key, prompt_cache_options, prompt_cache_retention,
    service_tier, top_logprobs.  Any other parameter is unrecognized (400)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})
    """Extras are collected to be refused by name (`parse_request`), not taken."""

    model: str = Field(min_length=1, max_length=300,
                       description="`agent:<agentId>`, `<provider>/<model>`, or a model name the catalog knows")
    input: str | list[Any] = Field(json_schema_extra=_INPUT_DOC)
    instructions: str | None = Field(None, max_length=MAX_TEXT, description="The system prompt (not carried over "
                                                                          "by previous_response_id)")
    tools: list[Any] | None = Field(None, max_length=128, json_schema_extra=_TOOLS_DOC,
                                    description="Function tools (added to an agent's own); hosted tools are refused")
    tool_choice: Any = Field(None, json_schema_extra=_CHOICE_DOC)
    parallel_tool_calls: bool | None = None
    text: dict[str, Any] | None = Field(None, json_schema_extra=_TEXT_DOC)
    max_output_tokens: int | None = Field(None, ge=1, le=1_000_000)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    reasoning: dict[str, Any] | None = Field(None, json_schema_extra=_REASONING_DOC)
    user: str | None = Field(None, max_length=256, description="Your end user's id, passed on where a provider "
                                                               "takes one")
    safety_identifier: str | None = Field(None, max_length=128, description="Wins over `user`")
    stream: bool | None = False
    stream_options: dict[str, Any] | None = None
    store: bool | None = Field(True, description="Keep the response (for you only) for previous_response_id and "
                                                 "GET /v1/responses/{id}")
    previous_response_id: str | None = Field(None, min_length=1, max_length=64)
    metadata: dict[str, str] | None = Field(None, max_length=16, description="Up to 16 keys (64 characters) and "
                                                                             "values (512), kept with the response")
    truncation: Literal["auto", "disabled"] | None = Field(None, description='Only "disabled" is supported')
    include: list[str] | None = Field(None, description='Only "reasoning.encrypted_content" (always included)')
    models: list[str] | None = Field(None, max_length=16,
                                     description="OpenRouter's fallbacks: tried in order after `model`'s chain")


def parse_request(raw: bytes) -> ResponsesRequest:
    """The body validated, or a 400 in OpenAI's terms naming the parameter."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None
    try:
        body = ResponsesRequest.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None
    for name, value in (body.model_extra or {}).items():
        _refuse_extra(name, value)
    if body.truncation == "auto":
        raise unsupported("truncation", 'only "disabled" is supported: an input over the context window is an error')
    for item in body.include or ():
        if item not in INCLUDABLE:
            raise unsupported("include", f"{item!r} cannot be included (only reasoning.encrypted_content)")
    if (body.stream_options or {}).get("include_obfuscation") not in (None, False) or set(
            body.stream_options or {}) - {"include_obfuscation"}:
        raise unsupported("stream_options", "llmrelay's stream events carry no obfuscation: send "
                                            "include_obfuscation false, or leave stream_options out")
    for key, value in (body.metadata or {}).items():
        if len(key) > 64 or len(value) > 512:
            raise Problem(400, "metadata keys are at most 64 characters, values at most 512", field="metadata",
                          code="invalid_value")
    return body


def _refuse_extra(name: str, value: Any) -> None:
    refused = REFUSED.get(name)
    if refused is None:
        raise Problem(400, f"Unrecognized request argument supplied: {name}")
    harmless, why = refused
    if not any(value is h or (value == h and type(value) is type(h)) for h in harmless):
        raise unsupported(name, why)


def unsupported(name: str, why: str) -> Problem:
    return Problem(400, f"{name!r} is not supported: {why}", field=name, code="unsupported_parameter")


def _invalid(exc: ValidationError) -> Problem:
    err = exc.errors(include_url=False, include_input=False)[0]
    param = _param(err["loc"])
    if err["type"] == "missing":
        return Problem(400, f"missing required parameter: {param!r}", field=param, code="missing_required_parameter")
    where = f"invalid {param!r}: " if param else "invalid body: "
    return Problem(400, where + err["msg"], field=param, code="invalid_value")


def _param(loc: Sequence[int | str]) -> str | None:
    """('input', 'list[any]', 0) -> 'input[0]', as OpenAI names parameters (a bad key of an object: the
    object; the union member pydantic tried is left out)."""
    if "[key]" in loc:
        loc = loc[: list(loc).index("[key]") - 1]
    out = ""
    for part in loc:
        if isinstance(part, str) and (part.startswith(("list[", "dict[")) or part in ("str", "int", "float", "bool")):
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or None


def wire_problem(exc: WireError) -> Problem:
    return Problem(400, str(exc), field=exc.param, code="invalid_value")


# -- tools, tool choice, output format, reasoning -----------------------------------------------------------


_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}
_TOOL_KEYS = {"type", "name", "description", "parameters", "strict"}
_TOOL_HARMLESS = {"defer_loading": (False,), "async": (False,), "allowed_callers": (["direct"],),
                  "output_schema": ()}


def tools_of(items: Sequence[Any]) -> tuple[Tool, ...]:
    tools = []
    for i, t in enumerate(items):
        kind = t.get("type") if type(t) is dict else None
        if kind != "function":
            if kind in HOSTED_TOOLS:
                raise Problem(400, f"tools[{i}]: {kind!r} tools are not supported: {_HOSTED}", field=f"tools[{i}]",
                              code="unsupported_parameter")
            raise WireError(f"tools of type {kind!r} are not supported (function tools are)", f"tools[{i}].type")
        for key, value in t.items():
            if key not in _TOOL_KEYS and value is not None and value not in _TOOL_HARMLESS.get(key, ()):
                raise WireError(f"{key!r} is not supported on a function tool", f"tools[{i}].{key}")
        name = t.get("name")
        if type(name) is not str or not TOOL_NAME.match(name):
            raise WireError("a function needs a name of letters, digits, _ . - (at most 128)", f"tools[{i}].name")
        params = t.get("parameters") or _NO_PARAMETERS
        if type(params) is not dict or params.get("type", "object") != "object":
            raise WireError("parameters must be a JSON Schema of type object", f"tools[{i}].parameters")
        description, strict = t.get("description") or "", t.get("strict")
        if type(description) is not str or not (strict is None or type(strict) is bool):
            raise WireError("description is a string, strict true or false", f"tools[{i}]")
        tools.append(Tool(name, description, params, strict))
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise WireError("two tools have the same name", "tools")
    return tuple(tools)


def tool_choice_of(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        return ToolChoice(value)
    kind = value.get("type") if isinstance(value, dict) else None
    if kind == "function" and isinstance(value.get("name"), str):
        return ToolChoice("tool", value["name"])
    if isinstance(kind, str) and kind != "function":
        raise unsupported("tool_choice", f"{kind!r} is not relayed (auto, none, required or a function are)")
    raise WireError('must be "auto", "none", "required" or {"type": "function", "name": …}', "tool_choice")


def output_of(text: Mapping[str, Any] | None) -> OutputFormat | None:
    """The `text` parameter's output format (None: text)."""
    if not text:
        return None
    if text.get("verbosity") not in (None, "medium"):  # medium: OpenAI's default, asks for nothing
        raise unsupported("text.verbosity", "verbosity is not relayed (no other provider has it)")
    unknown = set(text) - {"format", "verbosity"}
    if unknown:
        raise WireError(f"unknown key {sorted(unknown)[0]!r}", "text")
    spec = text.get("format")
    kind = spec.get("type") if isinstance(spec, dict) else None
    if spec is None or kind == "text":
        return None
    if kind == "json_object":
        return OutputFormat("json_object")
    if kind != "json_schema":
        raise WireError('type is "text", "json_object" or "json_schema"', "text.format.type")
    name, schema, strict, description = (spec.get(k) for k in ("name", "schema", "strict", "description"))
    if not isinstance(name, str) or not TOOL_NAME.match(name):
        raise WireError("json_schema needs a name (letters, digits, _ -)", "text.format.name")
    if not isinstance(schema, dict):
        raise WireError("json_schema needs a schema (a JSON Schema object)", "text.format.schema")
    if not (strict is None or isinstance(strict, bool)) or not (description is None or isinstance(description, str)):
        raise WireError("strict is true or false, description a string", "text.format")
    return OutputFormat("json_schema", schema, name, description, strict)


def effort_of(reasoning: Mapping[str, Any] | None) -> str | None:
    """`reasoning.effort` (low, medium, high), after refusing what cannot be honoured."""
    if not reasoning:
        return None
    for key, value in reasoning.items():
        if key in ("summary", "generate_summary"):
            if value not in (None, "auto"):
                raise unsupported(f"reasoning.{key}", 'only "auto": the reasoning a provider shows is returned as '
                                                     "it is")
        elif key == "effort":
            if value not in (None, "low", "medium", "high"):
                raise unsupported("reasoning.effort", "llmrelay relays low, medium and high")
        elif value is not None:
            raise unsupported(f"reasoning.{key}", "it is OpenAI's own and is not relayed")
    return reasoning.get("effort")


def options(body: ResponsesRequest, system: Sequence[str], request_id: str) -> RequestOptions:
    """The request's options: its system prompt, limits, `models` fallbacks, tools, tool choice, output
    format, sampling and end user."""
    try:
        tools = tools_of(body.tools) if body.tools else ()
        choice = tool_choice_of(body.tool_choice)
        output = output_of(body.text)
    except WireError as exc:
        raise wire_problem(exc) from None
    effort = effort_of(body.reasoning)
    sampling = NO_SAMPLING if body.top_p is None and effort is None else Sampling(top_p=body.top_p,
                                                                                   reasoning_effort=effort)
    return RequestOptions(
        system="\n\n".join(s for s in system if s) or None, max_tokens=body.max_output_tokens,
        temperature=body.temperature, fallbacks=tuple(body.models or ()), request_id=request_id, tools=tools,
        tool_choice=choice, parallel_tool_calls=body.parallel_tool_calls, output=output, sampling=sampling,
        end_user=body.safety_identifier or body.user)
