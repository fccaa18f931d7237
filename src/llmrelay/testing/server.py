"""The machinery every fake provider shares: a real aiohttp server, the fault queue, the
request log, the control API, and the one pipeline a chat request goes through.

A fake subclasses `FakeProvider` and supplies only what is provider-specific: its routes, how
to read a prompt out of its request body, its error bodies, its reply JSON and its stream
frames.  The pipeline here applies faults the same way for all five, so a fault means the same
thing whichever provider it is scripted on.

Control API (on every fake's own port, under ``/_fake``)::

    POST   /_fake/faults     a fault object or a list of them, appended to the queue
    GET    /_fake/faults     the queue
    DELETE /_fake/faults     empty the queue
    GET    /_fake/requests   every chat request received: path, headers, JSON body
    DELETE /_fake/requests   forget them
    POST   /_fake/refuse     {"seconds": N}: stop listening for N seconds (connection refused)
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from .faults import Fault
from .tools import IMAGE_TOKENS, TOOL_TOKENS, FakeCall, ToolState, answer_text, plan

# Request headers worth recording (never the key itself: only whether one was sent).
_AUTH_HEADERS = ("authorization", "x-api-key", "x-goog-api-key")


@dataclass(slots=True)
class Prompt:
    """What a fake needs from a request body to answer it."""

    model: str
    system: str | None
    messages: list[tuple[str, str]]
    """(native role, text) in order."""
    max_tokens: int | None = None
    stream: bool = False
    options: dict[str, Any] = field(default_factory=dict)
    """Provider-specific request flags a fake needs when answering (OpenAI's include_usage)."""
    tools: ToolState = field(default_factory=ToolState)
    """Tools, tool results, images and JSON output, read from the request (see testing/tools.py)."""


@dataclass(slots=True)
class Reply:
    """The answer a fake is about to give, before it is put in the provider's format."""

    model: str
    chunks: list[str]
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int = 0
    reasoning_tokens: int = 0
    cache_write_tokens: int = 0
    finish: str = "stop"
    """`stop`, `length`, or a provider-native finish reason scripted by a `reply` fault."""
    native_finish: bool = False
    """True when `finish` is the provider's own value, to be sent verbatim."""
    gap: float = 0.0
    id: str = ""
    tool_calls: list[FakeCall] = field(default_factory=list)
    """The tools the answer calls (each with its id), after its text."""

    @property
    def text(self) -> str:
        return "".join(self.chunks)


@dataclass(slots=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.time)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "path": self.path, "query": self.query, "headers": self.headers,
                "body": self.body, "at": self.at}


def count_tokens(text: str) -> int:
    """The fakes' tokenizer: one token per whitespace-separated word.  Deterministic on purpose."""
    return len(text.split())


def input_tokens(prompt: Prompt) -> int:
    """What every fake counts a request's input as: the words of its system prompt, turns and last tool
    results, plus `IMAGE_TOKENS` per image and `TOOL_TOKENS` per tool offered."""
    state = prompt.tools
    text = " ".join([prompt.system or ""] + [t for _, t in prompt.messages] + state.results)
    return count_tokens(text) + IMAGE_TOKENS * state.images + TOOL_TOKENS * len(state.tools)


class FakeProvider(ABC):
    """One fake provider: subclass it per provider."""

    name: ClassVar[str]
    base_path: ClassVar[str] = ""
    """Path prefix of the real API's base URL (`/v1` for OpenAI): `FakeServers.url` appends it."""
    default_key: ClassVar[str | None]
    """The key `FakeServers.env()` hands out; None for a provider that needs none."""

    def __init__(self, api_key: str | None = None, models: set[str] | None = None) -> None:
        self.api_key = api_key  # None: any non-empty key is accepted
        self.models = models  # None: every model exists
        self._faults: list[Fault] = []
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._ids = 0
        self.on_refuse: Callable[[float], None] | None = None

    # -- scripting ------------------------------------------------------------------------------

    def script(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def faults(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._requests.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def take_fault(self, model: str) -> Fault | None:
        with self._lock:
            for i, f in enumerate(self._faults):
                if f.model is None or f.model == model:
                    if f.times <= 1:
                        del self._faults[i]
                    else:
                        f.times -= 1
                    return f
        return None

    def next_id(self) -> str:
        with self._lock:
            self._ids += 1
            return f"{self._ids:06d}"

    # -- what each fake supplies ------------------------------------------------------------

    @abstractmethod
    def routes(self) -> list[web.RouteDef]:
        """The provider's own endpoints."""

    @abstractmethod
    def authorized(self, request: web.Request) -> bool:
        """Whether the request carries an acceptable key (see `key_ok`)."""

    @abstractmethod
    def error_response(self, status: int, code: str | None, message: str | None, fault: Fault | None,
                       model: str) -> web.Response:
        """The provider's own error reply for `status` (`code` refines it)."""

    @abstractmethod
    def overloaded_response(self, fault: Fault, model: str) -> web.Response:
        """The provider's own 'overloaded' reply."""

    @abstractmethod
    def completion_body(self, prompt: Prompt, reply: Reply) -> dict[str, Any]:
        """The non-streaming success JSON."""

    @abstractmethod
    def stream_head(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        """Frames sent before the first text delta."""

    @abstractmethod
    def stream_delta(self, prompt: Prompt, reply: Reply, text: str) -> bytes:
        """The frame carrying one text delta."""

    def stream_tool_frames(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        """The frames of the reply's tool calls, after its text (arguments in several pieces where
        the provider streams them so)."""
        return []

    @abstractmethod
    def stream_tail(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        """Frames after the last delta: finish reason, usage, terminal marker."""

    @abstractmethod
    def stream_error_frame(self, prompt: Prompt, fault: Fault) -> bytes:
        """The provider's in-band error frame (status already 200)."""

    stream_content_type: ClassVar[str] = "text/event-stream"
    malformed_frame: ClassVar[bytes] = b"data: {not json at all\n\n"

    # -- helpers for subclasses ---------------------------------------------------------------

    def key_ok(self, key: str | None) -> bool:
        if not key:
            return False
        return self.api_key is None or key == self.api_key

    @staticmethod
    def sse(data: Any, event: str | None = None, eol: bytes = b"\n") -> bytes:
        payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
        head = b"event: " + event.encode() + eol if event else b""
        return head + b"data: " + payload.encode() + eol + eol

    @staticmethod
    def retry_headers(fault: Fault | None) -> dict[str, str]:
        h: dict[str, str] = {}
        if fault is not None:
            if fault.retry_after is not None:
                h["retry-after"] = fault.retry_after
            if fault.retry_after_ms is not None:
                h["retry-after-ms"] = fault.retry_after_ms
            if fault.should_retry is not None:
                h["x-should-retry"] = fault.should_retry
        return h

    def call_id(self, n: int) -> str:
        """The id of the `n`-th tool call of a reply ("" for a provider whose calls have none)."""
        return f"call_fake{self.next_id()}_{n}"

    def make_reply(self, prompt: Prompt, fault: Fault | None) -> Reply:
        """The default answer (or a scripted one), truncated to the request's max tokens; tool calls
        and JSON as `testing.tools.plan` decides."""
        last_user = next((t for r, t in reversed(prompt.messages) if r == "user"), "")
        state = prompt.tools
        calls = plan(state, last_user, fault.tool_calls if fault is not None else None)
        for i, c in enumerate(calls):
            c.id = c.id or self.call_id(i)
        default = (f"Hello from fake {self.name} ({prompt.model}). You said: {' '.join(last_user.split()[:40])}"
                   + (f" (I saw {state.images} image{'s' if state.images > 1 else ''}.)" if state.images else ""))
        if fault is not None and fault.text is not None:
            text = fault.text
        elif calls:
            text = ""
        else:
            text = answer_text(state, default, last_user)
        words = text.split(" ")
        chunks = [w if i == 0 else " " + w for i, w in enumerate(words)] if text else []
        finish, native = ("tool_calls" if calls else "stop"), False
        if prompt.max_tokens is not None and len(chunks) > prompt.max_tokens:
            chunks, finish = chunks[: prompt.max_tokens], "length"
        if fault is not None and fault.finish:
            finish, native = fault.finish, True
        calls_text = " ".join(json.dumps(c.arguments) for c in calls)
        usage = dict(input=input_tokens(prompt),
                     output=count_tokens("".join(chunks)) + count_tokens(calls_text), cached_input=0, reasoning=0,
                     cache_write=0)
        if fault is not None and fault.usage:
            usage.update(fault.usage)
        return Reply(model=prompt.model, chunks=chunks, input_tokens=usage["input"],
                     output_tokens=usage["output"], cached_input_tokens=usage["cached_input"],
                     reasoning_tokens=usage["reasoning"], cache_write_tokens=usage["cache_write"],
                     finish=finish, native_finish=native,
                     gap=fault.seconds if fault is not None and fault.type == "reply" else 0.0,
                     id=self.next_id(), tool_calls=calls)

    # -- the pipeline -------------------------------------------------------------------------

    async def record(self, request: web.Request, body: Any) -> None:
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower() not in _AUTH_HEADERS}
        for h in _AUTH_HEADERS:
            if h in request.headers:
                headers[h] = "<present>"
        with self._lock:
            self._requests.append(RecordedRequest(request.method, request.path, dict(request.query),
                                                  headers, body))

    async def read_json(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        await self.record(request, body)
        return body

    async def answer(self, request: web.Request, prompt: Prompt) -> web.StreamResponse:
        """Run one chat request through the fault queue and answer it in the provider's format."""
        if not self.authorized(request):
            return self.error_response(401, None, None, None, prompt.model)
        fault = self.take_fault(prompt.model)
        kind = fault.type if fault is not None else None
        if kind == "disconnect":
            _abort(request)
            return web.Response()  # never sent: the transport is gone
        if kind == "hang":
            await asyncio.sleep(fault.seconds)  # type: ignore[union-attr]
            _abort(request)
            return web.Response()
        if kind == "slow_first_byte":
            await asyncio.sleep(fault.seconds)  # type: ignore[union-attr]
        if kind == "http_error":
            return self.error_response(fault.status, fault.code, fault.message, fault, prompt.model)  # type: ignore
        if kind == "overloaded":
            return self.overloaded_response(fault, prompt.model)  # type: ignore[arg-type]
        if self.models is not None and prompt.model not in self.models:
            return self.error_response(404, None, None, None, prompt.model)
        if kind == "malformed" and not prompt.stream:
            return web.Response(status=200, body=b"<html><body>502 Bad Gateway</body></html>",
                                content_type="application/json")
        reply = self.make_reply(prompt, fault if kind == "reply" else None)
        if not prompt.stream:
            body = json.dumps(self.completion_body(prompt, reply)).encode()
            if kind == "cut":
                return await _send_half(request, body)
            return web.Response(body=body, content_type="application/json")
        return await self._stream(request, prompt, reply, fault)

    async def _stream(self, request: web.Request, prompt: Prompt, reply: Reply,
                      fault: Fault | None) -> web.StreamResponse:
        try:
            return await self._write_stream(request, prompt, reply, fault)
        except ConnectionError:  # the client went away mid-stream, as clients do
            return web.StreamResponse()

    async def _write_stream(self, request: web.Request, prompt: Prompt, reply: Reply,
                            fault: Fault | None) -> web.StreamResponse:
        resp = web.StreamResponse(status=200, headers={"content-type": self.stream_content_type,
                                                       "cache-control": "no-cache"})
        await resp.prepare(request)
        kind = fault.type if fault is not None else None
        for frame in self.stream_head(prompt, reply):
            await resp.write(frame)
        for i, text in enumerate(reply.chunks):
            if kind in ("cut", "stream_error", "malformed") and i >= fault.after_chunks:  # type: ignore
                break
            if reply.gap and i:
                await asyncio.sleep(reply.gap)
            await resp.write(self.stream_delta(prompt, reply, text))
        if kind == "cut":
            _abort(request)
            return resp
        if kind == "stream_error":
            await resp.write(self.stream_error_frame(prompt, fault))  # type: ignore[arg-type]
            await resp.write_eof()
            return resp
        if kind == "malformed":
            await resp.write(self.malformed_frame)
            await resp.write_eof()
            return resp
        for frame in self.stream_tool_frames(prompt, reply):
            await resp.write(frame)
        for frame in self.stream_tail(prompt, reply):
            await resp.write(frame)
        await resp.write_eof()
        return resp

    # -- control API ----------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.add_routes(self.routes())
        app.add_routes([
            web.post("/_fake/faults", self._post_faults),
            web.get("/_fake/faults", self._get_faults),
            web.delete("/_fake/faults", self._delete_faults),
            web.get("/_fake/requests", self._get_requests),
            web.delete("/_fake/requests", self._delete_requests),
            web.post("/_fake/refuse", self._post_refuse),
        ])
        return app

    async def _post_faults(self, request: web.Request) -> web.Response:
        try:
            data = await request.json()
            items = data if isinstance(data, list) else [data]
            faults = [Fault.from_dict(item) for item in items]
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        self.script(*faults)
        return web.json_response({"queued": len(self.faults())})

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response([f.to_dict() for f in self.faults()])

    async def _delete_faults(self, request: web.Request) -> web.Response:
        with self._lock:
            self._faults.clear()
        return web.json_response({"queued": 0})

    async def _get_requests(self, request: web.Request) -> web.Response:
        return web.json_response([r.to_dict() for r in self.requests])

    async def _delete_requests(self, request: web.Request) -> web.Response:
        with self._lock:
            self._requests.clear()
        return web.json_response({"requests": 0})

    async def _post_refuse(self, request: web.Request) -> web.Response:
        try:
            seconds = float((await request.json()).get("seconds", 5))
        except (ValueError, TypeError, AttributeError):
            return web.json_response({"error": "body must be {\"seconds\": N}"}, status=400)
        if self.on_refuse is not None:
            asyncio.get_running_loop().call_soon(self.on_refuse, seconds)
        return web.json_response({"refusing_for": seconds})


def _abort(request: web.Request) -> None:
    if request.transport is not None:
        request.transport.abort()


async def _send_half(request: web.Request, body: bytes) -> web.StreamResponse:
    resp = web.StreamResponse(status=200, headers={"content-type": "application/json",
                                                   "content-length": str(len(body))})
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    _abort(request)
    return resp
