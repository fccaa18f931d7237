"""Anthropic's Messages shapes of llmrelay's vocabulary, both ways (shared/reference/providers.md §1).

The Anthropic adapter sends with `request_to_wire` and reads answers with `answer_from_wire`; an
Anthropic-compatible ingress reads requests with `messages_from_wire`.  One module, so the two
directions cannot drift: `messages_from_wire(*messages_to_wire(x))` is `x` up to the normalisations
below (a property test).

Messages, out:
- the system prompt is top-level; a turn of only text is a string, any other turn a list of blocks:
  `text`, `image` (a `base64` source for inline bytes, a `url` source for an http URL), `tool_use`
  (assistant; `input` is the parsed arguments object), `tool_result` (user), `thinking` /
  `redacted_thinking` (assistant);
- empty and whitespace-only text is dropped (the API refuses it), and so is a turn left empty;
- consecutive same-role turns are merged (two strings join with a blank line); within a turn,
  `tool_result` blocks go first (user) and thinking blocks go first (assistant), as the API demands;
- a final assistant turn (a prefill) loses its trailing whitespace;
- reasoning is sent only when it is Anthropic's own: `provider == "anthropic"`, or no provider but
  a signature or redacted data; thinking without a signature cannot be sent back and is dropped;
- tool-use ids must match `^[a-zA-Z0-9_-]+$`: any other id is sent as `wire_id(id)`, a stable digest,
  the same for the call and its result;
- an image's `detail`, a tool result's `name` and a call's `signature` (Gemini's) have no place here.

What cannot be sent as asked raises `Unsendable` (the adapter's `bad_request`; another provider may
take it): a call whose arguments are not a JSON object, an image Anthropic cannot read.  The rest of a
request (tools, tool choice, structured output, thinking) is `anthropic_request`'s.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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

TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
WRAP_KEY = "response"
"""The property a forced output tool's input holds the answer in, when the answer is not an object."""
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"))

class Unsendable(ValueError):
    """A request Anthropic cannot take as asked.  `falls_through`: another provider may take it."""

    def __init__(self, message: str, falls_through: bool = True) -> None:
        super().__init__(message)
        self.falls_through = falls_through


class WireError(ValueError):
    """A request in Anthropic's shape that llmrelay cannot read; `param` names the offending input as
    the API does (`messages.2.content.0.source`)."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(f"{param}: {message}" if param else message)
        self.param = param
        self.detail = message


# -- tool-use ids ------------------------------------------------------------------------------------


def wire_id(call_id: str) -> str:
    """`call_id` if Anthropic takes it, else its legal characters and a digest of it (stable)."""
    if TOOL_ID.match(call_id):
        return call_id
    legal = re.sub(r"[^a-zA-Z0-9_-]", "", call_id)[:40] or "toolu"
    return f"{legal}_{hashlib.sha256(call_id.encode()).hexdigest()[:16]}"


# -- messages, out -------------------------------------------------------------------------------------

_RANK = {"tool_result": 0, "thinking": 0, "redacted_thinking": 0}


def messages_to_wire(messages: Iterable[Message], system: str | None = None) -> tuple[str, list[dict[str, Any]]]:
    """(the system text, the wire turns): see the module docstring.  Raises `Unsendable`."""
    system_texts = [system] if system and system.strip() else []
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role not in ("user", "assistant"):  # a stray system turn joins the system prompt
            if m.text.strip():
                system_texts.append(m.text)
            continue
        content = _content(m)
        if not content:
            continue
        if turns and turns[-1]["role"] == m.role:
            turns[-1]["content"] = _merge(turns[-1]["content"], content)
        else:
            turns.append({"role": m.role, "content": content})
    if turns and turns[-1]["role"] == "assistant":
        _strip_prefill(turns[-1])
    return "\n\n".join(system_texts), turns


def _content(m: Message) -> str | list[dict[str, Any]]:
    if m.plain:
        text = m.text
        return text if text.strip() else ""
    blocks = [b for b in (_block(p) for p in m.parts) if b is not None]
    blocks.sort(key=lambda b: _RANK.get(b["type"], 1))
    return blocks


def _merge(a: str | list[dict[str, Any]], b: str | list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    if isinstance(a, str) and isinstance(b, str):
        return a + "\n\n" + b
    blocks = [*_as_blocks(a), *_as_blocks(b)]
    blocks.sort(key=lambda block: _RANK.get(block["type"], 1))
    return blocks


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _strip_prefill(turn: dict[str, Any]) -> None:
    content = turn["content"]
    if isinstance(content, str):
        turn["content"] = content.rstrip()
    elif content and content[-1]["type"] == "text":
        content[-1] = {"type": "text", "text": content[-1]["text"].rstrip()}


def _block(p: Part) -> dict[str, Any] | None:
    kind = type(p)
    if kind is Text:
        return {"type": "text", "text": p.text} if p.text.strip() else None
    if kind is ToolCall:
        return {"type": "tool_use", "id": wire_id(p.id), "name": p.name, "input": arguments_object(p)}
    if kind is ToolResult:
        block: dict[str, Any] = {"type": "tool_result", "tool_use_id": wire_id(p.call_id)}
        if p.content:
            block["content"] = p.content
        if p.is_error:
            block["is_error"] = True
        return block
    if kind is Image:
        return image_block(p)
    if kind is Reasoning:
        return _thinking_block(p)
    raise TypeError(f"not a part: {p!r}")


def arguments_object(call: ToolCall) -> dict[str, Any]:
    """A call's arguments as the object `tool_use.input` must be."""
    value = call.arguments_object()
    if value is None:
        raise Unsendable(f"the arguments of the call to {call.name!r} are not a JSON object, "
                         "which Anthropic's tool_use.input must be")
    return value


def image_block(image: Image) -> dict[str, Any]:
    if image.data is None:
        return {"type": "image", "source": {"type": "url", "url": image.url or ""}}
    media_type = sniff_image(image.data) or (image.media_type if image.media_type in IMAGE_TYPES else None)
    if media_type is None:
        raise Unsendable(f"an image of type {image.media_type or 'unknown'}: Anthropic reads JPEG, PNG, GIF "
                         "and WebP")
    return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": image.data}}


def sniff_image(data: str) -> str | None:
    """The media type an image's first bytes say (None when they say none Anthropic reads)."""
    try:
        head = base64.b64decode(data[:24] + "=" * (-len(data[:24]) % 4))
    except (binascii.Error, ValueError):
        return None
    for magic, media_type in _MAGIC:
        if head.startswith(magic):
            return media_type
    return "image/webp" if head[:4] == b"RIFF" and head[8:12] == b"WEBP" else None


def _thinking_block(r: Reasoning) -> dict[str, Any] | None:
    ours = r.provider == "anthropic" or (r.provider is None and (r.signature or r.redacted))
    if not ours:
        return None  # no provider accepts another's reasoning
    if r.redacted:
        return {"type": "redacted_thinking", "data": r.redacted}
    if r.signature:
        return {"type": "thinking", "thinking": r.text, "signature": r.signature}
    return None  # unsigned thinking cannot be sent back


def called_tools(turns: Sequence[Mapping[str, Any]]) -> list[str]:
    """The names of the tools the wire turns' `tool_use` blocks call, in order, once each."""
    names: list[str] = []
    for turn in turns:
        for block in turn["content"] if isinstance(turn["content"], list) else ():
            if block["type"] == "tool_use" and block["name"] not in names:
                names.append(block["name"])
    return names


# -- messages, in ------------------------------------------------------------------------------------


def messages_from_wire(system: Any, items: Any) -> tuple[str | None, list[Message]]:
    """(system prompt, turns) of a request's `system` and `messages`; `WireError` naming the first thing
    that is not Anthropic's shape or that llmrelay cannot relay."""
    if not isinstance(items, list):
        raise WireError("Input should be a valid list", "messages")
    turns = []
    for i, m in enumerate(items):
        where = f"messages.{i}"
        role = m.get("role") if isinstance(m, Mapping) else None
        if role not in ("user", "assistant"):
            raise WireError("Input should be 'user' or 'assistant'", where + ".role")
        content = m.get("content")
        if isinstance(content, str):
            turns.append(Message(role, content))
        elif isinstance(content, list):
            turns.append(Message(role, [_part(b, f"{where}.content.{j}") for j, b in enumerate(content)]))
        else:
            raise WireError("Input should be a valid string or list of content blocks", where + ".content")
    return _system_from_wire(system), turns


def _system_from_wire(system: Any) -> str | None:
    if system is None or isinstance(system, str):
        return system
    if isinstance(system, list) and all(isinstance(b, Mapping) and b.get("type") == "text"
                                        and isinstance(b.get("text"), str) for b in system):
        return "\n\n".join(b["text"] for b in system)
    raise WireError("Input should be a valid string or a list of text blocks", "system")


def _part(b: Any, where: str) -> Part:
    kind = b.get("type") if isinstance(b, Mapping) else None
    if kind == "text":
        return Text(_field(b, "text", where))
    if kind == "image":
        return _image(b.get("source"), where + ".source")
    if kind == "tool_use":
        arguments = b.get("input", {})
        if not isinstance(arguments, Mapping):
            raise WireError("Input should be a valid dictionary", where + ".input")
        return ToolCall(_field(b, "id", where), _field(b, "name", where), json.dumps(arguments, ensure_ascii=False))
    if kind == "tool_result":
        is_error = b.get("is_error", False)
        if not isinstance(is_error, bool):
            raise WireError("Input should be a valid boolean", where + ".is_error")
        return ToolResult(_field(b, "tool_use_id", where), _result_text(b.get("content"), where + ".content"),
                          is_error)
    if kind == "thinking":
        return Reasoning(_field(b, "thinking", where), _field(b, "signature", where), provider="anthropic")
    if kind == "redacted_thinking":
        return Reasoning("", redacted=_field(b, "data", where), provider="anthropic")
    raise WireError(f"content blocks of type {kind!r} are not supported (text, image, tool_use, tool_result, "
                    "thinking and redacted_thinking are)", where + ".type")


def _field(b: Mapping[str, Any], key: str, where: str) -> str:
    value = b.get(key)
    if not isinstance(value, str):
        raise WireError("Field required" if value is None else "Input should be a valid string", f"{where}.{key}")
    return value


def _image(source: Any, where: str) -> Image:
    kind = source.get("type") if isinstance(source, Mapping) else None
    if kind == "url":
        try:
            return image_from_url(_field(source, "url", where))
        except ValueError as exc:
            raise WireError(str(exc), where + ".url") from None
    if kind == "base64":
        media_type = _field(source, "media_type", where)
        if media_type not in IMAGE_TYPES:
            raise WireError(f"Input should be {', '.join(repr(t) for t in IMAGE_TYPES)}", where + ".media_type")
        return Image(data=_field(source, "data", where), media_type=media_type)
    raise WireError("an image source is base64 or url", where + ".type")


def _result_text(content: Any, where: str) -> str:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        return "".join(_field(b, "text", f"{where}.{k}") if isinstance(b, Mapping) and b.get("type") == "text"
                       else _not_text(f"{where}.{k}") for k, b in enumerate(content))
    raise WireError("Input should be a valid string or list of content blocks", where)


def _not_text(where: str) -> str:
    raise WireError("only text is supported in a tool result", where)


# -- the answer ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutputPlan:
    """How the answer is made JSON: `native` (`output_config.format`) or `tool` (a forced tool named
    `tool`; `wrapped` when its input holds the answer under `WRAP_KEY`).  See `anthropic_request`."""

    mode: str
    tool: str | None = None
    wrapped: bool = False
    schema: Mapping[str, Any] | None = None
    """The schema sent (native), or the output tool's `input_schema`."""


@dataclass(frozen=True, slots=True)
class Answer:
    text: str
    tool_calls: tuple[ToolCall, ...]
    reasoning: tuple[Reasoning, ...]
    answered_by_tool: bool
    """The forced output tool was called: `text` is its input."""


def answer_from_wire(content: Sequence[Any], plan: OutputPlan | None = None) -> Answer:
    """The answer in a reply's `content` blocks (ValueError naming a block that is not their shape).
    With a `tool` plan, the output tool's input is the answer's text and any other text is dropped
    (the answer must parse as JSON)."""
    texts: list[str] = []
    calls: list[ToolCall] = []
    thoughts: list[Reasoning] = []
    answer: str | None = None
    for block in content:
        kind = block.get("type") if isinstance(block, Mapping) else None
        if kind == "text":
            texts.append(_answer_field(block, "text"))
        elif kind == "tool_use":
            arguments = block.get("input")
            if not isinstance(arguments, Mapping):
                raise ValueError(f"tool_use input: {block!r}")
            name = _answer_field(block, "name")
            if plan is not None and plan.mode == "tool" and name == plan.tool:
                answer = output_text(arguments, plan)
            else:
                calls.append(ToolCall(_answer_field(block, "id"), name, json.dumps(arguments, ensure_ascii=False)))
        elif kind == "thinking":
            thoughts.append(Reasoning(_answer_field(block, "thinking"), block.get("signature") or None,
                                      provider="anthropic"))
        elif kind == "redacted_thinking":
            thoughts.append(Reasoning("", redacted=_answer_field(block, "data"), provider="anthropic"))
        elif kind is None:
            raise ValueError(f"content block: {block!r}")
    return Answer("".join(texts) if answer is None else answer, tuple(calls), tuple(thoughts), answer is not None)


def output_text(arguments: Mapping[str, Any], plan: OutputPlan) -> str:
    value = arguments.get(WRAP_KEY) if plan.wrapped else arguments
    return json.dumps(value, ensure_ascii=False)


def _answer_field(block: Mapping[str, Any], key: str) -> str:
    value = block.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{block.get('type')} block: {block!r}")
    return value


__all__ = [
    "IMAGE_TYPES", "TOOL_ID", "TOOL_NAME", "WRAP_KEY", "Answer", "OutputPlan", "Unsendable", "WireError",
    "answer_from_wire", "arguments_object", "called_tools", "image_block", "messages_from_wire", "messages_to_wire",
    "output_text", "sniff_image", "wire_id",
]
