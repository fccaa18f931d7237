"""Anthropic's Messages shapes of llmrelay's vocabulary, both ways (shared/reference/providers.md §1).

The Anthropic adapter sends with `request_to_wire` and reads answers with `anthropic_reply`; an
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
- an image's `detail`, a tool result's `name` and a call's `signature` (Gemini's) have no place here;
- a part's prompt-cache breakpoint (`cache`) is its block's `cache_control` (`{"type": "ephemeral"}`, with
  `"ttl": "1h"` for an hour); a turn with one is a list of blocks, even when it is only text.  The
  breakpoint of a part that is not sent (blank text) goes to the nearest block of its turn that is sent
  and can carry one (not thinking), before it, else after it.  With `system_cache` the system prompt is
  a list of text blocks, the last one marked.

Read back, `cache_control` (null, or `{"type": "ephemeral", "ttl"?: "5m" | "1h"}`) is the part's `cache`;
on a text block inside a tool result's content it is the tool result's (whose content is one text).
Several system blocks become one prompt, their breakpoints one at its end (`system_from_wire`).

What cannot be sent as asked raises `Unsendable` (the adapter's `bad_request`; another provider may
take it): a call whose arguments are not a JSON object, an image Anthropic cannot read.  The rest of a
request (tools, tool choice, structured output, thinking) is `anthropic_request`'s.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..content import (
    CACHE_TTLS,
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
_CACHEABLE = frozenset({"text", "image", "tool_use", "tool_result"})
"""The blocks that may carry `cache_control` (thinking may not)."""


def messages_to_wire(messages: Iterable[Message], system: str | None = None, system_cache: str | None = None,
                     ) -> tuple[str | list[dict[str, Any]], list[dict[str, Any]]]:
    """(the system: text, or text blocks when `system_cache` marks it; the wire turns): see the module
    docstring.  Raises `Unsendable`."""
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
    if system_cache is not None and system_texts:
        blocks = [{"type": "text", "text": text} for text in system_texts]
        blocks[-1]["cache_control"] = cache_control(system_cache)
        return blocks, turns
    return "\n\n".join(system_texts), turns


def cache_control(ttl: str) -> dict[str, str]:
    """A breakpoint's `cache_control` (five minutes is Anthropic's default lifetime)."""
    return {"type": "ephemeral"} if ttl == "5m" else {"type": "ephemeral", "ttl": ttl}


def _content(m: Message) -> str | list[dict[str, Any]]:
    if m.plain and not any(p.cache for p in m.parts):  # plain: every part is a Text
        text = m.text
        return text if text.strip() else ""
    blocks: list[dict[str, Any]] = []
    stray = None  # the breakpoint of a part not sent, for the next block that can carry it
    for p in m.parts:
        block = _block(p)
        if block is None:
            ttl = getattr(p, "cache", None)
            if ttl is not None:
                before = next((b for b in reversed(blocks) if b["type"] in _CACHEABLE), None)
                if before is not None:
                    before.setdefault("cache_control", cache_control(ttl))
                else:
                    stray = stray or ttl
            continue
        if stray is not None and block["type"] in _CACHEABLE:
            block.setdefault("cache_control", cache_control(stray))
            stray = None
        blocks.append(block)
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
        content[-1] = {**content[-1], "text": content[-1]["text"].rstrip()}


def _block(p: Part) -> dict[str, Any] | None:
    kind = type(p)
    block: dict[str, Any]
    if kind is Text:
        if not p.text.strip():
            return None
        block = {"type": "text", "text": p.text}
    elif kind is ToolCall:
        block = {"type": "tool_use", "id": wire_id(p.id), "name": p.name, "input": arguments_object(p)}
    elif kind is ToolResult:
        block = {"type": "tool_result", "tool_use_id": wire_id(p.call_id)}
        if p.content:
            block["content"] = p.content
        if p.is_error:
            block["is_error"] = True
    elif kind is Image:
        block = image_block(p)
    elif kind is Reasoning:
        return _thinking_block(p)
    else:
        raise TypeError(f"not a part: {p!r}")
    if p.cache is not None:
        block["cache_control"] = cache_control(p.cache)
    return block


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
    return system_from_wire(system)[0], turns


def system_from_wire(system: Any) -> tuple[str | None, str | None]:
    """(the system prompt, its breakpoint): text blocks join with a blank line, and their breakpoints
    become one at the end of the prompt, with the lifetime of the last one (Anthropic wants none longer
    after a shorter, so it is the shortest)."""
    if system is None or isinstance(system, str):
        return system, None
    if isinstance(system, list) and all(isinstance(b, Mapping) and b.get("type") == "text"
                                        and isinstance(b.get("text"), str) for b in system):
        ttl = None
        for j, b in enumerate(system):
            ttl = cache_from_wire(b.get("cache_control"), f"system.{j}.cache_control") or ttl
        return "\n\n".join(b["text"] for b in system), ttl
    raise WireError("Input should be a valid string or a list of text blocks", "system")


def cache_from_wire(value: Any, where: str) -> str | None:
    """The lifetime of the breakpoint a `cache_control` sets (None: none); `WireError` naming what is not
    `{"type": "ephemeral", "ttl"?: "5m" | "1h"}`."""
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise WireError("Input should be a valid dictionary or object to extract fields from", where)
    extra = next((k for k in value if k not in ("type", "ttl")), None)
    if extra is not None:
        raise WireError("Extra inputs are not permitted", f"{where}.{extra}")
    if value.get("type") != "ephemeral":
        raise WireError("Input should be 'ephemeral'", where + ".type")
    ttl = value.get("ttl", "5m")
    if ttl is None:
        ttl = "5m"
    if ttl not in CACHE_TTLS:
        raise WireError("Input should be '5m' or '1h'", where + ".ttl")
    return ttl


def _part(b: Any, where: str) -> Part:
    kind = b.get("type") if isinstance(b, Mapping) else None
    cache = cache_from_wire(b.get("cache_control"), where + ".cache_control") if kind in _CACHEABLE else None
    if kind == "text":
        return Text(_field(b, "text", where), cache)
    if kind == "image":
        image = _image(b.get("source"), where + ".source")
        return image if cache is None else dataclasses.replace(image, cache=cache)
    if kind == "tool_use":
        arguments = b.get("input", {})
        if not isinstance(arguments, Mapping):
            raise WireError("Input should be a valid dictionary", where + ".input")
        return ToolCall(_field(b, "id", where), _field(b, "name", where), json.dumps(arguments, ensure_ascii=False),
                        cache=cache)
    if kind == "tool_result":
        is_error = b.get("is_error", False)
        if not isinstance(is_error, bool):
            raise WireError("Input should be a valid boolean", where + ".is_error")
        content = b.get("content")
        return ToolResult(_field(b, "tool_use_id", where), _result_text(content, where + ".content"), is_error,
                          cache=cache or _inner_cache(content, where + ".content"))
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


def _inner_cache(content: Any, where: str) -> str | None:
    """The breakpoint of the last block of a tool result's content that sets one."""
    ttl = None
    for k, b in enumerate(content if isinstance(content, list) else ()):
        ttl = cache_from_wire(b.get("cache_control"), f"{where}.{k}.cache_control") or ttl
    return ttl


__all__ = [
    "IMAGE_TYPES", "TOOL_ID", "TOOL_NAME", "Unsendable", "WireError", "arguments_object", "cache_control",
    "cache_from_wire", "called_tools", "image_block", "messages_from_wire", "messages_to_wire", "sniff_image",
    "system_from_wire", "wire_id",
]
