"""Ollama's native `/api/chat` shapes of llmrelay's vocabulary, both ways (shared/reference/providers.md §4;
ollama/ollama `api/types.go`: `Message`, `ToolCall`, `Tool`, `ChatRequest.Format` / `Think`).

The adapter sends with the `*_to_wire` functions and reads answers with `calls_from_wire`; the
`*_from_wire` inverses read a request in Ollama's shape back (`from_wire(to_wire(x)) == x` for a
conversation Ollama can carry whole is a property test).

Messages: the system prompt is the first message.  A `user` turn's tool results become `tool`
messages (`content`, `tool_name`, `tool_call_id`), placed first so that they follow the assistant turn
that called; the rest of the turn is one `user` message: its text as `content` and its images as
`images`, bare base64 (Ollama takes no media type and fetches no URL, so an image given by URL cannot
be sent).  An `assistant` turn is its `content`, the `thinking` Ollama itself wrote (another provider's
reasoning is not sent back) and its `tool_calls`, whose `arguments` are a JSON object, not JSON text.
Consecutive plain-text turns of one role are joined with a blank line: several chat templates
(Mistral's `[INST]` blocks, Gemma) assume turns alternate.

Tool-call ids: a call's `id` and a result's `tool_call_id` are sent (newer servers read them; older
ones ignore unknown fields), with `tool_name`, which every server reads: the result's own name, else
the name of the call with that id earlier in the conversation.  Servers before ~0.12 answer calls
without ids; such a call gets a stable one (`stable_call_id`) from the model, the conversation's
length, the call's position and its name and arguments, so a plain and a streamed reading of one
answer agree while the same call made again later in the conversation gets another id.

What Ollama cannot carry, and is therefore lost on the way: an image's media type and detail, a
tool's `strict`, a tool result's `is_error`, a call's signature, reasoning signatures, and the output
format's name, description and strictness (`format` is the schema itself).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from ..content import (
    Image,
    Message,
    OutputFormat,
    Part,
    Reasoning,
    Text,
    Tool,
    ToolCall,
    ToolResult,
)
from ..types import Sampling

PROVIDER = "ollama"
_LEVEL_MODELS = re.compile(r"(^|/)gpt-oss([:\-]|$)")
"""Models whose `think` takes a level ("low" | "medium" | "high") rather than true/false: the ones
Ollama renders with OpenAI's harmony format.  Any other model answers a level with a 400."""
_LEVELS = {"minimal": "low", "low": "low", "medium": "medium", "high": "high", "xhigh": "high"}
_SAMPLING_OPTIONS = ("top_p", "top_k", "seed", "presence_penalty", "frequency_penalty")


class Unsendable(ValueError):
    """Something the conversation or request holds that Ollama cannot be sent."""


class WireError(ValueError):
    """A request in Ollama's shape that cannot be read."""


# -- messages, out -------------------------------------------------------------------------------------


def messages_to_wire(system: str | None, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """The `messages` of a request (see the module docstring); `Unsendable` for an image given by URL
    or a tool call whose arguments are not a JSON object."""
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": system})
    names: dict[str, str] = {}
    for m in messages:
        if m.plain:
            _plain_out(out, m.role, m.text)
        elif m.role == "assistant":
            _assistant_out(m.parts, out, names)
        else:
            _user_out(m.parts, out, names)
    return out


def _plain_out(out: list[dict[str, Any]], role: str, text: str) -> None:
    if not text:
        return
    last = out[-1] if out else None
    if last is not None and last["role"] == role and last.keys() == {"role", "content"}:
        last["content"] += "\n\n" + text
    else:
        out.append({"role": role, "content": text})


def _assistant_out(parts: Sequence[Part], out: list[dict[str, Any]], names: dict[str, str]) -> None:
    text = "".join(p.text for p in parts if type(p) is Text)
    thinking = "".join(p.text for p in parts if type(p) is Reasoning and p.provider == PROVIDER)
    calls = []
    for p in parts:
        if type(p) is ToolCall:
            names[p.id] = p.name
            calls.append(call_to_wire(p))
    if not calls and not thinking:
        _plain_out(out, "assistant", text)
        return
    message: dict[str, Any] = {"role": "assistant", "content": text}
    if thinking:
        message["thinking"] = thinking
    if calls:
        message["tool_calls"] = calls
    out.append(message)


def _user_out(parts: Sequence[Part], out: list[dict[str, Any]], names: dict[str, str]) -> None:
    texts: list[str] = []
    images: list[str] = []
    for p in parts:
        kind = type(p)
        if kind is ToolResult:
            message = {"role": "tool", "content": p.content}
            name = p.name or names.get(p.call_id)
            if name:
                message["tool_name"] = name
            if p.call_id:
                message["tool_call_id"] = p.call_id
            out.append(message)
        elif kind is Text:
            texts.append(p.text)
        elif kind is Image:
            if p.data is None:
                raise Unsendable("Ollama cannot fetch an image by URL: send the image itself (base64)")
            images.append(p.data)
    text = "".join(texts)
    if images:
        out.append({"role": "user", "content": text, "images": images})
    else:
        _plain_out(out, "user", text)


def call_to_wire(call: ToolCall) -> dict[str, Any]:
    function = {"name": call.name, "arguments": arguments_object(call)}
    return {"id": call.id, "function": function} if call.id else {"function": function}


def arguments_object(call: ToolCall) -> dict[str, Any]:
    """A call's arguments as the object Ollama wants (blank arguments: none)."""
    value = call.arguments_object()
    if value is None:
        raise Unsendable(f"the arguments of tool call {call.name!r} are not a JSON object, which Ollama requires")
    return value


# -- messages, in --------------------------------------------------------------------------------------


def messages_from_wire(items: Sequence[Any], model: str = "") -> tuple[str | None, list[Message]]:
    """(system prompt, turns) of a request's `messages`: tool messages join the user turn that follows
    them (or make one of their own); `WireError` for anything else than Ollama's shape."""
    system: list[str] = []
    turns: list[Message] = []
    results: list[Part] = []
    calls: list[ToolCall] = []
    """The calls of the latest assistant turn, to find the call a result without an id answers."""
    for i, m in enumerate(items):
        if not isinstance(m, Mapping) or not isinstance(m.get("content", ""), str | None):
            raise WireError(f"messages[{i}] must be an object with a string content")
        role, content = m.get("role"), m.get("content") or ""
        if role == "tool":
            results.append(_result_from_wire(m, content, calls, results))
            continue
        if role == "user":
            images = m.get("images") or []
            if not isinstance(images, list) or not all(isinstance(d, str) for d in images):
                raise WireError(f"messages[{i}].images must be an array of base64 strings")
            parts = [*results, *((Text(content),) if content else ()), *(Image(data=d) for d in images)]
            turns.append(Message("user", parts))
            results = []
            continue
        if results:
            turns.append(Message("user", results))
            results = []
        if role == "system":
            system.append(content)
        elif role == "assistant":
            calls = calls_from_wire(m.get("tool_calls"), model, i)
            turns.append(Message("assistant", _assistant_parts(m, content, calls)))
        else:
            raise WireError(f"messages[{i}].role {role!r} is not system, user, assistant or tool")
    if results:
        turns.append(Message("user", results))
    return ("\n\n".join(system) if system else None), turns


def _assistant_parts(m: Mapping[str, Any], content: str, calls: list[ToolCall]) -> list[Part]:
    thinking = m.get("thinking")
    return [*((Reasoning(thinking, provider=PROVIDER),) if isinstance(thinking, str) and thinking else ()),
            *((Text(content),) if content else ()), *calls]


def _result_from_wire(m: Mapping[str, Any], content: str, calls: list[ToolCall], answered: list[Part]) -> ToolResult:
    name = m.get("tool_name") if isinstance(m.get("tool_name"), str) else None
    call_id = m.get("tool_call_id") if isinstance(m.get("tool_call_id"), str) else ""
    if not call_id and name:  # an older client: the first call of that name not yet answered
        done = {r.call_id for r in answered if type(r) is ToolResult}
        call_id = next((c.id for c in calls if c.name == name and c.id not in done), "")
    return ToolResult(call_id, content, name=name)


def calls_from_wire(items: Any, model: str, turn: int, start: int = 0) -> list[ToolCall]:
    """The `tool_calls` of a message; `start` is the position of the first of them in the answer (a
    stream sends them a line at a time).  `WireError` for a call of another shape."""
    if items is None:
        return []
    if not isinstance(items, list):
        raise WireError("tool_calls must be an array")
    calls = []
    for n, item in enumerate(items, start):
        fn = item.get("function") if isinstance(item, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise WireError("a tool call needs a function with a name")
        arguments = fn.get("arguments")
        if isinstance(arguments, Mapping):
            text = json.dumps(arguments, ensure_ascii=False, separators=(",", ":"))
        elif isinstance(arguments, str):  # a proxy that passes OpenAI's JSON text through
            text = arguments or "{}"
        elif arguments is None:
            text = "{}"
        else:
            raise WireError("tool call arguments must be an object")
        given = item.get("id")
        call_id = given if isinstance(given, str) and given else stable_call_id(model, turn, n, fn["name"], text)
        calls.append(ToolCall(call_id, fn["name"], text))
    return calls


def stable_call_id(model: str, turn: int, position: int, name: str, arguments: str) -> str:
    """An id for a call the server gave none: the same for the same call at the same place."""
    digest = hashlib.sha256(f"{model}\0{turn}\0{position}\0{name}\0{arguments}".encode()).hexdigest()
    return "call_" + digest[:24]


# -- tools, format, think, options -------------------------------------------------------------------


def tools_to_wire(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    out = []
    for t in tools:
        fn: dict[str, Any] = {"name": t.name}
        if t.description:
            fn["description"] = t.description
        fn["parameters"] = dict(t.parameters)
        out.append({"type": "function", "function": fn})
    return out


def tools_from_wire(items: Any) -> tuple[Tool, ...]:
    if not isinstance(items, list):
        raise WireError("tools must be an array")
    tools = []
    for i, t in enumerate(items):
        fn = t.get("function") if isinstance(t, Mapping) else None
        if not isinstance(fn, Mapping) or not isinstance(fn.get("name"), str):
            raise WireError(f"tools[{i}] needs a function with a name")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        tools.append(Tool(fn["name"], fn.get("description") or "", dict(params)))
    return tuple(tools)


def format_to_wire(output: OutputFormat) -> str | dict[str, Any]:
    """`format`: the JSON Schema itself, or "json" for any JSON object."""
    if output.type == "json_schema" and output.schema is not None:
        return dict(output.schema)
    return "json"


def format_from_wire(value: Any) -> OutputFormat | None:
    if value in (None, ""):
        return None
    if value == "json":
        return OutputFormat("json_object")
    if isinstance(value, Mapping):
        return OutputFormat("json_schema", dict(value))
    raise WireError('format must be "json" or a JSON Schema object')


def think_to_wire(model: str, effort: str | None) -> bool | str | None:
    """`think` for a reasoning effort: the level for a model that takes levels (gpt-oss), else true;
    `none` turns thinking off; no effort sends nothing (a thinking model then thinks by default)."""
    if effort is None:
        return None
    if effort == "none":
        return False
    if _LEVEL_MODELS.search(model):
        return _LEVELS.get(effort, True)
    return True


def sampling_to_wire(sampling: Sampling) -> dict[str, Any]:
    """The `options` the sampling settings become (logit_bias has none: it is not taken)."""
    return {name: value for name in _SAMPLING_OPTIONS if (value := getattr(sampling, name)) is not None}

