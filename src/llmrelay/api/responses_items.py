"""The items of OpenAI's Responses API, both ways: a request's `input` read into llmrelay's turns
(`read_input`), and an answer written as `output` items (`answer_items`).  One module, so that an
answer's items sent back as the next request's input (what clients do in a tool loop) read back into
the same assistant turn: `read_input(answer_items(x)) == x` is a property test.

Input items read:

    message  role user           `input_text` -> Text, `input_image` (`image_url`: http(s) or a base64
                                 `data:` URL) -> Image; `file_id` and `input_file` are refused
                                 (llmrelay keeps no files)
             role assistant      `output_text` / `input_text` / `refusal` -> Text
             role system, developer   their text joins the system prompt, in order
    function_call                -> ToolCall (assistant turn)
    function_call_output         -> ToolResult (user turn); its output is text (or `input_text` parts)
    reasoning                    -> Reasoning (assistant turn), see below

Consecutive assistant items (reasoning, message, function calls: one answer is several items) make one
assistant turn; consecutive function call outputs one user turn.  Any other item type (hosted tool
calls, `item_reference`, …) is refused with the item's place as `param`.

Reasoning goes back only to the provider that wrote it.  Every reasoning item llmrelay returns carries
its provenance in `encrypted_content` (`llmrelay:` + the provider's name and, for Anthropic, the
signature or redacted data, base64url JSON; the text itself is the item's summary), whether or not the
request listed `reasoning.encrypted_content` in `include`.  A reasoning item that comes back with it is
kept, marked with its provider, and each adapter sends it only to that provider (Anthropic needs its
signed thinking back in a tool loop).  A reasoning item without it (OpenAI's own, or a client's) cannot
be attributed and is dropped.

Tool-call ids: a call that carries a Gemini thought signature shows it in its `call_id`
(`<id>__thought__<signature>`, as on /v1/chat/completions), so a client that echoes the call sends the
signature back; it is split off again when read.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from ..content import Image, Message, Part, Reasoning, Text, ToolCall, ToolResult, image_from_url
from ..providers.openai_wire import WireError, client_id, split_client_id
from ..types import ChatResponse

REASONING_MARK = "llmrelay:"
_WHY = {"prompt_cache_breakpoint": "prompt cache settings are OpenAI's own and are not relayed",
        "namespace": "tool namespaces are OpenAI's own and are not relayed",
        "async": "asynchronous function calls are OpenAI's own and are not relayed",
        "caller": "programmatic tool calling is OpenAI's own and is not relayed"}

# -- reasoning provenance --------------------------------------------------------------------------------


def reasoning_token(r: Reasoning) -> str | None:
    """The `encrypted_content` that lets reasoning come back to the provider that wrote it."""
    if r.provider is None:
        return None
    data = {"p": r.provider, **({"s": r.signature} if r.signature else {}), **({"r": r.redacted} if r.redacted else {})}
    return REASONING_MARK + base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def _reasoning_from_token(text: str, token: Any, where: str) -> Reasoning | None:
    if not isinstance(token, str) or not token.startswith(REASONING_MARK):
        return None  # not llmrelay's: nobody can say which provider wrote it
    raw = token[len(REASONING_MARK):]
    try:
        data = orjson.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (binascii.Error, ValueError):
        data = None
    if not isinstance(data, dict) or not isinstance(data.get("p"), str) or not all(
            isinstance(data.get(k), str | None) for k in ("s", "r")):
        raise WireError("is not an encrypted_content llmrelay issued", where + ".encrypted_content")
    return Reasoning(text, data.get("s"), data.get("r"), data["p"])


# -- input ---------------------------------------------------------------------------------------------


def read_input(value: Any) -> tuple[list[str], list[Message]]:
    """(system texts, turns) of a request's `input`; `WireError` naming the first thing that is not the
    Responses API's shape or that llmrelay cannot relay."""
    if isinstance(value, str):
        return [], [Message("user", value)]
    if not isinstance(value, list):
        raise WireError("must be a string or an array of input items", "input")
    system: list[str] = []
    turns: list[tuple[str, list[Part]]] = []  # (kind: user | assistant | results, parts)

    def add(kind: str, parts: Sequence[Part]) -> None:
        if turns and turns[-1][0] == kind and kind != "user":
            turns[-1][1].extend(parts)
        else:
            turns.append((kind, list(parts)))

    for i, item in enumerate(value):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise WireError("must be an object (an input item)", where)
        kind = item.get("type", "message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            _no_extra(item, where, {"type", "role", "content", "id", "status", "phase"})
            if role in ("system", "developer"):
                system.append(_text(item.get("content"), where + ".content", ("input_text",)))
            elif role == "user":
                add("user", _user_parts(item.get("content"), where + ".content"))
            elif role == "assistant":
                text = _text(item.get("content"), where + ".content", ("output_text", "input_text", "refusal"))
                add("assistant", [Text(text)] if text else [])
            else:
                raise WireError(f"unknown role {role!r} (user, assistant, system, developer)", where + ".role")
        elif kind == "function_call":
            _no_extra(item, where, {"type", "call_id", "name", "arguments", "id", "status"}, {"caller": _direct})
            call_id, name, arguments = (item.get(k) for k in ("call_id", "name", "arguments"))
            if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
                raise WireError("a function_call needs its call_id and name", where)
            if not isinstance(arguments, str):
                raise WireError("arguments must be a JSON string", where + ".arguments")
            own_id, signature = split_client_id(call_id)
            add("assistant", [ToolCall(own_id, name, arguments, signature)])
        elif kind == "function_call_output":
            _no_extra(item, where, {"type", "call_id", "output", "id", "status", "name"}, {"caller": _direct})
            call_id, name = item.get("call_id"), item.get("name")
            if not isinstance(call_id, str) or not call_id:
                raise WireError("a function_call_output needs the call_id of the call it answers", where + ".call_id")
            output = _text(item.get("output"), where + ".output", ("input_text",))
            add("results", [ToolResult(split_client_id(call_id)[0], output,
                                       name=name if isinstance(name, str) else None)])
        elif kind == "reasoning":
            _no_extra(item, where, {"type", "id", "summary", "content", "encrypted_content", "status"})
            text = _reasoning_text(item, where)
            r = _reasoning_from_token(text, item.get("encrypted_content"), where)
            if r is not None:
                add("assistant", [r])
        elif kind == "item_reference":
            raise WireError("item references are not supported: send the item itself, or continue a stored "
                            "response with previous_response_id", where)
        else:
            raise WireError(f"input items of type {kind!r} are not supported (message, function_call, "
                            "function_call_output and reasoning are)", where + ".type")
    return system, [Message("assistant" if kind == "assistant" else "user", parts) for kind, parts in turns if parts]


def _direct(value: Any) -> bool:
    return value is None or value == {"type": "direct"}


def _no_extra(d: Mapping[str, Any], where: str, known: set[str], harmless: Mapping[str, Any] | None = None) -> None:
    for key, value in d.items():
        if key in known or value is None:
            continue
        if harmless is not None and key in harmless and harmless[key](value):
            continue
        why = _WHY.get(key)
        raise WireError(f"{key!r} is not supported" + (f": {why}" if why else " here"), f"{where}.{key}")


def _text(content: Any, where: str, kinds: tuple[str, ...]) -> str:
    """A string, or the text of an array of parts of the given kinds."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise WireError("must be a string or an array of content parts", where)
    texts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds:
            raise WireError(f"content parts of type {kind!r} are not supported here ({', '.join(kinds)} are)",
                            f"{where}[{j}]")
        key = "refusal" if kind == "refusal" else "text"
        _no_extra(part, f"{where}[{j}]", {"type", key, "annotations", "logprobs"})
        if not isinstance(part.get(key), str):
            raise WireError(f"{key} must be a string", f"{where}[{j}].{key}")
        texts.append(part[key])
    return "".join(texts)


def _user_parts(content: Any, where: str) -> list[Part]:
    if isinstance(content, str):
        return [Text(content)]
    if not isinstance(content, list):
        raise WireError("must be a string or an array of content parts", where)
    parts: list[Part] = []
    for j, part in enumerate(content):
        at = f"{where}[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "input_text":
            _no_extra(part, at, {"type", "text"})
            if not isinstance(part.get("text"), str):
                raise WireError("text must be a string", at + ".text")
            parts.append(Text(part["text"]))
        elif kind == "input_image":
            parts.append(_image(part, at))
        elif kind == "input_file":
            raise WireError("input_file parts are not supported: llmrelay relays text and images", at)
        else:
            raise WireError(f"content parts of type {kind!r} are not supported (input_text and input_image are)", at)
    return parts


def _image(part: Mapping[str, Any], at: str) -> Image:
    if part.get("file_id") is not None:
        raise WireError("file_id is not supported: llmrelay keeps no files; send image_url (an http(s) or base64 "
                        "data: URL)", at + ".file_id")
    _no_extra(part, at, {"type", "image_url", "detail"})
    url, detail = part.get("image_url"), part.get("detail")
    if not isinstance(url, str):
        raise WireError("an input_image needs an image_url", at + ".image_url")
    if detail not in (None, "auto", "low", "high"):
        raise WireError("detail is auto, low or high", at + ".detail")
    try:
        return image_from_url(url, detail)
    except ValueError as exc:
        raise WireError(str(exc), at + ".image_url") from None


def _reasoning_text(item: Mapping[str, Any], where: str) -> str:
    texts: list[str] = []
    for key, kind in (("summary", "summary_text"), ("content", "reasoning_text")):
        parts = item.get(key) or []
        if not isinstance(parts, list) or not all(
                isinstance(p, dict) and p.get("type") == kind and isinstance(p.get("text"), str) for p in parts):
            raise WireError(f"must be an array of {kind} parts", f"{where}.{key}")
        if parts and not texts:
            texts = [p["text"] for p in parts]
    return "\n\n".join(texts)


def check_tool_outputs(turns: Sequence[Message]) -> None:
    """OpenAI's rule: the function calls of an answer are answered by function_call_outputs right after
    it, and every output answers such a call (said as OpenAI says it, with `param` input)."""
    pending: list[str] = []
    for m in turns:
        answered = [p.call_id for p in m.parts if type(p) is ToolResult]
        for call_id in answered:
            if call_id not in pending:
                raise WireError(f"No tool call found for function call output with call_id {call_id}.", "input")
        missing = [c for c in pending if c not in answered]
        if missing:
            raise WireError(f"No tool output found for function call {missing[0]}.", "input")
        pending = [p.id for p in m.parts if type(p) is ToolCall]
    if pending:
        raise WireError(f"No tool output found for function call {pending[0]}.", "input")


# -- output ----------------------------------------------------------------------------------------------


def reasoning_item(item_id: str, r: Reasoning) -> dict[str, Any]:
    item: dict[str, Any] = {"id": item_id, "type": "reasoning",
                            "summary": [{"type": "summary_text", "text": r.text}] if r.text else []}
    token = reasoning_token(r)
    if token is not None:
        item["encrypted_content"] = token
    return item


def message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "role": "assistant", "status": status,
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def call_item(item_id: str, call: ToolCall, status: str = "completed") -> dict[str, Any]:
    return {"id": item_id, "type": "function_call", "call_id": client_id(call), "name": call.name,
            "arguments": call.arguments, "status": status}


def item_ids(response_id: str) -> tuple[str, str, str]:
    """The id prefixes of a response's items (reasoning, message, function call): `rs_…`, `msg_…`, `fc_…`
    after the response's own id, so that a stream and the finished response agree."""
    rid = response_id.removeprefix("resp_")
    return "rs_" + rid, "msg_" + rid, "fc_" + rid


def answer_items(resp: ChatResponse, response_id: str, status: str = "completed") -> list[dict[str, Any]]:
    """A finished answer's `output`: its reasoning, its text (a message, also when empty and there is no
    call), its function calls."""
    rs, msg, fc = item_ids(response_id)
    items = [reasoning_item(f"{rs}_{i}", r) for i, r in enumerate(resp.reasoning)]
    if resp.text or not resp.tool_calls:
        items.append(message_item(msg, resp.text, status))
    items += [call_item(f"{fc}_{i}", c) for i, c in enumerate(resp.tool_calls)]
    return items
