"""Anthropic's Messages request (`POST /v1/messages`, `POST /v1/messages/count_tokens`), read into
`Relay.run`'s terms (what `model` means is `routing.targets`' business; the answer is rendered by
`anthropic_answer`).

`parse_messages` / `parse_count` validate the raw body and refuse, with a 400 `invalid_request_error`
whose message names the field as Anthropic names it (`messages.0.content.1.type: …`), everything
llmrelay cannot honour:

- a field Anthropic does not define (for count_tokens: one its count endpoint does not take, such as
  `max_tokens`) is refused as Anthropic refuses it: "<field>: Extra inputs are not permitted";
- a field Anthropic defines that is not relayed (`REFUSED`: container, service_tier, …) says why; its
  null or default value is accepted.  So do the same keys inside content blocks (`citations`);
- server tools (`web_search_…`, `code_execution_…`, any tool with a `type` other than `custom`);
- `thinking` other than `enabled` (with `budget_tokens`) or `disabled`, and `output_config.effort`.

`conversation` reads `system` and `messages` (`anthropic_wire.messages_from_wire`) and checks that each
`tool_use` is answered by a `tool_result` in the very next turn, as Anthropic does.  A tool-use id the
door handed out with a Gemini thought signature in it (`<id>__thought__<signature>`, as on /v1/chat/
completions) is split back into the call's id and signature.

Prompt caching is relayed: `cache_control` (`{"type": "ephemeral", "ttl"?: "5m" | "1h"}`, anything else a
400 naming it) on a text, image, tool_use or tool_result block, a system text block or a custom tool is
that part's, tool's or the system prompt's breakpoint (`anthropic_wire` reads it); the top-level one
(automatic caching) marks the last block of the messages that can carry one (`mark_last`).  Thinking
blocks take none, as on Anthropic.  Only Anthropic is sent them; the other providers cache long prompts
by themselves (or not at all), and a breakpoint never keeps a link from serving.  Anthropic's own limits
(4 breakpoints, no 1h after a 5m) are its adapter's to enforce: another link may serve such a request.

`options` makes the request's `RequestOptions`.  Thinking: `{"type": "enabled", "budget_tokens": B}`
becomes `reasoning_effort` (the level every provider takes; Anthropic's adapter turns it back into a
budget of 1,024 / 4,096 / 16,384 tokens): B <= 2,048 is `low`, B <= 8,192 `medium`, larger `high` (the
boundaries are the geometric midpoints between those budgets).  As in Anthropic's API the budget counts
against `max_tokens`, so the answer itself is given `max_tokens - B` (at least 1).  `metadata.user_id` is
the end user's id; `output_config.format` (`json_schema`) the output format; `stop_sequences`, `top_p`,
`top_k`, `temperature` (0–1, Anthropic's range) as they are.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import orjson
from pydantic import ValidationError

from ..content import Message, OutputFormat, Reasoning, Text, Tool, ToolCall, ToolChoice, ToolResult
from ..providers.anthropic_wire import TOOL_NAME, WireError, cache_from_wire, messages_from_wire, system_from_wire
from ..providers.openai_wire import split_client_id
from ..types import NO_SAMPLING, RequestOptions, Sampling
from .anthropic_schema import MIN_BUDGET, CountTokensRequest, MessagesRequest
from .errors import Problem

EXTRA = "Extra inputs are not permitted"
REFUSED: dict[str, tuple[tuple[Any, ...], str]] = {
    "container": ((None,), "containers (code execution) are Anthropic's own and are not relayed"),
    "context_management": ((None,), "context management is Anthropic's own and is not relayed"),
    "diagnostics": ((None,), "diagnostics are Anthropic's own and are not relayed"),
    "inference_geo": ((None,), "the inference region is Anthropic's own and is not relayed"),
    "mcp_servers": ((None, []), "MCP servers are not relayed: llmrelay never runs a tool"),
    "service_tier": ((None, "auto"), "service tiers are Anthropic's own and are not relayed"),
    "speed": ((None, "standard"), "fast mode is Anthropic's own and is not relayed"),
    "user_profile_id": ((None,), "user profiles are Anthropic's own and are not relayed"),
    "workspace_id": ((None,), "workspaces are Anthropic's own and are not relayed"),
}
"""Top-level fields Anthropic defines that llmrelay refuses: (the values that ask for nothing, why)."""
_EFFORT_LEVELS = ((2048, "low"), (8192, "medium"))
"""`thinking.budget_tokens` up to each bound -> that `reasoning_effort`; above the last: `high`."""

def parse_messages(raw: bytes) -> MessagesRequest:
    body = _parse(raw, MessagesRequest)
    assert isinstance(body, MessagesRequest)
    if body.stop_sequences and any(not s.strip() for s in body.stop_sequences):
        raise invalid("stop_sequences: each stop sequence must contain non-whitespace")
    return body


def parse_count(raw: bytes) -> CountTokensRequest:
    return _parse(raw, CountTokensRequest)


def _parse(raw: bytes, model: type[CountTokensRequest]) -> CountTokensRequest:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise invalid("Input should be a valid dictionary or object to extract fields from")
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise invalid(f"{where}: {err['msg']}" if where else err["msg"]) from None
    for name, value in (body.model_extra or {}).items():
        refused = REFUSED.get(name) if model is MessagesRequest else None
        if refused is None:
            raise invalid(f"{name}: {EXTRA}")
        harmless, why = refused
        if not any(value is h or (value == h and type(value) is type(h)) for h in harmless):
            raise invalid(f"{name}: {why}")
    return body


def invalid(message: str) -> Problem:
    """A 400 `invalid_request_error` (Anthropic's messages name the field in the text)."""
    return Problem(400, message, code="invalid_request_error")


# -- keys inside blocks ------------------------------------------------------------------------------

_BLOCK_KEYS = {"text": {"text", "cache_control"}, "image": {"source", "cache_control"},
               "tool_use": {"id", "name", "input", "cache_control"},
               "tool_result": {"tool_use_id", "content", "is_error", "cache_control"},
               "thinking": {"thinking", "signature"}, "redacted_thinking": {"data"}}
"""The keys each block may have (`cache_control`, read by `anthropic_wire`, on all but thinking)."""
_SOURCE_KEYS = {"base64": {"media_type", "data"}, "url": {"url"}}
_NOT_RELAYED = {"citations": "citations are not relayed"}
"""Keys Anthropic defines inside blocks that llmrelay refuses unless null (or, for citations, empty)."""


def _check_keys(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key, value in obj.items():
        if key == "type" or key in allowed or value is None or (key == "citations" and value == []):
            continue
        raise invalid(f"{where}.{key}: {_NOT_RELAYED.get(key, EXTRA)}")


def _check_block(block: Any, where: str) -> None:
    if not isinstance(block, Mapping) or block.get("type") not in _BLOCK_KEYS:
        return  # messages_from_wire says what is wrong with it
    kind = block["type"]
    _check_keys(block, _BLOCK_KEYS[kind], where)
    source = block.get("source")
    if kind == "image" and isinstance(source, Mapping) and source.get("type") in _SOURCE_KEYS:
        _check_keys(source, _SOURCE_KEYS[source["type"]], where + ".source")
    content = block.get("content")
    if kind == "tool_result" and isinstance(content, list):
        for k, inner in enumerate(content):
            _check_block(inner, f"{where}.content.{k}")


def check_block_keys(messages: Sequence[Any], system: Any) -> None:
    """Refuse, naming it, every key of a message, block or source that llmrelay cannot relay."""
    if isinstance(system, list):
        for j, block in enumerate(system):
            _check_block(block, f"system.{j}")
    for i, m in enumerate(messages):
        if not isinstance(m, Mapping):
            continue
        _check_keys(m, {"role", "content"}, f"messages.{i}")
        if isinstance(m.get("content"), list):
            for j, block in enumerate(m["content"]):
                _check_block(block, f"messages.{i}.content.{j}")


# -- the conversation --------------------------------------------------------------------------------


def conversation(body: CountTokensRequest) -> tuple[str | None, list[Message]]:
    """(system prompt, turns), with tool-use ids split from the signatures the door appended and the
    breakpoint of automatic caching (the top-level `cache_control`) set."""
    try:
        system, turns = messages_from_wire(body.system, body.messages)
        auto = cache_from_wire(body.cache_control, "cache_control")
    except WireError as exc:
        raise invalid(str(exc)) from None
    check_block_keys(body.messages, body.system)
    turns = [_split_ids(m) for m in turns]
    check_tool_answers(turns)
    return system, turns if auto is None else mark_last(turns, auto)


def mark_last(turns: list[Message], ttl: str) -> list[Message]:
    """Anthropic's automatic caching: a breakpoint on the last block of the request that can carry one
    (not thinking, not blank text); a block that has one keeps its own."""
    for i in range(len(turns) - 1, -1, -1):
        parts = turns[i].parts
        for j in range(len(parts) - 1, -1, -1):
            p = parts[j]
            if type(p) is Reasoning or (type(p) is Text and not p.text.strip()):
                continue
            if p.cache is not None:
                return turns
            marked = Message(turns[i].role, (*parts[:j], replace(p, cache=ttl), *parts[j + 1:]))
            return [*turns[:i], marked, *turns[i + 1:]]
    raise invalid("cache_control: no block of the messages can carry a cache breakpoint")


def _split_ids(m: Message) -> Message:
    if m.plain:
        return m
    parts = []
    for p in m.parts:
        if type(p) is ToolCall:
            call_id, signature = split_client_id(p.id)
            p = replace(p, id=call_id, signature=signature) if signature else p
        elif type(p) is ToolResult:
            p = replace(p, call_id=split_client_id(p.call_id)[0])
        parts.append(p)
    return Message(m.role, parts)


def check_tool_answers(turns: Sequence[Message]) -> None:
    """Anthropic's rule: each `tool_use` is answered by a `tool_result` in the very next turn, and a
    `tool_result` answers a `tool_use` of the turn before it."""
    asked: list[str] = []
    for i, m in enumerate(turns):
        answered = [p.call_id for p in m.parts if type(p) is ToolResult] if m.role == "user" else []
        stray = [a for a in answered if a not in asked]
        if stray:
            raise invalid(f"messages.{i}: unexpected `tool_use_id` found in `tool_result` blocks: {stray[0]}. Each "
                          "`tool_result` block must have a corresponding `tool_use` block in the previous message.")
        missing = [a for a in asked if a not in answered]
        if missing:
            raise invalid(f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                          f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                          "`tool_result` block in the next message.")
        asked = [p.id for p in m.parts if type(p) is ToolCall] if m.role == "assistant" else []
    if asked:
        raise invalid(f"messages.{len(turns) - 1}: `tool_use` ids were found without `tool_result` blocks "
                      f"immediately after: {', '.join(asked)}. Each `tool_use` block must have a corresponding "
                      "`tool_result` block in the next message.")


# -- tools, tool choice, thinking, output ------------------------------------------------------------

_TOOL_KEYS = {"name", "description", "input_schema", "strict", "cache_control"}


def tools_from_wire(items: Sequence[Any]) -> tuple[Tool, ...]:
    tools: list[Tool] = []
    for i, t in enumerate(items):
        where = f"tools.{i}"
        if not isinstance(t, Mapping):
            raise invalid(f"{where}: Input should be a valid dictionary")
        kind = t.get("type")
        if kind not in (None, "custom"):
            raise invalid(f"{where}: server tools ({kind}) are not relayed: llmrelay never runs a tool (custom "
                          "tools, with name, description and input_schema, are)")
        _check_keys(t, _TOOL_KEYS, where)
        name, schema, description, strict = t.get("name"), t.get("input_schema"), t.get("description"), t.get("strict")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise invalid(f"{where}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        if not isinstance(schema, Mapping):
            raise invalid(f"{where}.custom.input_schema: Field required" if schema is None else
                          f"{where}.custom.input_schema: Input should be a valid dictionary")
        if schema.get("type") != "object":
            raise invalid(f"{where}.custom.input_schema.type: Input should be 'object'")
        if description is not None and not isinstance(description, str):
            raise invalid(f"{where}.custom.description: Input should be a valid string")
        if strict is not None and not isinstance(strict, bool):
            raise invalid(f"{where}.custom.strict: Input should be a valid boolean")
        try:
            cache = cache_from_wire(t.get("cache_control"), where + ".cache_control")
        except WireError as exc:
            raise invalid(str(exc)) from None
        tools.append(Tool(name, description or "", schema, strict, cache))
    if len({t.name for t in tools}) != len(tools):
        raise invalid("tools: Tool names must be unique.")
    return tuple(tools)


def tool_choice_from_wire(choice: Any) -> tuple[ToolChoice | None, bool | None]:
    """(the tool choice, parallel tool calls: False when `disable_parallel_tool_use`, else None)."""
    if choice is None:
        return None, None
    kind = choice.get("type") if isinstance(choice, Mapping) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise invalid("tool_choice: Input tag found using 'type' does not match any of the expected tags: "
                      "'auto', 'any', 'tool', 'none'")
    allowed = {"name", "disable_parallel_tool_use"} if kind == "tool" else (
        set() if kind == "none" else {"disable_parallel_tool_use"})
    _check_keys(choice, allowed, f"tool_choice.{kind}")
    off = choice.get("disable_parallel_tool_use")
    if off is not None and not isinstance(off, bool):
        raise invalid(f"tool_choice.{kind}.disable_parallel_tool_use: Input should be a valid boolean")
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise invalid("tool_choice.tool.name: Field required")
        mode = ToolChoice("tool", name)
    else:
        mode = ToolChoice({"auto": "auto", "any": "required", "none": "none"}[kind])  # type: ignore[arg-type]
    return mode, (False if off else None)


def thinking_budget(thinking: Any, max_tokens: int | None) -> int | None:
    """The thinking budget asked for (None: no thinking)."""
    if thinking is None:
        return None
    kind = thinking.get("type") if isinstance(thinking, Mapping) else None
    if kind == "disabled":
        _check_keys(thinking, set(), "thinking.disabled")
        return None
    if kind != "enabled":
        if kind in ("adaptive", "between_tools"):
            raise invalid(f"thinking.type: {kind!r} thinking is not relayed: use {{\"type\": \"enabled\", "
                          "\"budget_tokens\": N}, which every provider's thinking level can honour")
        raise invalid("thinking: Input tag found using 'type' does not match any of the expected tags: "
                      "'enabled', 'disabled'")
    _check_keys(thinking, {"budget_tokens", "display"}, "thinking.enabled")
    if thinking.get("display") not in (None, "summarized"):
        raise invalid("thinking.enabled.display: only 'summarized' thinking is relayed")
    budget = thinking.get("budget_tokens")
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_BUDGET:
        raise invalid(f"thinking.enabled.budget_tokens: Input should be greater than or equal to {MIN_BUDGET}")
    if max_tokens is not None and max_tokens <= budget:
        raise invalid("`max_tokens` must be greater than `thinking.budget_tokens`")
    return budget


def effort_for(budget: int) -> str:
    """The `reasoning_effort` level a thinking budget asks for (see the module docstring)."""
    return next((level for bound, level in _EFFORT_LEVELS if budget <= bound), "high")


def output_from_wire(config: Any) -> OutputFormat | None:
    if config is None:
        return None
    if not isinstance(config, Mapping):
        raise invalid("output_config: Input should be a valid dictionary")
    if config.get("effort") is not None:
        raise invalid("output_config.effort: effort levels are Anthropic's own and are not relayed")
    _check_keys(config, {"format", "effort"}, "output_config")
    fmt = config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, Mapping) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), Mapping):
        raise invalid("output_config.format: Input should be {'type': 'json_schema', 'schema': {...}}")
    _check_keys(fmt, {"schema"}, "output_config.format")
    return OutputFormat("json_schema", fmt["schema"])


def _end_user(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, Mapping):
        raise invalid("metadata: Input should be a valid dictionary")
    _check_keys(metadata, {"user_id"}, "metadata")
    user = metadata.get("user_id")
    if user is not None and (not isinstance(user, str) or len(user) > 256):
        raise invalid("metadata.user_id: Input should be a valid string of at most 256 characters")
    return user


def options(body: CountTokensRequest, system: str | None, request_id: str) -> RequestOptions:
    """The request's options (see the module docstring)."""
    full = body if isinstance(body, MessagesRequest) else None
    max_tokens = full.max_tokens if full is not None else None
    tools = tools_from_wire(body.tools) if body.tools else ()
    choice, parallel = tool_choice_from_wire(body.tool_choice)
    budget = thinking_budget(body.thinking, max_tokens)
    output = output_from_wire(body.output_config)
    effort = effort_for(budget) if budget is not None else None
    top_p, top_k = (full.top_p, full.top_k) if full is not None else (None, None)
    sampling = NO_SAMPLING if (top_p, top_k, effort) == (None, None, None) else Sampling(
        top_p=top_p, top_k=top_k, reasoning_effort=effort)
    if max_tokens is not None and budget is not None:
        max_tokens = max(1, max_tokens - budget)
    return RequestOptions(
        system=system or None, system_cache=system_from_wire(body.system)[1] if system else None,
        max_tokens=max_tokens, temperature=full.temperature if full else None,
        stop=tuple(full.stop_sequences or ()) if full else (), request_id=request_id, tools=tools,
        tool_choice=choice, parallel_tool_calls=parallel, output=output, sampling=sampling,
        end_user=_end_user(full.metadata) if full else None)

