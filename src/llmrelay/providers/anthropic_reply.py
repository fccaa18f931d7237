"""Anthropic's answers (a Messages reply's `content` blocks) as llmrelay's vocabulary, and how a structured
answer was asked for (`OutputPlan`, made by `anthropic_request.plan_output`): text blocks are the text,
`tool_use` blocks tool calls (arguments: the input as JSON text), `thinking` / `redacted_thinking` blocks
reasoning; a forced output tool's input is the text.  The stream's blocks are `anthropic_stream`'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..content import Reasoning, ToolCall

WRAP_KEY = "response"
"""The property a forced output tool's input holds the answer in, when the answer is not an object."""


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


__all__ = ["WRAP_KEY", "Answer", "OutputPlan", "answer_from_wire", "output_text"]
