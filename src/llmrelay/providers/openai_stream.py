"""Reading one OpenAI `chat.completion.chunk` stream into llmrelay's stream events
(shared/reference/providers.md §2, Streaming).

A chunk's `delta` carries text (`content`), a refusal (kept out of the text: it makes the finish a
content filter), reasoning (`reasoning` from OpenRouter and Ollama, `reasoning_content` from DeepSeek
and vLLM) and tool-call fragments.  Tool calls arrive as fragments keyed by `index`: the first one
of a call brings its `id`, `type` and `function.name` (with `arguments: ""`), the following ones
pieces of `function.arguments` to concatenate.  They become `ToolCallStart` when a call's name is
first known, `ToolCallDelta` for each argument piece, and `ToolCallEnd` for every open call when the
choice finishes (or, on servers that send no finish reason, when the stream ends).  A server that
sends a call without an id (some OpenAI-compatible ones) gets one made from the completion's id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..types import ReasoningDelta, StreamEvent, TextDelta, ToolCallDelta, ToolCallEnd, ToolCallStart


@dataclass(slots=True)
class _Call:
    index: int
    """Ours: the calls in the order they began."""
    id: str = ""
    name: str = ""
    started: bool = False
    early: list[str] = field(default_factory=list)
    """Argument pieces that came before the call's name (never from OpenAI itself)."""


@dataclass(slots=True)
class StreamState:
    """What one stream has said so far that only matters later."""

    finish: str | None = None
    refused: bool = False
    done: bool = False
    completion_id: str = ""
    calls: dict[int, _Call] = field(default_factory=dict)
    """The wire `index` of each tool call -> the call."""
    ended: bool = False
    """The open calls have been ended."""

    @property
    def called(self) -> bool:
        return any(c.started for c in self.calls.values())

    def end_calls(self) -> list[StreamEvent]:
        """A `ToolCallEnd` for every call begun and not yet ended."""
        if self.ended:
            return []
        self.ended = True
        return [ToolCallEnd(c.index) for c in sorted(self.calls.values(), key=lambda c: c.index) if c.started]


class MalformedDelta(ValueError):
    """A delta that is not in OpenAI's shape."""


def delta_events(delta: dict[str, Any], state: StreamState, events: list[StreamEvent]) -> None:
    """Append the events one `delta` carries."""
    thought = delta.get("reasoning")
    if not thought:
        thought = delta.get("reasoning_content")
    if thought:
        if not isinstance(thought, str):
            raise MalformedDelta("reasoning")
        events.append(ReasoningDelta(thought))
    content = delta.get("content")
    if content:
        events.append(TextDelta(content))
    if delta.get("refusal"):
        state.refused = True  # the refusal text is not the answer: keep it out of the text
    calls = delta.get("tool_calls")
    if calls:
        if not isinstance(calls, list):
            raise MalformedDelta("tool_calls")
        for position, fragment in enumerate(calls):
            _fragment(fragment, position, state, events)


def _fragment(fragment: Any, position: int, state: StreamState, events: list[StreamEvent]) -> None:
    if not isinstance(fragment, dict):
        raise MalformedDelta("tool_calls")
    fn = fragment.get("function") or {}
    wire = fragment.get("index", position)
    if not isinstance(fn, dict) or not isinstance(wire, int) or isinstance(wire, bool):
        raise MalformedDelta("tool_calls")
    call = state.calls.get(wire)
    if call is None:
        call = state.calls[wire] = _Call(len(state.calls))
    call_id, name, arguments = fragment.get("id"), fn.get("name"), fn.get("arguments")
    if isinstance(call_id, str) and call_id and not call.id:
        call.id = call_id
    if isinstance(name, str) and name and not call.name:
        call.name = name
    if not call.started and call.name:
        call.started = True
        events.append(ToolCallStart(call.index, call.id or f"call_{state.completion_id}_{call.index}", call.name))
        if call.early:
            events.append(ToolCallDelta(call.index, "".join(call.early)))
            call.early.clear()
    if isinstance(arguments, str) and arguments:
        if call.started:
            events.append(ToolCallDelta(call.index, arguments))
        else:
            call.early.append(arguments)
    elif arguments is not None and not isinstance(arguments, str):
        raise MalformedDelta("tool_calls")
