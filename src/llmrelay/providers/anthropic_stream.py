"""The content blocks of an Anthropic stream as unified events (shared/reference/providers.md §1).

Each block is announced by `content_block_start` (with its wire index), grows by `content_block_delta`s
and ends with `content_block_stop`:

- `text`: each `text_delta` is a `TextDelta`;
- `tool_use`: `ToolCallStart`, each `input_json_delta` a `ToolCallDelta`, then `ToolCallEnd`; its index
  is the ordinal of the answer's tool calls (0, 1, …), not the wire index;
- `thinking`: each `thinking_delta` and the `signature_delta` a `ReasoningDelta`; `redacted_thinking`
  one `ReasoningDelta` with its data; the index is the ordinal of the answer's thinking blocks;
- the forced output tool of a structured answer (`OutputPlan` `tool`): its input pieces are the
  answer's `TextDelta`s (when its input holds the answer under a key, the input is read whole at the
  block's end and the answer sent in one piece);
- anything else (server tools, citations): nothing.
"""

from __future__ import annotations

import json
from typing import Any

from ..types import ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta, ToolCallEnd, ToolCallStart
from .anthropic_reply import OutputPlan, output_text


class BlockReader:
    """One stream's blocks.  `read` raises ValueError on a frame that is not the promised shape."""

    __slots__ = ("answered_by_tool", "blocks", "calls", "plan", "thoughts", "wrapped")

    def __init__(self, plan: OutputPlan | None = None) -> None:
        self.plan = plan
        self.blocks: dict[Any, tuple[str, int]] = {}
        """Wire index -> (`tool`, `output`, `thinking` or `other`, its ordinal among its kind)."""
        self.calls = 0
        self.thoughts = 0
        self.answered_by_tool = False
        """The forced output tool was called: the text is its input."""
        self.wrapped: list[str] = []

    def read(self, kind: str, data: dict[str, Any]) -> list[StreamEvent]:
        if kind == "content_block_start":
            block = data.get("content_block")
            if not isinstance(block, dict):
                raise ValueError("content_block")
            return self.start(data.get("index"), block)
        if kind == "content_block_delta":
            delta = data.get("delta")
            if not isinstance(delta, dict):
                raise ValueError("delta")
            return self.delta(data.get("index"), delta)
        return self.stop(data.get("index"))

    def start(self, index: Any, block: dict[str, Any]) -> list[StreamEvent]:
        kind = block.get("type")
        if kind == "text":
            text = _str(block.get("text", ""))
            return [TextDelta(text)] if text else []
        if kind == "tool_use":
            name, call_id, arguments = block.get("name"), block.get("id"), block.get("input") or {}
            if not isinstance(name, str) or not isinstance(call_id, str) or not isinstance(arguments, dict):
                raise ValueError("tool_use")
            plan = self.plan
            if plan is not None and plan.mode == "tool" and name == plan.tool:
                self.blocks[index] = ("output", 0)
                self.answered_by_tool = True
                return [TextDelta(output_text(arguments, plan))] if arguments else []
            self.blocks[index] = ("tool", self.calls)
            self.calls += 1
            events: list[StreamEvent] = [ToolCallStart(self.calls - 1, call_id, name)]
            if arguments:  # the API starts with `input: {}`; a whole input at the start is the input
                events.append(ToolCallDelta(self.calls - 1, json.dumps(arguments, ensure_ascii=False)))
            return events
        if kind in ("thinking", "redacted_thinking"):
            self.blocks[index] = ("thinking", self.thoughts)
            self.thoughts += 1
            if kind == "redacted_thinking":
                return [ReasoningDelta(index=self.thoughts - 1, redacted=_str(block.get("data")))]
            text, signature = _str(block.get("thinking", "")), _str(block.get("signature", ""))
            return [ReasoningDelta(text, self.thoughts - 1, signature or None)] if text or signature else []
        self.blocks[index] = ("other", 0)
        return []

    def delta(self, index: Any, delta: dict[str, Any]) -> list[StreamEvent]:
        kind = delta.get("type")
        if kind == "text_delta":
            text = _str(delta.get("text", ""))
            return [TextDelta(text)] if text else []
        block, ordinal = self.blocks.get(index, ("other", 0))
        if kind == "input_json_delta":
            piece = _str(delta.get("partial_json"))
            if block not in ("tool", "output"):
                raise ValueError("input_json_delta outside a tool_use block")
            if not piece:
                return []
            if block == "tool":
                return [ToolCallDelta(ordinal, piece)]
            if self.plan is not None and self.plan.wrapped:
                self.wrapped.append(piece)
                return []
            return [TextDelta(piece)]
        if kind == "thinking_delta" and block == "thinking":
            text = _str(delta.get("thinking"))
            return [ReasoningDelta(text, ordinal)] if text else []
        if kind == "signature_delta" and block == "thinking":
            return [ReasoningDelta(index=ordinal, signature=_str(delta.get("signature")) or None)]
        return []  # citations and whatever comes next

    def stop(self, index: Any) -> list[StreamEvent]:
        block, ordinal = self.blocks.get(index, ("other", 0))
        if block == "tool":
            return [ToolCallEnd(ordinal)]
        if block == "output" and self.wrapped and self.plan is not None:
            arguments = json.loads("".join(self.wrapped))  # ValueError: not the promised JSON
            self.wrapped.clear()
            return [TextDelta(output_text(arguments if isinstance(arguments, dict) else {}, self.plan))]
        return []


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("not a string")
    return value
