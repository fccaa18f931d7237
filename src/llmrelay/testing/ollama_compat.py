"""Ollama's OpenAI-compatible `/v1` (`POST /v1/chat/completions`, `GET /v1/models`), served by the fake
Ollama: `FakeOpenAI`'s request parsing, pipeline and framing with Ollama's differences
(shared/reference/providers.md §4).

Differences from OpenAI: only `max_tokens` is read (`max_completion_tokens` is ignored), usage has no
details objects, stream chunks omit the `usage` key (no `"usage": null`), there is no separate
role-only first chunk, `system_fingerprint` is `"fp_ollama"`, ids are `chatcmpl-<8 chars>`, tool calls
carry `index` and an id `call_<8 lowercase letters and digits>` with their arguments as JSON text, and
errors are `{"error": {"message", "type", "param": null, "code": null}}` with type
`invalid_request_error` (400), `not_found_error` (404) or `api_error` (anything else).  Ollama's Go
decoding ignores what it does not define and sets no limits on names and ids, and `tool_choice` and
`parallel_tool_calls` are not read (tools are offered, the model decides): of `openai_checks` only
the shape checks apply (a rejection has Ollama's error body).

It has no state of its own: the fault queue, request log, key, models and ids are the outer
`FakeOllama`'s, so a fault scripted on the fake applies to both APIs.

Deviation on streams: a real Ollama's mid-stream failure here is not cleanly framed (reference §4);
this fake sends the OpenAI-shaped error as a `data:` frame and closes without `[DONE]`, so both an
OpenAI SDK (raises `APIError`) and a `[DONE]`-checking client notice it.
"""

from __future__ import annotations

import json
import string
import time
from typing import Any, ClassVar, Protocol

from aiohttp import web

from .faults import Fault
from .openai import FakeOpenAI
from .openai_checks import Rejection, Rules
from .server import Prompt, Reply
from .tools import FakeCall


class NativeOllama(Protocol):
    """What the `/v1` face needs of the native fake (`testing.ollama.FakeOllama` has it all): a protocol,
    so that the face does not import the fake that imports it."""

    api_key: str | None
    models: set[str] | None
    modified_unix: int
    stream_error: str

    def authorized(self, request: web.Request) -> bool: ...
    def take_fault(self, model: str) -> Fault | None: ...
    def record(self, request: web.Request, body: Any) -> Any: ...
    def next_id(self) -> str: ...
    def installed(self) -> list[str]: ...
    def error_text(self, status: int, code: str | None, message: str | None, model: str) -> tuple[int, str]: ...
    def calls(self, reply: Reply) -> list[FakeCall]: ...

_ID_CHARS = string.ascii_lowercase + string.digits
OLLAMA_V1 = Rules(known_params=None, reasoning_models=None, max_name=None, max_call_id=None, json_word=False)


class OllamaOpenAICompat(FakeOpenAI):
    name = "ollama"
    base_path: ClassVar[str] = "/v1"
    default_key: ClassVar[str | None] = None
    rules: ClassVar[Rules] = OLLAMA_V1

    def __init__(self, outer: NativeOllama) -> None:  # no super().__init__(): nothing of its own
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

    def call_id(self, n: int) -> str:
        """`call_` and 8 lowercase letters or digits, as Ollama's `toolCallId` makes them."""
        number, chars = int(self.next_id()) * 7919 + n, []
        for _ in range(8):
            number, digit = divmod(number, len(_ID_CHARS))
            chars.append(_ID_CHARS[digit])
        return "call_" + "".join(chars)

    def parse(self, body: Any) -> Prompt | str | Rejection:
        prompt = super().parse(body)
        if isinstance(prompt, Prompt):  # Ollama reads max_tokens only, and no tool choice
            max_tokens = body.get("max_tokens")
            prompt.max_tokens = max_tokens if isinstance(max_tokens, int) and max_tokens >= 0 else None
            prompt.tools.choice, prompt.tools.parallel = "auto", True
        return prompt

    def rejection_response(self, rejection: Rejection, model: str) -> web.Response:
        return web.json_response(self.compat_error(400, rejection.message), status=400)

    async def list_models(self, request: web.Request) -> web.Response:
        await self.record(request, None)
        if not self.authorized(request):
            return self.error_response(401, None, None, None, "")
        return web.json_response({"object": "list", "data": [
            {"id": n, "object": "model", "created": self.outer.modified_unix, "owned_by": "library"}
            for n in self.outer.installed()]})

    # -- errors ---------------------------------------------------------------------------------

    @staticmethod
    def compat_error(status: int, text: str) -> dict[str, Any]:
        """Ollama's `openai.NewError`: the type follows the status, param and code are null."""
        etype = {400: "invalid_request_error", 404: "not_found_error"}.get(status, "api_error")
        return {"error": {"message": text, "type": etype, "param": None, "code": None}}

    def error_payload(self, status: int, code: str | None, message: str | None, model: str) -> dict:
        return self.compat_error(*self.outer.error_text(status, code, message, model))

    def error_response(self, status: int, code: str | None, message: str | None, fault: Fault | None,
                       model: str) -> web.Response:
        status = self.outer.error_text(status, code, message, model)[0]
        return web.json_response(self.error_payload(status, code, message, model), status=status,
                                 headers=self.retry_headers(fault))

    def stream_error_frame(self, prompt: Prompt, fault: Fault) -> bytes:
        return self.sse(self.compat_error(500, fault.message or self.outer.stream_error))

    # -- success --------------------------------------------------------------------------------

    def usage(self, reply: Reply) -> dict[str, Any]:
        return {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens,
                "total_tokens": reply.input_tokens + reply.output_tokens}

    def envelope(self, reply: Reply, obj: str) -> dict[str, Any]:
        return {"id": "chatcmpl-" + reply.id.rjust(8, "0")[-8:], "object": obj, "created": int(time.time()),
                "model": reply.model, "system_fingerprint": "fp_ollama"}

    def tool_calls(self, reply: Reply) -> list[dict[str, Any]]:
        """Ollama's `/v1` tool calls: arguments as JSON text, `index` included."""
        return [{"id": c.id or self.call_id(i), "index": i, "type": "function",
                 "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for i, c in enumerate(self.outer.calls(reply))]

    def completion_body(self, prompt: Prompt, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": reply.text}
        calls = self.tool_calls(reply)
        if calls:
            message["tool_calls"] = calls
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

    def stream_tool_frames(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        calls = self.tool_calls(reply)
        if not calls:
            return []
        return [self.sse(self.chunk(prompt, reply, {"role": "assistant", "content": "", "tool_calls": calls}, None))]

    def stream_tail(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        last = self.chunk(prompt, reply, {"role": "assistant", "content": ""}, self.finish_reason(reply))
        frames = [self.sse(last)]
        if prompt.options.get("include_usage"):
            frames.append(self.sse({**last, "choices": [], "usage": self.usage(reply)}))
        frames.append(b"data: [DONE]\n\n")
        return frames
