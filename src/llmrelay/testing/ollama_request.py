"""How the fake Ollama reads a native `/api/chat` body, and what it rejects, in the order the real
server checks (ollama/ollama `api/types.go` decoding, then `server/routes.go` `ChatHandler`):

1. decoding (400, Go's `encoding/json` error text): a `stream` that is not a boolean; `messages` or
   `options` of the wrong type; a message whose `content` is not a string; `images` that are not
   base64 (`illegal base64 data at input byte N`: a `data:` URL is not base64); tool-call `arguments`
   that are not a JSON object; a `think` that is neither a boolean nor "high" | "medium" | "low";
2. `model is required`;
3. a role other than system, user, assistant, tool (roles are lower-cased first, as the server does;
   the wording of this 400 is the fake's own: servers differ here);
4. thinking: a model without the thinking capability answers `think: true` (or a level) with
   `"<model>" does not support thinking`; a thinking model thinks unless told `think: false`; a level
   is only for gpt-oss (`think value "high" is not supported for this model`);
5. tools: a model without the tools capability answers with
   `registry.ollama.ai/library/<model>:latest does not support tools`.

Capabilities go by model family, as `ollama show` lists them for the library's models: thinking for
qwen3, deepseek-r1, gpt-oss, magistral; no tools for gemma, gemma2, gemma3, llava, llama3.2-vision,
llama2.  An invalid `format` (neither "json" nor a schema object) fails only when generation starts:
`prompt.options["format_error"]` carries the message (`FakeOllama` answers it with a 500, or in-band
on a stream, as the runner does).

What the request says about tools goes to `prompt.tools` (`testing.tools.ToolState`): the tools, the
`tool` messages after the last assistant turn (the results), the tools earlier assistant turns called,
the images, the JSON schema or JSON mode; the resolved `think` goes to `prompt.options["think"]`.
"""

from __future__ import annotations

import binascii
import re
import string
from collections.abc import Mapping
from typing import Any

from .server import Prompt
from .tools import FakeTool, ToolState

ROLES = ("system", "user", "assistant", "tool")
THINK_LEVELS = ("high", "medium", "low")
_THINKING = re.compile(r"^(qwen3|deepseek-r1|gpt-oss|magistral)([:\-.]|$)")
_LEVELS = re.compile(r"^gpt-oss([:\-]|$)")
_NO_TOOLS = re.compile(r"^(gemma[23]?|llava|llama3\.2-vision|llama2)(:|$)")
_B64 = frozenset(string.ascii_letters + string.digits + "+/")
_DECODE = "json: cannot unmarshal into Go struct field {field} of type {type}"
"""Go's text names the JSON value's type after `unmarshal` (`unmarshal string into`); the fake has
always left it out, and its tests pin that."""


def family(model: str) -> str:
    """`qwen3` of `qwen3:8b`, `library/qwen3`, `registry.ollama.ai/library/qwen3:latest`."""
    return model.rsplit("/", 1)[-1]


def full_name(model: str) -> str:
    """The model's name as the server's errors print it."""
    name = model if ":" in model.rsplit("/", 1)[-1] else model + ":latest"
    parts = name.split("/")
    if len(parts) == 1:
        parts = ["registry.ollama.ai", "library", *parts]
    elif len(parts) == 2:
        parts = ["registry.ollama.ai", *parts]
    return "/".join(parts)


def read_chat(body: Any) -> Prompt | str:
    """The prompt, or the message of the 400 the real server answers."""
    if not isinstance(body, dict):
        return "invalid character looking for beginning of value"
    problem = decoding_error(body)
    if problem:
        return problem
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "model is required"
    messages = body.get("messages") or []
    for m in messages:
        role = str(m.get("role") or "").lower()
        if role not in ROLES:
            return f'invalid role "{role}": a message\'s role is system, user, assistant or tool'
    think = body.get("think")
    problem = think_error(model, think)
    if problem:
        return problem
    if body.get("tools") and _NO_TOOLS.match(family(model)):
        return f"{full_name(model)} does not support tools"
    if think is None and _THINKING.match(family(model)):
        think = True  # a thinking model thinks unless told not to
    prompt = _prompt(model, messages, body)
    prompt.options.update(load=not messages, think=think, format_error=format_error(body.get("format")))
    return prompt


def _prompt(model: str, messages: list[dict[str, Any]], body: dict[str, Any]) -> Prompt:
    state = ToolState(tools=[_tool(t) for t in body.get("tools") or []])
    last_assistant = max((i for i, m in enumerate(messages) if str(m.get("role")).lower() == "assistant"),
                         default=-1)
    system, turns = None, []
    for i, m in enumerate(messages):
        role, content = str(m.get("role")).lower(), m.get("content") or ""
        if role == "system":
            system = content if system is None else system + "\n\n" + content
            continue
        if role == "tool" and i > last_assistant:
            state.results.append(content)
            continue
        turns.append((role, content))
        state.images += len(m.get("images") or [])
        state.called += [c["function"]["name"] for c in m.get("tool_calls") or []]
    fmt = body.get("format")
    if isinstance(fmt, dict):
        state.json_schema, state.json_mode = fmt, True
    elif fmt == "json":
        state.json_mode = True
    options = body.get("options") or {}
    num_predict = options.get("num_predict")
    max_tokens = num_predict if isinstance(num_predict, int) and num_predict >= 0 else None
    stream = body.get("stream")
    return Prompt(model=model, system=system, messages=turns, max_tokens=max_tokens,
                  stream=True if stream is None else stream,  # Ollama streams unless told not to
                  tools=state)


def _tool(t: Any) -> FakeTool:
    fn = t.get("function") if isinstance(t, dict) else None
    fn = fn if isinstance(fn, dict) else {}
    params = fn.get("parameters")
    return FakeTool(str(fn.get("name") or ""), params if isinstance(params, dict) else {})


# -- the checks ------------------------------------------------------------------------------------


def decoding_error(body: Mapping[str, Any]) -> str | None:
    """What Go's JSON decoding of the body into `api.ChatRequest` says, or None."""
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        return _DECODE.format(field="ChatRequest.stream", type="bool")
    messages, options = body.get("messages"), body.get("options")
    if messages is not None and not isinstance(messages, list):
        return _DECODE.format(field="ChatRequest.messages", type="[]api.Message")
    if options is not None and not isinstance(options, dict):
        return _DECODE.format(field="ChatRequest.options", type="map[string]interface {}")
    for m in messages or []:
        problem = message_error(m)
        if problem:
            return problem
    tools = body.get("tools")
    if tools is not None and (not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)):
        return _DECODE.format(field="ChatRequest.tools", type="api.Tools")
    think = body.get("think")
    if think is not None and not isinstance(think, bool):
        if not isinstance(think, str):
            return 'think must be a boolean or string ("high", "medium", "low")'
        if think not in THINK_LEVELS:
            return f'invalid think value: "{think}"'
    return None


def message_error(m: Any) -> str | None:
    if not isinstance(m, dict):
        return _DECODE.format(field="ChatRequest.messages", type="api.Message")
    for key in ("role", "content", "thinking", "tool_name", "tool_call_id"):
        value = m.get(key)
        if value is not None and not isinstance(value, str):
            return _DECODE.format(field=f"Message.messages.{key}", type="string")
    images = m.get("images")
    if images is not None:
        if not isinstance(images, list):
            return _DECODE.format(field="Message.messages.images", type="[]api.ImageData")
        for data in images:
            if not isinstance(data, str):
                return _DECODE.format(field="Message.messages.images", type="api.ImageData")
            at = base64_error_at(data)
            if at is not None:
                return f"illegal base64 data at input byte {at}"
    calls = m.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            return _DECODE.format(field="Message.messages.tool_calls", type="[]api.ToolCall")
        for c in calls:
            fn = c.get("function") if isinstance(c, dict) else None
            if not isinstance(fn, dict):
                return _DECODE.format(field="ToolCall.messages.tool_calls.function",
                                      type="api.ToolCallFunction")
            if not isinstance(fn.get("name"), str):
                return _DECODE.format(field="ToolCallFunction.messages.tool_calls.function.name", type="string")
            args = fn.get("arguments")
            if args is not None and not isinstance(args, dict):
                return _DECODE.format(field="ToolCallFunction.messages.tool_calls.function.arguments",
                                      type="api.ToolCallFunctionArguments")
    return None


def base64_error_at(data: str) -> int | None:
    """Where Go's `base64.StdEncoding` (newlines ignored, padding required) stops reading `data`,
    or None when it is base64."""
    for i, ch in enumerate(data):
        if ch not in _B64 and ch not in "=\r\n":
            return i
    compact = data.replace("\r", "").replace("\n", "")
    try:
        binascii.a2b_base64(compact.encode("ascii"), strict_mode=True)
    except binascii.Error:
        pad = compact.find("=")
        return len(data) - len(data) % 4 if pad < 0 else data.find("=")
    return None


def think_error(model: str, think: Any) -> str | None:
    """The 400 a `think` value gets from this model (after decoding), or None."""
    if think is None or think is False:
        return None
    if not _THINKING.match(family(model)):
        return f'"{model}" does not support thinking'
    if isinstance(think, str) and not _LEVELS.match(family(model)):
        return f'think value "{think}" is not supported for this model'
    return None


def format_error(fmt: Any) -> str | None:
    """The runner's error for a `format` it cannot turn into a grammar, or None."""
    if fmt is None or fmt in ("", "json") or isinstance(fmt, dict):
        return None
    raw = fmt if isinstance(fmt, str) else str(fmt)
    return f'invalid format: "{raw}"; expected "json" or a valid JSON Schema object'

