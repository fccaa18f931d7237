"""The bodies of `POST /v1/messages` and `POST /v1/messages/count_tokens` as pydantic models: the fields
read, with the JSON schema the OpenAPI document shows.  What is inside the loosely typed fields (blocks,
tools, thinking, …) is `anthropic_format`'s to check; extras are collected to be refused by name there.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MIN_BUDGET = 1024
"""The least `thinking.budget_tokens` Anthropic takes."""
_CACHE_DOC = {"type": "object", "required": ["type"], "properties": {
    "type": {"const": "ephemeral"}, "ttl": {"enum": ["5m", "1h"], "default": "5m"}},
    "description": "A prompt-cache breakpoint: sent on to Anthropic, a hint other providers do not take"}
_BLOCK_DOC = {"type": "object", "required": ["type"], "properties": {
    "type": {"enum": ["text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking"]},
    "cache_control": _CACHE_DOC},
    "description": "text {text}, image {source: base64 {media_type, data} | url {url}}, tool_use {id, name, "
                   "input}, tool_result {tool_use_id, content, is_error}, thinking {thinking, signature}, "
                   "redacted_thinking {data}; all but thinking may carry cache_control"}
_MESSAGES_DOC = {"items": {"type": "object", "required": ["role", "content"], "properties": {
    "role": {"enum": ["user", "assistant"]},
    "content": {"anyOf": [{"type": "string"}, {"type": "array", "items": _BLOCK_DOC}]}}}}
_TOOLS_DOC = {"items": {"type": "object", "required": ["name", "input_schema"], "properties": {
    "type": {"const": "custom"}, "name": {"type": "string", "pattern": r"^[a-zA-Z0-9_-]{1,64}$"},
    "description": {"type": "string"}, "strict": {"type": "boolean"}, "cache_control": _CACHE_DOC,
    "input_schema": {"type": "object", "description": "JSON Schema of the input (an object)"}}}}
_CHOICE_DOC = {"type": "object", "required": ["type"], "properties": {
    "type": {"enum": ["auto", "any", "tool", "none"]}, "name": {"type": "string"},
    "disable_parallel_tool_use": {"type": "boolean"}}}
_THINKING_DOC = {"type": "object", "required": ["type"], "properties": {
    "type": {"enum": ["enabled", "disabled"]}, "budget_tokens": {"type": "integer", "minimum": MIN_BUDGET}}}
_OUTPUT_DOC = {"type": "object", "properties": {"format": {
    "type": "object", "required": ["type", "schema"],
    "properties": {"type": {"const": "json_schema"}, "schema": {"type": "object"}}}}}


class CountTokensRequest(BaseModel):
    """`POST /v1/messages/count_tokens`: what is counted.  Any other field is refused."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})
    """Extras are collected to be refused by name, not taken."""

    model: str = Field(min_length=1, max_length=300,
                       description="`agent:<agentId>`, `<provider>/<model>`, or a model name the catalog knows")
    messages: list[Any] = Field(min_length=1, max_length=10_000, json_schema_extra=_MESSAGES_DOC)
    system: str | list[Any] | None = Field(None, description="Text, or text blocks (which may carry cache_control)")
    tools: list[Any] | None = Field(None, max_length=128, json_schema_extra=_TOOLS_DOC,
                                    description="Custom tools (added to an agent's own); server tools are refused")
    tool_choice: Any = Field(None, json_schema_extra=_CHOICE_DOC)
    thinking: Any = Field(None, json_schema_extra=_THINKING_DOC)
    output_config: Any = Field(None, json_schema_extra=_OUTPUT_DOC)
    cache_control: Any = Field(None, json_schema_extra=_CACHE_DOC,
                               description="Automatic caching: a breakpoint on the request's last block")


class MessagesRequest(CountTokensRequest):
    """`POST /v1/messages`.  Also defined by Anthropic and refused unless null or default: container,
    context_management, diagnostics, inference_geo, mcp_servers, service_tier, speed,
    user_profile_id, workspace_id.  Any other field is an extra input (400)."""

    max_tokens: int = Field(ge=1, le=1_000_000, strict=True, description="Required, as Anthropic requires it")
    temperature: float | None = Field(None, ge=0, le=1)
    top_p: float | None = Field(None, ge=0, le=1)
    top_k: int | None = Field(None, ge=0, strict=True)
    stop_sequences: list[str] | None = Field(None, max_length=16)
    stream: bool | None = False
    metadata: Any = Field(None, json_schema_extra={"type": "object", "properties": {"user_id": {"type": "string"}}})


__all__ = ["MIN_BUDGET", "CountTokensRequest", "MessagesRequest"]
