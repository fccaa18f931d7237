"""Gemini's generateContent shapes of llmrelay's vocabulary (shared/reference/providers.md §3, python-genai
`types.py`): the request body out, the contents back in (`contents_from_wire`, the inverse the round-trip
property test holds `contents_to_wire` to), and the parts of an answer in.

Turns: `contents` with the roles `user` and `model`; same-role neighbours merge into one content (text
meeting text across the seam joins with a blank line), blank text is dropped.  Parts:

    Text                 {"text"}
    Image                {"inlineData": {mimeType, data}}, or {"fileData": {fileUri, mimeType?}} for a URL
    ToolCall             {"functionCall": {id, name, args}, "thoughtSignature"?}   (model turns)
    ToolResult           {"functionResponse": {id, name, response: {"result"|"error": content}}}   (user turns)
    Reasoning            not sent: thought summaries need not return, and Gemini takes no one else's

A result's function name is its own, else the name of the call with its id earlier in the conversation.
The ids go back as they came: the caller's, or the stable ones `call_id` makes for a Gemini call that
had none (Gemini matches results to calls by name and order; an id is optional both ways).

Thought signatures: a call's signature rides back on its part.  Gemini 3 refuses a model turn of the
current exchange whose first call has none (a call made by another model, or before signatures were
kept): such a call gets Google's documented placeholder, `DUMMY_SIGNATURE`, which bypasses the check.

Anything Gemini cannot take is a `WireError`, raised before anything is sent: a JSON Schema keyword
(`google_schema`), a tool name outside Gemini's rule, tools together with JSON output on a model before
Gemini 3 ("Function calling with a response mime type: 'application/json' is unsupported").
"""

from __future__ import annotations

import hashlib
import json
import mimetypes
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..content import Image, Message, OutputFormat, Part, Reasoning, Text, Tool, ToolCall, ToolChoice, ToolResult
from ..content import image_bytes as _image_bytes
from ..types import ChatRequest
from .google_schema import SchemaError, translate

MAX_STOP_SEQUENCES = 5
TEMPERATURE_RANGE = (0.0, 2.0)
FUNCTION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,63}$")
"""Gemini's rule: a letter or underscore first, then letters, digits, _ . : -, at most 64 in all."""
DUMMY_SIGNATURE = "context_engineering_is_the_way_to_go"
"""Google's placeholder for a function call that carries no signature of Gemini 3's own."""
THINKING_BUDGETS = {"low": 1024, "medium": 8192, "high": 24576}
_MODES = {"auto": "AUTO", "required": "ANY", "tool": "ANY", "none": "NONE"}
_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"))


class WireError(ValueError):
    """A request Gemini cannot take, found before sending.  `falls_through`: another provider may."""

    def __init__(self, message: str, *, falls_through: bool = True) -> None:
        super().__init__(message)
        self.falls_through = falls_through


def is_gemini_3(model: str) -> bool:
    return model.startswith("gemini-3")


# -- the request -------------------------------------------------------------------------------------


def request_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """The wire request, every value inside what the API accepts (a 400 would be fatal)."""
    contents = contents_to_wire(request.messages, sign_calls=is_gemini_3(model))
    if not contents:
        raise WireError("the request has no non-empty message", falls_through=False)
    body: dict[str, Any] = {"contents": contents}
    if request.system and request.system.strip():
        body["systemInstruction"] = {"parts": [{"text": request.system}]}
    if request.tools:
        body["tools"] = [{"functionDeclarations": tools_to_wire(request.tools)}]
        if request.tool_choice is not None:
            body["toolConfig"] = tool_config_to_wire(request.tool_choice)
        calling = request.tool_choice is None or request.tool_choice.mode != "none"
        if request.output is not None and calling and not is_gemini_3(model):
            raise WireError(f"{model} cannot take tools and a JSON response format together (Gemini 3 can)")
    config = generation_config(request)
    if config:
        body["generationConfig"] = config
    return body


def generation_config(request: ChatRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if request.max_tokens is not None:
        config["maxOutputTokens"] = max(1, request.max_tokens)
    if request.temperature is not None and request.temperature == request.temperature:
        low, high = TEMPERATURE_RANGE
        config["temperature"] = min(max(float(request.temperature), low), high)
    stops = [s for s in request.stop if s]
    if len(stops) > MAX_STOP_SEQUENCES:
        raise WireError(f"Gemini takes at most {MAX_STOP_SEQUENCES} stop sequences; the request has {len(stops)}")
    if stops:
        config["stopSequences"] = stops
    s = request.sampling
    for name, value in (("topP", s.top_p), ("topK", s.top_k), ("seed", s.seed),
                        ("presencePenalty", s.presence_penalty), ("frequencyPenalty", s.frequency_penalty)):
        if value is not None:
            config[name] = value
    if s.reasoning_effort is not None:
        budget = THINKING_BUDGETS.get(s.reasoning_effort)
        if budget is None:
            raise WireError(f"Gemini takes reasoning_effort {', '.join(THINKING_BUDGETS)}, "
                            f"not {s.reasoning_effort!r}")
        config["thinkingConfig"] = {"thinkingBudget": budget, "includeThoughts": True}
    if request.output is not None:
        config.update(output_to_wire(request.output))
    return config


def output_to_wire(output: OutputFormat) -> dict[str, Any]:
    """`responseMimeType` (and `responseSchema`, translated) for a JSON answer."""
    config: dict[str, Any] = {"responseMimeType": "application/json"}
    if output.type == "json_schema" and output.schema is not None:
        try:
            config["responseSchema"] = translate(output.schema, "schema", order=True)
        except SchemaError as exc:
            raise WireError(f"response_format {output.name!r}: {exc}") from None
    return config


def tools_to_wire(tools: Sequence[Tool]) -> list[dict[str, Any]]:
    """`functionDeclarations`: a tool without parameters declares none (Gemini refuses an empty object)."""
    out = []
    for i, t in enumerate(tools):
        if not FUNCTION_NAME.match(t.name):
            raise WireError(f"tools[{i}] {t.name!r}: Gemini takes function names of letters, digits, _ . : - "
                            "(a letter or _ first, at most 64)")
        decl: dict[str, Any] = {"name": t.name}
        if t.description:
            decl["description"] = t.description
        try:
            params = translate(t.parameters, "parameters")
        except SchemaError as exc:
            raise WireError(f"tools[{i}] {t.name!r}: {exc}") from None
        if params.get("type") != "OBJECT" and params:
            raise WireError(f"tools[{i}] {t.name!r}: parameters: Gemini takes only an object schema here")
        if params.get("properties"):
            decl["parameters"] = params
        out.append(decl)
    return out


def tool_config_to_wire(choice: ToolChoice) -> dict[str, Any]:
    config: dict[str, Any] = {"mode": _MODES[choice.mode]}
    if choice.mode == "tool" and choice.name:
        config["allowedFunctionNames"] = [choice.name]
    return {"functionCallingConfig": config}


# -- turns, out ----------------------------------------------------------------------------------------


def contents_to_wire(messages: Iterable[Message], *, sign_calls: bool = False) -> list[dict[str, Any]]:
    """`contents` (see the module docstring).  `sign_calls`: give the first call of each model turn of the
    current exchange (since the last user turn that is not only results) the placeholder signature if it
    has none, as Gemini 3 requires."""
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}
    for m in messages:
        role = "model" if m.role == "assistant" else "user"
        parts = [w for p in m.parts if (w := _part_to_wire(p, names)) is not None]
        if not parts:
            continue
        if contents and contents[-1]["role"] == role:
            last = contents[-1]["parts"]
            if "text" in last[-1] and "text" in parts[0] and len(last[-1]) == 1 and len(parts[0]) == 1:
                last[-1] = {"text": last[-1]["text"] + "\n\n" + parts[0]["text"]}
                parts = parts[1:]
            last.extend(parts)
        else:
            contents.append({"role": role, "parts": parts})
    if sign_calls:
        _sign_current_turn(contents)
    return contents


def _part_to_wire(p: Part, names: dict[str, str]) -> dict[str, Any] | None:
    kind = type(p)
    if kind is Text:
        return {"text": p.text} if p.text.strip() else None
    if kind is ToolCall:
        names[p.id] = p.name
        call: dict[str, Any] = {"name": p.name, "args": _arguments(p)}
        if p.id:
            call = {"id": p.id, **call}
        part: dict[str, Any] = {"functionCall": call}
        if p.signature:
            part["thoughtSignature"] = p.signature
        return part
    if kind is ToolResult:
        name = p.name or names.get(p.call_id)
        if not name:
            raise WireError(f"the tool result for call {p.call_id!r} names no function, and no earlier call "
                            "has that id: Gemini needs the function's name")
        response = {"error" if p.is_error else "result": p.content}
        result: dict[str, Any] = {"name": name, "response": response}
        if p.call_id:
            result = {"id": p.call_id, **result}
        return {"functionResponse": result}
    if kind is Image:
        if p.data is not None:
            return {"inlineData": {"mimeType": p.media_type or _sniff(p), "data": p.data}}
        uri: dict[str, Any] = {"fileUri": p.url}
        guessed = mimetypes.guess_type(urlsplit(p.url or "").path)[0]
        if guessed and guessed.startswith("image/"):
            uri["mimeType"] = guessed
        return {"fileData": uri}
    return None  # Reasoning: not sent back


def _arguments(call: ToolCall) -> dict[str, Any]:
    args = call.arguments_object()
    if args is None:
        raise WireError(f"the arguments of tool call {call.id!r} ({call.name}) are not a JSON object: "
                        "Gemini takes only an object")
    return args


def _sniff(image: Image) -> str:
    head = _image_bytes(Image(data=(image.data or "")[:64]))
    for magic, mime in _MAGIC:
        if head.startswith(magic):
            return mime
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    raise WireError("an inline image has no media type and is not PNG, JPEG, GIF or WebP: Gemini needs its type")


def _sign_current_turn(contents: list[dict[str, Any]]) -> None:
    start = 0
    for i, content in enumerate(contents):
        if content["role"] == "user" and any("functionResponse" not in p for p in content["parts"]):
            start = i
    for content in contents[start:]:
        if content["role"] != "model":
            continue
        first = next((p for p in content["parts"] if "functionCall" in p), None)
        if first is not None and not first.get("thoughtSignature"):
            first["thoughtSignature"] = DUMMY_SIGNATURE


# -- turns, in (the inverse) ---------------------------------------------------------------------------


def contents_from_wire(contents: Sequence[Mapping[str, Any]]) -> list[Message]:
    """The turns `contents` holds; ValueError for a part this module never writes."""
    turns = []
    for content in contents:
        role = "assistant" if content.get("role") == "model" else "user"
        turns.append(Message(role, [_part_from_wire(p) for p in content.get("parts") or ()]))
    return turns


def _part_from_wire(p: Mapping[str, Any]) -> Part:
    signature = p.get("thoughtSignature")
    signature = None if signature == DUMMY_SIGNATURE else signature
    if "text" in p:
        return Reasoning(p["text"], provider="google") if p.get("thought") else Text(p["text"])
    if "functionCall" in p:
        c = p["functionCall"]
        return ToolCall(c.get("id") or "", c["name"], arguments_text(c.get("args") or {}), signature)
    if "functionResponse" in p:
        r = p["functionResponse"]
        response = r.get("response") or {}
        is_error = "error" in response and "result" not in response
        content = response.get("error" if is_error else "result")
        return ToolResult(r.get("id") or "", content if isinstance(content, str) else json.dumps(response),
                          is_error, r.get("name"))
    if "inlineData" in p:
        return Image(data=p["inlineData"]["data"], media_type=p["inlineData"].get("mimeType"))
    if "fileData" in p:
        return Image(url=p["fileData"]["fileUri"])
    raise ValueError(f"not a part llmrelay writes: {sorted(p)}")


# -- the answer ----------------------------------------------------------------------------------------


def call_id(response_id: str | None, position: int, name: str) -> str:
    """A stable id for the `position`-th call (0-based) of an answer whose calls Gemini gave no id: the
    same whether the answer is read whole or streamed, so results map back to it."""
    digest = hashlib.sha256(f"{response_id or ''}\x00{position}\x00{name}".encode()).hexdigest()
    return "call_" + digest[:24]


def arguments_text(args: Mapping[str, Any]) -> str:
    """A call's arguments as the JSON text llmrelay carries them (`ToolCall.arguments`)."""
    return json.dumps(args, ensure_ascii=False)


@dataclass(slots=True)
class Parts:
    """What a run of answer parts holds: the text, the thought summaries, the function calls."""

    text: list[str] = field(default_factory=list)
    thoughts: list[str] = field(default_factory=list)
    calls: list[ToolCall] = field(default_factory=list)


def read_parts(parts: Sequence[Mapping[str, Any]], response_id: str | None, first_call: int = 0) -> Parts:
    """The parts of a candidate's content; `first_call` is how many calls came before (in a stream).
    ValueError when a function call has no name or its args are not an object."""
    out = Parts()
    for p in parts:
        text = p.get("text")
        if isinstance(text, str):
            (out.thoughts if p.get("thought") is True else out.text).append(text)
            continue
        fc = p.get("functionCall")
        if fc is None:
            continue
        name, args = (fc.get("name"), fc.get("args", {})) if isinstance(fc, Mapping) else (None, None)
        if not isinstance(name, str) or not name or not isinstance(args, dict):
            raise ValueError("functionCall")
        given = fc.get("id")
        signature = p.get("thoughtSignature")
        out.calls.append(ToolCall(given if isinstance(given, str) and given else
                                  call_id(response_id, first_call + len(out.calls), name),
                                  name, arguments_text(args),
                                  signature if isinstance(signature, str) and signature else None))
    return out


__all__ = [
    "DUMMY_SIGNATURE", "FUNCTION_NAME", "THINKING_BUDGETS", "Parts", "WireError", "arguments_text", "call_id",
    "contents_from_wire", "contents_to_wire", "generation_config", "is_gemini_3", "output_to_wire", "read_parts",
    "request_body", "tool_config_to_wire", "tools_to_wire",
]
