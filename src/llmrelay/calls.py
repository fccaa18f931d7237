"""One call to one provider: what goes out (`ChatRequest`, with what serving it needs), what comes back
(`ChatResponse`, `Usage`), and the events of a streamed answer.  The adapters' whole vocabulary besides
the message parts (`content`) and the errors; re-exported by `types`, where every layer finds it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .content import Image, Message, OutputFormat, Reasoning, Text, Tool, ToolCall, ToolChoice, ToolResult

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]


@dataclass(frozen=True, slots=True)
class Sampling:
    """Generation settings beyond max tokens, temperature and stop.  Each is sent only to a provider
    that takes it: a link whose provider cannot honour one is skipped with that reason."""

    top_p: float | None = None
    top_k: int | None = None
    seed: int | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    logit_bias: Mapping[str, float] | None = None
    reasoning_effort: str | None = None
    """`low`, `medium` or `high`: how hard a reasoning model thinks (Anthropic, Gemini: a thinking budget)."""

    def asked(self) -> list[str]:
        """The names of the settings given."""
        return [name for name in _SAMPLING if getattr(self, name) is not None]


_SAMPLING = ("top_p", "top_k", "seed", "presence_penalty", "frequency_penalty", "logit_bias", "reasoning_effort")
NO_SAMPLING = Sampling()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[Message, ...]
    system: str | None = None
    system_cache: str | None = None
    """A prompt-cache breakpoint at the end of the system prompt ("5m" or "1h"; see `content`)."""
    max_tokens: int | None = None
    temperature: float | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    tools: tuple[Tool, ...] = ()
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    """False: at most one tool call per answer.  Sent to providers that take it; for the others the
    fallback executor keeps an answer's first call only (so every provider honours it)."""
    output: OutputFormat | None = None
    sampling: Sampling = NO_SAMPLING
    end_user: str | None = None
    """Who the caller's own user is (OpenAI's `user`), for providers that take such an id."""
    needs: frozenset[str] = frozenset()
    """What a link must be able to take to serve this request (`needs_of`); empty for plain text."""
    images: int = 0
    """How many images the messages carry."""
    input_chars: int = 0
    """The characters of text the request sends (system prompt, turns, tool calls and results): a
    lower bound of its input tokens is a fifth of it (`routing.fit` skips a link whose context window
    it clearly exceeds).  0: not counted."""


def needs_of(messages: Sequence[Message], tools: Sequence[Tool] = (), tool_choice: ToolChoice | None = None,
             parallel_tool_calls: bool | None = None, output: OutputFormat | None = None,
             sampling: Sampling = NO_SAMPLING) -> tuple[frozenset[str], int, int]:
    """(what serving the request needs, how many images it carries, how many characters of text its
    turns hold: `ChatRequest.needs`, `.images`, `.input_chars`).  The names are those of the
    request's parameters, as a link that cannot take one says in its skip reason: `tools`,
    `tool_choice=required`, `tool_choice=tool`, `images`, `image_url`,
    `response_format=json_object`, `response_format=json_schema`, `name` (a message names its speaker),
    and each `Sampling` field given."""
    needs: set[str] = set(sampling.asked()) if sampling is not NO_SAMPLING else set()
    if tools:
        needs.add("tools")
    if tool_choice is not None and tool_choice.mode in ("required", "tool"):
        needs.add("tool_choice=" + tool_choice.mode)
    if output is not None:
        needs.add("response_format=" + output.type)
    images = chars = 0
    for m in messages:
        if m.name is not None:
            needs.add("name")
        parts = m.parts
        if len(parts) == 1 and type(parts[0]) is Text:
            chars += len(parts[0].text)
            continue
        for p in parts:
            kind = type(p)
            if kind is Text:
                chars += len(p.text)
            elif kind is Image:
                images += 1
                needs.add("images")
                if p.data is None:
                    needs.add("image_url")
            elif kind is ToolCall:
                chars += len(p.arguments) + len(p.name)
                needs.add("tools")
            elif kind is ToolResult:
                chars += len(p.content)
                needs.add("tools")
    return frozenset(needs) if needs else _NOTHING, images, chars


_NOTHING: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts of one call.

    `input_tokens` counts every prompt token, cached ones included; `cached_input_tokens` is the
    part of it read from a prompt cache.  `output_tokens` counts every generated token,
    reasoning included; `reasoning_tokens` is the part spent thinking.  `cache_write_tokens` is
    the part of the input written to a cache (Anthropic bills it at its own price), and
    `cache_write_1h_tokens` the part of those written for an hour rather than 5 minutes (dearer).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class ChatResponse:
    text: str
    model: str
    provider: str
    usage: Usage
    finish_reason: FinishReason
    raw_id: str | None = None
    provider_cost_usd: str | None = None
    """The call's cost as the provider itself reported it (OpenRouter), as a decimal string."""
    tool_calls: tuple[ToolCall, ...] = ()
    reasoning: tuple[Reasoning, ...] = ()
    output_mode: str | None = None
    """How a structured answer was obtained when the request asked for one: `native` (the provider's
    own JSON output) or `tool` (a forced tool call whose input is the answer)."""

    @property
    def message(self) -> Message:
        """The answer as the assistant turn of a conversation: reasoning, text, tool calls."""
        if not self.tool_calls and not self.reasoning:
            return Message("assistant", self.text)
        return Message("assistant", (*self.reasoning, *((Text(self.text),) if self.text else ()), *self.tool_calls))


# -- stream events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class UsageReport:
    """The usage so far.  Providers report cumulative figures: the last report wins."""

    usage: Usage
    model: str | None = None
    raw_id: str | None = None
    provider_cost_usd: str | None = None


@dataclass(frozen=True, slots=True)
class Finished:
    finish_reason: FinishReason
    output_mode: str | None = None
    """As `ChatResponse.output_mode`."""


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """The model began a tool call: the `index`-th of its answer (0-based, in order)."""

    index: int
    id: str
    name: str
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of the `index`-th tool call's arguments (JSON text; the pieces concatenate)."""

    index: int
    arguments: str


@dataclass(frozen=True, slots=True)
class ToolCallEnd:
    index: int


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """A piece of the `index`-th block of the model's thinking; `signature` and `redacted` arrive
    whole (the last one given wins)."""

    text: str = ""
    index: int = 0
    signature: str | None = None
    redacted: str | None = None


OutputEvent = TextDelta | ToolCallStart | ToolCallDelta | ToolCallEnd | ReasoningDelta
"""The events that carry the answer itself: once one has reached the caller, a stream cannot fall back."""
StreamEvent = TextDelta | ToolCallStart | ToolCallDelta | ToolCallEnd | ReasoningDelta | UsageReport | Finished


# -- embeddings ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    """Vectors for `inputs` (each a text), from an embedding model; `dimensions` asks for shorter vectors
    where the model can give them."""

    model: str
    inputs: tuple[str, ...]
    dimensions: int | None = None
    end_user: str | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingResponse:
    vectors: list[list[float]]
    """One per input, in order."""
    model: str
    provider: str
    usage: Usage
    """Input tokens only."""
