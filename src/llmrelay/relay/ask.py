"""The Python API's one-message question (`Relay.chat`, `Relay.stream`): its message, history and options
as the turns and `RequestOptions` of `Relay.run`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from ..content import part_from_json
from ..types import (
    Image,
    InvalidRequest,
    Message,
    Part,
    Reasoning,
    RequestOptions,
    Text,
    ToolCall,
    ToolChoice,
    ToolResult,
)

_USER_PARTS = (Text, Image, ToolResult)
_ASSISTANT_PARTS = (Text, ToolCall, Reasoning)


def ask(message: str | Sequence[Part | Mapping[str, Any]], history: Sequence[Message | Mapping[str, Any]],
         options: RequestOptions) -> tuple[list[Message], RequestOptions]:
    """The turns and options of the Python API's one-message question: `system` turns of the
    history join the system prompt, after the agent's own."""
    if isinstance(message, str):
        if not message.strip():
            raise InvalidRequest("message must be a non-empty string", "message")
        asked = Message("user", message)
    else:
        asked = Message("user", _parts(message, "message", "user"))
        if all(type(p) is Text and not p.text.strip() for p in asked.parts):
            raise InvalidRequest("message must hold some text, an image or a tool result", "message")
    system: list[str] = []
    turns: list[Message] = []
    for i, item in enumerate(history):
        where = f"history[{i}]"
        if isinstance(item, Message):
            role, content = item.role, item.parts
        elif isinstance(item, Mapping):
            role, content = item.get("role"), item.get("content")
        else:
            raise InvalidRequest(f"{where} must be a Message or an object with role and content", "conversationHistory")
        if role not in ("user", "assistant", "system"):
            raise InvalidRequest(f"{where}.role must be user, assistant or system, not {role!r}", "conversationHistory")
        if isinstance(content, str):
            parts: tuple[Part, ...] = (Text(content),)
        elif isinstance(content, Sequence):
            parts = _parts(content, f"{where}.content", role)
        else:
            raise InvalidRequest(f"{where}.content must be a string or a list of parts", "conversationHistory")
        if role == "system":
            system.append("".join(p.text for p in parts if type(p) is Text))
        else:
            turns.append(Message(role, parts))
    turns.append(asked)
    if system:
        options = replace(options, system="\n\n".join(system))
    return turns, options


def _parts(items: Sequence[Part | Mapping[str, Any]], where: str, role: str) -> tuple[Part, ...]:
    """Parts, or their JSON form, that a `role` turn may hold; InvalidRequest naming the one that is not."""
    if not items:
        raise InvalidRequest(f"{where} must hold at least one part", _field(where))
    allowed = {"user": _USER_PARTS, "assistant": _ASSISTANT_PARTS, "system": (Text,)}[role]
    out: list[Part] = []
    for i, item in enumerate(items):
        try:
            part = part_from_json(item) if isinstance(item, Mapping) else item
        except ValueError as exc:
            raise InvalidRequest(f"{where}[{i}]: {exc}", _field(where)) from None
        if not isinstance(part, allowed):
            raise InvalidRequest(f"{where}[{i}]: a {role} turn holds {', '.join(t.__name__ for t in allowed)} "
                                 f"parts, not {type(part).__name__}", _field(where))
        out.append(part)
    return tuple(out)


def _field(where: str) -> str:
    return "message" if where == "message" else "conversationHistory"


def tool_choice_of(choice: ToolChoice | str | None) -> ToolChoice | None:
    """`auto`, `none` and `required` are modes; any other string names the one tool to call."""
    if choice is None or isinstance(choice, ToolChoice):
        return choice
    return ToolChoice(choice) if choice in ("auto", "none", "required") else ToolChoice("tool", choice)  # type: ignore
