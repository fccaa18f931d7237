"""OpenAI's chat-completions shapes of tools, tool choice and response format, both ways (shared/reference/
providers.md §2): the OpenAI adapter writes them, the OpenAI-compatible ingress reads them (`openai_wire`
does the messages and the answer, and hands these on)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from ..content import TOOL_NAME, OutputFormat, Tool, ToolChoice
from .openai_wire import WireError

# -- tools, tool choice, response format ------------------------------------------------------------


_NO_PARAMETERS: dict[str, Any] = {"type": "object", "properties": {}}


def tools_to_wire(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    """`tools` as the request body's `tools` (never to be changed: the same tools, read once by
    `tools_from_wire`, give the same list)."""
    found = _tools_out.get(id(tools))
    if found is not None and found[0] is tools:
        return found[1]
    out = _write_tools(tools)
    if isinstance(tools, tuple):
        if len(_tools_out) >= _MEMO_SIZE:
            _tools_out.clear()
        _tools_out[id(tools)] = (tools, out)
    return out


def _write_tools(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    out = []
    for t in tools:
        params = t.parameters
        fn: dict[str, Any] = {"name": t.name, "parameters": params if type(params) is dict else dict(params)}
        if t.description:
            fn["description"] = t.description
        if t.strict is not None:
            fn["strict"] = t.strict
        out.append({"type": "function", "function": fn})
    return out


_MEMO_SIZE = 256
_tools_in: dict[bytes, tuple[Tool, ...]] = {}
_tools_out: dict[int, tuple[tuple[Tool, ...], list[dict[str, Any]]]] = {}


def tools_from_wire(items: Any) -> tuple[Tool, ...]:
    """A request's `tools`.  An agent sends the same tools with every turn of its loop: the tools read
    from a list are kept (a few hundred lists, by their JSON), so a repeated list costs one `orjson.dumps`
    and the `Tool`s are shared (frozen, and their schemas are never changed)."""
    key = orjson.dumps(items)
    found = _tools_in.get(key)
    if found is None:
        found = _read_tools(items)
        if len(_tools_in) >= _MEMO_SIZE:
            _tools_in.clear()
        _tools_in[key] = found
    return found


def _read_tools(items: Any) -> tuple[Tool, ...]:
    if not isinstance(items, list):
        raise WireError("must be an array of tools", "tools")
    tools = []
    for i, t in enumerate(items):
        if type(t) is not dict or t.get("type") != "function":
            raise WireError("only function tools are supported", f"tools[{i}].type")
        fn = t.get("function")
        name = fn.get("name") if type(fn) is dict else None
        if type(name) is not str or not TOOL_NAME.match(name):
            raise WireError("a function needs a name of letters, digits, _ . - (at most 128)",
                            f"tools[{i}].function.name")
        params = fn.get("parameters") or _NO_PARAMETERS
        if type(params) is not dict or params.get("type", "object") != "object":
            raise WireError("parameters must be a JSON Schema of type object", f"tools[{i}].function.parameters")
        description = fn.get("description") or ""
        strict = fn.get("strict")
        if type(description) is not str or not (strict is None or type(strict) is bool):
            raise WireError("description is a string, strict true or false", f"tools[{i}].function")
        tools.append(Tool(name, description, params, strict))  # the request's own schema: read, never changed
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise WireError("two tools have the same name", "tools")
    return tuple(tools)


def tool_choice_to_wire(choice: ToolChoice) -> str | dict[str, Any]:
    if choice.mode == "tool":
        return {"type": "function", "function": {"name": choice.name}}
    return choice.mode


def tool_choice_from_wire(value: Any) -> ToolChoice | None:
    if value is None:
        return None
    if value in ("auto", "none", "required"):
        return ToolChoice(value)
    if isinstance(value, dict) and value.get("type") == "function":
        fn = value.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return ToolChoice("tool", fn["name"])
    raise WireError('must be "auto", "none", "required" or {"type": "function", "function": {"name": …}}',
                    "tool_choice")


def output_to_wire(output: OutputFormat) -> dict[str, Any]:
    if output.type == "json_object":
        return {"type": "json_object"}
    spec: dict[str, Any] = {"name": output.name, "schema": dict(output.schema or {})}
    if output.description:
        spec["description"] = output.description
    if output.strict is not None:
        spec["strict"] = output.strict
    return {"type": "json_schema", "json_schema": spec}


def output_from_wire(value: Any) -> OutputFormat | None:
    kind = value.get("type") if isinstance(value, dict) else None
    if value is None or kind == "text":
        return None
    if kind == "json_object":
        return OutputFormat("json_object")
    if kind == "json_schema":
        spec = value.get("json_schema")
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not TOOL_NAME.match(spec["name"]):
            raise WireError("json_schema needs a name (letters, digits, _ -)", "response_format.json_schema.name")
        schema = spec.get("schema", {"type": "object"})
        strict = spec.get("strict")
        description = spec.get("description")
        if not isinstance(schema, dict) or not (strict is None or isinstance(strict, bool)) or not (
                description is None or isinstance(description, str)):
            raise WireError("schema is a JSON Schema object, strict true or false", "response_format.json_schema")
        return OutputFormat("json_schema", dict(schema), spec["name"], description, strict)
    raise WireError('type is "text", "json_object" or "json_schema"', "response_format.type")
