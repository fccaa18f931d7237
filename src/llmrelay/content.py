"""What a conversation is made of: messages of parts, the tools a model may call, and the shape its
answer must take.  The vocabulary of agent-grade requests, after pydantic-ai's message parts.

    Message(role, parts)      role `user` or `assistant`; a plain string is one `Text` part
      Text(text, cache)
      Image(url | data+media_type, detail, cache)        user turns only
      ToolCall(id, name, arguments, signature, cache)    assistant turns: the model asks for a tool
      ToolResult(call_id, content, is_error, cache)      user turns: what the tool returned
      Reasoning(text, signature, redacted, provider)     assistant turns: the model's thinking

    Tool(name, description, parameters, strict, cache)   a function the model may call (JSON Schema)
    ToolChoice(mode, name)                        auto | none | required | tool (with its name)
    OutputFormat(type, schema, name, strict)      json_object | json_schema

Tool results travel in `user` turns, as Anthropic and Gemini place them; an adapter whose API has a
role of its own for them (OpenAI's and Ollama's `tool` messages) splits them out.  A tool call's
`arguments` are JSON text, as OpenAI sends them; an adapter whose API wants an object parses them.
Opaque provider tokens that must come back unchanged (Anthropic's thinking signature, Gemini's
thought signature on a function call) ride on the part they belong to.

`cache` is a prompt-cache breakpoint (Anthropic's `cache_control`): the prompt up to and including this
part (tools, then the system prompt, then the turns) is worth caching, for `CACHE_TTLS` "5m" or "1h";
None (the default) marks nothing.  It is a hint about cost, never about the answer: only an adapter whose
provider takes explicit breakpoints sends it (Anthropic); the others cache by themselves or not at all.

These are plain frozen dataclasses: equal when their fields are, cheap to build on the hot path.
`parts_to_json` / `parts_from_json` give their one JSON form (stored conversations, the agents API).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["user", "assistant"]


CACHE_TTLS = ("5m", "1h")
"""The lifetimes a prompt-cache breakpoint may ask for (`cache`)."""


@dataclass(frozen=True, slots=True)
class Text:
    text: str
    cache: str | None = None


@dataclass(frozen=True, slots=True)
class Image:
    """An image shown to the model: a URL the provider fetches, or the image itself (`data`, base64
    text, with its `media_type`).  `detail` is OpenAI's low/high/auto hint."""

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None
    cache: str | None = None

    @property
    def inline(self) -> bool:
        return self.data is not None

    def data_url(self) -> str:
        """The image as a URL: its own, or a `data:` URL of its bytes."""
        if self.data is None:
            return self.url or ""
        return f"data:{self.media_type or 'application/octet-stream'};base64,{self.data}"


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str = "{}"
    """JSON text of the arguments (an object), exactly as the model produced it."""
    signature: str | None = None
    """A provider's opaque token that must accompany this call when the history goes back to it
    (Gemini's `thoughtSignature`)."""
    cache: str | None = None

    def arguments_object(self) -> dict[str, Any] | None:
        """The arguments as the object the APIs that want one take (blank arguments: {}); None when
        they are not a JSON object."""
        if not self.arguments.strip():
            return {}
        try:
            value = json.loads(self.arguments)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None


@dataclass(frozen=True, slots=True)
class ToolResult:
    call_id: str
    content: str
    is_error: bool = False
    name: str | None = None
    """The tool's name, when the caller said it (else found from the call it answers)."""
    cache: str | None = None


@dataclass(frozen=True, slots=True)
class Reasoning:
    """The model's thinking.  `signature` (Anthropic) proves it to the provider that wrote it, so it can
    be sent back; `redacted` is Anthropic's encrypted thinking.  Reasoning written by another provider
    is not sent back: no provider accepts another's."""

    text: str = ""
    signature: str | None = None
    redacted: str | None = None
    provider: str | None = None


Part = Text | Image | ToolCall | ToolResult | Reasoning


@dataclass(frozen=True, slots=True, init=False)
class Message:
    """One conversation turn.  The system prompt is not a message: see `ChatRequest.system`."""

    role: Role
    parts: tuple[Part, ...]
    name: str | None
    """The participant who spoke (OpenAI's `name`, e.g. one agent of several); a link whose provider has no
    such field cannot take a request that has one (`needs` says `name`)."""

    def __init__(self, role: Role, content: str | Iterable[Part] = (), name: str | None = None) -> None:
        object.__setattr__(self, "role", role)
        object.__setattr__(self, "parts", (Text(content),) if isinstance(content, str) else tuple(content))
        object.__setattr__(self, "name", name)

    @property
    def text(self) -> str:
        """The text parts, joined."""
        parts = self.parts
        if len(parts) == 1 and type(parts[0]) is Text:
            return parts[0].text
        return "".join(p.text for p in parts if type(p) is Text)

    @property
    def content(self) -> str:
        """The text, as before messages had parts (`text`; `parts` holds everything)."""
        return self.text

    @property
    def plain(self) -> bool:
        """Only text (whether or not a part marks a prompt-cache breakpoint)."""
        return all(type(p) is Text for p in self.parts)

    def __repr__(self) -> str:
        said = f"Message({self.role!r}, {self.text!r}" if self.plain else f"Message({self.role!r}, {self.parts!r}"
        return said + (f", name={self.name!r})" if self.name is not None else ")")


@dataclass(frozen=True, slots=True)
class Tool:
    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    """JSON Schema of the arguments (an object)."""
    strict: bool | None = None
    cache: str | None = None
    """A prompt-cache breakpoint after this tool (see the module docstring)."""


ToolMode = Literal["auto", "none", "required", "tool"]


@dataclass(frozen=True, slots=True)
class ToolChoice:
    mode: ToolMode = "auto"
    name: str | None = None
    """The one tool to call, with mode `tool`."""


@dataclass(frozen=True, slots=True)
class OutputFormat:
    """The answer must be JSON: any object (`json_object`) or one that fits `schema` (`json_schema`)."""

    type: Literal["json_object", "json_schema"]
    schema: Mapping[str, Any] | None = None
    name: str = "response"
    description: str | None = None
    strict: bool | None = None


# -- checks every ingress shares ----------------------------------------------------------------------

TOOL_NAME = re.compile(r"^[A-Za-z0-9_.\-]{1,128}$")
_DATA_URL = re.compile(r"^data:([\w.+\-]+/[\w.+\-]+)?(?:;[\w.+\-]+=[\w.+\-]+)*;base64,", re.ASCII)


def image_from_url(url: str, detail: str | None = None) -> Image:
    """An image from a URL: `data:` URLs become inline bytes (ValueError when they are not base64
    images), http(s) URLs stay URLs (ValueError for any other scheme)."""
    m = _DATA_URL.match(url)
    if m:
        data = url[m.end():]
        check_base64(data)
        return Image(data=data, media_type=m.group(1) or None, detail=detail)
    if url.startswith(("https://", "http://")):
        return Image(url=url, detail=detail)
    raise ValueError("an image URL must be http(s) or a base64 data: URL")


def check_base64(data: str) -> None:
    try:
        binascii.a2b_base64(data.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError("image data is not valid base64") from None


def image_bytes(image: Image) -> bytes:
    return base64.b64decode(image.data or "")


# -- the one JSON form --------------------------------------------------------------------------------


def part_to_json(p: Part) -> dict[str, Any]:
    if type(p) is Text:
        d: dict[str, Any] = {"type": "text", "text": p.text}
        if p.cache is not None:
            d["cache"] = p.cache
        return d
    if type(p) is Image:
        return {"type": "image", **_some(url=p.url, data=p.data, mediaType=p.media_type, detail=p.detail,
                                         cache=p.cache)}
    if type(p) is ToolCall:
        return {"type": "toolCall", "id": p.id, "name": p.name, "arguments": p.arguments,
                **_some(signature=p.signature, cache=p.cache)}
    if type(p) is ToolResult:
        return {"type": "toolResult", "callId": p.call_id, "content": p.content,
                **({"isError": True} if p.is_error else {}), **_some(name=p.name, cache=p.cache)}
    if type(p) is Reasoning:
        return {"type": "reasoning", "text": p.text,
                **_some(signature=p.signature, redacted=p.redacted, provider=p.provider)}
    raise TypeError(f"not a part: {p!r}")


def parts_to_json(parts: Iterable[Part]) -> list[dict[str, Any]]:
    return [part_to_json(p) for p in parts]


def part_from_json(d: Mapping[str, Any]) -> Part:
    """A part from its JSON form; ValueError (with what is wrong) for anything else."""
    if not isinstance(d, Mapping):
        raise ValueError("a part must be an object with a type")
    kind = d.get("type")
    try:
        if kind == "text":
            return Text(_str(d, "text"), _cache(d))
        if kind == "image":
            if d.get("url") is not None:
                image = image_from_url(_str(d, "url"), _opt(d, "detail"))
            else:
                data = _str(d, "data")
                check_base64(data)
                image = Image(data=data, media_type=_opt(d, "mediaType"), detail=_opt(d, "detail"))
            cache = _cache(d)
            return image if cache is None else dataclasses.replace(image, cache=cache)
        if kind == "toolCall":
            return ToolCall(_str(d, "id"), _str(d, "name"), _str(d, "arguments", "{}"), _opt(d, "signature"),
                            _cache(d))
        if kind == "toolResult":
            is_error = d.get("isError", False)
            if not isinstance(is_error, bool):
                raise ValueError("isError must be true or false")
            return ToolResult(_str(d, "callId"), _str(d, "content"), is_error, _opt(d, "name"), _cache(d))
        if kind == "reasoning":
            return Reasoning(_str(d, "text", ""), _opt(d, "signature"), _opt(d, "redacted"), _opt(d, "provider"))
    except KeyError as exc:
        raise ValueError(f"a {kind} part needs {exc.args[0]!r}") from None
    raise ValueError(f"unknown part type {kind!r} (known: text, image, toolCall, toolResult, reasoning)")


def parts_from_json(items: Iterable[Mapping[str, Any]]) -> tuple[Part, ...]:
    return tuple(part_from_json(d) for d in items)


def _some(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _str(d: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = d.get(key, default)
    if value is None:
        raise KeyError(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _opt(d: Mapping[str, Any], key: str) -> str | None:
    value = d.get(key)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _cache(d: Mapping[str, Any]) -> str | None:
    value = d.get("cache")
    if value is not None and value not in CACHE_TTLS:
        raise ValueError(f"cache must be one of {', '.join(CACHE_TTLS)} (a prompt-cache breakpoint's lifetime)")
    return value


__all__ = [
    "CACHE_TTLS", "TOOL_NAME", "Image", "Message", "OutputFormat", "Part", "Reasoning", "Role", "Text", "Tool",
    "ToolCall", "ToolChoice", "ToolMode", "ToolResult", "check_base64", "image_bytes", "image_from_url",
    "part_from_json", "part_to_json", "parts_from_json", "parts_to_json",
]
