"""A tool choice Ollama does not have, arranged with what it does have.

Ollama's `/api/chat` calls tools when the model decides to: there is no `tool_choice`.  A request that
must call a tool (`required`) or one named tool is served by constrained decoding instead: the tools are
not sent, `format` is the JSON Schema of a call (`{"name": <one of the tools>, "arguments": <its
parameters>}`, one `anyOf` branch per tool), the system prompt lists the tools with their descriptions,
and the JSON answer becomes the call.  Ollama's grammar guarantees the shape; the model still chooses
the tool and its arguments.  (Anthropic's adapter does the inverse: a structured answer through a
forced tool.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..types import ChatRequest, Tool


@dataclass(frozen=True, slots=True)
class ForcedCall:
    tools: tuple[Tool, ...]

    @property
    def format(self) -> dict[str, Any]:
        return {"anyOf": [{"type": "object", "properties": {
            "name": {"type": "string", "enum": [t.name]}, "arguments": dict(t.parameters)},
            "required": ["name", "arguments"]} for t in self.tools]}

    @property
    def instructions(self) -> str:
        lines = ["Answer only by calling one of these tools, as JSON "
                 '{"name": <the tool>, "arguments": <its arguments>}:']
        for t in self.tools:
            lines.append(f"- {t.name}: {t.description or '(no description)'}; "
                         f"arguments: {json.dumps(dict(t.parameters), separators=(',', ':'))}")
        return "\n".join(lines)

    def call(self, content: str) -> tuple[str, str] | None:
        """(tool name, arguments JSON) of the answer; None when it is not a call of one of the tools."""
        try:
            data = json.loads(content)
        except ValueError:
            return None
        if not isinstance(data, dict) or not isinstance(data.get("arguments"), dict):
            return None
        if data.get("name") not in {t.name for t in self.tools}:
            return None
        return data["name"], json.dumps(data["arguments"], separators=(",", ":"))


def forced_call(request: ChatRequest) -> ForcedCall | None:
    """The arrangement for a request that must call a tool (None: Ollama's own behaviour serves it)."""
    choice = request.tool_choice
    if not request.tools or choice is None or choice.mode not in ("required", "tool"):
        return None
    tools = request.tools if choice.mode == "required" else tuple(t for t in request.tools if t.name == choice.name)
    return ForcedCall(tools)
