"""What one attempt of the fallback executor has produced so far (`Live`): the answer's pieces as they
arrive, its usage and finish, and what it becomes once the attempt ends."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..types import (
    ChatResponse,
    FinishReason,
    Link,
    OutputEvent,
    Reasoning,
    ReasoningDelta,
    ToolCall,
    ToolCallDelta,
    ToolCallStart,
    Usage,
    UsageReport,
)


@dataclass(slots=True)
class Live:
    """What one attempt has produced so far."""

    parts: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish: FinishReason | None = None
    model: str | None = None
    raw_id: str | None = None
    cost: str | None = None
    committed: bool = False
    calls: list[list] | None = None
    """[id, name, [argument pieces], signature] per tool call, by index."""
    thoughts: list[list] | None = None
    """[[text pieces], signature, redacted] per reasoning block, by index."""
    done: ChatResponse | None = None
    """The whole answer of a non-streaming call."""
    output_mode: str | None = None
    result: Any = None
    """What a call other than a chat returned (`FallbackExecutor.walk`)."""

    def take_usage(self, report: UsageReport) -> None:
        self.usage = report.usage
        self.model = report.model or self.model
        self.raw_id = report.raw_id or self.raw_id
        self.cost = report.provider_cost_usd or self.cost

    def take(self, event: OutputEvent) -> None:
        """Keep a piece of the answer (the text is kept by the caller, on the busiest path)."""
        kind = type(event)
        if kind is ToolCallStart:
            calls = self.calls if self.calls is not None else []
            self.calls = calls
            while len(calls) <= event.index:
                calls.append(["", "", [], None])
            calls[event.index][0:2] = [event.id, event.name]
            calls[event.index][3] = event.signature
        elif kind is ToolCallDelta:
            if self.calls is None or len(self.calls) <= event.index:
                self.take(ToolCallStart(event.index, "", ""))
            self.calls[event.index][2].append(event.arguments)  # type: ignore[index]
        elif kind is ReasoningDelta:
            thoughts = self.thoughts if self.thoughts is not None else []
            self.thoughts = thoughts
            while len(thoughts) <= event.index:
                thoughts.append([[], None, None])
            block = thoughts[event.index]
            if event.text:
                block[0].append(event.text)
            block[1] = event.signature or block[1]
            block[2] = event.redacted or block[2]

    def empty(self) -> bool:
        """Nothing came back: no text, no tool call, no reasoning, and not for want of tokens."""
        if self.finish == "length" or any(self.parts):
            return False
        done = self.done
        if done is not None:
            return not (done.text or done.tool_calls or done.reasoning)
        return not (self.calls or self.thoughts)

    @property
    def tool_calls(self) -> int:
        if self.done is not None:
            return len(self.done.tool_calls)
        return len(self.calls) if self.calls else 0

    def response(self, link: Link, finish: FinishReason | None = None) -> ChatResponse:
        if self.done is not None:
            return self.done if finish is None else dataclasses.replace(self.done, finish_reason=finish)
        calls = tuple(ToolCall(c[0], c[1], "".join(c[2]) or "{}", c[3]) for c in self.calls) if self.calls else ()
        thoughts = tuple(Reasoning("".join(t[0]), t[1], t[2], link.provider) for t in self.thoughts) \
            if self.thoughts else ()
        return ChatResponse("".join(self.parts), self.model or link.model, link.provider, self.usage or Usage(),
                            finish or self.finish or "stop", self.raw_id, self.cost, calls, thoughts, self.output_mode)
