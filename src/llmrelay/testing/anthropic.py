"""A fake Anthropic Messages API (shared/reference/providers.md §1).

Endpoints: ``POST /v1/messages``, ``POST /v1/messages/count_tokens``, ``GET /v1/models`` (``limit``,
``after_id``, ``before_id``) and ``GET /v1/models/{model_id}``.

Reproduces: the key as ``x-api-key`` or ``Authorization: Bearer`` (the anthropic 2.x SDK sends
the latter), a required ``anthropic-version`` header (any value), a required ``max_tokens``,
and the real API's 400 ``invalid_request_error`` for a body it rejects (missing
model/max_tokens/messages, a ``system`` role, an empty turn, a final assistant turn ending in
whitespace, temperature outside 0–1, a bad ``stop_sequences``).  Stop sequences really stop the
answer (``stop_reason: "stop_sequence"`` with ``stop_sequence`` set).

Usage is native: ``input_tokens`` EXCLUDES cached tokens (``input_tokens = input - cached_input
- cache_write`` of the scripted unified usage, floored at 0), ``cache_read_input_tokens`` is
``cached_input``, ``cache_creation_input_tokens`` is ``cache_write``, and
``output_tokens_details.thinking_tokens`` appears when ``reasoning`` is non-zero.  Prompt caching
(``cache_control``) is checked and simulated as `anthropic_cache` says: a request with breakpoints
writes, and a later one with the same prefix reads, unless a fault scripts the cache figures.

``count_tokens`` takes the fields of ``_COUNTED`` (others: "Extra inputs are not permitted"), checks them
as ``/v1/messages`` does and answers ``{"input_tokens": N}`` as a Messages answer counts its input
(`server.input_tokens`); it takes no faults (they are for chat requests).

Tools, images, structured output and thinking are read and checked as `anthropic_checks` says (the
real API's 400s); `testing.tools.plan` decides the calls.  Calls are ``tool_use`` blocks (ids
``toolu_…``) after the text, with ``stop_reason: "tool_use"``.  With ``thinking`` enabled the answer
starts with a ``thinking`` block signed by this fake (`anthropic_checks.sign`: only its own signature
on the same text is accepted back), its words counted as ``thinking_tokens`` within the output.

Streams: every event has an ``event:`` line equal to its data ``type``; ``message_start``
(input-side usage, provisional ``output_tokens: 1``), a ``ping`` right after it, then per block
``content_block_start`` / ``content_block_delta`` / ``content_block_stop`` with its index: the
thinking block (``thinking_delta`` in two pieces, then ``signature_delta``), the text block
(``text_delta`` per word; no text block when the answer has no text), each tool_use block (``input: {}``
at the start, its input's JSON in two or three ``input_json_delta`` pieces); one ``message_delta``
with the stop reason and cumulative usage, ``message_stop``.  The in-band error is ``event: error``
with the error body, and the stream ends without ``message_stop``.

Errors: ``{"type":"error","error":{"type":…,"message":…},"request_id":"req_…"}`` with a
``request-id`` header; the error type follows the status (400 invalid_request_error, 401
authentication_error, 402 billing_error, 403 permission_error, 404 not_found_error, 409
conflict_error, 413 request_too_large, 429 rate_limit_error, 500 api_error, 504 timeout_error,
529 overloaded_error; other 4xx invalid_request_error, other 5xx api_error).  Retry headers are
exactly the ones the fault scripts: note that a 429 WITHOUT ``retry_after`` is what the real
API sends for the monthly tier spend cap (the adapter does not retry it); script
``retry_after`` for an ordinary rate limit.  ``overloaded`` answers 529 ``overloaded_error``
with ``x-should-retry: true``.

``code`` hints of an ``http_error`` or ``stream_error`` fault (the scripted status is kept):

=====================  ========================  =================================================
hint                   error.type                message
=====================  ========================  =================================================
context_length         invalid_request_error     prompt is too long: 208656 tokens > 200000 maximum
(or context_length_exceeded)
context_limit          invalid_request_error     input length and `max_tokens` exceed context limit…
spend_limit            invalid_request_error     You have reached your specified API usage limits…
credit_balance         invalid_request_error     Your credit balance is too low to access the…
spend_cap              rate_limit_error          a monthly-tier spend cap message (illustrative
                                                 text); never carries retry headers
any error.type name    that type                 that type's usual message (e.g.
(billing_error,                                  ``permission_error``, ``overloaded_error``)
permission_error, …)
=====================  ========================  =================================================

A ``stream_error`` fault without ``code`` sends ``overloaded_error`` (the common real case),
or the type of its ``status`` when one is given.
"""

from __future__ import annotations

import itertools
import json
from typing import Any, ClassVar

from aiohttp import web

from . import anthropic_checks as checks
from .anthropic_cache import PromptCache, read_plan
from .anthropic_errors import error_payload
from .faults import Fault
from .server import FakeProvider, Prompt, Reply, count_tokens, input_tokens
from .tools import ToolState

_COUNTED = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
                      "cache_control"})
_FINISH = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
# id -> (display_name, created_at, deprecated_at); ids as the anthropic 2.14 SDK knows them,
# dates illustrative.  Sonnet 4.5 is listed as the SDK lists it: deprecated.
_MODELS: dict[str, tuple[str, str, str | None]] = {
    "claude-opus-4-7": ("Claude Opus 4.7", "2026-06-01T00:00:00Z", None),
    "claude-sonnet-4-6": ("Claude Sonnet 4.6", "2026-02-17T00:00:00Z", None),
    "claude-haiku-4-5-20251001": ("Claude Haiku 4.5", "2025-10-15T00:00:00Z", None),
    "claude-sonnet-4-5-20250929": ("Claude Sonnet 4.5", "2025-09-29T00:00:00Z", "2026-08-31T00:00:00Z"),
}


class FakeAnthropic(FakeProvider):
    name = "anthropic"
    base_path: ClassVar[str] = ""
    default_key: ClassVar[str | None] = "sk-ant-api03-fake-anthropic-key"
    stream_content_type: ClassVar[str] = "text/event-stream; charset=utf-8"
    malformed_frame: ClassVar[bytes] = b"event: content_block_delta\ndata: {not json at all\n\n"

    def __init__(self, api_key: str | None = None, models: set[str] | None = None) -> None:
        super().__init__(api_key, models)
        self.cache = PromptCache()

    def reset(self) -> None:
        super().reset()
        self.cache.clear()

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/v1/messages", self.messages), web.post("/v1/messages/count_tokens", self.count),
                web.get("/v1/models", self.list_models),
                web.get("/v1/models/{model_id}", self.get_model)]

    def authorized(self, request: web.Request) -> bool:
        key = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if not key and auth.lower().startswith("bearer "):
            key = auth[7:]
        return self.key_ok(key)

    # -- requests -------------------------------------------------------------------------------

    def parse(self, request: web.Request, body: Any) -> Prompt | str:
        """The prompt, or the message of the 400 the real API would answer."""
        if not request.headers.get("anthropic-version"):
            return "anthropic-version: header is required"
        if not isinstance(body, dict):
            return "Input should be a valid dictionary or object to extract fields from"
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                return f"{name}: Field required"
        model, max_tokens = body["model"], body["max_tokens"]
        if not isinstance(model, str) or not model:
            return "model: Input should be a valid string"
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            return "max_tokens: Input should be greater than or equal to 1"
        state = ToolState()
        try:
            checks.check_options(body)
            system = checks.system_text(body.get("system"))
            checks.read_tools(body, state)
            thinking = checks.read_thinking(body, state)
            checks.read_output(body, state)
            turns = checks.read_turns(body["messages"], state, thinking)
            cache = read_plan(body)
        except checks.Refused as exc:
            return str(exc)
        return Prompt(model=model, system=system or None, messages=turns, max_tokens=max_tokens,
                      stream=body.get("stream") is True, tools=state,
                      options={"stop_sequences": list(body.get("stop_sequences") or []), "thinking": thinking,
                               "cache": cache})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        if not self.authorized(request):
            return self.error_response(401, None, _missing_key_message(request), None, "")
        prompt = self.parse(request, body)
        if isinstance(prompt, str):
            return self.error_response(400, None, prompt, None, "")
        return await self.answer(request, prompt)

    async def count(self, request: web.Request) -> web.Response:
        body = await self.read_json(request)
        if not self.authorized(request):
            return self.error_response(401, None, _missing_key_message(request), None, "")
        if isinstance(body, dict):
            extra = next((k for k in body if k not in _COUNTED), None)
            if extra is not None:
                return self.error_response(400, None, f"{extra}: Extra inputs are not permitted", None, "")
            body = {**body, "max_tokens": 1 << 30}  # the checks of /v1/messages, without its own field
        prompt = self.parse(request, body)
        if isinstance(prompt, str):
            return self.error_response(400, None, prompt, None, "")
        if self.models is not None and prompt.model not in self.models:
            return self.error_response(404, None, None, None, prompt.model)
        return web.json_response({"input_tokens": input_tokens(prompt)})

    def call_id(self, n: int) -> str:
        return f"toolu_01Fake{self.next_id()}x{n}"

    def make_reply(self, prompt: Prompt, fault: Fault | None) -> Reply:
        """The framework's reply, cut at the first stop sequence it contains, as the API does; with
        thinking on, its thinking counted in the output."""
        reply = super().make_reply(prompt, fault)
        scripted = fault is not None and fault.usage and {"cached_input", "cache_write"} & fault.usage.keys()
        if prompt.options.get("cache") is not None and not scripted:
            reply.cached_input_tokens, reply.cache_write_tokens, prompt.options["cache_1h"] = self.cache.use(
                prompt.options["cache"], reply.input_tokens)
        if prompt.options.get("thinking"):
            last_user = next((t for r, t in reversed(prompt.messages) if r == "user" and t), "")
            thought = f"The user wrote: {' '.join(last_user.split()[:20])}. I will answer plainly."
            prompt.options["thought"] = thought
            if not (fault is not None and fault.usage and "reasoning" in fault.usage):
                reply.reasoning_tokens = count_tokens(thought)
                reply.output_tokens += reply.reasoning_tokens
        return self._cut_at_stop_sequence(prompt, reply, fault)

    def _cut_at_stop_sequence(self, prompt: Prompt, reply: Reply, fault: Fault | None) -> Reply:
        text, hit = reply.text, None
        for seq in prompt.options.get("stop_sequences", []):
            at = text.find(seq) if seq else -1
            if at >= 0 and (hit is None or at < hit[0]):
                hit = (at, seq)
        if hit is None:
            return reply
        kept, length = [], 0
        for chunk in reply.chunks:
            if length + len(chunk) > hit[0]:
                if hit[0] > length:
                    kept.append(chunk[: hit[0] - length])
                break
            kept.append(chunk)
            length += len(chunk)
        reply.chunks = kept
        if not (fault is not None and fault.usage and "output" in fault.usage):
            reply.output_tokens = count_tokens("".join(kept)) + reply.reasoning_tokens
        if not reply.native_finish:
            reply.finish, reply.native_finish = "stop_sequence", True
        prompt.options["stop_sequence"] = hit[1]
        return reply

    # -- models ---------------------------------------------------------------------------------

    def model_entries(self) -> list[dict[str, Any]]:
        ids = sorted(self.models) if self.models is not None else list(_MODELS)
        return [_model_entry(i) for i in ids]

    async def list_models(self, request: web.Request) -> web.Response:
        await self.record(request, None)
        if not self.authorized(request):
            return self.error_response(401, None, _missing_key_message(request), None, "")
        entries = self.model_entries()
        ids = [e["id"] for e in entries]
        try:
            limit = max(1, min(1000, int(request.query.get("limit", "20"))))
        except ValueError:
            return self.error_response(400, None, "limit: Input should be a valid integer", None, "")
        after, before = request.query.get("after_id"), request.query.get("before_id")
        if after in ids:
            entries = entries[ids.index(after) + 1:]
        elif before in ids:
            entries = entries[: ids.index(before)][-limit:]
        page = entries[:limit]
        return web.json_response({"data": page, "has_more": len(entries) > len(page),
                                  "first_id": page[0]["id"] if page else None,
                                  "last_id": page[-1]["id"] if page else None})

    async def get_model(self, request: web.Request) -> web.Response:
        await self.record(request, None)
        if not self.authorized(request):
            return self.error_response(401, None, _missing_key_message(request), None, "")
        model_id = request.match_info["model_id"]
        if model_id not in {e["id"] for e in self.model_entries()}:
            return self.error_response(404, None, None, None, model_id)
        return web.json_response(_model_entry(model_id))

    # -- errors ---------------------------------------------------------------------------------

    def error_payload(self, status: int | None, code: str | None, message: str | None,
                      model: str) -> dict[str, Any]:
        return error_payload(status, code, message, model, "req_011Cfake" + self.next_id())

    def error_response(self, status: int, code: str | None, message: str | None, fault: Fault | None,
                       model: str) -> web.Response:
        payload = self.error_payload(status, code, message, model)
        headers = {"request-id": payload["request_id"]}
        if code != "spend_cap":
            headers.update(self.retry_headers(fault))
        if status == 429:
            headers.update({"anthropic-ratelimit-requests-limit": "50",
                            "anthropic-ratelimit-requests-remaining": "0",
                            "anthropic-ratelimit-requests-reset": "2026-11-26T12:00:00Z"})
        return web.json_response(payload, status=status, headers=headers)

    def overloaded_response(self, fault: Fault, model: str) -> web.Response:
        resp = self.error_response(529, None, fault.message, fault, model)
        resp.headers.setdefault("x-should-retry", "true")
        return resp

    # -- success --------------------------------------------------------------------------------

    def usage(self, prompt: Prompt, reply: Reply, output_tokens: int | None = None) -> dict[str, Any]:
        cached, written, hour = reply.cached_input_tokens, reply.cache_write_tokens, prompt.options.get("cache_1h", 0)
        usage: dict[str, Any] = {
            "input_tokens": max(0, reply.input_tokens - cached - written),
            "cache_creation_input_tokens": written,
            "cache_read_input_tokens": cached,
            "cache_creation": {"ephemeral_5m_input_tokens": written - hour, "ephemeral_1h_input_tokens": hour},
            "output_tokens": reply.output_tokens if output_tokens is None else output_tokens,
        }
        if reply.reasoning_tokens and output_tokens is None:
            usage["output_tokens_details"] = {"thinking_tokens": reply.reasoning_tokens}
        return usage

    def stop(self, prompt: Prompt, reply: Reply) -> tuple[str, str | None]:
        """(stop_reason, stop_sequence)."""
        reason = reply.finish if reply.native_finish else _FINISH.get(reply.finish, "end_turn")
        return reason, prompt.options.get("stop_sequence") if reason == "stop_sequence" else None

    def message(self, prompt: Prompt, reply: Reply, content: list[dict[str, Any]],
                stop: tuple[str | None, str | None], usage: dict[str, Any]) -> dict[str, Any]:
        return {"id": "msg_01Fake" + reply.id, "type": "message", "role": "assistant",
                "model": reply.model, "content": content, "stop_reason": stop[0],
                "stop_sequence": stop[1], "usage": {**usage, "service_tier": "standard"}}

    def completion_body(self, prompt: Prompt, reply: Reply) -> dict[str, Any]:
        content: list[dict[str, Any]] = []
        if "thought" in prompt.options:
            thought = prompt.options["thought"]
            content.append({"type": "thinking", "thinking": thought, "signature": checks.sign(thought)})
        if reply.chunks:
            content.append({"type": "text", "text": reply.text})
        content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in reply.tool_calls]
        return self.message(prompt, reply, content, self.stop(prompt, reply), self.usage(prompt, reply))

    def stream_head(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        start = self.message(prompt, reply, [], (None, None), self.usage(prompt, reply, output_tokens=1))
        frames = [self.sse({"type": "message_start", "message": start}, "message_start"),
                  self.sse({"type": "ping"}, "ping")]
        if "thought" in prompt.options:
            thought = prompt.options["thought"]
            half = len(thought) // 2
            frames += [self.block_start(0, {"type": "thinking", "thinking": "", "signature": ""}),
                       *(self.block_delta(0, {"type": "thinking_delta", "thinking": piece})
                         for piece in (thought[:half], thought[half:])),
                       self.block_delta(0, {"type": "signature_delta", "signature": checks.sign(thought)}),
                       self.block_stop(0)]
        if reply.chunks:
            frames.append(self.block_start(self.text_index(prompt), {"type": "text", "text": ""}))
        return frames

    def stream_delta(self, prompt: Prompt, reply: Reply, text: str) -> bytes:
        return self.block_delta(self.text_index(prompt), {"type": "text_delta", "text": text})

    def stream_tool_frames(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        index = self.text_index(prompt)
        frames = [self.block_stop(index)] if reply.chunks else []
        index += 1 if reply.chunks else 0
        for k, call in enumerate(reply.tool_calls):
            arguments = json.dumps(call.arguments, separators=(",", ":"))
            cuts = [0, len(arguments) // 3, 2 * len(arguments) // 3, len(arguments)]
            pieces = [arguments[a:b] for a, b in itertools.pairwise(cuts) if b > a]
            frames += [self.block_start(index + k, {"type": "tool_use", "id": call.id, "name": call.name,
                                                    "input": {}}),
                       *(self.block_delta(index + k, {"type": "input_json_delta", "partial_json": p})
                         for p in pieces),
                       self.block_stop(index + k)]
        return frames

    def stream_tail(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        reason, sequence = self.stop(prompt, reply)
        usage = self.usage(prompt, reply)
        usage.pop("cache_creation")  # message_delta usage has no per-TTL breakdown
        return [self.sse({"type": "message_delta", "delta": {"stop_reason": reason, "stop_sequence": sequence},
                          "usage": usage}, "message_delta"),
                self.sse({"type": "message_stop"}, "message_stop")]

    @staticmethod
    def text_index(prompt: Prompt) -> int:
        return 1 if "thought" in prompt.options else 0

    def block_start(self, index: int, block: dict[str, Any]) -> bytes:
        return self.sse({"type": "content_block_start", "index": index, "content_block": block},
                        "content_block_start")

    def block_delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return self.sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")

    def block_stop(self, index: int) -> bytes:
        return self.sse({"type": "content_block_stop", "index": index}, "content_block_stop")

    def stream_error_frame(self, prompt: Prompt, fault: Fault) -> bytes:
        payload = self.error_payload(fault.status, fault.code, fault.message, prompt.model)
        payload["error"] = {"details": None, **payload["error"]}
        return self.sse(payload, "error")


# -- request validation ----------------------------------------------------------------------------


def _missing_key_message(request: web.Request) -> str | None:
    has_key = request.headers.get("x-api-key") or request.headers.get("authorization")
    return None if has_key else "x-api-key header is required"


def _model_entry(model_id: str) -> dict[str, Any]:
    display, created, deprecated = _MODELS.get(model_id, (model_id, "2025-01-01T00:00:00Z", None))
    return {"type": "model", "id": model_id, "display_name": display, "created_at": created,
            "lifecycle": "deprecated" if deprecated else "active", "deprecated_at": deprecated}
