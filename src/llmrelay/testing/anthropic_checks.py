"""What the fake Anthropic reads from a Messages request, and what it refuses as the real API does
(a 400 `invalid_request_error` with the API's message; the messages marked "illustrative" below are
ours where the real text is not known, the rest are the API's own).

Refused, beside the basics (required fields, a `system` role, empty turns, a final assistant turn
ending in whitespace, temperature outside 0–1, bad `stop_sequences`):

- tools: a name not matching `^[a-zA-Z0-9_-]{1,64}$`, an `input_schema` that is not an object schema,
  two tools of one name; a `tool_choice` of another shape, or naming no tool of the request
  (illustrative);
- turns: a `tool_use` not answered by a `tool_result` in the very next turn, a `tool_result` answering
  no `tool_use` of the turn before, `tool_result` blocks after other blocks of their turn
  (illustrative), tool blocks in a request that defines no tools, duplicate `tool_use` ids, an id
  not matching `^[a-zA-Z0-9_-]+$`, a `tool_use` input that is not an object;
- images: a media type other than image/jpeg|png|gif|webp, data that is not base64, a URL that is
  not http(s);
- thinking: a block without a signature, or with one this fake did not issue for that text; with
  `thinking` enabled, a budget under 1024 or not under `max_tokens`, a temperature other than 1,
  top_k (illustrative), a top_p under 0.95 (illustrative), a forced tool choice, and a tool-use loop
  whose last assistant turn does not start with its thinking;
- structured output (`output_config.format`): on a model before the 4.5 generation (illustrative),
  an object without `additionalProperties: false`, a keyword the subset lacks (illustrative);
- the 4.5 generation and later: temperature and top_p together.

`cache_control` (prompt caching) is `anthropic_cache`'s to check.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from typing import Any

from .tools import FakeTool, ToolState

TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
TOOL_ID = re.compile(r"^[a-zA-Z0-9_-]+$")
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
CURRENT_MODEL = re.compile(r"^claude-(?:opus|sonnet|haiku)-(?:4-(?:[5-9]|\d\d)|(?:[5-9]|\d\d))(?:\D|$)")
"""The Claude 4.5 generation and later: structured output, temperature or top_p but not both."""
_SIGNING_KEY = b"llmrelay fake anthropic thinking"
_NOT_IN_SUBSET = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
                  "maxLength", "maxItems", "uniqueItems", "minProperties", "maxProperties", "patternProperties",
                  "not", "oneOf", "if")
THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking"


class Refused(Exception):
    """The 400 message the real API would answer."""


def sign(thinking: str) -> str:
    """The signature this fake gives a thinking block (and accepts back only on the same text)."""
    return base64.b64encode(hmac.new(_SIGNING_KEY, thinking.encode(), hashlib.sha256).digest()).decode()


def check_options(body: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if temperature is not None and (_not_number(temperature) or not 0 <= temperature <= 1):
        raise Refused("temperature: range: 0..1")
    top_p, top_k = body.get("top_p"), body.get("top_k")
    if top_p is not None and (_not_number(top_p) or not 0 <= top_p <= 1):
        raise Refused("top_p: range: 0..1")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise Refused("top_k: Input should be greater than or equal to 0")
    if temperature is not None and top_p is not None and CURRENT_MODEL.match(str(body.get("model"))):
        raise Refused("`temperature` and `top_p` cannot both be specified for this model. Please use only one.")
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise Refused("stop_sequences: Input should be a valid list of strings")
        if any(not s.strip() for s in stops):
            raise Refused("stop_sequences: each stop sequence must contain non-whitespace")
    metadata = body.get("metadata")
    if metadata is not None and (not isinstance(metadata, dict) or set(metadata) - {"user_id"}
                                 or not isinstance(metadata.get("user_id", ""), str | None)):
        raise Refused("metadata: Extra inputs are not permitted")


def _not_number(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, int | float)


def system_text(system: Any) -> str:
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    if isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in system):
        return "\n".join(str(b.get("text", "")) for b in system)
    raise Refused("system: Input should be a valid string or a list of text blocks")


# -- tools, tool choice, thinking, structured output ---------------------------------------------------


def read_tools(body: dict[str, Any], state: ToolState) -> None:
    tools = body.get("tools")
    if tools is None:
        tools = []
    if not isinstance(tools, list):
        raise Refused("tools: Input should be a valid list")
    for i, t in enumerate(tools):
        if not isinstance(t, dict):
            raise Refused(f"tools.{i}: Input should be a valid dictionary")
        name, schema = t.get("name"), t.get("input_schema")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise Refused(f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
        if schema is None:
            raise Refused(f"tools.{i}.custom.input_schema: Field required")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise Refused(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
        state.tools.append(FakeTool(name, schema))
    names = [t.name for t in state.tools]
    if len(set(names)) != len(names):
        raise Refused("tools: Tool names must be unique.")
    choice = body.get("tool_choice")
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise Refused("tool_choice: Input tag found using 'type' does not match any of the expected tags: "
                      "'auto', 'any', 'tool', 'none'")
    if not state.tools:  # illustrative
        raise Refused("tool_choice: tool_choice may only be specified while providing tools")
    if kind == "tool":
        if choice.get("name") not in names:  # illustrative
            raise Refused(f"tool_choice.name: no tool named {choice.get('name')!r} among the tools")
        state.choice = "tool:" + choice["name"]
    else:
        state.choice = {"auto": "auto", "any": "required", "none": "none"}[kind]
    parallel_off = choice.get("disable_parallel_tool_use", False)
    if not isinstance(parallel_off, bool) or (kind == "none" and "disable_parallel_tool_use" in choice):
        raise Refused("tool_choice.disable_parallel_tool_use: Extra inputs are not permitted")
    state.parallel = not parallel_off


def read_thinking(body: dict[str, Any], state: ToolState) -> bool:
    """Whether thinking is on (and its rules kept)."""
    thinking = body.get("thinking")
    if thinking is None:
        return False
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return False
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
            raise Refused("thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if body["max_tokens"] <= budget:
            raise Refused("`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our "
                          f"documentation at {THINKING_DOCS}#max-tokens-and-context-window-size")
    elif kind != "adaptive":
        raise Refused("thinking: Input tag found using 'type' does not match any of the expected tags: "
                      "'enabled', 'disabled', 'adaptive'")
    if body.get("temperature", 1) != 1:
        raise Refused("`temperature` may only be set to 1 when thinking is enabled. Please consult our "
                      f"documentation at {THINKING_DOCS}#feature-compatibility")
    if body.get("top_k") is not None:
        raise Refused("`top_k` must be unset when thinking is enabled.")  # illustrative
    if body.get("top_p", 1) < 0.95:
        raise Refused("`top_p` must be greater than or equal to 0.95 or unset when thinking is enabled.")
    if state.choice == "required" or state.choice.startswith("tool:"):
        raise Refused("Thinking may not be enabled when tool_choice forces tool use.")
    return True


def read_output(body: dict[str, Any], state: ToolState) -> None:
    config = body.get("output_config")
    if config is None:
        return
    if not isinstance(config, dict) or set(config) - {"format", "effort"}:
        raise Refused("output_config: Extra inputs are not permitted")
    fmt = config.get("format")
    if fmt is None:
        return
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise Refused("output_config.format: Input should be {'type': 'json_schema', 'schema': {...}}")
    if not CURRENT_MODEL.match(str(body["model"])):  # illustrative
        raise Refused(f"output_config.format: structured outputs are not supported for the model {body['model']!r}")
    _check_subset(fmt["schema"], "output_config.format.schema")
    state.json_schema, state.json_mode = fmt["schema"], True


def _check_subset(schema: Any, where: str) -> None:
    if not isinstance(schema, dict):
        return
    kind = schema.get("type")
    for key in _NOT_IN_SUBSET:
        if key in schema:  # illustrative
            raise Refused(f"{where}: For '{kind}' type, property '{key}' is not supported")
    if kind == "object" or "properties" in schema:
        extra = schema.get("additionalProperties")
        if extra is True:
            raise Refused(f"{where}: For 'object' type, 'additionalProperties: true' is not supported. "
                          "Please set 'additionalProperties' to false")
        if extra is not False:
            raise Refused(f"{where}: For 'object' type, 'additionalProperties' must be explicitly set to false")
    for key in ("properties", "$defs", "definitions"):
        for sub in (schema.get(key) or {}).values():
            _check_subset(sub, where)
    for sub in [schema.get("items"), *(schema.get("anyOf") or []), *(schema.get("allOf") or [])]:
        _check_subset(sub, where)


# -- turns ---------------------------------------------------------------------------------------------


def read_turns(messages: Any, state: ToolState, thinking: bool) -> list[tuple[str, str]]:
    """(role, text) per message, with the tool results, calls and images put in `state`."""
    if not isinstance(messages, list):
        raise Refused("messages: Input should be a valid list")
    turns: list[tuple[str, str]] = []
    blocks_of: list[list[dict[str, Any]]] = []
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role == "system":
            raise Refused('Unexpected role "system". The Messages API accepts a top-level `system` '
                          'parameter, not "system" as an input message role.')
        if role not in ("user", "assistant"):
            raise Refused(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = m.get("content")
        last = i == len(messages) - 1
        if isinstance(content, str):
            if not content and not (role == "assistant" and last):
                raise Refused(f"messages.{i}: all messages must have non-empty content except for the optional "
                              "final assistant message")
            blocks = [{"type": "text", "text": content}] if content else []
        elif isinstance(content, list):
            if not content and not (role == "assistant" and last):
                raise Refused(f"messages.{i}: all messages must have non-empty content except for the optional "
                              "final assistant message")
            blocks = [_check_block(b, role, f"messages.{i}.content.{j}", state) for j, b in enumerate(content)]
            _check_order(blocks, role, i)
        else:
            raise Refused(f"messages.{i}.content: Input should be a valid string or list of content blocks")
        blocks_of.append(blocks)
        turns.append((role, "".join(b["text"] for b in blocks if b["type"] == "text")))
    if not turns:
        raise Refused("messages: at least one message is required")
    _check_pairs(blocks_of, [r for r, _ in turns], bool(state.tools), thinking)
    last_text = next((b["text"] for b in reversed(blocks_of[-1]) if b["type"] == "text"), "")
    if turns[-1][0] == "assistant" and blocks_of[-1] and blocks_of[-1][-1]["type"] == "text" \
            and last_text != last_text.rstrip():
        raise Refused("messages: final assistant content cannot end with trailing whitespace")
    if turns[-1][0] == "user":
        state.results = [_result_text(b.get("content")) for b in blocks_of[-1] if b["type"] == "tool_result"]
    state.called = [b["name"] for blocks, (role, _) in zip(blocks_of, turns, strict=True) if role == "assistant"
                    for b in blocks if b["type"] == "tool_use"]
    return turns


def _check_block(b: Any, role: str, where: str, state: ToolState) -> dict[str, Any]:
    kind = b.get("type") if isinstance(b, dict) else None
    if kind == "text":
        text = b.get("text")
        if not isinstance(text, str):
            raise Refused(f"{where}.text: Input should be a valid string")
        if not text:
            raise Refused(f"{where}.text: text content blocks must be non-empty")
        if not text.strip():
            raise Refused(f"{where}.text: text content blocks must contain non-whitespace text")
    elif kind == "image":
        _check_image(b.get("source"), where + ".image.source")
        state.images += 1
    elif kind == "tool_use":
        if not isinstance(b.get("id"), str) or not TOOL_ID.match(b["id"]):
            raise Refused(f"{where}.tool_use.id: String should match pattern '^[a-zA-Z0-9_-]+$'")
        if not isinstance(b.get("name"), str) or not b["name"]:
            raise Refused(f"{where}.tool_use.name: Field required")
        if not isinstance(b.get("input"), dict):
            raise Refused(f"{where}.tool_use.input: Input should be a valid dictionary")
    elif kind == "tool_result":
        if not isinstance(b.get("tool_use_id"), str):
            raise Refused(f"{where}.tool_result.tool_use_id: Field required")
        if b.get("is_error") is not None and not isinstance(b["is_error"], bool):
            raise Refused(f"{where}.tool_result.is_error: Input should be a valid boolean")
        content = b.get("content")
        if isinstance(content, list):
            for k, c in enumerate(content):
                if not isinstance(c, dict) or c.get("type") not in ("text", "image"):
                    raise Refused(f"{where}.tool_result.content.{k}: Input tag does not match any of the expected "
                                  "tags: 'text', 'image'")
                if c["type"] == "image":
                    _check_image(c.get("source"), f"{where}.tool_result.content.{k}.image.source")
                    state.images += 1
        elif content is not None and not isinstance(content, str):
            raise Refused(f"{where}.tool_result.content: Input should be a valid string or list")
    elif kind == "thinking":
        if not isinstance(b.get("thinking"), str):
            raise Refused(f"{where}.thinking.thinking: Field required")
        if not isinstance(b.get("signature"), str):
            raise Refused(f"{where}.thinking.signature: Field required")
        if not hmac.compare_digest(b["signature"], sign(b["thinking"])):
            raise Refused(f"{where}: Invalid `signature` in `thinking` block")
    elif kind == "redacted_thinking":
        if not isinstance(b.get("data"), str) or not b["data"]:
            raise Refused(f"{where}.redacted_thinking.data: Field required")
    else:
        raise Refused(f"{where}: Input tag {kind!r} found using 'type' does not match any of the expected tags")
    if (role == "user") != (kind in ("text", "image", "tool_result")) and kind != "text":
        raise Refused(f"{where}: {kind} blocks are not allowed in {role} messages")  # illustrative
    return b


def _check_image(source: Any, where: str) -> None:
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64":
        if source.get("media_type") not in IMAGE_TYPES:
            raise Refused(f"{where}.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or "
                          "'image/webp'")
        try:
            binascii.a2b_base64(str(source.get("data", "")).encode("ascii"), strict_mode=True)
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise Refused(f"{where}.base64.data: invalid base64 data") from None  # illustrative
        if not source.get("data"):
            raise Refused(f"{where}.base64.data: Field required")
    elif kind == "url":
        if not isinstance(source.get("url"), str) or not source["url"].startswith(("http://", "https://")):
            raise Refused(f"{where}.url.url: Input should be a valid URL")
    else:
        raise Refused(f"{where}: Input tag {kind!r} found using 'type' does not match any of the expected tags: "
                      "'base64', 'url', 'file'")


def _check_order(blocks: list[dict[str, Any]], role: str, i: int) -> None:
    if role != "user":
        return
    seen_other = False
    for j, b in enumerate(blocks):
        if b["type"] != "tool_result":
            seen_other = True
        elif seen_other:  # illustrative
            raise Refused(f"messages.{i}.content.{j}: `tool_result` blocks must come first in the user message "
                          "content, before any other content")


def _check_pairs(blocks_of: list[list[dict[str, Any]]], roles: list[str], have_tools: bool, thinking: bool) -> None:
    used: set[str] = set()
    asked: list[str] = []
    for i, (blocks, role) in enumerate(zip(blocks_of, roles, strict=True)):
        if role == "user":
            for j, b in enumerate(blocks):
                if b["type"] == "tool_result" and b["tool_use_id"] not in asked:
                    raise Refused(f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                                  f"blocks: {b['tool_use_id']}. Each `tool_result` block must have a "
                                  "corresponding `tool_use` block in the previous message.")
        answered = {b["tool_use_id"] for b in blocks if b["type"] == "tool_result"} if role == "user" else set()
        missing = [a for a in asked if a not in answered]
        if missing:
            raise Refused(f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately "
                          f"after: {', '.join(missing)}. Each `tool_use` block must have a corresponding "
                          "`tool_result` block in the next message.")
        asked = [b["id"] for b in blocks if b["type"] == "tool_use"] if role == "assistant" else []
        if used & set(asked) or len(set(asked)) != len(asked):
            raise Refused(f"messages.{i}: `tool_use` ids must be unique")
        used.update(asked)
    if asked:
        raise Refused(f"messages.{len(roles) - 1}: `tool_use` ids were found without `tool_result` blocks "
                      f"immediately after: {', '.join(asked)}. Each `tool_use` block must have a corresponding "
                      "`tool_result` block in the next message.")
    if used and not have_tools:
        raise Refused("Requests which include `tool_use` or `tool_result` blocks must define tools.")
    if thinking and len(roles) >= 2 and roles[-1] == "user" and roles[-2] == "assistant" \
            and any(b["type"] == "tool_result" for b in blocks_of[-1]):
        first = blocks_of[-2][0]["type"] if blocks_of[-2] else "nothing"
        if first not in ("thinking", "redacted_thinking"):
            raise Refused(f"messages.{len(roles) - 2}.content.0.type: Expected `thinking` or `redacted_thinking`, "
                          f"but found `{first}`. When `thinking` is enabled, a final `assistant` message must start "
                          "with a thinking block (preceeding the lastmost set of `tool_use` and `tool_result` "
                          "blocks). We recommend you include thinking blocks from previous turns. To avoid this "
                          f"requirement, disable `thinking`. Please consult our documentation at {THINKING_DOCS}")


def _result_text(content: Any) -> str:
    if isinstance(content, list):
        return "".join(c.get("text", "") for c in content if isinstance(c, dict) and c.get("type") == "text")
    return content if isinstance(content, str) else ""
