"""What the fake OpenAI (and OpenRouter) reads from a chat request beyond its text, and what it
refuses, the way the real API does (shared/reference/providers.md §2; messages and params as the real
API words them, collected from its 400 answers quoted in public issue threads).

`check(body, rules)` returns the first `Rejection` (a 400 `invalid_request_error` with its message,
`param` and `code`) or None.  OpenAI refuses:

- an argument it does not define: "Unrecognized request argument supplied: top_k" (`param` null);
- on reasoning models (o-series, gpt-5): `max_tokens`, `stop`, `top_p`, the penalties, `logit_bias`
  ("Unsupported parameter: 'stop' is not supported with this model.") and a temperature other than 1
  ("Unsupported value: 'temperature' does not support 0.2 with this model. Only the default (1) value
  is supported."); on the other models `reasoning_effort` (unrecognized);
- a function name that is not `^[a-zA-Z0-9_-]+$` or longer than 64, in `tools` or in a call of the
  history; a tool-call id longer than 40;
- `tool_choice` or `parallel_tool_calls` without `tools`;
- a `json_schema` response format without its `json_schema` or its `name`; `json_object` when no
  message says "json";
- an `image_url` part without a `url`;
- a `tool` message that does not answer a call of the assistant message before it, and an assistant
  message whose calls are not all answered by the `tool` messages right after it.

`read_tools(body)` fills the provider-neutral `ToolState` the fakes plan their answers with.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .tools import FakeTool, ToolState

OPENAI_PARAMS = frozenset({
    "model", "messages", "audio", "frequency_penalty", "function_call", "functions", "logit_bias", "logprobs",
    "max_completion_tokens", "max_tokens", "metadata", "modalities", "moderation", "n", "parallel_tool_calls",
    "prediction", "presence_penalty", "prompt_cache_key", "prompt_cache_options", "prompt_cache_retention",
    "reasoning_effort", "response_format", "safety_identifier", "seed", "service_tier", "stop", "store", "stream",
    "stream_options", "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity",
    "web_search_options"})
_NAME_PATTERN = "^[a-zA-Z0-9_-]+$"
_NAME = re.compile(_NAME_PATTERN)
_JSON = re.compile("json", re.IGNORECASE)
_NOT_FOR_REASONING = ("max_tokens", "stop", "top_p", "presence_penalty", "frequency_penalty", "logit_bias")


@dataclass(frozen=True, slots=True)
class Rejection:
    message: str
    param: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Rules:
    """What one OpenAI-shaped server refuses (None: that check is off)."""

    known_params: frozenset[str] | None = OPENAI_PARAMS
    reasoning_models: re.Pattern[str] | None = re.compile(r"^(o\d|gpt-5(?!.*-chat))")
    max_name: int | None = 64
    max_call_id: int | None = 40
    json_word: bool = True


OPENAI = Rules()
OPENROUTER = Rules(known_params=None, reasoning_models=None, max_name=None, max_call_id=None, json_word=False)
"""OpenRouter takes its own extensions and drops what a model cannot take."""
OPENROUTER_TO_OPENAI = Rules(known_params=None, reasoning_models=None)
"""OpenRouter with OpenAI upstream (`openai/…` models): OpenAI's rules on names, ids and JSON mode."""


def check(body: dict[str, Any], rules: Rules) -> Rejection | None:
    return (_unknown(body, rules) or _reasoning(body, rules) or _tools(body, rules) or _response_format(body, rules)
            or _messages(body["messages"], rules))


def _unknown(body: dict[str, Any], rules: Rules) -> Rejection | None:
    if rules.known_params is not None:
        for key in body:
            if key not in rules.known_params:
                return Rejection(f"Unrecognized request argument supplied: {key}")
    return None


def _reasoning(body: dict[str, Any], rules: Rules) -> Rejection | None:
    if rules.reasoning_models is None:
        return None
    if not rules.reasoning_models.match(body["model"]):
        return Rejection("Unrecognized request argument supplied: reasoning_effort") if "reasoning_effort" in body \
            else None
    for key in _NOT_FOR_REASONING:
        if body.get(key) is not None:
            extra = " Use 'max_completion_tokens' instead." if key == "max_tokens" else ""
            return Rejection(f"Unsupported parameter: '{key}' is not supported with this model.{extra}", key,
                             "unsupported_parameter")
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        return Rejection(f"Unsupported value: 'temperature' does not support {temperature} with this model. Only the "
                         "default (1) value is supported.", "temperature", "unsupported_value")
    return None


def _name(name: Any, param: str, rules: Rules) -> Rejection | None:
    if not isinstance(name, str):
        return Rejection(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if rules.max_name is None:
        return None
    if len(name) > rules.max_name:
        return Rejection(f"Invalid '{param}': string too long. Expected a string with maximum length "
                         f"{rules.max_name}, but got a string with length {len(name)} instead.", param,
                         "string_above_max_length")
    if not _NAME.match(name):
        return Rejection(f"Invalid '{param}': string does not match pattern. Expected a string that matches the "
                         f"pattern '{_NAME_PATTERN}'.", param, "invalid_value")
    return None


def _tools(body: dict[str, Any], rules: Rules) -> Rejection | None:
    tools = body.get("tools")
    for i, t in enumerate(tools if isinstance(tools, list) else ()):
        fn = t.get("function") if isinstance(t, dict) else None
        found = _name(fn.get("name") if isinstance(fn, dict) else None, f"tools[{i}].function.name", rules)
        if found:
            return found
    if not tools:
        for key in ("tool_choice", "parallel_tool_calls"):
            if body.get(key) is not None:
                return Rejection(f"Invalid value for '{key}': '{key}' is only allowed when 'tools' are specified.",
                                 key)
    return None


def _response_format(body: dict[str, Any], rules: Rules) -> Rejection | None:
    fmt = body.get("response_format")
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if fmt is None or kind == "text":
        return None
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            return Rejection("Missing required parameter: 'response_format.json_schema'.",
                             "response_format.json_schema", "missing_required_parameter")
        if not isinstance(spec.get("name"), str):
            return Rejection("Missing required parameter: 'response_format.json_schema.name'.",
                             "response_format.json_schema.name", "missing_required_parameter")
        return None
    if kind == "json_object":
        if rules.json_word and not any(_JSON.search(str(m.get("content"))) for m in body["messages"]):
            return Rejection("'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                             "'json_object'.", "messages")
        return None
    return Rejection(f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', and 'text'.",
                     "response_format.type", "invalid_value")


def _messages(messages: list[dict[str, Any]], rules: Rules) -> Rejection | None:
    calls_at, pending = -1, []  # the assistant message whose calls the next tool messages answer
    for i, m in enumerate(messages):
        role = m["role"]
        if role != "tool" and pending:
            return _unanswered(calls_at, pending)
        if role == "tool":
            call_id = m.get("tool_call_id")
            if calls_at < 0:
                return Rejection("Invalid parameter: messages with role 'tool' must be a response to a preceeding "
                                 "message with 'tool_calls'.", f"messages.[{i}].role")
            if call_id not in pending:
                return Rejection(f"Invalid parameter: 'tool_call_id' of '{call_id}' not found in 'tool_calls' of "
                                 "previous message.", f"messages.[{i}].tool_call_id")
            pending.remove(call_id)
            continue
        calls_at = -1
        if role == "assistant" and m.get("tool_calls"):
            found = _calls(m["tool_calls"], i, rules)
            if isinstance(found, Rejection):
                return found
            calls_at, pending = i, found
        elif role == "user" and isinstance(m.get("content"), list):
            for j, part in enumerate(m["content"]):
                if not isinstance(part, dict) or part.get("type") != "image_url":
                    continue
                spec = part.get("image_url")
                if not (isinstance(spec, dict) and isinstance(spec.get("url"), str)):
                    param = f"messages[{i}].content[{j}].image_url.url"
                    return Rejection(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    return _unanswered(calls_at, pending) if pending else None


def _calls(calls: Any, i: int, rules: Rules) -> list[str] | Rejection:
    ids = []
    for j, c in enumerate(calls if isinstance(calls, list) else ()):
        at = f"messages[{i}].tool_calls[{j}]"
        call_id = c.get("id") if isinstance(c, dict) else None
        if not isinstance(call_id, str):
            return Rejection(f"Missing required parameter: '{at}.id'.", f"{at}.id", "missing_required_parameter")
        if rules.max_call_id is not None and len(call_id) > rules.max_call_id:
            return Rejection(f"Invalid '{at}.id': string too long. Expected a string with maximum length "
                             f"{rules.max_call_id}, but got a string with length {len(call_id)} instead.", f"{at}.id",
                             "string_above_max_length")
        fn = c.get("function")
        found = _name(fn.get("name") if isinstance(fn, dict) else None, f"{at}.function.name", rules)
        if found:
            return found
        ids.append(call_id)
    return ids


def _unanswered(at: int, pending: list[str]) -> Rejection:
    return Rejection("An assistant message with 'tool_calls' must be followed by tool messages responding to each "
                     "'tool_call_id'. The following tool_call_ids did not have response messages: "
                     + ", ".join(pending), f"messages.[{at}].role")


# -- reading ----------------------------------------------------------------------------------------


def read_tools(body: dict[str, Any]) -> ToolState:
    """The tool-related part of a (checked) request."""
    state = ToolState()
    for t in body.get("tools") or ():
        fn = t.get("function") or {}
        state.tools.append(FakeTool(fn["name"], dict(fn.get("parameters") or {})))
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        state.choice = "tool:" + str((choice.get("function") or {}).get("name"))
    elif isinstance(choice, str):
        state.choice = choice
    state.parallel = body.get("parallel_tool_calls") is not False
    fmt = body.get("response_format") or {}
    if fmt.get("type") in ("json_object", "json_schema"):
        state.json_mode = True
        if fmt["type"] == "json_schema":
            state.json_schema = dict(fmt["json_schema"].get("schema") or {"type": "object"})
    messages = body["messages"]
    last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            state.called += [c["function"]["name"] for c in m.get("tool_calls") or ()]
        elif m["role"] == "tool" and i > last_assistant:
            state.results.append(text_of(m.get("content")))
        elif m["role"] == "user" and isinstance(m.get("content"), list):
            state.images += sum(1 for p in m["content"] if isinstance(p, dict) and p.get("type") == "image_url")
    return state


def text_of(content: Any) -> str:
    """A message's text: its string, or its text parts joined."""
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return content if isinstance(content, str) else ""
