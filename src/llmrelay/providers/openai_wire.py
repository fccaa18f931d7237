"""OpenAI's chat-completions shapes of llmrelay's vocabulary, both ways (shared/reference/providers.md §2):
the messages and the answer here, tools, tool choice and response format in `openai_tools`.

The OpenAI adapter (and every OpenAI-compatible one) sends with the `*_to_wire` functions and reads
answers with `answer_from_wire`; the OpenAI-compatible ingress (`/v1/chat/completions`) reads requests
with the `*_from_wire` functions and renders answers with `answer_to_wire`.  One module, so the two
directions cannot drift: `from_wire(to_wire(x)) == x` is a property test.

Messages: the system prompt is the first message; a `user` turn's tool results become `tool`
messages (placed first: they must follow the assistant turn that called), the rest of it a `user`
message (a string when it is all text, else text and `image_url` parts); an `assistant` turn is its
text (null when it only calls tools) and its `tool_calls`.  Reasoning is not sent: OpenAI's chat API
has no place for it.  Coming in, consecutive `tool` messages join one user turn; `system` and
`developer` messages become the system prompt.

Tool-call ids: OpenAI refuses ids over 40 characters, so a longer one (another provider's, or one
carrying a Gemini thought signature) is sent as a short digest of itself, the same in the assistant's
call and the tool's answer.  Towards a client, a call that carries a signature gets it appended to its
id (`<id>__thought__<signature>`), as LiteLLM does, so that it comes back with the history.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

from ..content import (
    Image,
    Message,
    Part,
    Reasoning,
    Text,
    ToolCall,
    ToolResult,
    image_from_url,
)

MAX_ID = 40
SIGNATURE_MARK = "__thought__"


class WireError(ValueError):
    """A request in OpenAI's shape that llmrelay cannot read; `param` names the offending input as
    OpenAI names parameters (`messages[2].content[0].image_url`)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(f"{param}: {message}" if param else message)
        self.param = param
        self.detail = message


# -- tool-call ids -----------------------------------------------------------------------------------


def short_id(call_id: str) -> str:
    """`call_id` if OpenAI takes it, else a digest of it (stable: the call and its result agree)."""
    if len(call_id) <= MAX_ID:
        return call_id
    return "call_" + hashlib.sha256(call_id.encode()).hexdigest()[: MAX_ID - 5]


def client_id(call: ToolCall) -> str:
    """The id a client sees: the call's, with its signature appended when it has one."""
    return call.id + SIGNATURE_MARK + call.signature if call.signature else call.id


def split_client_id(wire_id: str) -> tuple[str, str | None]:
    """(id, signature) of an id a client sends back."""
    call_id, mark, signature = wire_id.partition(SIGNATURE_MARK)
    return (call_id, signature) if mark and signature else (wire_id, None)


# -- messages, out -------------------------------------------------------------------------------------


def messages_to_wire(system: str | None, messages: Sequence[Message], *, merge_turns: bool = False,
                     ids: Any = short_id) -> list[dict[str, Any]]:
    """The `messages` of a request: the system prompt, then each turn (see the module docstring).
    `merge_turns` joins consecutive plain-text turns of one role (for strict chat templates)."""
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": system})
    for m in messages:
        parts = m.parts
        if len(parts) == 1 and type(parts[0]) is Text:  # the common case: one plain turn
            text = parts[0].text
            if not text:
                continue
            last = out[-1] if out else None
            if merge_turns and last is not None and last["role"] == m.role and isinstance(last.get("content"), str) \
                    and "tool_calls" not in last and last.get("name") == m.name:
                last["content"] += "\n\n" + text
            else:
                out.append({"role": m.role, "content": text, "name": m.name} if m.name is not None else
                           {"role": m.role, "content": text})
        elif m.role == "assistant":
            _assistant_out(parts, out, ids, m.name)
        else:
            _user_out(parts, out, ids, m.name)
    return out


def _assistant_out(parts: Sequence[Part], out: list[dict[str, Any]], ids: Any, name: str | None) -> None:
    text = "".join(p.text for p in parts if type(p) is Text)
    calls = [{"id": ids(p.id), "type": "function", "function": {"name": p.name, "arguments": p.arguments}}
             for p in parts if type(p) is ToolCall]
    if not text and not calls:
        return
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if name is not None:
        message["name"] = name
    if calls:
        message["tool_calls"] = calls
    out.append(message)


def _user_out(parts: Sequence[Part], out: list[dict[str, Any]], ids: Any, name: str | None) -> None:
    content: list[dict[str, Any]] = []
    for p in parts:
        kind = type(p)
        if kind is ToolResult:
            out.append({"role": "tool", "tool_call_id": ids(p.call_id), "content": p.content})
        elif kind is Text:
            if p.text:
                content.append({"type": "text", "text": p.text})
        elif kind is Image:
            url: dict[str, Any] = {"url": p.data_url()}
            if p.detail:
                url["detail"] = p.detail
            content.append({"type": "image_url", "image_url": url})
    if not content:
        return
    message: dict[str, Any] = {"role": "user", "content": (
        "".join(c["text"] for c in content) if all(c["type"] == "text" for c in content) else content)}
    if name is not None:
        message["name"] = name
    out.append(message)


# -- messages, in --------------------------------------------------------------------------------------


def messages_from_wire(items: Sequence[Any]) -> tuple[list[str], list[Message]]:
    """(system texts, turns) of a request's `messages`; `WireError` naming the first thing that is not
    OpenAI's shape or that llmrelay cannot relay."""
    system: list[str] = []
    turns: list[Message] = []
    results: list[Part] = []
    for i, m in enumerate(items):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise WireError("must be an object with a role", where)
        role = m.get("role")
        if role != "tool" and results:
            turns.append(Message("user", results))
            results = []
        if role in ("system", "developer"):
            _no_extra(m, where, {"role", "content", "name"})
            system.append(_text_only(m.get("content"), where + ".content"))
        elif role == "user":
            _no_extra(m, where, {"role", "content", "name"})
            turns.append(Message("user", _user_parts(m.get("content"), where + ".content"), _name(m, where)))
        elif role == "assistant":
            _no_extra(m, where, {"role", "content", "tool_calls", "refusal", "reasoning_content", "annotations",
                                 "audio", "name"})
            if m.get("audio") is not None:
                raise WireError("audio answers are not supported", where + ".audio")
            turns.append(Message("assistant", _assistant_parts(m, where), _name(m, where)))
        elif role == "tool":
            _no_extra(m, where, {"role", "content", "tool_call_id", "name"})
            call_id = m.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise WireError("a tool message needs its tool_call_id", where + ".tool_call_id")
            name = m.get("name") if isinstance(m.get("name"), str) else None
            results.append(ToolResult(split_client_id(call_id)[0],
                                      _text_only(m.get("content"), where + ".content"), name=name))
        elif role == "function":
            raise WireError("function messages (the deprecated function calling) are not supported: use tools",
                            where + ".role")
        else:
            raise WireError(f"unknown role {role!r}", where + ".role")
    if results:
        turns.append(Message("user", results))
    return system, turns


def _name(m: Mapping[str, Any], where: str) -> str | None:
    """A message's `name`: who spoke, sent on to the providers that take it (OpenAI's, OpenRouter's)."""
    name = m.get("name")
    if name is None:
        return None
    if not isinstance(name, str) or not name:
        raise WireError("must be a non-empty string", where + ".name")
    return name


def _no_extra(m: Mapping[str, Any], where: str, known: set[str]) -> None:
    for key, value in m.items():
        if key not in known and value is not None:
            raise WireError(f"{key!r} is not supported on a {m.get('role')} message", f"{where}.{key}")


def _text_only(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for j, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise WireError("only text parts are allowed here", f"{where}[{j}]")
            texts.append(part["text"])
        return "".join(texts)
    if content is None:
        return ""
    raise WireError("must be a string or an array of text parts", where)


def _user_parts(content: Any, where: str) -> list[Part] | str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise WireError("must be a string or an array of content parts", where)
    parts: list[Part] = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise WireError("text must be a string", at + ".text")
            parts.append(Text(part["text"]))
        elif kind == "image_url":
            spec = part.get("image_url")
            url = spec.get("url") if isinstance(spec, dict) else spec
            detail = spec.get("detail") if isinstance(spec, dict) else None
            if not isinstance(url, str):
                raise WireError("image_url needs a url", at + ".image_url")
            if detail is not None and detail not in ("auto", "low", "high"):
                raise WireError("detail is auto, low or high", at + ".image_url.detail")
            try:
                parts.append(image_from_url(url, detail))
            except ValueError as exc:
                raise WireError(str(exc), at + ".image_url.url") from None
        else:
            raise WireError(f"content parts of type {kind!r} are not supported (text and image_url are)", at)
    return parts


def _assistant_parts(m: Mapping[str, Any], where: str) -> list[Part]:
    parts: list[Part] = []
    reasoning = m.get("reasoning_content")
    if isinstance(reasoning, str) and reasoning:
        parts.append(Reasoning(reasoning))
    content = m.get("content")
    if content is not None:
        if isinstance(content, list):  # an assistant's parts: text, or a refusal
            content = "".join(p.get("text") or p.get("refusal") or "" for p in content if isinstance(p, dict))
        text = _text_only(content, where + ".content")
        if text:
            parts.append(Text(text))
    calls = m.get("tool_calls") or []
    if not isinstance(calls, list):
        raise WireError("must be an array", where + ".tool_calls")
    for j, c in enumerate(calls):
        at = f"{where}.tool_calls[{j}]"
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(c, dict) or c.get("type", "function") != "function" or not isinstance(fn, dict):
            raise WireError("only function tool calls are supported", at)
        if not isinstance(c.get("id"), str) or not isinstance(fn.get("name"), str):
            raise WireError("a tool call needs an id and a function name", at)
        arguments = fn.get("arguments", "{}")
        if not isinstance(arguments, str):
            raise WireError("arguments must be a JSON string", at + ".function.arguments")
        call_id, signature = split_client_id(c["id"])
        parts.append(ToolCall(call_id, fn["name"], arguments, signature))
    return parts


# -- the answer -------------------------------------------------------------------------------------


def answer_from_wire(message: Mapping[str, Any]) -> tuple[str, tuple[ToolCall, ...], tuple[Reasoning, ...]]:
    """(text, tool calls, reasoning) of a completion's `message` (ValueError when it is not that shape).
    Reasoning comes from OpenRouter's and Ollama's `reasoning` (text) or DeepSeek's `reasoning_content`."""
    text = message.get("content")
    if not isinstance(text, str | None):
        raise ValueError("content")
    calls = []
    for c in message.get("tool_calls") or ():
        fn = c.get("function") if isinstance(c, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise ValueError("tool_calls")
        arguments = fn.get("arguments")
        calls.append(ToolCall(c.get("id") if isinstance(c.get("id"), str) else "", fn["name"],
                              arguments if isinstance(arguments, str) and arguments else "{}"))
    thought = message.get("reasoning") or message.get("reasoning_content")
    reasoning = (Reasoning(thought),) if isinstance(thought, str) and thought else ()
    return text or "", tuple(calls), reasoning


def answer_to_wire(text: str, calls: Sequence[ToolCall], reasoning: Sequence[Reasoning] = ()) -> dict[str, Any]:
    """A completion's `message`: text (null when the answer only calls tools), tool calls, and the
    reasoning as `reasoning_content` (the field DeepSeek and LiteLLM use; OpenAI's SDK keeps it)."""
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not calls else None, "refusal": None}
    if calls:
        message["tool_calls"] = [{"id": client_id(c), "type": "function",
                                  "function": {"name": c.name, "arguments": c.arguments}} for c in calls]
    thought = "".join(r.text for r in reasoning)
    if thought:
        message["reasoning_content"] = thought
    return message


__all__ = [
    "MAX_ID", "SIGNATURE_MARK", "WireError", "answer_from_wire", "answer_to_wire", "client_id", "messages_from_wire",
    "messages_to_wire", "short_id", "split_client_id",
]
