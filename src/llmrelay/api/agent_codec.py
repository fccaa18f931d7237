"""The body of `POST /api/ai/agents` and its answer as pydantic models (so that /openapi.json
documents them), and the body's translation into `Relay.run`'s turns and options.

A message is a string or an array of parts in the one JSON form of `content.part_from_json`:

    user turns (and `message`)   text, image (`url`: http(s) or data: URL; or `data` + `mediaType`),
                                 toolResult (`callId`, `content`, `isError`)
    assistant turns              text, toolCall (`id`, `name`, `arguments`: JSON text), reasoning
    system turns                 a string (they join the system prompt)

so a client continues a tool loop by sending the tool results as the message.  Every check names the
offending field as the client wrote it (`message.1.url`, `conversationHistory.2.content.0.arguments`,
`toolChoice.name`): a union is validated by the branch the input's own shape picks (a string, an
array, an object; a part by its `type`), never by trying each branch and reporting every failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, WrapValidator, field_validator, model_validator

from ..agents import AgentOutput, AgentTool
from ..content import (
    TOOL_NAME,
    Message,
    Part,
    Text,
    ToolCall,
    ToolChoice,
    ToolResult,
    check_base64,
    image_from_url,
    part_from_json,
)
from ..types import InvalidRequest, RequestOptions, Sampling

MAX_MESSAGE = 1_000_000
"""Characters of text in one part (or one string message)."""
MAX_PARTS = 256
MAX_TOOLS = 128
IMAGE_TYPE = r"^image/[A-Za-z0-9.+\-]+$"


# -- parts --------------------------------------------------------------------------------------------


class _Part(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def part(self) -> Part:
        return part_from_json(self.model_dump(exclude_none=True))


class TextPart(_Part):
    type: Literal["text"]
    text: str = Field(max_length=MAX_MESSAGE)


class ImagePart(_Part):
    """An image: `url` (http(s), or a base64 `data:` URL), or `data` (base64) with its `mediaType`."""

    type: Literal["image"]
    url: str | None = Field(None, description="http(s) URL the provider fetches, or a data: URL of the image")
    data: str | None = Field(None, description="The image's bytes, base64")
    mediaType: str | None = Field(None, pattern=IMAGE_TYPE, description="With `data`: image/png, image/jpeg, …")
    detail: Literal["auto", "low", "high"] | None = None

    @field_validator("url")
    @classmethod
    def _usable_url(cls, v: str | None) -> str | None:
        if v is not None:
            image = image_from_url(v)
            if image.inline and not (image.media_type or "").startswith("image/"):
                raise ValueError("a data: URL must name an image media type (data:image/png;base64,…)")
        return v

    @field_validator("data")
    @classmethod
    def _base64(cls, v: str | None) -> str | None:
        if v is not None:
            check_base64(v)
        return v

    @model_validator(mode="after")
    def _url_or_data(self) -> ImagePart:
        if (self.url is None) == (self.data is None):
            raise ValueError("an image needs either `url` or `data` (with `mediaType`)")
        if self.data is not None and self.mediaType is None:
            raise ValueError("an image given by `data` needs its `mediaType`")
        return self


class ToolCallPart(_Part):
    """A tool the model called (an assistant turn's, sent back with the history)."""

    type: Literal["toolCall"]
    id: str = Field(min_length=1, max_length=512)
    name: str = Field(pattern=TOOL_NAME.pattern)
    arguments: str = Field("{}", max_length=MAX_MESSAGE, description="JSON text of an object")
    signature: str | None = Field(None, description="The provider's opaque token, returned as it came")

    @field_validator("arguments")
    @classmethod
    def _json_object(cls, v: str) -> str:
        try:
            parsed = json.loads(v)
        except ValueError:
            raise ValueError("arguments must be JSON text of an object") from None
        if not isinstance(parsed, dict):
            raise ValueError("arguments must be JSON text of an object")
        return v


class ToolResultPart(_Part):
    """What a tool returned, for the call `callId`."""

    type: Literal["toolResult"]
    callId: str = Field(min_length=1, max_length=512)
    content: str = Field(max_length=MAX_MESSAGE)
    isError: bool = False
    name: str | None = Field(None, pattern=TOOL_NAME.pattern)


class ReasoningPart(_Part):
    """The model's thinking (an assistant turn's, sent back to the provider that wrote it)."""

    type: Literal["reasoning"]
    text: str = Field("", max_length=MAX_MESSAGE)
    signature: str | None = None
    redacted: str | None = None
    provider: str | None = Field(None, max_length=32)


_USER_PARTS: dict[str, type[_Part]] = {"text": TextPart, "image": ImagePart, "toolResult": ToolResultPart}
_ASSISTANT_PARTS: dict[str, type[_Part]] = {"text": TextPart, "toolCall": ToolCallPart, "reasoning": ReasoningPart}
_ALL_PARTS = {**_USER_PARTS, **_ASSISTANT_PARTS}


def _part_of(kinds: dict[str, type[_Part]], turn: str) -> WrapValidator:
    """Validates a part by the model its `type` names (errors then say `message.1.url`, not every
    model's complaint); a type this turn cannot hold is refused by name."""

    def validate(value: Any, handler: Any) -> _Part:
        if isinstance(value, _Part):
            return value
        if not isinstance(value, dict):
            raise ValueError("a part must be an object with a `type`")
        kind = value.get("type")
        model = kinds.get(kind) if isinstance(kind, str) else None
        if model is None:
            raise ValueError(f"type must be one of {', '.join(kinds)} in {turn}, not {value.get('type')!r}")
        return model.model_validate(value)

    return WrapValidator(validate)


UserPart = Annotated[TextPart | ImagePart | ToolResultPart, Field(discriminator="type"),
                     _part_of(_USER_PARTS, "a user message")]
AssistantPart = Annotated[TextPart | ToolCallPart | ReasoningPart, Field(discriminator="type"),
                          _part_of(_ASSISTANT_PARTS, "an assistant turn")]
AnyPart = Annotated[TextPart | ImagePart | ToolCallPart | ToolResultPart | ReasoningPart,
                    Field(discriminator="type"), _part_of(_ALL_PARTS, "a turn")]


def _by_shape(**branches: Any) -> WrapValidator:
    """Validates a union by the branch the input's JSON shape picks (`str`, `list`, `dict`)."""
    adapters = {kind: TypeAdapter(t) for kind, t in branches.items()}
    shapes = {"str": str, "list": list, "dict": dict}
    expected = " or ".join({"str": "a string", "list": "an array", "dict": "an object"}[k] for k in branches)

    def validate(value: Any, handler: Any) -> Any:
        for kind, adapter in adapters.items():
            if isinstance(value, shapes[kind]):
                return adapter.validate_python(value)
        raise ValueError(f"must be {expected}")

    return WrapValidator(validate)


Content = Annotated[str, Field(max_length=MAX_MESSAGE)]
UserContent = Annotated[
    Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE)] | list[UserPart],
    _by_shape(str=Annotated[str, Field(min_length=1, max_length=MAX_MESSAGE)],
              list=Annotated[list[UserPart], Field(min_length=1, max_length=MAX_PARTS)])]
TurnContent = Annotated[
    Content | list[AnyPart],
    _by_shape(str=Content, list=Annotated[list[AnyPart], Field(min_length=1, max_length=MAX_PARTS)])]


class Turn(BaseModel):
    """An earlier turn: a user's (text, images, tool results), an assistant's (text, tool calls,
    reasoning) or a system prompt (a string)."""

    role: Literal["user", "assistant", "system"]
    content: TurnContent

    @model_validator(mode="after")
    def _parts_fit_the_role(self) -> Turn:
        if isinstance(self.content, str):
            return self
        allowed = {"user": _USER_PARTS, "assistant": _ASSISTANT_PARTS, "system": {"text": TextPart}}[self.role]
        for p in self.content:
            if p.type not in allowed:  # type: ignore[attr-defined]
                raise ValueError(f"a {self.role} turn holds {', '.join(allowed)} parts, not {p.type}")  # type: ignore
        return self

    def message(self) -> Message:
        if isinstance(self.content, str):
            return Message(self.role, self.content)  # type: ignore[arg-type]
        return Message(self.role, [p.part() for p in self.content])  # type: ignore[arg-type]

    def system_text(self) -> str:
        return self.content if isinstance(self.content, str) else "".join(p.text for p in self.content)  # type: ignore


# -- tools, output, sampling ---------------------------------------------------------------------------


class NamedTool(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=TOOL_NAME.pattern, description="The one tool the model must call")


ToolChoiceIn = Annotated[
    Literal["auto", "none", "required"] | NamedTool,
    _by_shape(str=Literal["auto", "none", "required"], dict=NamedTool)]


class AskAgent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    agentId: str = Field(min_length=1, max_length=64)
    message: UserContent = Field(description="A string, or an array of parts: text, image, toolResult (the "
                                             "results of the tools the previous answer called)")
    conversationHistory: list[Turn] | None = Field(None, max_length=1000)
    conversationId: str | None = Field(None, min_length=1, max_length=64)
    preferredProvider: str | None = Field(None, max_length=32)
    preferredModel: str | None = Field(None, min_length=1, max_length=200)
    stream: bool = False
    maxTokens: int | None = Field(None, ge=1, le=1_000_000)
    temperature: float | None = Field(None, ge=0, le=2)
    tools: list[AgentTool] | None = Field(None, max_length=MAX_TOOLS, description=(
        "Functions the model may call, added to the agent's own (one of the same name replaces the "
        "agent's). llmrelay relays the calls; the caller runs them and sends the results back"))
    toolChoice: ToolChoiceIn | None = Field(None, description='"auto", "none", "required", or {"name": …}')
    parallelToolCalls: bool | None = None
    responseFormat: AgentOutput | None = Field(None, description=(
        'The answer must be JSON: {"type": "json_object"}, or {"type": "json_schema", "schema": …, '
        '"name"?, "strict"?}; replaces the agent\'s own'))
    topP: float | None = Field(None, ge=0, le=1)
    topK: int | None = Field(None, ge=1, le=1000)
    seed: int | None = Field(None, ge=-(2**63), lt=2**63)
    presencePenalty: float | None = Field(None, ge=-2, le=2)
    frequencyPenalty: float | None = Field(None, ge=-2, le=2)
    reasoningEffort: Literal["low", "medium", "high"] | None = None

    @field_validator("tools")
    @classmethod
    def _distinct_names(cls, v: list[AgentTool] | None) -> list[AgentTool] | None:
        if v:
            seen: set[str] = set()
            for t in v:
                if t.name in seen:
                    raise ValueError(f"two tools are named {t.name!r}")
                seen.add(t.name)
        return v

    def user_message(self) -> Message:
        """`message` as the user turn it is; InvalidRequest when it says nothing."""
        if isinstance(self.message, str):
            if not self.message.strip():
                raise InvalidRequest("message must be a non-empty string", "message")
            return Message("user", self.message)
        parts = [p.part() for p in self.message]
        if all(type(p) is Text and not p.text.strip() for p in parts):
            raise InvalidRequest("message must hold some text, an image or a tool result", "message")
        return Message("user", parts)

    def options(self, system: str | None, request_id: str | None) -> RequestOptions:
        choice = self.toolChoice
        return RequestOptions(
            system=system, max_tokens=self.maxTokens, temperature=self.temperature,
            prefer_provider=self.preferredProvider, prefer_model=self.preferredModel, request_id=request_id,
            target_field="agentId", tools=tuple(t.tool() for t in self.tools or ()),
            tool_choice=None if choice is None else (
                ToolChoice("tool", choice.name) if isinstance(choice, NamedTool) else ToolChoice(choice)),
            parallel_tool_calls=self.parallelToolCalls,
            output=self.responseFormat.format() if self.responseFormat is not None else None,
            sampling=Sampling(top_p=self.topP, top_k=self.topK, seed=self.seed,
                              presence_penalty=self.presencePenalty, frequency_penalty=self.frequencyPenalty,
                              reasoning_effort=self.reasoningEffort))

    def check_tool_choice(self, agent_tools: Sequence[AgentTool]) -> None:
        """A named tool must be among the tools; `required` needs some."""
        choice = self.toolChoice
        names = {t.name for t in (*agent_tools, *(self.tools or ()))}
        if isinstance(choice, NamedTool) and choice.name not in names:
            raise InvalidRequest(f"toolChoice names {choice.name!r}, which is not among the tools "
                                 f"({', '.join(sorted(names)) or 'none'})", "toolChoice.name")
        if choice == "required" and not names:
            raise InvalidRequest('toolChoice "required" needs tools', "toolChoice")


# -- a conversation's tool turns -----------------------------------------------------------------------


def check_tool_turns(turns: Sequence[Message], where: Callable[[int], str]) -> None:
    """Every provider refuses a conversation whose tool calls and results do not pair up: each tool
    result answers a call of the assistant turn just before it, and the turn after an answer that
    called tools carries a result for each call.  Said here, before any provider is called, naming
    the turn (`where(i)`: the field that holds turn i)."""
    pending: dict[str, str] = {}
    for i, m in enumerate(turns):
        calls = [p for p in m.parts if type(p) is ToolCall]
        results = [p for p in m.parts if type(p) is ToolResult]
        if m.role == "user":
            for r in results:
                if r.call_id not in pending:
                    raise InvalidRequest(f"a toolResult answers callId {r.call_id!r}, which the turn before it "
                                         "did not call", where(i))
            missing = sorted(set(pending) - {r.call_id for r in results})
            if missing:
                raise InvalidRequest("the answer before this turn called tools: send a toolResult for each call "
                                     f"({', '.join(f'{pending[c]} {c!r}' for c in missing)})", where(i))
            pending = {}
        else:
            if pending:
                raise InvalidRequest("an answer that called tools must be followed by a user turn with their "
                                     "results", where(i))
            pending = {c.id: c.name for c in calls}
