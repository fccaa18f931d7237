"""How every fake decides to call tools and answer in JSON, the same way whatever its wire format.

A fake reads its own request format into the provider-neutral fields of `Prompt` (the tools offered,
the tool choice, the tool results the last turn carries, the tools already called, the JSON schema
asked for) and `plan` decides what the model does:

1. a `reply` fault with `tool_calls` calls exactly those;
2. with tools offered and a tool choice other than `none`:
   - the last turn carries tool results: with `required` (or a named tool) it calls again, the named
     tool or else the first tool not yet called in the conversation (pydantic-ai's output tool comes
     after its function tools this way); otherwise it answers in text, quoting the results;
   - else it calls the named tool (`tool` choice), or the tools whose names the last user text
     mentions (only the first when parallel calls are off), or with `required` the first tool;
3. otherwise it answers in text; when JSON was asked for, the text is a JSON instance of the schema
   (`example_of`), or `{"answer": …}` for plain JSON mode.

Tool arguments are generated from each tool's JSON Schema (`example_of`): the required properties,
strings `"example"` (or the first enum value), numbers 1, booleans true.  Deterministic on purpose.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

IMAGE_TOKENS = 100
"""What each fake counts an image as, in input tokens."""
TOOL_TOKENS = 10
"""What each fake counts a tool definition as, in input tokens."""


@dataclass(slots=True)
class FakeTool:
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class FakeCall:
    name: str
    arguments: dict[str, Any]
    id: str = ""


@dataclass(slots=True)
class ToolState:
    """The tool-related part of a request, read by each fake from its own format."""

    tools: list[FakeTool] = field(default_factory=list)
    choice: str = "auto"
    """auto | none | required | tool:<name>"""
    parallel: bool = True
    results: list[str] = field(default_factory=list)
    """The contents of the tool results the last turn carries (empty: it carries none)."""
    called: list[str] = field(default_factory=list)
    """The names of the tools the conversation's assistant turns called."""
    json_schema: dict[str, Any] | None = None
    json_mode: bool = False
    """JSON was asked for (with or without a schema)."""
    images: int = 0


def plan(state: ToolState, last_user: str, scripted: list[dict[str, Any]] | None) -> list[FakeCall]:
    """The tool calls the fake model makes (empty: it answers in text)."""
    if scripted:
        return [FakeCall(c["name"], dict(c.get("arguments") or {}), str(c.get("id") or "")) for c in scripted]
    if not state.tools or state.choice == "none":
        return []
    by_name = {t.name: t for t in state.tools}
    named = state.choice[5:] if state.choice.startswith("tool:") else None
    if state.results:
        if named is None and state.choice != "required":
            return []
        tool = by_name.get(named or "") or next((t for t in state.tools if t.name not in state.called),
                                                 state.tools[0])
        return [call(tool)]
    if named is not None and named in by_name:
        return [call(by_name[named])]
    mentioned = [t for t in state.tools if t.name in last_user]
    if mentioned:
        return [call(t) for t in (mentioned if state.parallel else mentioned[:1])]
    if state.choice == "required":
        return [call(state.tools[0])]
    return []


def call(tool: FakeTool) -> FakeCall:
    args = example_of(tool.parameters or {"type": "object"})
    return FakeCall(tool.name, args if isinstance(args, dict) else {"value": args})


def answer_text(state: ToolState, default: str, last_user: str) -> str:
    """The text answer: JSON when asked for, else the default, quoting tool results when there are some."""
    if state.json_schema is not None:
        return json.dumps(example_of(state.json_schema))
    if state.json_mode:
        return json.dumps({"answer": " ".join(last_user.split()[:20])})
    if state.results:
        return default + " The tools said: " + "; ".join(r[:200] for r in state.results)
    return default


def example_of(schema: Any, defs: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """A small instance of a JSON Schema (the subset tools and structured outputs use)."""
    if not isinstance(schema, dict) or depth > 8:
        return None
    defs = {**(defs or {}), **schema.get("$defs", {}), **schema.get("definitions", {})}
    ref = schema.get("$ref")
    if isinstance(ref, str):
        return example_of(defs.get(ref.rsplit("/", 1)[-1], {}), defs, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key) or [] if isinstance(o, dict) and o.get("type") != "null"]
        if options:
            return example_of(options[0], defs, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props = schema.get("properties") or {}
        required = schema.get("required")
        names = required if isinstance(required, list) else list(props)
        return {n: example_of(props.get(n, {}), defs, depth + 1) for n in names}
    if kind == "array":
        item = example_of(schema.get("items", {}), defs, depth + 1)
        return [item] * max(1, int(schema.get("minItems", 1) or 1))
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return schema.get("minimum", 1.5)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "example"
