"""A fake Ollama server: the native API and the OpenAI-compatible `/v1` (shared/reference/providers.md §4).

Native endpoints:

- `POST /api/chat` — `stream` defaults to TRUE when the field is absent (or null), as on the
  real server.  A non-streaming reply is one JSON object; a stream is NDJSON
  (`application/x-ndjson`): one `done: false` line per text delta, then a `done: true` line
  with `done_reason` and the metrics.  Metric fields (`prompt_eval_count`, `eval_count`, the
  nanosecond durations) appear only on that final line and are omitted when zero, like Go's
  `omitempty`.  A request with no messages is a model *load* request: an empty answer with
  `done_reason: "load"`, no faults applied.
- `GET /api/tags` — the installed models (`mistral:latest`, `llama3.2:latest`,
  `llama3.1:latest`, `qwen2.5:latest`, or `self.models` when set); `GET /api/version`.

OpenAI-compatible endpoints (rendered by `FakeOpenAI`'s code, configured the Ollama way):
`POST /v1/chat/completions` and `GET /v1/models`.  Differences from OpenAI: only `max_tokens`
is read (`max_completion_tokens` is ignored), usage has no details objects, stream chunks
omit the `usage` key (no `"usage": null`), there is no separate role-only first chunk,
`system_fingerprint` is `"fp_ollama"`, ids are `chatcmpl-<8 chars>`, and errors are
`{"error": {"message", "type", "param": null, "code": null}}` with type
`invalid_request_error` (400), `not_found_error` (404) or `api_error` (anything else).

No key is needed (`default_key = None`): any request is accepted, unless `api_key` is set
(Ollama cloud), then `Authorization: Bearer <key>` is required.  Model names without a tag
mean `:latest`: a request for `mistral` finds `mistral:latest` (and the reply echoes the
name as requested, as Ollama does).

Native errors are `{"error": "<string>"}`.  Error hints (`faults.http_error(status, code)`):

==========================  ======  ==============================================================
code                        status  message
==========================  ======  ==============================================================
``context_length_exceeded`` 400     request (351 tokens) exceeds the available context size …
``model_not_found``         404     model "<m>" not found, try pulling it first
``usage_limit``             429     you've reached your weekly usage limit, please wait or upgrade …
``runner_terminated``       500     llama runner process has terminated: exit status 2
==========================  ======  ==============================================================

Without a hint each status has a default text (404 is the "not found, try pulling it"
message).  `overloaded` answers 503 with what a real Ollama whose queue is full says.  The
in-band stream error is `{"error": "an error was encountered while running the model"}`
(a hint or `message` changes the text).  `faults.reply(finish="tool_calls")` answers with a
tool call (native: `message.tool_calls` with `done_reason: "stop"`, as Ollama does); any
other scripted finish (`load`, `unload`, …) is sent verbatim as `done_reason`.

Deviation on `/v1` streams: a real Ollama's mid-stream failure there is not cleanly framed
(reference §4); this fake sends the OpenAI-shaped error as a `data:` frame and closes without
`[DONE]`, so both an OpenAI SDK (raises `APIError`) and a `[DONE]`-checking client notice it.
"""

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from .faults import Fault
from .openai import FakeOpenAI
from .server import FakeProvider, Prompt, Reply

if TYPE_CHECKING:
    from collections.abc import Iterable

VERSION = "0.13.0"
DEFAULT_MODELS = ("mistral:latest", "llama3.2:latest", "llama3.1:latest", "qwen2.5:latest")
_MODIFIED_AT = "2025-05-10T08:06:48.639712648-07:00"
_MODIFIED_UNIX = 1746889608
# name -> (size in bytes, family, parameter size)
_MODEL_FACTS: dict[str, tuple[int, str, str]] = {
    "mistral:latest": (4113301824, "llama", "7.2B"),
    "llama3.2:latest": (2019393189, "llama", "3.2B"),
    "llama3.1:latest": (4920753328, "llama", "8.0B"),
    "qwen2.5:latest": (4683087332, "qwen2", "7.6B"),
}

# status -> default message ("{model}" is filled in)
_ERRORS: dict[int, str] = {
    400: "invalid request",
    401: "unauthorized",
    403: "forbidden",
    404: 'model "{model}" not found, try pulling it first',
    429: "too many requests, please wait and try again",
    500: "llama runner process has terminated: exit status 2",
    502: "bad gateway: the remote model is unreachable",
    503: "server busy, please try again.  maximum pending requests exceeded",
    504: "gateway timeout",
}
_CODE_HINTS: dict[str, tuple[int, str]] = {
    "context_length_exceeded": (400, "request (351 tokens) exceeds the available context size (256 tokens), "
                                     "try increasing it"),
    "model_not_found": (404, _ERRORS[404]),
    "usage_limit": (429, "you've reached your weekly usage limit, please wait or upgrade to continue"),
    "runner_terminated": (500, _ERRORS[500]),
}
STREAM_ERROR = "an error was encountered while running the model"
_TOOL_CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}


def normalize_model(name: str) -> str:
    """`mistral` -> `mistral:latest`; a name that already has a tag is unchanged.  The tag
    colon comes after the last `/` (a registry host may carry a port: `host:5000/x`)."""
    return name if ":" in name.rsplit("/", 1)[-1] else name + ":latest"


class _ModelSet(frozenset):
    """Installed model names; membership ignores a missing `:latest` tag."""

    def __new__(cls, names: Iterable[str]) -> _ModelSet:
        return super().__new__(cls, (normalize_model(n) for n in names))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and super().__contains__(normalize_model(name))


def _now() -> str:
    """RFC 3339 with fractional seconds in UTC, the way Go prints `created_at`."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class FakeOllama(FakeProvider):
    name = "ollama"
    base_path: ClassVar[str] = ""
    default_key: ClassVar[str | None] = None
    stream_content_type: ClassVar[str] = "application/x-ndjson"
    malformed_frame: ClassVar[bytes] = b"{not json at all\n"

    def __init__(self, api_key: str | None = None, models: set[str] | None = None) -> None:
        super().__init__(api_key=api_key, models=models)
        self.compat = _OpenAICompat(self)

    @property
    def models(self) -> _ModelSet | None:  # type: ignore[override]
        return self._models

    @models.setter
    def models(self, value: Iterable[str] | None) -> None:
        self._models = None if value is None else _ModelSet(value)

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/chat", self.chat), web.get("/api/tags", self.tags),
                web.get("/api/version", self.version),
                web.post("/v1/chat/completions", self.compat.chat), web.get("/v1/models", self.compat.list_models)]

    def authorized(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        auth = request.headers.get("authorization", "")
        return self.key_ok(auth[7:] if auth.lower().startswith("bearer ") else None)

    # -- requests -------------------------------------------------------------------------------

    def parse(self, body: Any) -> Prompt | str:
        """The prompt, or the error message of the 400 the real server answers."""
        if not isinstance(body, dict):
            return "invalid character looking for beginning of value"
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return "model is required"
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            return "json: cannot unmarshal into Go struct field ChatRequest.stream of type bool"
        messages = body.get("messages") or []
        options = body.get("options") or {}
        if not isinstance(messages, list) or not isinstance(options, dict):
            return "json: cannot unmarshal into Go struct field ChatRequest of type api.ChatRequest"
        system, turns = None, []
        for m in messages:
            if not isinstance(m, dict) or not isinstance(m.get("content", ""), str):
                return "json: cannot unmarshal into Go struct field ChatRequest.messages of type api.Message"
            role, content = str(m.get("role", "")).lower(), m.get("content") or ""
            if role == "system":
                system = content if system is None else system + "\n\n" + content
            else:
                turns.append((role, content))
        num_predict = options.get("num_predict")
        max_tokens = num_predict if isinstance(num_predict, int) and num_predict >= 0 else None
        return Prompt(model=model, system=system, messages=turns, max_tokens=max_tokens,
                      stream=True if stream is None else stream,  # Ollama streams unless told not to
                      options={"load": not messages})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        prompt = self.parse(body)
        if isinstance(prompt, str) or prompt.options["load"]:
            if not self.authorized(request):
                return self.error_response(401, None, None, None, "")
            if isinstance(prompt, str):
                return self.error_response(400, None, prompt, None, "")
            return web.json_response({"model": prompt.model, "created_at": _now(),
                                      "message": {"role": "assistant", "content": ""},
                                      "done_reason": "load", "done": True})
        return await self.answer(request, prompt)

    def installed(self) -> list[str]:
        return sorted(self.models) if self.models is not None else list(DEFAULT_MODELS)

    async def tags(self, request: web.Request) -> web.Response:
        await self.record(request, None)
        if not self.authorized(request):
            return self.error_response(401, None, None, None, "")
        return web.json_response({"models": [self.tag(n) for n in self.installed()]})

    @staticmethod
    def tag(name: str) -> dict[str, Any]:
        size, family, params = _MODEL_FACTS.get(name, (4_000_000_000, "llama", "7B"))
        return {"name": name, "model": name, "modified_at": _MODIFIED_AT, "size": size,
                "digest": hashlib.sha256(name.encode()).hexdigest(),
                "details": {"parent_model": "", "format": "gguf", "family": family, "families": [family],
                            "parameter_size": params, "quantization_level": "Q4_K_M"}}

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": VERSION})

    # -- errors ---------------------------------------------------------------------------------

    @staticmethod
    def error_text(status: int, code: str | None, message: str | None, model: str) -> tuple[int, str]:
        """(status, message) of an error: a code hint picks both, else the status's default text."""
        if code in _CODE_HINTS:
            status, text = _CODE_HINTS[code]
        else:
            text = _ERRORS.get(status, f"HTTP {status}")
        return status, message or text.format(model=model)

    def error_response(self, status: int, code: str | None, message: str | None, fault: Fault | None,
                       model: str) -> web.Response:
        status, text = self.error_text(status, code, message, model)
        return web.json_response({"error": text}, status=status, headers=self.retry_headers(fault))

    def overloaded_response(self, fault: Fault, model: str) -> web.Response:
        return self.error_response(503, None, fault.message, fault, model)

    # -- success --------------------------------------------------------------------------------

    @staticmethod
    def metrics(reply: Reply) -> dict[str, int]:
        """The final line's metrics, zero fields omitted (Go `omitempty`); durations in ns."""
        prompt_ns, eval_ns, load_ns = reply.input_tokens * 1_200_000, reply.output_tokens * 16_000_000, 2_154_458
        values = {"total_duration": prompt_ns + eval_ns + load_ns, "load_duration": load_ns,
                  "prompt_eval_count": reply.input_tokens, "prompt_eval_duration": prompt_ns,
                  "eval_count": reply.output_tokens, "eval_duration": eval_ns}
        return {k: v for k, v in values.items() if v}

    @staticmethod
    def tool_call(reply: Reply) -> bool:
        return reply.native_finish and reply.finish == "tool_calls"

    def done_reason(self, reply: Reply) -> str:
        return "stop" if self.tool_call(reply) else reply.finish

    def line(self, reply: Reply, content: str, done: bool, **extra: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if extra.pop("tool_calls", False):
            message["tool_calls"] = [{"function": dict(_TOOL_CALL)}]
        return {"model": reply.model, "created_at": _now(), "message": message, "done": done, **extra}

    def completion_body(self, prompt: Prompt, reply: Reply) -> dict[str, Any]:
        return self.line(reply, reply.text, True, tool_calls=self.tool_call(reply),
                         done_reason=self.done_reason(reply), **self.metrics(reply))

    @staticmethod
    def ndjson(data: dict[str, Any]) -> bytes:
        return json.dumps(data, separators=(",", ":")).encode() + b"\n"

    def stream_head(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        return []  # the first line already carries the first token

    def stream_delta(self, prompt: Prompt, reply: Reply, text: str) -> bytes:
        return self.ndjson(self.line(reply, text, False))

    def stream_tail(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        lines = [self.ndjson(self.line(reply, "", False, tool_calls=True))] if self.tool_call(reply) else []
        lines.append(self.ndjson(self.line(reply, "", True, done_reason=self.done_reason(reply),
                                           **self.metrics(reply))))
        return lines

    def stream_error_frame(self, prompt: Prompt, fault: Fault) -> bytes:
        text = fault.message or (_CODE_HINTS[fault.code][1] if fault.code in _CODE_HINTS else STREAM_ERROR)
        return self.ndjson({"error": text})


class _OpenAICompat(FakeOpenAI):
    """Ollama's `/v1`: `FakeOpenAI`'s request parsing, pipeline and framing with Ollama's
    differences.  It has no state of its own: the fault queue, request log, key, models and
    ids are the outer `FakeOllama`'s, so a fault scripted on the fake applies to both APIs."""

    name = "ollama"
    base_path: ClassVar[str] = "/v1"
    default_key: ClassVar[str | None] = None

    def __init__(self, outer: FakeOllama) -> None:  # no super().__init__(): nothing of its own
        self.outer = outer

    api_key = property(lambda self: self.outer.api_key)  # type: ignore[assignment]
    models = property(lambda self: self.outer.models)  # type: ignore[assignment]

    def authorized(self, request: web.Request) -> bool:
        return self.outer.authorized(request)

    def take_fault(self, model: str) -> Fault | None:
        return self.outer.take_fault(model)

    async def record(self, request: web.Request, body: Any) -> None:
        await self.outer.record(request, body)

    def next_id(self) -> str:
        return self.outer.next_id()

    def parse(self, body: Any) -> Prompt | str:
        prompt = super().parse(body)
        if isinstance(prompt, Prompt):  # Ollama reads max_tokens only
            max_tokens = body.get("max_tokens")
            prompt.max_tokens = max_tokens if isinstance(max_tokens, int) and max_tokens >= 0 else None
        return prompt

    async def list_models(self, request: web.Request) -> web.Response:
        await self.record(request, None)
        if not self.authorized(request):
            return self.error_response(401, None, None, None, "")
        return web.json_response({"object": "list", "data": [
            {"id": n, "object": "model", "created": _MODIFIED_UNIX, "owned_by": "library"}
            for n in self.outer.installed()]})

    # -- errors ---------------------------------------------------------------------------------

    @staticmethod
    def compat_error(status: int, text: str) -> dict[str, Any]:
        """Ollama's `openai.NewError`: the type follows the status, param and code are null."""
        etype = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        return {"error": {"message": text, "type": etype, "param": None, "code": None}}

    def error_payload(self, status: int, code: str | None, message: str | None, model: str) -> dict:
        return self.compat_error(*FakeOllama.error_text(status, code, message, model))

    def error_response(self, status: int, code: str | None, message: str | None, fault: Fault | None,
                       model: str) -> web.Response:
        status = FakeOllama.error_text(status, code, message, model)[0]
        return web.json_response(self.error_payload(status, code, message, model), status=status,
                                 headers=self.retry_headers(fault))

    def stream_error_frame(self, prompt: Prompt, fault: Fault) -> bytes:
        return self.sse(self.compat_error(500, fault.message or STREAM_ERROR))

    # -- success --------------------------------------------------------------------------------

    def usage(self, reply: Reply) -> dict[str, Any]:
        return {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens,
                "total_tokens": reply.input_tokens + reply.output_tokens}

    def envelope(self, reply: Reply, obj: str) -> dict[str, Any]:
        return {"id": "chatcmpl-" + reply.id.rjust(8, "0")[-8:], "object": obj, "created": int(time.time()),
                "model": reply.model, "system_fingerprint": "fp_ollama"}

    @staticmethod
    def tool_calls(reply: Reply) -> list[dict[str, Any]]:
        """Ollama's `/v1` tool call: arguments as a JSON string, `index` included."""
        return [{"id": "call_" + reply.id, "index": 0, "type": "function",
                 "function": {"name": _TOOL_CALL["name"], "arguments": json.dumps(_TOOL_CALL["arguments"])}}]

    def completion_body(self, prompt: Prompt, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        if FakeOllama.tool_call(reply):
            message["tool_calls"] = self.tool_calls(reply)
        return {**self.envelope(reply, "chat.completion"),
                "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason(reply)}],
                "usage": self.usage(reply)}

    def chunk(self, prompt: Prompt, reply: Reply, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        return {**self.envelope(reply, "chat.completion.chunk"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def stream_head(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        return []  # every chunk carries the role; there is no role-only first chunk

    def stream_delta(self, prompt: Prompt, reply: Reply, text: str) -> bytes:
        return self.sse(self.chunk(prompt, reply, {"role": "assistant", "content": text}, None))

    def stream_tail(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        frames = []
        if FakeOllama.tool_call(reply):
            delta = {"role": "assistant", "content": "", "tool_calls": self.tool_calls(reply)}
            frames.append(self.sse(self.chunk(prompt, reply, delta, None)))
        last = self.chunk(prompt, reply, {"role": "assistant", "content": ""}, self.finish_reason(reply))
        frames.append(self.sse(last))
        if prompt.options.get("include_usage"):
            frames.append(self.sse({**last, "choices": [], "usage": self.usage(reply)}))
        frames.append(b"data: [DONE]\n\n")
        return frames
