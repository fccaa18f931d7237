"""The answers of `/api/ai/agents` as pydantic models, so that /openapi.json documents them: an
agent's answer (`AgentAnswer`, with the tools it calls and its reasoning) and an agent as
`GET /api/ai/agents` lists it (`AgentOut`, with its own tools and output format).  The routes render
these shapes themselves (`Outcome.to_dict`); the models are the contract they keep."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Attempted(BaseModel):
    provider: str
    model: str
    status: Literal["success", "failed", "skipped"]
    errorKind: str | None
    error: str | None
    latencyMs: int


class TokensUsed(BaseModel):
    prompt: int
    completion: int
    total: int


class ToolCallOut(BaseModel):
    type: Literal["toolCall"]
    id: str
    name: str
    arguments: str = Field(description="JSON text of the arguments (an object)")
    signature: str | None = Field(None, description="Send it back unchanged with the call in the history")


class ReasoningOut(BaseModel):
    type: Literal["reasoning"]
    text: str
    signature: str | None = None
    redacted: str | None = None
    provider: str | None = None


class AgentAnswer(BaseModel):
    response: str
    model: str | None
    provider: str | None
    usedProvider: str | None
    fallbackUsed: bool
    budgetDowngraded: bool = Field(False, description=(
        "A budget kept a dearer link of the chain from serving: the answer came from a cheaper or free one"))
    attemptedProviders: list[Attempted]
    tokensUsed: TokensUsed
    costUsd: str | None = Field(description="Exact decimal USD; null when a model used has no known price")
    generationTime: int = Field(description="Milliseconds")
    requestId: str
    conversationId: str | None
    conversationSaved: bool = Field(True, description=(
        "False when the exchange could not be kept (the database was away): the answer is given all the same, "
        "its ledger rows are spooled, and conversationId is what was sent (null for a new conversation)"))
    finishReason: str | None
    agentId: str
    toolCalls: list[ToolCallOut] | None = Field(None, description=(
        "The tools the answer calls (finishReason `tool_calls`): run them and send their results as "
        "toolResult parts of the next message. Present with `reasoning` and `structuredOutput` when any is"))
    reasoning: list[ReasoningOut] | None = Field(None, description="The model's thinking, when it showed it")
    structuredOutput: Literal["native", "tool"] | None = Field(None, description=(
        "How a JSON answer (responseFormat) was obtained: the provider's own JSON output, or a forced tool call"))


class AgentToolOut(BaseModel):
    name: str
    description: str
    parameters: dict[str, Any]
    strict: bool | None


class OutputFormatOut(BaseModel):
    type: Literal["json_object", "json_schema"]
    name: str
    schema_: dict[str, Any] | None = Field(alias="schema")
    strict: bool | None


class LinkOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    provider: str
    model: str
    priority: int
    maxRetries: int | None
    enabled: bool
    disabledReason: str | None = None


class AgentOut(BaseModel):
    id: str
    name: str
    description: str
    costTier: Literal["free", "low", "medium", "high"]
    defaultProvider: str
    supportedProviders: list[LinkOut]
    config: dict[str, Any] | None = Field(description="Your saved chain for this agent (see /api/ai/config)")
    tools: list[AgentToolOut] = Field(description="The agent's own tools (a request may add more)")
    outputFormat: OutputFormatOut | None = Field(description="The agent's own answer format; null: text")
