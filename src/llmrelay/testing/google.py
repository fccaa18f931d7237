"""A fake Gemini API, generativelanguage v1beta (shared/reference/providers.md §3).

Routes, under ``/v1beta`` and under ``/v1`` (python-genai 3.x calls ``/v1`` unless told
``api_version="v1beta"``; the real service answers both)::

    POST /v1beta/models/{model}:generateContent
    POST /v1beta/models/{model}:streamGenerateContent?alt=sse   SSE, events end in CRLF CRLF
    POST /v1beta/models/{model}:streamGenerateContent           a JSON array, streamed
    POST /v1beta/models/{model}:batchEmbedContents               embeddings (google_embed.py)
    POST /v1beta/models/{model}:countTokens                      input tokens (google_count.py)
    GET  /v1beta/models, GET /v1beta/models/{model}

Reproduces: the key in ``x-goog-api-key`` or ``?key=``; a request without a key answered 403
PERMISSION_DENIED and a wrong key 400 INVALID_ARGUMENT with an ErrorInfo ``API_KEY_INVALID``
(the real API never answers a bad key with 401); lowerCamelCase or snake_case request fields; what
the real API refuses with 400, as testing/google_request.py lists (unknown fields, a Schema field
Gemini lacks, unanswered or misnamed function responses, a Gemini 3 call sent back unsigned, ...);
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
a ``functionCall`` part (get_weather, unless calls are scripted) and STOP.  ``blocked`` or
``blocked:<REASON>`` answers a blocked prompt: 200, no candidates, ``promptFeedback.blockReason``
(SAFETY by default), usage with the prompt only.

Tools (testing/tools.py decides when to call): ``functionCall`` parts without ids, after the text; in a
stream, whole, in a chunk of their own; a ``gemini-3*`` model signs the first call of an answer
(``thoughtSignature``) and requires it back.  With ``thinkingConfig.includeThoughts`` (and a budget
that is not 0) the answer starts with a thought-summary part (``"thought": true``), a chunk of its own
in a stream, counted in ``thoughtsTokenCount``.
"""

from __future__ import annotations

import base64
import contextvars
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from .faults import Fault
from .google_count import count_input
from .google_embed import batch_embed
from .google_errors import BAD_GATEWAY, HINTS, RPC_CODES, RPC_TYPE, UNREGISTERED, error_payload
from .google_request import InvalidRequest, read_request
from .server import FakeProvider, Prompt, Reply, count_tokens
from .tools import FakeCall

_VERSIONS = ("v1beta", "v1")
_METHODS = ("generateContent", "streamGenerateContent")
_DEFAULT_MODELS = ("gemini-2.5-flash", "gemini-2.5-flash-lite", "gemini-2.5-pro", "gemini-2.0-flash",
                   "gemini-2.0-flash-lite", "gemini-3-pro-preview", "gemini-3-flash-preview")

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
            return self.error_response(403, None, UNREGISTERED, None, model)
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
            if not model or method not in (*_METHODS, "batchEmbedContents", "countTokens"):
                return self.error_response(404, None, None, None, model or request.match_info["target"])
            denied = self.auth_failure(request, model)
            if denied is not None:
                return denied
            if method == "batchEmbedContents":
                return await batch_embed(self, request, model, body)
            if method == "countTokens":
                return await count_input(self, model, body)
            try:
                prompt = read_request(body, model, stream)
            except InvalidRequest as exc:
                return self.error_response(400, None, str(exc), None, model, violations=exc.violations)
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

    # -- errors ---------------------------------------------------------------------------------

    def error_payload(self, status: int, code: str | None, message: str | None, fault: Fault | None,
                      model: str) -> dict[str, Any]:
        return error_payload(status, code, message, fault.retry_delay if fault is not None else None, model,
                             _call().version)

    def error_response(self, status: int, code: str | None, message: str | None, fault: Fault | None,
                       model: str, *, violations: list[dict[str, str]] | None = None) -> web.Response:
        headers = self.retry_headers(fault)
        if status == 502 and code is None and message is None:
            return web.Response(status=502, body=BAD_GATEWAY, content_type="text/html", charset="UTF-8",
                                headers=headers)
        payload: Any = self.error_payload(status, code, message, fault, model)
        if violations:
            payload["error"]["details"] = [{"@type": RPC_TYPE + "BadRequest", "fieldViolations": violations}]
        if _call().array:
            payload = [payload]
        return web.Response(status=status, text=json.dumps(payload, indent=2),
                            content_type="application/json", charset="UTF-8", headers=headers)

    def overloaded_response(self, fault: Fault, model: str) -> web.Response:
        return self.error_response(503, None, fault.message, fault, model)

    # -- success --------------------------------------------------------------------------------

    def call_id(self, n: int) -> str:
        return ""  # Gemini's function calls carry no id

    def make_reply(self, prompt: Prompt, fault: Fault | None) -> Reply:
        reply = super().make_reply(prompt, fault)
        if reply.native_finish and reply.finish.startswith("blocked"):
            reply.chunks, reply.output_tokens, reply.reasoning_tokens = [], 0, 0
            return reply
        if reply.finish == "tool_calls" and not reply.tool_calls:  # a scripted finish names no call
            reply.tool_calls = [FakeCall("get_weather", {"city": "Paris"})]
        if prompt.options.get("include_thoughts") and not reply.reasoning_tokens:
            reply.reasoning_tokens = count_tokens(_THOUGHT["text"])
            reply.output_tokens += reply.reasoning_tokens
        return reply

    def thought_parts(self, prompt: Prompt, reply: Reply) -> list[dict[str, Any]]:
        """The thought summary an answer starts with, when the request asked for thoughts."""
        return [dict(_THOUGHT)] if prompt.options.get("include_thoughts") and reply.reasoning_tokens else []

    @staticmethod
    def call_parts(prompt: Prompt, reply: Reply) -> list[dict[str, Any]]:
        """The reply's calls as `functionCall` parts, without ids; a Gemini 3 model signs the first (the
        only one of parallel calls that carries a signature)."""
        parts: list[dict[str, Any]] = []
        for i, call in enumerate(reply.tool_calls):
            fc: dict[str, Any] = {"name": call.name, "args": call.arguments}
            if call.id:
                fc = {"id": call.id, **fc}
            part: dict[str, Any] = {"functionCall": fc}
            if i == 0 and prompt.model.startswith("gemini-3"):
                part["thoughtSignature"] = base64.b64encode(f"fake-thought:{reply.id}".encode()).decode()
            parts.append(part)
        return parts

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
        if text is None:
            return [{"text": ""}]
        return [*self.thought_parts(prompt, reply), *([{"text": text}] if text else []),
                *self.call_parts(prompt, reply)]

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
        """The array's opening bracket (without alt=sse), then the thought summary, in a chunk of its own."""
        head = [] if prompt.options.get("sse") else [b"["]
        thoughts = self.thought_parts(prompt, reply)
        if thoughts and not reply.finish.startswith("blocked"):
            head.append(self.frame(prompt, self.envelope(reply, {
                "candidates": [self.candidate(thoughts, None)], "usageMetadata": self.usage(reply, output=0)})))
        return head

    def stream_delta(self, prompt: Prompt, reply: Reply, text: str) -> bytes:
        i = self._emitted.get(reply.id, 0)
        self._emitted[reply.id] = i + 1
        seen = sum(len(c.split()) for c in reply.chunks[: i + 1])
        return self.frame(prompt, self.envelope(reply, {
            "candidates": [self.candidate([{"text": text}], None)],
            "usageMetadata": self.usage(reply, output=seen)}))

    def stream_tool_frames(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        """The calls, whole, in one chunk (Gemini streams no partial arguments)."""
        calls = self.call_parts(prompt, reply)
        if not calls:
            return []
        return [self.frame(prompt, self.envelope(reply, {"candidates": [self.candidate(calls, None)],
                                                         "usageMetadata": self.usage(reply)}))]

    def stream_tail(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        self._emitted.pop(reply.id, None)
        if reply.native_finish and reply.finish.startswith("blocked"):
            return [self.frame(prompt, self.blocked_body(reply), last=True)]
        cand = self.candidate(self.final_parts(prompt, reply, None), self.native_finish(reply))
        return [self.frame(prompt, self.envelope(reply, {"candidates": [cand],
                                                         "usageMetadata": self.usage(reply)}), last=True)]

    def stream_error_frame(self, prompt: Prompt, fault: Fault) -> bytes:
        code = fault.code
        status = (HINTS[code][0] if code in HINTS else RPC_CODES.get(code or "")) or fault.status or 500
        payload = self.error_payload(status, code, fault.message, fault, prompt.model)
        if prompt.options.get("sse"):
            return self.sse(payload, eol=b"\r\n")
        return json.dumps(payload, indent=2).encode() + b"\r\n]"
