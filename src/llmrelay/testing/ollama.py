"""A fake Ollama server: the native API, and the OpenAI-compatible `/v1` (`ollama_compat`)
(shared/reference/providers.md §4).

Native endpoints:

- `POST /api/chat` — `stream` defaults to TRUE when the field is absent (or null), as on the
  real server.  A non-streaming reply is one JSON object; a stream is NDJSON
  (`application/x-ndjson`): one `done: false` line per text delta, then a `done: true` line
  with `done_reason` and the metrics.  Metric fields (`prompt_eval_count`, `eval_count`, the
  nanosecond durations) appear only on that final line and are omitted when zero, like Go's
  `omitempty`.  A request with no messages is a model *load* request: an empty answer with
  `done_reason: "load"`, no faults applied.  What the body may hold and what the server rejects:
  `ollama_request` (tools, `tool` messages, images, `format`, `think`, the capabilities by model).
- `POST /api/embed` — embeddings (`ollama_embed`).
- `GET /api/tags` — the installed models (`mistral:latest`, `llama3.2:latest`,
  `llama3.1:latest`, `qwen2.5:latest`, or `self.models` when set); `GET /api/version`.

Answers (the decisions are `testing.tools.plan`'s): tool calls are `message.tool_calls`
(`[{"function": {"index", "name", "arguments": {...}}}]`, arguments an object, no ids: servers before
~0.12 give none, which is what the adapter's stable ids are for; a call scripted with an `id` carries
it, as newer servers do), with `done_reason: "stop"`; on a stream they come in one `done: false` line
of their own after the text and before the `done` line.  With `think` on, the answer has a
`message.thinking` (on a stream: `done: false` lines carrying only thinking, before the text), and its
words count in `eval_count`.  JSON output (`format`) is an instance of the schema, or `{"answer": …}`.

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
(a hint or `message` changes the text).  `faults.reply(finish="tool_calls")` without `tool_calls`
answers with a call of `get_weather` (`{"city": "Paris"}`); any other scripted finish (`load`,
`unload`, …) is sent verbatim as `done_reason`.  An invalid `format` fails as the runner does:
500 `{"error": "invalid format: …"}`, or that error line on a stream.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from aiohttp import web

from .faults import Fault
from .ollama_compat import OllamaOpenAICompat
from .ollama_embed import embed as answer_embed
from .ollama_request import read_chat
from .server import FakeProvider, Prompt, Reply, count_tokens
from .tools import FakeCall, FakeTool

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
_TOOL_CALL = ("get_weather", {"city": "Paris"})
"""The call a `reply(finish="tool_calls")` fault without `tool_calls` makes."""


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
    stream_error: ClassVar[str] = STREAM_ERROR
    modified_unix: ClassVar[int] = _MODIFIED_UNIX

    def __init__(self, api_key: str | None = None, models: set[str] | None = None) -> None:
        super().__init__(api_key=api_key, models=models)
        self.compat = OllamaOpenAICompat(self)

    @property
    def models(self) -> _ModelSet | None:  # type: ignore[override]
        return self._models

    @models.setter
    def models(self, value: Iterable[str] | None) -> None:
        self._models = None if value is None else _ModelSet(value)

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/api/chat", self.chat), web.post("/api/embed", self.embed), web.get("/api/tags", self.tags),
                web.get("/api/version", self.version),
                web.post("/v1/chat/completions", self.compat.chat), web.get("/v1/models", self.compat.list_models)]

    async def embed(self, request: web.Request) -> web.StreamResponse:
        return await answer_embed(self, request)

    def authorized(self, request: web.Request) -> bool:
        if self.api_key is None:
            return True
        auth = request.headers.get("authorization", "")
        return self.key_ok(auth[7:] if auth.lower().startswith("bearer ") else None)

    # -- requests -------------------------------------------------------------------------------

    def parse(self, body: Any) -> Prompt | str:
        """The prompt, or the error message of the 400 the real server answers (`ollama_request`)."""
        return read_chat(body)

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
        problem = prompt.options["format_error"]
        if problem and self.authorized(request) and (self.models is None or prompt.model in self.models):
            return await self.fail_generation(request, prompt, problem)
        return await self.answer(request, prompt)

    async def fail_generation(self, request: web.Request, prompt: Prompt, message: str) -> web.StreamResponse:
        """A failure once generation starts: 500 on a plain request, an error line on a stream."""
        if not prompt.stream:
            return web.json_response({"error": message}, status=500)
        resp = web.StreamResponse(status=200, headers={"content-type": self.stream_content_type})
        await resp.prepare(request)
        await resp.write(self.ndjson({"error": message}))
        await resp.write_eof()
        return resp

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

    def call_id(self, n: int) -> str:
        return ""  # the native API's calls have no ids (before ~0.12)

    @staticmethod
    def calls(reply: Reply) -> list[FakeCall]:
        """The calls the answer makes: planned or scripted, or the stock one of a scripted
        `finish="tool_calls"`."""
        if reply.tool_calls:
            return reply.tool_calls
        if reply.native_finish and reply.finish == "tool_calls":
            return [FakeCall(*_TOOL_CALL)]
        return []

    @staticmethod
    def done_reason(reply: Reply) -> str:
        return "stop" if reply.finish == "tool_calls" else reply.finish

    @staticmethod
    def thinking(prompt: Prompt) -> list[str]:
        """The words of the answer's thinking (none unless `think` is on)."""
        think = prompt.options.get("think")
        if not think:
            return []
        last_user = next((t for r, t in reversed(prompt.messages) if r == "user"), "")
        effort = f" ({think} effort)" if isinstance(think, str) else ""
        text = f"Thinking{effort}: the user said {' '.join(last_user.split()[:20])!r}, so I answer that."
        words = text.split(" ")
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def make_reply(self, prompt: Prompt, fault: Fault | None) -> Reply:
        choices = call_schema(prompt.tools.json_schema)
        if choices is not None:  # a `format` that asks for a call of one of these tools: choose as a model would
            state = prompt.tools
            state.tools, state.choice, state.json_schema, state.json_mode = choices, "required", None, False
        reply = super().make_reply(prompt, fault)
        if choices is not None and reply.tool_calls and not (fault is not None and fault.text is not None):
            call = reply.tool_calls[0]
            text = json.dumps({"name": call.name, "arguments": call.arguments})
            reply.chunks, reply.tool_calls, reply.finish = [text], [], "stop"
        if not (fault is not None and fault.usage and "output" in fault.usage):
            reply.output_tokens += count_tokens("".join(self.thinking(prompt)))  # eval_count counts thinking
        return reply

    def line(self, reply: Reply, content: str, done: bool, *, thinking: str = "",
             calls: list[FakeCall] | None = None, **extra: Any) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": content}
        if thinking:
            message["thinking"] = thinking
        if calls:
            message["tool_calls"] = [self.call_json(i, c) for i, c in enumerate(calls)]
        return {"model": reply.model, "created_at": _now(), "message": message, "done": done, **extra}

    @staticmethod
    def call_json(i: int, call: FakeCall) -> dict[str, Any]:
        function = {"index": i, "name": call.name, "arguments": call.arguments}
        return {"id": call.id, "function": function} if call.id else {"function": function}

    def completion_body(self, prompt: Prompt, reply: Reply) -> dict[str, Any]:
        return self.line(reply, reply.text, True, thinking="".join(self.thinking(prompt)), calls=self.calls(reply),
                         done_reason=self.done_reason(reply), **self.metrics(reply))

    @staticmethod
    def ndjson(data: dict[str, Any]) -> bytes:
        return json.dumps(data, separators=(",", ":")).encode() + b"\n"

    def stream_head(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        """The thinking, a line per word (the first line already carries the first token)."""
        return [self.ndjson(self.line(reply, "", False, thinking=w)) for w in self.thinking(prompt)]

    def stream_delta(self, prompt: Prompt, reply: Reply, text: str) -> bytes:
        return self.ndjson(self.line(reply, text, False))

    def stream_tool_frames(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        calls = self.calls(reply)
        return [self.ndjson(self.line(reply, "", False, calls=calls))] if calls else []

    def stream_tail(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        return [self.ndjson(self.line(reply, "", True, done_reason=self.done_reason(reply), **self.metrics(reply)))]

    def stream_error_frame(self, prompt: Prompt, fault: Fault) -> bytes:
        text = fault.message or (_CODE_HINTS[fault.code][1] if fault.code in _CODE_HINTS else STREAM_ERROR)
        return self.ndjson({"error": text})



def call_schema(schema: Any) -> list[FakeTool] | None:
    """The tools a `format` of the shape `{"anyOf": [{"properties": {"name": {"enum": [tool]}, "arguments": …}}]}`
    offers (how llmrelay asks Ollama for a forced tool call), or None for any other format."""
    branches = schema.get("anyOf") if isinstance(schema, dict) else None
    if not isinstance(branches, list) or not branches:
        return None
    tools = []
    for b in branches:
        props = b.get("properties") if isinstance(b, dict) else None
        names = props.get("name", {}).get("enum") if isinstance(props, dict) else None
        if not isinstance(names, list) or len(names) != 1 or "arguments" not in props:
            return None
        tools.append(FakeTool(names[0], props["arguments"] if isinstance(props["arguments"], dict) else {}))
    return tools
