"""A fake Gemini API, generativelanguage v1beta (shared/reference/providers.md §3).

Routes, under ``/v1beta`` and under ``/v1`` (python-genai 3.x calls ``/v1`` unless told
``api_version="v1beta"``; the real service answers both)::

    POST /v1beta/models/{model}:generateContent
    POST /v1beta/models/{model}:streamGenerateContent?alt=sse   SSE, events end in CRLF CRLF
    POST /v1beta/models/{model}:streamGenerateContent           a JSON array, streamed
    GET  /v1beta/models, GET /v1beta/models/{model}

Reproduces: the key in ``x-goog-api-key`` or ``?key=``; a request without a key answered 403
PERMISSION_DENIED and a wrong key 400 INVALID_ARGUMENT with an ErrorInfo ``API_KEY_INVALID``
(the real API never answers a bad key with 401); lowerCamelCase or snake_case request fields,
unknown top-level fields and empty text parts rejected with 400 like the real one;
``usageMetadata`` with zero fields omitted, ``promptTokenCount`` including cached tokens and
``candidatesTokenCount`` excluding thoughts; stream chunks whose parts are deltas, with
cumulative usage, ``modelVersion`` and ``responseId`` on every chunk and ``finishReason`` on the
last; no terminal marker (the stream ends at EOF); an in-band error as a ``data:`` payload with
a top-level ``error`` (its first key, which python-genai needs to notice it); error bodies
``{"error": {code, message, status, details}}``, array-wrapped on the non-SSE stream.

Error hints (the ``code`` of ``faults.http_error(status, code)`` or ``faults.stream_error``):

- ``API_KEY_INVALID``: 400 INVALID_ARGUMENT "API key not valid…" + ErrorInfo and LocalizedMessage
- ``context_length_exceeded``: 400 INVALID_ARGUMENT "The input token count (…) exceeds the maximum…"
- ``failed_precondition``: 400 FAILED_PRECONDITION "User location is not supported for the API use."
- ``per_day``: 429 RESOURCE_EXHAUSTED whose QuotaFailure names a ``…PerDay…`` quota
- a google.rpc status name (``RESOURCE_EXHAUSTED``, ``UNAVAILABLE``, ``INTERNAL``…): that status
  and its usual message

An ``http_error`` keeps its scripted HTTP status (the hint shapes the body); a ``stream_error``
takes its ``code`` from the hint, else from the fault's ``status``, else 500.  A 502 is Google's
front-end HTML page, not JSON.  Retry hints: ``retry_delay="58s"`` becomes
``RetryInfo.retryDelay`` (and the message's "Please retry in"); without it a 429 carries
QuotaFailure and Help only.  ``retry_after``/``retry_after_ms``/``should_retry`` are sent as
headers exactly as scripted (the real API sends none; a proxy in front of it might).

Finish values of ``faults.reply(finish=…)``: native names (``STOP``, ``MAX_TOKENS``, ``SAFETY``,
``RECITATION``, ``MALFORMED_FUNCTION_CALL``, ``OTHER``…) are sent verbatim; the unified names map:
``stop``/``length``/``content_filter``/``error`` → STOP/MAX_TOKENS/SAFETY/OTHER, ``tool_calls`` →
a ``functionCall`` part and STOP.  ``blocked`` or ``blocked:<REASON>`` answers a blocked prompt:
200, no candidates, ``promptFeedback.blockReason`` (SAFETY by default), usage with the prompt only.
With ``generationConfig.thinkingConfig.includeThoughts`` a reply with reasoning tokens starts
with a thought-summary part (``"thought": true``).
"""

from __future__ import annotations

import contextvars
import json
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from .faults import Fault
from .server import FakeProvider, Prompt, Reply

_TYPE = "type.googleapis.com/google.rpc."
_VERSIONS = ("v1beta", "v1")
_METHODS = ("generateContent", "streamGenerateContent")
_DEFAULT_MODELS = ("gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro", "gemini-2.0-flash",
                   "gemini-2.0-flash-lite")
_REQUEST_FIELDS = frozenset({
    "model", "contents", "systemInstruction", "generationConfig", "safetySettings", "tools",
    "toolConfig", "cachedContent", "labels", "serviceTier", "store", "continuationToken",
})

# HTTP status -> (google.rpc status, message)
_STATUSES: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access "
          "token, login cookie or other valid authentication credential. See "
          "https://developers.google.com/identity/sign-in/web/devconsole-project."),
    403: ("PERMISSION_DENIED", "The caller does not have permission"),
    404: ("NOT_FOUND", "models/{model} is not found for API version {version}, or is not supported for "
          "generateContent. Call ListModels to see the list of available models and their supported "
          "methods."),
    409: ("ABORTED", "The operation was aborted."),
    429: ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan and billing "
          "details. For more information on this error, head to: "
          "https://ai.google.dev/gemini-api/docs/rate-limits."),
    499: ("CANCELLED", "The operation was cancelled."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in "
          "https://developers.generativeai.google/guide/troubleshooting"),
    501: ("UNIMPLEMENTED", "Method not found."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
_RPC_CODES = {rpc: code for code, (rpc, _) in _STATUSES.items()} | {"FAILED_PRECONDITION": 400}
_RPC_MESSAGES = {rpc: text for rpc, text in _STATUSES.values()} | {
    "FAILED_PRECONDITION": "Precondition check failed."}
_HINTS: dict[str, tuple[int, str, str]] = {
    "API_KEY_INVALID": (400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."),
    "context_length_exceeded": (400, "INVALID_ARGUMENT", "The input token count (3475108) exceeds the "
                                "maximum number of tokens allowed (1048576)."),
    "failed_precondition": (400, "FAILED_PRECONDITION", "User location is not supported for the API use."),
    "per_day": (429, "RESOURCE_EXHAUSTED", _STATUSES[429][1]),
}
_UNREGISTERED = ("Method doesn't allow unregistered callers (callers without established identity). "
                 "Please use API Key or other form of API consumer identity to call this API.")
_BAD_GATEWAY = (b"<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 502 (Server Error)!!1"
                b"</title>\n  <p><b>502.</b> <ins>That\xe2\x80\x99s an error.</ins>\n  <p>The server encountered "
                b"a temporary error and could not complete your request.<p>Please try again in 30 seconds.  "
                b"<ins>That\xe2\x80\x99s all we know.</ins>\n")
_THOUGHT = {"text": "**Weighing the question**\n\nThe user wants a short answer.", "thought": True}
_UNIFIED_FINISH = {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY", "error": "OTHER",
                   "tool_calls": "STOP"}


@dataclass(frozen=True, slots=True)
class _Call:
    """What the route said about the call in progress, for hooks that get no `Prompt`."""

    version: str = "v1beta"
    array: bool = False  # streamGenerateContent without alt=sse


_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("fake_google_call", default=None)


def _call() -> _Call:
    return _CALL.get() or _Call()


class InvalidRequest(ValueError):
    """A request body the real API rejects with 400 INVALID_ARGUMENT; the message is its own."""


def _get(obj: dict[str, Any], camel: str) -> Any:
    """A field by its lowerCamelCase name or its snake_case one (protobuf JSON takes both)."""
    if camel in obj:
        return obj[camel]
    return obj.get(re.sub(r"(?<!^)([A-Z])", r"_\1", camel).lower())


def _snake_to_camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


class FakeGoogle(FakeProvider):
    name = "google"
    base_path: ClassVar[str] = ""
    default_key: ClassVar[str | None] = "AIzaSyFAKE-google-key-0000000000000000"

    def __init__(self, api_key: str | None = None, models: set[str] | None = None) -> None:
        super().__init__(api_key, models)
        self._emitted: dict[str, int] = {}  # reply id -> text deltas sent so far (cumulative usage)

    def reset(self) -> None:
        super().reset()
        self._emitted.clear()

    @property
    def stream_content_type(self) -> str:  # type: ignore[override]
        return "application/json; charset=UTF-8" if _call().array else "text/event-stream"

    @property
    def malformed_frame(self) -> bytes:  # type: ignore[override]
        return b"{not json at all\r\n" if _call().array else b"data: {not json at all\r\n\r\n"

    def routes(self) -> list[web.RouteDef]:
        routes = []
        for v in _VERSIONS:
            routes += [web.post(f"/{v}/models/{{target}}", self.call),
                       web.get(f"/{v}/models", self.list_models),
                       web.get(f"/{v}/models/{{target}}", self.get_model)]
        return routes

    # -- auth -----------------------------------------------------------------------------------

    @staticmethod
    def sent_key(request: web.Request) -> str | None:
        return request.headers.get("x-goog-api-key") or request.query.get("key")

    def authorized(self, request: web.Request) -> bool:
        return self.key_ok(self.sent_key(request))

    def auth_failure(self, request: web.Request, model: str) -> web.Response | None:
        """The real answers: 403 without a key, 400 API_KEY_INVALID with a wrong one."""
        key = self.sent_key(request)
        if not key:
            return self.error_response(403, None, _UNREGISTERED, None, model)
        if not self.key_ok(key):
            return self.error_response(400, "API_KEY_INVALID", None, None, model)
        return None

    # -- routes ---------------------------------------------------------------------------------

    async def call(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        model, _, method = request.match_info["target"].rpartition(":")
        stream = method == "streamGenerateContent"
        sse = request.query.get("alt") == "sse"
        token = _CALL.set(_Call(version=request.path.split("/")[1], array=stream and not sse))
        try:
            if not model or method not in _METHODS:
                return self.error_response(404, None, None, None, model or request.match_info["target"])
            denied = self.auth_failure(request, model)
            if denied is not None:
                return denied
            try:
                prompt = self.parse(body, model, stream)
            except InvalidRequest as exc:
                return self.error_response(400, None, str(exc), None, model)
            prompt.options["sse"] = sse
            return await self.answer(request, prompt)
        finally:
            _CALL.reset(token)

    def model_names(self) -> list[str]:
        return sorted(self.models) if self.models is not None else list(_DEFAULT_MODELS)

    @staticmethod
    def model_info(name: str) -> dict[str, Any]:
        title = " ".join(w.capitalize() for w in name.split("-"))
        return {"name": f"models/{name}", "version": "001", "displayName": title,
                "description": f"Fake {title}", "inputTokenLimit": 1048576, "outputTokenLimit": 65536,
                "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent",
                                               "batchGenerateContent"],
                "temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": True}

    async def list_models(self, request: web.Request) -> web.Response:
        await self.record(request, None)
        denied = self.auth_failure(request, "")
        if denied is not None:
            return denied
        return web.json_response({"models": [self.model_info(n) for n in self.model_names()]})

    async def get_model(self, request: web.Request) -> web.Response:
        await self.record(request, None)
        name = request.match_info["target"]
        denied = self.auth_failure(request, name)
        if denied is not None:
            return denied
        if name not in self.model_names():
            return self.error_response(404, None, f"models/{name} is not found for API version "
                                       f"{request.path.split('/')[1]}", None, name)
        return web.json_response(self.model_info(name))

    # -- requests -------------------------------------------------------------------------------

    def parse(self, body: Any, model: str, stream: bool) -> Prompt:
        """The prompt; `InvalidRequest` with the real API's 400 message for a body it rejects."""
        if not isinstance(body, dict):
            raise InvalidRequest("Invalid JSON payload received. Expected an object.")
        for key in body:
            if key not in _REQUEST_FIELDS and _snake_to_camel(key) not in _REQUEST_FIELDS:
                raise InvalidRequest(f'Invalid JSON payload received. Unknown name "{key}": Cannot find field.')
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise InvalidRequest("* GenerateContentRequest.contents: contents is not specified\n")
        turns: list[tuple[str, str]] = []
        for i, content in enumerate(contents):
            if not isinstance(content, dict):
                raise InvalidRequest(f"Invalid value at 'contents[{i}]': expected an object.")
            role = content.get("role") or "user"
            if role not in ("user", "model"):
                raise InvalidRequest("Please use a valid role: user, model.")
            turns.append((role, self.parts_text(content.get("parts"), f"contents[{i}]")))
        instruction = _get(body, "systemInstruction")
        system = (self.parts_text(instruction.get("parts"), "system_instruction")
                  if isinstance(instruction, dict) else None)
        config = _get(body, "generationConfig") or {}
        if not isinstance(config, dict):
            raise InvalidRequest("Invalid value at 'generation_config': expected an object.")
        self.check_config(config)
        max_tokens = _get(config, "maxOutputTokens")
        thinking = _get(config, "thinkingConfig") or {}
        include_thoughts = isinstance(thinking, dict) and bool(_get(thinking, "includeThoughts"))
        return Prompt(model=model, system=system, messages=turns,
                      max_tokens=max_tokens if isinstance(max_tokens, int) else None, stream=stream,
                      options={"include_thoughts": include_thoughts})

    @staticmethod
    def parts_text(parts: Any, where: str) -> str:
        """The text of `parts` (thoughts left out); each part must carry some data."""
        if not isinstance(parts, list) or not parts:
            raise InvalidRequest(f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty.\n")
        texts = []
        for j, part in enumerate(parts):
            if not isinstance(part, dict) or not any(v not in (None, "") for v in part.values()):
                raise InvalidRequest(f"* GenerateContentRequest.{where}.parts[{j}].data: required oneof "
                                     "field 'data' must have one initialized field\n")
            if isinstance(part.get("text"), str) and not part.get("thought"):
                texts.append(part["text"])
        return "".join(texts)

    @staticmethod
    def check_config(config: dict[str, Any]) -> None:
        temperature = _get(config, "temperature")
        if temperature is not None and not (isinstance(temperature, int | float) and 0 <= temperature <= 2):
            raise InvalidRequest("* GenerateContentRequest.generation_config.temperature: must be in the "
                                 "range [0.0, 2.0]\n")
        stops = _get(config, "stopSequences")
        if stops is not None and (not isinstance(stops, list) or len(stops) > 5):
            raise InvalidRequest("* GenerateContentRequest.generation_config.stop_sequences: at most 5 "
                                 "are allowed\n")
        max_tokens = _get(config, "maxOutputTokens")
        if max_tokens is not None and not (isinstance(max_tokens, int) and max_tokens > 0):
            raise InvalidRequest("* GenerateContentRequest.generation_config.max_output_tokens: must be "
                                 "positive\n")

    # -- errors ---------------------------------------------------------------------------------

    def error_payload(self, status: int, code: str | None, message: str | None, fault: Fault | None,
                      model: str) -> dict[str, Any]:
        """`{"error": {code, message, status, details}}` for `status`, shaped by the hint `code`."""
        if code in _HINTS:
            _, rpc, text = _HINTS[code]
        elif code in _RPC_MESSAGES:
            rpc, text = code, _RPC_MESSAGES[code]
        else:
            rpc, text = _STATUSES.get(status, ("UNKNOWN", f"HTTP {status}"))
        delay = fault.retry_delay if fault is not None else None
        text = message or text.format(model=model, version=_call().version)
        if rpc == "RESOURCE_EXHAUSTED" and delay and not message:
            text += f" Please retry in {delay}."
        err: dict[str, Any] = {"code": status, "message": text, "status": rpc}
        details = self.error_details(code, rpc, text, delay, model)
        if details:
            err["details"] = details
        return {"error": err}

    @staticmethod
    def error_details(code: str | None, rpc: str, text: str, delay: str | None,
                      model: str) -> list[dict[str, Any]]:
        if code == "API_KEY_INVALID":
            return [{"@type": _TYPE + "ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                     "metadata": {"service": "generativelanguage.googleapis.com"}},
                    {"@type": _TYPE + "LocalizedMessage", "locale": "en-US", "message": text}]
        if rpc != "RESOURCE_EXHAUSTED":
            return []
        quota = ("GenerateRequestsPerDayPerProjectPerModel-FreeTier" if code == "per_day"
                 else "GenerateRequestsPerMinutePerProjectPerModel-FreeTier")
        details: list[dict[str, Any]] = [
            {"@type": _TYPE + "QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": quota, "quotaDimensions": {"model": model, "location": "global"},
                "quotaValue": "250" if code == "per_day" else "5"}]},
            {"@type": _TYPE + "Help", "links": [{"description": "Learn more about Gemini API quotas",
                                                 "url": "https://ai.google.dev/gemini-api/docs/rate-limits"}]},
        ]
        if delay:
            details.append({"@type": _TYPE + "RetryInfo", "retryDelay": delay})
        return details

    def error_response(self, status: int, code: str | None, message: str | None, fault: Fault | None,
                       model: str) -> web.Response:
        headers = self.retry_headers(fault)
        if status == 502 and code is None and message is None:
            return web.Response(status=502, body=_BAD_GATEWAY, content_type="text/html", charset="UTF-8",
                                headers=headers)
        payload: Any = self.error_payload(status, code, message, fault, model)
        if _call().array:
            payload = [payload]
        return web.Response(status=status, text=json.dumps(payload, indent=2),
                            content_type="application/json", charset="UTF-8", headers=headers)

    def overloaded_response(self, fault: Fault, model: str) -> web.Response:
        return self.error_response(503, None, fault.message, fault, model)

    # -- success --------------------------------------------------------------------------------

    def make_reply(self, prompt: Prompt, fault: Fault | None) -> Reply:
        reply = super().make_reply(prompt, fault)
        if reply.native_finish and reply.finish.startswith("blocked"):
            reply.chunks, reply.output_tokens, reply.reasoning_tokens = [], 0, 0
        return reply

    @staticmethod
    def native_finish(reply: Reply) -> str:
        return _UNIFIED_FINISH.get(reply.finish, reply.finish)

    @staticmethod
    def usage(reply: Reply, output: int | None = None) -> dict[str, Any]:
        """`usageMetadata`, zero fields omitted; `output` caps the candidates seen so far."""
        reasoning = reply.reasoning_tokens
        candidates = max(reply.output_tokens - reasoning, 0)
        if output is not None:
            candidates = min(candidates, output)
        fields = {"promptTokenCount": reply.input_tokens, "candidatesTokenCount": candidates,
                  "totalTokenCount": reply.input_tokens + candidates + reasoning,
                  "cachedContentTokenCount": reply.cached_input_tokens, "thoughtsTokenCount": reasoning}
        meta: dict[str, Any] = {k: v for k, v in fields.items() if v}
        if reply.input_tokens:
            meta["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": reply.input_tokens}]
        if reply.cached_input_tokens:
            meta["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": reply.cached_input_tokens}]
        return meta

    def envelope(self, reply: Reply, body: dict[str, Any]) -> dict[str, Any]:
        return {**body, "modelVersion": reply.model, "responseId": f"fakeGemini{reply.id}"}

    @staticmethod
    def candidate(parts: list[dict[str, Any]], finish: str | None) -> dict[str, Any]:
        cand: dict[str, Any] = {"content": {"parts": parts, "role": "model"}} if parts else {}
        if finish is not None:
            cand["finishReason"] = finish
        cand["index"] = 0
        return cand

    def final_parts(self, prompt: Prompt, reply: Reply, text: str | None) -> list[dict[str, Any]]:
        """The parts of a whole answer (`text`) or of the last stream chunk (`text=None`)."""
        parts: list[dict[str, Any]] = []
        if text is not None and prompt.options.get("include_thoughts") and reply.reasoning_tokens:
            parts.append(dict(_THOUGHT))
        if text or text is None:
            parts.append({"text": text or ""})
        if reply.finish == "tool_calls":
            parts.append({"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}})
        return parts

    def blocked_body(self, reply: Reply) -> dict[str, Any]:
        reason = reply.finish.partition(":")[2] or "SAFETY"
        return self.envelope(reply, {"promptFeedback": {"blockReason": reason, "safetyRatings": [
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}]},
            "usageMetadata": self.usage(reply)})

    def completion_body(self, prompt: Prompt, reply: Reply) -> dict[str, Any]:
        if reply.native_finish and reply.finish.startswith("blocked"):
            return self.blocked_body(reply)
        cand = self.candidate(self.final_parts(prompt, reply, reply.text),
                              self.native_finish(reply))
        return self.envelope(reply, {"candidates": [cand], "usageMetadata": self.usage(reply)})

    # -- streams --------------------------------------------------------------------------------

    def frame(self, prompt: Prompt, data: dict[str, Any], last: bool = False) -> bytes:
        """One chunk: an SSE event ending in CRLF CRLF, or an element of the JSON array."""
        if prompt.options.get("sse"):
            return self.sse(data, eol=b"\r\n")
        return json.dumps(data, indent=2).encode() + (b"\r\n]" if last else b"\r\n,\r\n")

    def stream_head(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        return [] if prompt.options.get("sse") else [b"["]

    def stream_delta(self, prompt: Prompt, reply: Reply, text: str) -> bytes:
        i = self._emitted.get(reply.id, 0)
        self._emitted[reply.id] = i + 1
        parts: list[dict[str, Any]] = []
        if i == 0 and prompt.options.get("include_thoughts") and reply.reasoning_tokens:
            parts.append(dict(_THOUGHT))
        parts.append({"text": text})
        seen = sum(len(c.split()) for c in reply.chunks[: i + 1])
        return self.frame(prompt, self.envelope(reply, {
            "candidates": [self.candidate(parts, None)],
            "usageMetadata": self.usage(reply, output=seen)}))

    def stream_tail(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        self._emitted.pop(reply.id, None)
        if reply.native_finish and reply.finish.startswith("blocked"):
            return [self.frame(prompt, self.blocked_body(reply), last=True)]
        cand = self.candidate(self.final_parts(prompt, reply, None), self.native_finish(reply))
        return [self.frame(prompt, self.envelope(reply, {"candidates": [cand],
                                                         "usageMetadata": self.usage(reply)}), last=True)]

    def stream_error_frame(self, prompt: Prompt, fault: Fault) -> bytes:
        code = fault.code
        status = (_HINTS[code][0] if code in _HINTS else _RPC_CODES.get(code or "")) or fault.status or 500
        payload = self.error_payload(status, code, fault.message, fault, prompt.model)
        if prompt.options.get("sse"):
            return self.sse(payload, eol=b"\r\n")
        return json.dumps(payload, indent=2).encode() + b"\r\n]"
