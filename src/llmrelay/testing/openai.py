"""A fake OpenAI Chat Completions API (shared/reference/providers.md §2).

Reproduces: `Authorization: Bearer` auth, the `chat.completion` body with usage details, SSE
chunks without event names ending in `data: [DONE]`, usage only in a final `choices: []` chunk
and only with `stream_options.include_usage`, `"usage": null` on every earlier chunk, the
`{"error": {message, type, param, code}}` body for every status, `retry-after` /
`retry-after-ms` headers, the in-band `data: {"error": …}` frame, `GET /v1/models`, and
`POST /v1/embeddings` (`openai_embeddings`).

Tools, images and JSON output: the request's tools, tool choice, tool results, image parts and
response format are read (`openai_checks.read_tools`) for `testing.tools.plan`; what the real API
refuses is refused with its own 400 (`openai_checks.check`, `param` and `code` included).  A reply's
tool calls come as `message.tool_calls` (with `content` null when there is no text) and finish
`tool_calls`; in a stream, after the text, each call as OpenAI streams it: a first fragment with its
`index`, `id`, `type` and `function.name` (`arguments: ""`), then its arguments in two or three pieces.
"""

from __future__ import annotations

import json
import time
from typing import Any, ClassVar

from aiohttp import web

from .faults import Fault
from .openai_checks import OPENAI, Rejection, Rules, check, read_tools, text_of
from .openai_embeddings import OpenAIEmbeddings
from .server import FakeProvider, Prompt, Reply

# status -> (type, code, message); `code` hints below override.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key",
          "Incorrect API key provided: sk-fake***********1234. You can find your API key at "
          "https://platform.openai.com/account/api-keys."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found",
          "The model `{model}` does not exist or you do not have access to it."),
    409: ("invalid_request_error", None, "Conflict."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
          "Limit 3, Used 3, Requested 1. Please try again in 20s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later"),
    504: ("server_error", None, "Gateway timeout."),
}
_CODE_HINTS: dict[str, tuple[int, str, str | None, str]] = {
    "context_length_exceeded": (400, "invalid_request_error", "context_length_exceeded",
                                "This model's maximum context length is 128000 tokens. However, your "
                                "messages resulted in 130412 tokens. Please reduce the length of the messages."),
    "invalid_prompt": (400, "invalid_request_error", "invalid_prompt",
                       "Invalid prompt: your prompt was flagged as potentially violating our usage policy."),
    "insufficient_quota": (429, "insufficient_quota", "insufficient_quota",
                           "You exceeded your current quota, please check your plan and billing details."),
    "request_too_large": (429, "tokens", "rate_limit_exceeded",
                          "Request too large for {model} in organization org-fake on tokens per min (TPM): "
                          "Limit 30000, Requested 50000. The input or output tokens must be reduced in "
                          "order to run successfully."),
    "tokens": (429, "tokens", "rate_limit_exceeded",
               "Rate limit reached for {model} in organization org-fake on tokens per min (TPM): "
               "Limit 30000, Used 29000, Requested 2000. Please try again in 644ms."),
}


class FakeOpenAI(OpenAIEmbeddings, FakeProvider):
    name = "openai"
    base_path: ClassVar[str] = "/v1"
    default_key: ClassVar[str | None] = "sk-fake-openai-key"
    object_prefix: ClassVar[str] = "chatcmpl-"

    def routes(self) -> list[web.RouteDef]:
        p = self.base_path
        return [web.post(p + "/chat/completions", self.chat), web.get(p + "/models", self.list_models),
                web.post(p + "/embeddings", self.embeddings)]

    def authorized(self, request: web.Request) -> bool:
        auth = request.headers.get("authorization", "")
        return self.key_ok(auth[7:] if auth.lower().startswith("bearer ") else None)

    rules: ClassVar[Rules] = OPENAI
    """What this server refuses (`openai_checks`)."""

    def parse(self, body: Any) -> Prompt | str | Rejection:
        """The prompt, or why the real API would reject the body with a 400 (a message, or a
        `Rejection` with its `param` and `code`)."""
        if not isinstance(body, dict):
            return "We could not parse the JSON body of your request."
        model, messages = body.get("model"), body.get("messages")
        if not isinstance(model, str) or not model:
            return "you must provide a model parameter"
        if not isinstance(messages, list) or not messages:
            return "[] is too short - 'messages'"
        if any(not isinstance(m, dict) or "role" not in m for m in messages):
            return "Invalid value for 'messages'."
        rejected = check(body, self.rules_for(model))
        if rejected is not None:
            return rejected
        state = read_tools(body)
        last_assistant = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
        system, turns = None, []
        for i, m in enumerate(messages):
            content = text_of(m.get("content"))
            if m["role"] in ("system", "developer"):
                system = content if system is None else system + "\n" + content
            elif m["role"] != "tool" or i < last_assistant:  # the last turn's results are `state.results`
                turns.append((m["role"], content))
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        return Prompt(model=model, system=system, messages=turns,
                      max_tokens=max_tokens if isinstance(max_tokens, int) else None,
                      stream=bool(body.get("stream")), tools=state)

    def rules_for(self, model: str) -> Rules:
        return self.rules

    def read_options(self, body: dict[str, Any], prompt: Prompt) -> None:
        """Request flags the answer depends on."""
        prompt.options["include_usage"] = bool((body.get("stream_options") or {}).get("include_usage"))

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        prompt = self.parse(body)
        if not isinstance(prompt, Prompt):
            if not self.authorized(request):
                return self.error_response(401, None, None, None, "")
            if isinstance(prompt, Rejection):
                return self.rejection_response(prompt, body.get("model") or "")
            return self.error_response(400, None, prompt, None, "")
        self.read_options(body, prompt)
        return await self.answer(request, prompt)

    def rejection_response(self, rejection: Rejection, model: str) -> web.Response:
        return web.json_response({"error": {"message": rejection.message, "type": "invalid_request_error",
                                            "param": rejection.param, "code": rejection.code}},
                                 status=400, headers={"x-request-id": "req_fake"})

    async def list_models(self, request: web.Request) -> web.Response:
        await self.record(request, None)
        if not self.authorized(request):
            return self.error_response(401, None, None, None, "")
        names = sorted(self.models) if self.models is not None else [
            "gpt-4o", "gpt-4o-mini", "gpt-4", "gpt-4.1", "o3-mini"]
        return web.json_response({"object": "list", "data": [
            {"id": n, "object": "model", "created": 1715367049, "owned_by": "system"} for n in names]})

    # -- errors ---------------------------------------------------------------------------------

    def error_payload(self, status: int, code: str | None, message: str | None, model: str) -> dict:
        if code in _CODE_HINTS:
            _, etype, ecode, text = _CODE_HINTS[code]
        else:
            etype, ecode, text = _ERRORS.get(status, ("invalid_request_error" if status < 500 else
                                                       "server_error", None, f"HTTP {status}"))
            if code:
                ecode = code
        param = "messages" if ecode == "context_length_exceeded" else None
        return {"error": {"message": message or text.format(model=model), "type": etype,
                          "param": param, "code": ecode}}

    def error_response(self, status: int, code: str | None, message: str | None, fault: Fault | None,
                       model: str) -> web.Response:
        return web.json_response(self.error_payload(status, code, message, model), status=status,
                                 headers={"x-request-id": "req_fake", **self.retry_headers(fault)})

    def overloaded_response(self, fault: Fault, model: str) -> web.Response:
        return self.error_response(503, None, fault.message, fault, model)

    # -- success --------------------------------------------------------------------------------

    def usage(self, reply: Reply) -> dict[str, Any]:
        return {"prompt_tokens": reply.input_tokens, "completion_tokens": reply.output_tokens,
                "total_tokens": reply.input_tokens + reply.output_tokens,
                "prompt_tokens_details": {"cached_tokens": reply.cached_input_tokens, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": reply.reasoning_tokens, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0,
                                              "rejected_prediction_tokens": 0}}

    def finish_reason(self, reply: Reply) -> str:
        return reply.finish  # OpenAI's own names are the unified ones

    def envelope(self, reply: Reply, obj: str) -> dict[str, Any]:
        return {"id": self.object_prefix + reply.id, "object": obj, "created": int(time.time()),
                "model": reply.model, "system_fingerprint": "fp_fake"}

    @staticmethod
    def wire_calls(reply: Reply) -> list[dict[str, Any]]:
        return [{"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in reply.tool_calls]

    def answer_message(self, prompt: Prompt, reply: Reply) -> dict[str, Any]:
        """`choices[0].message`: the text (null when the answer only calls tools) and the tool calls."""
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or (None if reply.tool_calls else ""),
                                   "refusal": None, "annotations": []}
        if reply.tool_calls:
            message["tool_calls"] = self.wire_calls(reply)
        return message

    def completion_body(self, prompt: Prompt, reply: Reply) -> dict[str, Any]:
        finish = self.finish_reason(reply)
        return {**self.envelope(reply, "chat.completion"), "service_tier": "default",
                "choices": [{"index": 0, "finish_reason": finish, "logprobs": None,
                             "message": self.answer_message(prompt, reply)}],
                "usage": self.usage(reply)}

    def chunk(self, prompt: Prompt, reply: Reply, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        c = {**self.envelope(reply, "chat.completion.chunk"),
             "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}
        if prompt.options.get("include_usage"):
            c["usage"] = None
        return c

    def stream_head(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        content = None if reply.tool_calls and not reply.chunks else ""
        return [self.sse(self.chunk(prompt, reply, {"role": "assistant", "content": content, "refusal": None}, None))]

    def stream_delta(self, prompt: Prompt, reply: Reply, text: str) -> bytes:
        return self.sse(self.chunk(prompt, reply, {"content": text}, None))

    def stream_tool_frames(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        frames = []
        for i, call in enumerate(self.wire_calls(reply)):
            arguments = call["function"]["arguments"]
            first = {**call, "index": i, "function": {"name": call["function"]["name"], "arguments": ""}}
            frames.append(self.sse(self.chunk(prompt, reply, {"tool_calls": [first]}, None)))
            for piece in pieces(arguments):
                frames.append(self.sse(self.chunk(prompt, reply, {"tool_calls": [
                    {"index": i, "function": {"arguments": piece}}]}, None)))
        return frames

    def stream_tail(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        frames = [self.sse(self.chunk(prompt, reply, {}, self.finish_reason(reply)))]
        if prompt.options.get("include_usage"):
            frames.append(self.sse({**self.envelope(reply, "chat.completion.chunk"), "choices": [],
                                    "usage": self.usage(reply)}))
        frames.append(b"data: [DONE]\n\n")
        return frames

    def stream_error_frame(self, prompt: Prompt, fault: Fault) -> bytes:
        status = fault.status or 500
        return self.sse(self.error_payload(status, fault.code, fault.message, prompt.model))


def pieces(text: str) -> list[str]:
    """`text` in three pieces (two when it is shorter than three characters), as streamed arguments come."""
    n = 3 if len(text) >= 3 else 2
    step = -(-len(text) // n)
    return [text[i:i + step] for i in range(0, len(text), step)] or [""]
