"""The parts of an Anthropic Messages request beyond its turns: tools, tool choice, structured output,
sampling and thinking, and the body they make (shared/reference/providers.md §1).

- `tools` -> `[{name, description?, input_schema}]` (`strict: true` where the model takes strict tool use
  and the schema can be closed); `tool_choice` auto|none|required->`any`|tool->`{"type":"tool","name"}`,
  with `disable_parallel_tool_use` when parallel calls are off (on an `auto` choice when none was given).
- A history that holds tool calls in a request that offers no tools: the API refuses tool blocks in
  a request that defines no tools, so the tools called are declared (by name, any object input) with
  `tool_choice: none`.
- Structured output (`plan_output`): natively, `output_config.format` with a JSON Schema every object of
  which is closed (`additionalProperties: false`, added where the schema says nothing), on the models
  that take it, when the schema can be expressed so (`native_schema`); else by a forced tool named after
  the format whose input is the answer: `tool_choice` that tool, or `any` when the request has tools of
  its own (so the model may still call those).  A schema that is not an object is wrapped in one
  (`{"response": …}`); `json_object` is a tool taking any object.
- `reasoning_effort` low|medium|high (and minimal) -> `thinking: {type: enabled, budget_tokens:
  1024|4096|16384}`, and `max_tokens` is RAISED by the budget (the budget counts against max_tokens; the
  caller's max_tokens stays what the answer itself may take).  Thinking forbids a temperature other than
  1, top_k, a top_p under 0.95 and a forced tool choice (a forced output tool included): a request asking
  for both is `Unsendable`, never sent with one silently dropped.
- The newer models (`exclusive_sampling`) refuse temperature and top_p together: `Unsendable` too.
- `end_user` -> `metadata.user_id`.
- Prompt-cache breakpoints: a tool's `cache` is its `cache_control`, `system_cache` the last system
  block's (the turns' are `anthropic_wire`'s).  Anthropic takes at most `MAX_BREAKPOINTS` of them, and
  none of an hour after one of five minutes (in the order tools, system, turns): a request breaking
  either rule is `Unsendable` (another provider, which takes no breakpoints, may serve it), never sent
  with some of them dropped.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from typing import Any

from ..content import OutputFormat, Tool, ToolChoice
from ..types import ChatRequest
from .anthropic_reply import WRAP_KEY, OutputPlan
from .anthropic_wire import TOOL_NAME, Unsendable, cache_control, called_tools, messages_to_wire

DEFAULT_MAX_TOKENS = 4096
EFFORT_BUDGETS = {"minimal": 1024, "low": 1024, "medium": 4096, "high": 16384}
"""`reasoning_effort` -> `thinking.budget_tokens` (1024 is the API's minimum)."""
OUTPUT_TOOL_DESCRIPTION = "Give the final answer by calling this tool: its input is the answer."
MAX_BREAKPOINTS = 4
"""Anthropic's limit of blocks with `cache_control` per request."""
# What structured output's JSON Schema subset lacks (the API refuses them in `output_config.format`).
_UNSUPPORTED = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
                          "maxLength", "maxItems", "uniqueItems", "minProperties", "maxProperties",
                          "patternProperties", "propertyNames", "not", "if", "then", "else", "oneOf",
                          "dependentRequired", "dependentSchemas", "contains", "prefixItems"})


def request_to_wire(request: ChatRequest, *, stream: bool, native_output: bool = False,
                    exclusive_sampling: bool = False) -> tuple[dict[str, Any], OutputPlan | None]:
    """(the body, how its answer is made JSON).  `native_output`: the model takes `output_config.format`
    and strict tools; `exclusive_sampling`: it refuses temperature and top_p together.  Raises
    `Unsendable`."""
    system, turns = messages_to_wire(request.messages, request.system, request.system_cache)
    if not turns:
        raise Unsendable("no non-empty user or assistant turn to send", falls_through=False)
    max_tokens = DEFAULT_MAX_TOKENS if request.max_tokens is None else max(1, request.max_tokens)
    body: dict[str, Any] = {"model": request.model, "max_tokens": max_tokens, "messages": turns}
    if system:
        body["system"] = system
    if request.temperature is not None:
        body["temperature"] = min(1.0, max(0.0, float(request.temperature)))
    stops = [s for s in request.stop if s.strip()]
    if stops:
        body["stop_sequences"] = stops
    plan = plan_output(request.output, native_output) if request.output is not None else None
    tools, choice = tools_and_choice(request, plan, turns, strict_ok=native_output)
    if tools:
        body["tools"] = tools
    if choice is not None:
        body["tool_choice"] = choice
    if plan is not None and plan.mode == "native":
        body["output_config"] = {"format": {"type": "json_schema", "schema": dict(plan.schema or {})}}
    sampling = request.sampling
    if sampling.top_p is not None:
        body["top_p"] = sampling.top_p
    if sampling.top_k is not None:
        body["top_k"] = sampling.top_k
    if exclusive_sampling and "temperature" in body and "top_p" in body:
        raise Unsendable(f"{request.model} takes temperature or top_p, not both")
    budget = thinking_budget(sampling.reasoning_effort)
    if budget is not None:
        _check_thinking(body, plan)
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        body["max_tokens"] = max_tokens + budget
    if request.end_user:
        body["metadata"] = {"user_id": request.end_user}
    if stream:
        body["stream"] = True
    check_breakpoints(body)
    return body, plan


def check_breakpoints(body: Mapping[str, Any]) -> None:
    """Anthropic's rules for prompt-cache breakpoints (see the module docstring); raises `Unsendable`."""
    ttls = [b["cache_control"].get("ttl", "5m") for b in _blocks(body) if "cache_control" in b]
    if len(ttls) > MAX_BREAKPOINTS:
        raise Unsendable(f"Anthropic takes at most {MAX_BREAKPOINTS} prompt-cache breakpoints (cache_control); "
                         f"the request has {len(ttls)}")
    if any(a == "5m" and b == "1h" for a, b in itertools.pairwise(ttls)):
        raise Unsendable("a prompt-cache breakpoint of 1h after one of 5m (tools, then system, then messages): "
                         "Anthropic refuses that order")


def _blocks(body: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    """The tools, system blocks and content blocks of a body, in Anthropic's order."""
    yield from body.get("tools", ())
    if isinstance(body.get("system"), list):
        yield from body["system"]
    for turn in body["messages"]:
        if isinstance(turn["content"], list):
            yield from turn["content"]


def thinking_budget(effort: str | None) -> int | None:
    if effort is None or effort == "none":
        return None
    if effort not in EFFORT_BUDGETS:
        raise Unsendable(f"reasoning_effort {effort!r}: Anthropic's thinking budgets are for low, medium and high")
    return EFFORT_BUDGETS[effort]


def _check_thinking(body: Mapping[str, Any], plan: OutputPlan | None) -> None:
    """Thinking forbids these: say so rather than drop one (another provider may take both)."""
    why = None
    if body.get("temperature", 1.0) != 1.0:
        why = "a temperature other than 1"
    elif "top_k" in body:
        why = "top_k"
    elif body.get("top_p", 1.0) < 0.95:
        why = "a top_p under 0.95"
    elif forced(body.get("tool_choice")):
        why = ("a JSON answer by a forced tool" if plan is not None and plan.mode == "tool"
               else "a forced tool choice")
    if why is not None:
        raise Unsendable(f"thinking (reasoning_effort) cannot be combined with {why} on Anthropic")


def tools_and_choice(request: ChatRequest, plan: OutputPlan | None, turns: list[dict[str, Any]],
                     strict_ok: bool = False) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """`tools` and `tool_choice` (see the module docstring)."""
    tools = [tool_to_wire(t, strict_ok) for t in request.tools]
    choice = tool_choice_to_wire(request.tool_choice, request.parallel_tool_calls) if tools else None
    if plan is not None and plan.mode == "tool" and request.output is not None:
        if any(t["name"] == plan.tool for t in tools):
            raise Unsendable(f"the output format's name {plan.tool!r} is the name of one of the request's tools")
        own = request.tool_choice
        if own is None or own.mode != "tool":
            keep_open = tools and (own is None or own.mode != "none")
            choice = {"type": "any"} if keep_open else {"type": "tool", "name": plan.tool}
            if request.parallel_tool_calls is False:
                choice["disable_parallel_tool_use"] = True
        tools.append(output_tool(plan, request.output))
    elif not tools:
        called = called_tools(turns)
        for name in called:
            if not TOOL_NAME.match(name):
                raise Unsendable(f"the tool name {name!r}: Anthropic takes letters, digits, _ and - (at most 64)")
        tools = [{"name": n, "description": "Called earlier in this conversation; not offered now.",
                  "input_schema": {"type": "object"}} for n in called]
        choice = {"type": "none"} if tools else None
    return tools, choice


def tool_to_wire(tool: Tool, strict_ok: bool = False) -> dict[str, Any]:
    if not TOOL_NAME.match(tool.name):
        raise Unsendable(f"the tool name {tool.name!r}: Anthropic takes letters, digits, _ and - (at most 64)")
    schema = dict(tool.parameters)
    if schema.setdefault("type", "object") != "object":
        raise Unsendable(f"the tool {tool.name!r} takes a {schema['type']!r}: Anthropic's input_schema is an object")
    out: dict[str, Any] = {"name": tool.name}
    if tool.description:
        out["description"] = tool.description
    closed = native_schema(schema) if tool.strict and strict_ok else None
    out["input_schema"] = closed or schema
    if closed is not None:
        out["strict"] = True  # strict tool use: only where the model takes it and the schema allows it
    if tool.cache is not None:
        out["cache_control"] = cache_control(tool.cache)
    return out


def tool_choice_to_wire(choice: ToolChoice | None, parallel: bool | None) -> dict[str, Any] | None:
    """`tool_choice`: auto|none|required->any|tool, with `disable_parallel_tool_use` when parallel calls
    are off (None: nothing to say)."""
    if choice is None and parallel is not False:
        return None
    mode = choice.mode if choice is not None else "auto"
    if mode == "none":
        return {"type": "none"}
    wire: dict[str, Any] = {"type": "any"} if mode == "required" else (
        {"type": "tool", "name": choice.name} if mode == "tool" and choice is not None else {"type": "auto"})
    if parallel is False:
        wire["disable_parallel_tool_use"] = True
    return wire


def forced(tool_choice: Mapping[str, Any] | None) -> bool:
    return tool_choice is not None and tool_choice.get("type") in ("any", "tool")


# -- structured output ------------------------------------------------------------------------------


def plan_output(output: OutputFormat, native_ok: bool) -> OutputPlan:
    schema = dict(output.schema) if output.schema is not None else None
    if native_ok and output.type == "json_schema" and schema is not None:
        closed = native_schema(schema)
        if closed is not None and closed.get("type") == "object":
            return OutputPlan("native", schema=closed)
    if not TOOL_NAME.match(output.name):
        raise Unsendable(f"the output format name {output.name!r}: Anthropic takes letters, digits, _ and - "
                         "(at most 64)")
    if schema is None:
        return OutputPlan("tool", output.name, schema={"type": "object"})
    if schema.get("type", "object" if "properties" in schema else None) == "object":
        return OutputPlan("tool", output.name, schema={"type": "object", **schema})
    wrapper = {"type": "object", "properties": {WRAP_KEY: schema}, "required": [WRAP_KEY]}
    for key in ("$defs", "definitions"):
        if key in schema:
            wrapper[key] = schema[key]
    return OutputPlan("tool", output.name, wrapped=True, schema=wrapper)


def output_tool(plan: OutputPlan, output: OutputFormat) -> dict[str, Any]:
    return {"name": plan.tool, "description": output.description or OUTPUT_TOOL_DESCRIPTION,
            "input_schema": dict(plan.schema or {"type": "object"})}


def native_schema(schema: Any) -> dict[str, Any] | None:
    """`schema` as structured output takes it (every object closed with `additionalProperties: false`),
    or None when it cannot be expressed so (an open object, a keyword the subset lacks, a recursive
    reference): the answer then comes by a forced tool, which takes any schema."""
    try:
        return _close(schema, 0)
    except _Inexpressible:
        return None


class _Inexpressible(Exception):
    pass


def _close(schema: Any, depth: int) -> Any:
    if isinstance(schema, bool) or depth > 32:
        raise _Inexpressible
    if not isinstance(schema, dict):
        raise _Inexpressible
    if _UNSUPPORTED & schema.keys() or schema.get("$ref") == "#":
        raise _Inexpressible
    if "minItems" in schema and schema["minItems"] not in (0, 1):
        raise _Inexpressible
    out = dict(schema)
    kinds = schema.get("type")
    if kinds == "object" or (isinstance(kinds, list) and "object" in kinds) or "properties" in schema:
        props = schema.get("properties")
        if not props or schema.get("additionalProperties", False) is not False:
            raise _Inexpressible  # an open object: structured output's objects are all closed
        out["properties"] = {k: _close(v, depth + 1) for k, v in props.items()}
        out["additionalProperties"] = False
    if "items" in schema:
        out["items"] = _close(schema["items"], depth + 1)
    for key in ("anyOf", "allOf"):
        if key in schema:
            out[key] = [_close(s, depth + 1) for s in schema[key]]
    for key in ("$defs", "definitions"):
        if key in schema:
            out[key] = {k: _close(v, depth + 1) for k, v in schema[key].items()}
    return out


__all__ = [
    "DEFAULT_MAX_TOKENS", "EFFORT_BUDGETS", "MAX_BREAKPOINTS", "check_breakpoints", "forced", "native_schema",
    "output_tool", "plan_output", "request_to_wire", "thinking_budget", "tool_choice_to_wire", "tool_to_wire",
    "tools_and_choice",
]
