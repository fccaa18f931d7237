"""A fake OpenRouter API (shared/reference/providers.md §5), built on the fake OpenAI one.

Reproduces: the `/api/v1` base path and `Authorization: Bearer` auth; `gen-…` ids, the
`provider` field and `native_finish_reason` on bodies and chunks; `: OPENROUTER PROCESSING`
SSE comment lines before the first chunk and between chunks; usage ALWAYS in one final
`choices: []` chunk (whether or not `stream_options` was sent) and in every non-streaming body,
with `cost` (USD, computed from the price table below, deterministic), `is_byok` and
`cost_details`; `prompt_tokens_details.cache_write_tokens`; error bodies
`{"error": {"code": <HTTP status>, "message": …, "metadata": {…}}}`; `Retry-After` on
429/503 when scripted; the mid-stream error chunk (top-level `error` plus a choice with
`finish_reason: "error"`, then the stream ends without `[DONE]`); and `GET /api/v1/models`
with decimal-string `pricing` (public: no key needed).

Error hints (the `code` of an `http_error` or `stream_error` fault):

=========================  ====================================================================
any §5 ``error_type``      sent as `metadata.error_type` (e.g. ``context_length_exceeded``,
                           ``rate_limit_exceeded``, ``provider_overloaded``, ``refusal``,
                           ``string_too_long``, ``payment_required``…) with a typical message;
                           for a stream error it also picks the `error.code` status
``moderation``             403 with `metadata: {reasons, flagged_input, provider_name, model_slug}`
``no_provider``            503 "No available model provider meets your routing requirements"
``untyped``                no `metadata` at all (the older bodies, e.g. a bare 404)
``string_code``            stream error only: the older shape with `"code": "server_error"`
=========================  ====================================================================

Without a hint, the status picks a default `error_type` (400 invalid_request, 401
authentication, 402 payment_required, 403 permission_denied, 404 untyped "No endpoints found
for <model>.", 408/504 timeout, 429 rate_limit_exceeded, 500 server, 502 provider_unavailable,
503 provider_overloaded, …).

A `reply` fault with ``finish="error"`` answers a non-streaming request with a 200 whose
`choices[0]` carries `finish_reason: "error"` and an `error` object next to the partial text
(and a streaming request with the mid-stream error chunk after the text).

Prices: `PRICES` (model -> per-token decimal strings) is copied into each instance as
`self.prices`; change that dict in a test to change both `/models` and the reported costs.
A model missing from it is billed at `DEFAULT_PRICE`; a negative price ("-1", the router
sentinel) bills nothing for that part.  `openrouter/auto` is served by `AUTO_ROUTE`, whose
name the reply carries, as OpenRouter does.

Tools and JSON output as the fake OpenAI (its checks relaxed: OpenRouter takes its own extensions
such as `top_k` and passes names and ids to the upstream).  A rejection comes in OpenRouter's error
body; for an `openai/…` model the upstream's rules apply (names, ids of at most 40 characters, the
word "json"), and its refusal comes as OpenRouter relays an upstream's: "Provider returned error"
with the upstream's body in `metadata.raw`.

Embeddings: OpenAI's endpoint (`POST /api/v1/embeddings`) for the `openai/…` embedding models, with
OpenRouter's `id` and `provider`, and `usage.cost` at `EMBEDDING_PRICES`; errors in OpenRouter's body.

`reasoning` (`{"effort": …}`, `{"max_tokens": …}` or `{"enabled": true}`, not `exclude`d) makes
the answer think first: `message.reasoning` (and `reasoning_details`), in a stream
`delta.reasoning` pieces before the text, its tokens counted in `completion_tokens` and reported as
`completion_tokens_details.reasoning_tokens`.
"""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any, ClassVar

from aiohttp import web

from .embeddings import OPENROUTER_MODELS
from .faults import Fault
from .openai import FakeOpenAI
from .openai_checks import OPENROUTER, OPENROUTER_TO_OPENAI, Rejection, Rules
from .server import Prompt, Reply, count_tokens

PRICES: dict[str, dict[str, str]] = {
    "openai/gpt-4o": {"prompt": "0.0000025", "completion": "0.00001", "request": "0", "image": "0",
                      "web_search": "0", "internal_reasoning": "0", "input_cache_read": "0.00000125",
                      "input_cache_write": "0"},
    "openai/gpt-4o-mini": {"prompt": "0.00000015", "completion": "0.0000006", "request": "0",
                           "image": "0", "input_cache_read": "0.000000075"},
    "anthropic/claude-3.5-sonnet": {"prompt": "0.000003", "completion": "0.000015", "request": "0",
                                    "image": "0.0048", "input_cache_read": "0.0000003",
                                    "input_cache_write": "0.00000375"},
    "meta-llama/llama-3.1-70b-instruct": {"prompt": "0.0000004", "completion": "0.0000004",
                                          "request": "0", "image": "0"},
    "meta-llama/llama-3.2-3b-instruct:free": {"prompt": "0", "completion": "0", "request": "0",
                                              "image": "0"},
    "openrouter/auto": {"prompt": "-1", "completion": "-1"},
}
DEFAULT_PRICE: dict[str, str] = {"prompt": "0.000001", "completion": "0.000002"}
EMBEDDING_PRICES: dict[str, str] = {"openai/text-embedding-3-small": "0.00000002",
                                    "openai/text-embedding-3-large": "0.00000013",
                                    "openai/text-embedding-ada-002": "0.0000001"}
"""USD per input token of the embedding models."""
AUTO_ROUTE = "openai/gpt-4o"

# model id -> (name, context length, max completion tokens, tokenizer)
_MODEL_INFO: dict[str, tuple[str, int, int | None, str]] = {
    "openai/gpt-4o": ("OpenAI: GPT-4o", 128000, 16384, "GPT"),
    "openai/gpt-4o-mini": ("OpenAI: GPT-4o-mini", 128000, 16384, "GPT"),
    "anthropic/claude-3.5-sonnet": ("Anthropic: Claude 3.5 Sonnet", 200000, 8192, "Claude"),
    "meta-llama/llama-3.1-70b-instruct": ("Meta: Llama 3.1 70B Instruct", 131072, None, "Llama3"),
    "meta-llama/llama-3.2-3b-instruct:free": ("Meta: Llama 3.2 3B Instruct (free)", 131072, None, "Llama3"),
    "openrouter/auto": ("Auto Router", 2000000, None, "Router"),
}
_UPSTREAM = {"openai": "OpenAI", "anthropic": "Anthropic", "meta-llama": "DeepInfra", "google": "Google"}
# upstream-native finish values per vendor, for `native_finish_reason`
_NATIVE_FINISH = {
    "anthropic": {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                  "content_filter": "refusal"},
    "google": {"stop": "STOP", "length": "MAX_TOKENS", "content_filter": "SAFETY"},
}

_DEFAULT_TYPES: dict[int, str] = {400: "invalid_request", 401: "authentication", 402: "payment_required",
                                  403: "permission_denied", 408: "timeout", 412: "precondition_failed",
                                  413: "payload_too_large", 422: "unprocessable", 429: "rate_limit_exceeded",
                                  500: "server", 502: "provider_unavailable", 503: "provider_overloaded",
                                  504: "timeout"}
# error_type -> (status for stream errors, message)
_TYPE_INFO: dict[str, tuple[int, str]] = {
    "context_length_exceeded": (400, "This endpoint's maximum context length is 131072 tokens. However, "
                                     "you requested about 140211 tokens. Please reduce the length."),
    "max_tokens_exceeded": (400, "max_tokens is too large for this model."),
    "token_limit_exceeded": (400, "Token limit exceeded."),
    "string_too_long": (400, "String too long."),
    "invalid_request": (400, "Invalid request."),
    "invalid_prompt": (400, "Invalid prompt."),
    "content_policy_violation": (400, "The request was rejected by the provider's content policy."),
    "refusal": (400, "The model refused to answer."),
    "authentication": (401, "No auth credentials found"),
    "payment_required": (402, "Insufficient credits. Add more using https://openrouter.ai/settings/credits"),
    "permission_denied": (403, "This key is not allowed to use this model."),
    "not_found": (404, "No endpoints found for {model}."),
    "timeout": (408, "Request timed out."),
    "rate_limit_exceeded": (429, "Rate limit exceeded"),
    "server": (500, "Internal Server Error"),
    "unmapped": (500, "Internal Server Error"),
    "provider_unavailable": (502, "Provider returned error"),
    "provider_overloaded": (503, "The provider is overloaded, please try again later."),
}
_HINT_STATUS = {"moderation": 403, "no_provider": 503, "untyped": 500}
_COMMENT = b": OPENROUTER PROCESSING\n\n"


class FakeOpenRouter(FakeOpenAI):
    name = "openrouter"
    base_path: ClassVar[str] = "/api/v1"
    default_key: ClassVar[str | None] = "sk-or-v1-fake-openrouter-key"
    object_prefix: ClassVar[str] = "gen-"

    def __init__(self, api_key: str | None = None, models: set[str] | None = None) -> None:
        super().__init__(api_key, models)
        self.prices: dict[str, dict[str, str]] = copy.deepcopy(PRICES)

    def reset(self) -> None:
        """Faults and requests forgotten, and the price table back to `PRICES`."""
        super().reset()
        self.prices = copy.deepcopy(PRICES)

    # -- prices ---------------------------------------------------------------------------------

    def price(self, model: str, part: str) -> Decimal:
        """USD per token (or per request) of `part`; unknown models use DEFAULT_PRICE."""
        table = self.prices.get(model, DEFAULT_PRICE)
        value = Decimal(table.get(part, "0"))
        return value if value > 0 else Decimal(0)

    def cost(self, model: str, input_tokens: int, output_tokens: int, cached_input_tokens: int = 0,
             cache_write_tokens: int = 0) -> Decimal:
        """What OpenRouter would bill for these tokens on `model` (exact).  Cache reads and
        writes fall back to the prompt price when the table has no price for them."""
        table = self.prices.get(model, DEFAULT_PRICE)

        def per_token(part: str) -> Decimal:
            return self.price(model, part if part in table else "prompt")

        uncached = max(0, input_tokens - cached_input_tokens - cache_write_tokens)
        return (uncached * per_token("prompt") + cached_input_tokens * per_token("input_cache_read")
                + cache_write_tokens * per_token("input_cache_write")
                + output_tokens * per_token("completion") + self.price(model, "request"))

    # -- requests -------------------------------------------------------------------------------

    rules: ClassVar[Rules] = OPENROUTER
    embedding_models = OPENROUTER_MODELS

    def embedding_envelope(self, model: str, tokens: int) -> dict[str, Any]:
        cost = tokens * Decimal(EMBEDDING_PRICES.get(model, DEFAULT_PRICE["prompt"]))
        return {"id": "gen-emb-" + self.next_id(), "provider": self.upstream(model), "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens, "cost": float(cost)}}

    def read_options(self, body: dict[str, Any], prompt: Prompt) -> None:
        super().read_options(body, prompt)
        reasoning = body.get("reasoning")
        if isinstance(reasoning, dict) and reasoning.get("enabled") is not False and not reasoning.get("exclude") \
                and ("effort" in reasoning or "max_tokens" in reasoning or reasoning.get("enabled")):
            last_user = next((t for r, t in reversed(prompt.messages) if r == "user"), "")
            prompt.options["reasoning"] = "Thinking it over: " + " ".join(last_user.split()[:12])

    def rules_for(self, model: str) -> Rules:
        return OPENROUTER_TO_OPENAI if model.startswith("openai/") else OPENROUTER

    def rejection_response(self, rejection: Rejection, model: str) -> web.Response:
        if not model.startswith("openai/"):
            return self.error_response(400, "invalid_request", rejection.message, None, model)
        upstream = {"error": {"message": rejection.message, "type": "invalid_request_error", "param": rejection.param,
                              "code": rejection.code}}
        return web.json_response({"error": {"code": 400, "message": "Provider returned error", "metadata": {
            "raw": json.dumps(upstream, indent=2), "provider_name": "OpenAI"}}, "user_id": "user_fake"}, status=400)

    def make_reply(self, prompt: Prompt, fault: Fault | None) -> Reply:
        reply = super().make_reply(prompt, fault)
        if reply.model == "openrouter/auto":
            reply.model = AUTO_ROUTE
        thought = prompt.options.get("reasoning")
        if thought and not (fault is not None and fault.usage and {"output", "reasoning"} & set(fault.usage)):
            reply.reasoning_tokens = count_tokens(thought)
            reply.output_tokens += reply.reasoning_tokens
        return reply

    async def list_models(self, request: web.Request) -> web.Response:
        await self.record(request, None)
        ids = sorted(self.prices) if self.models is None else sorted(self.models)
        return web.json_response({"data": [self.model_entry(i) for i in ids]})

    def model_entry(self, model: str) -> dict[str, Any]:
        name, context, max_out, tokenizer = _MODEL_INFO.get(model, (model, 32768, None, "Other"))
        return {"id": model, "canonical_slug": model.split(":")[0], "name": name, "created": 1715367049,
                "description": f"{name} (fake).", "context_length": context,
                "architecture": {"input_modalities": ["text"], "output_modalities": ["text"],
                                 "tokenizer": tokenizer, "instruct_type": None},
                "pricing": dict(self.prices.get(model, DEFAULT_PRICE)),
                "top_provider": {"context_length": context, "max_completion_tokens": max_out,
                                 "is_moderated": model.startswith(("openai/", "anthropic/"))},
                "per_request_limits": None,
                "supported_parameters": ["max_tokens", "temperature", "stop", "tools", "tool_choice"],
                "default_parameters": None, "expiration_date": None}

    # -- errors ---------------------------------------------------------------------------------

    def error_payload(self, status: int, code: str | None, message: str | None, model: str) -> dict:
        err: dict[str, Any] = {"code": status}
        if code == "moderation":
            text = "{model} requires moderation on OpenAI. Your input was flagged for \"harassment\"."
            err["metadata"] = {"reasons": ["harassment"], "flagged_input": "You are such a…",
                               "provider_name": "OpenAI", "model_slug": model}
        elif code == "no_provider":
            text = "No available model provider meets your routing requirements"
        elif code == "untyped" or (code is None and status == 404):
            text = _TYPE_INFO["not_found"][1] if status == 404 else f"HTTP {status}"
        else:
            etype = code or _DEFAULT_TYPES.get(status, "server" if status >= 500 else "invalid_request")
            text = _TYPE_INFO.get(etype, (status, etype.replace("_", " ").capitalize() + "."))[1]
            err["metadata"] = {"error_type": etype}
            if status < 500 and status != 401:
                err["metadata"]["provider_code"] = etype
        err["message"] = message or text.format(model=model)
        return {"error": err, "user_id": "user_fake"}

    # -- success --------------------------------------------------------------------------------

    def upstream(self, model: str) -> str:
        return _UPSTREAM.get(model.split("/")[0], "Fake")

    def native_finish(self, reply: Reply) -> str:
        return _NATIVE_FINISH.get(reply.model.split("/")[0], {}).get(reply.finish, reply.finish)

    def envelope(self, reply: Reply, obj: str) -> dict[str, Any]:
        return {"id": self.object_prefix + reply.id, "provider": self.upstream(reply.model),
                "model": reply.model, "object": obj, "created": 1745331200 + int(reply.id or 0)}

    def usage(self, reply: Reply) -> dict[str, Any]:
        u = super().usage(reply)
        u["prompt_tokens_details"]["cache_write_tokens"] = reply.cache_write_tokens
        cost = self.cost(reply.model, reply.input_tokens, reply.output_tokens, reply.cached_input_tokens,
                         reply.cache_write_tokens)
        completion_cost = reply.output_tokens * self.price(reply.model, "completion")
        u.update(cost=float(cost), is_byok=False,
                 cost_details={"upstream_inference_cost": None,
                               "upstream_inference_prompt_cost": float(cost - completion_cost),
                               "upstream_inference_completions_cost": float(completion_cost)})
        return u

    def choice_error(self, reply: Reply) -> dict[str, Any]:
        return {"code": 502, "message": "Provider returned error",
                "metadata": {"error_type": "provider_unavailable", "provider_name": self.upstream(reply.model)}}

    def answer_message(self, prompt: Prompt, reply: Reply) -> dict[str, Any]:
        thought = prompt.options.get("reasoning")
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or (None if reply.tool_calls else ""),
                                   "refusal": None, "reasoning": thought}
        if thought:
            message["reasoning_details"] = [{"type": "reasoning.text", "text": thought, "format": "unknown",
                                             "index": 0}]
        if reply.tool_calls:
            message["tool_calls"] = [{**c, "index": i} for i, c in enumerate(self.wire_calls(reply))]
        return message

    def completion_body(self, prompt: Prompt, reply: Reply) -> dict[str, Any]:
        choice: dict[str, Any] = {"logprobs": None, "finish_reason": reply.finish,
                                  "native_finish_reason": self.native_finish(reply), "index": 0,
                                  "message": self.answer_message(prompt, reply)}
        if reply.finish == "error":
            choice["error"] = self.choice_error(reply)
        return {**self.envelope(reply, "chat.completion"), "choices": [choice], "usage": self.usage(reply)}

    def chunk(self, prompt: Prompt, reply: Reply, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
        native = self.native_finish(reply) if finish else None
        return {**self.envelope(reply, "chat.completion.chunk"),
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish,
                             "native_finish_reason": native, "logprobs": None}]}

    def stream_head(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        prompt.options["reply"] = reply  # the error chunk reuses the id and model
        prompt.options["deltas"] = 0
        frames = [_COMMENT, _COMMENT, self.sse(self.chunk(prompt, reply, {"role": "assistant", "content": ""}, None))]
        thought = prompt.options.get("reasoning")
        if thought:
            words = thought.split(" ")
            for piece in (" ".join(words[: len(words) // 2]) + " ", " ".join(words[len(words) // 2:])):
                frames.append(self.sse(self.chunk(prompt, reply, {"role": "assistant", "content": "",
                                                                  "reasoning": piece}, None)))
        return frames

    def stream_delta(self, prompt: Prompt, reply: Reply, text: str) -> bytes:
        prompt.options["deltas"] += 1
        frame = self.sse(self.chunk(prompt, reply, {"role": "assistant", "content": text}, None))
        return _COMMENT + frame if prompt.options["deltas"] % 2 == 0 else frame

    def stream_tail(self, prompt: Prompt, reply: Reply) -> list[bytes]:
        if reply.finish == "error":
            return [self.sse(self.error_chunk(reply, {**self.choice_error(reply)}))]
        usage_chunk = {**self.envelope(reply, "chat.completion.chunk"), "choices": [],
                       "usage": self.usage(reply)}
        return [self.sse(self.chunk(prompt, reply, {"role": "assistant", "content": ""}, reply.finish)),
                _COMMENT, self.sse(usage_chunk), b"data: [DONE]\n\n"]

    def error_chunk(self, reply: Reply, error: dict[str, Any]) -> dict[str, Any]:
        return {**self.envelope(reply, "chat.completion.chunk"), "error": error,
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error",
                             "native_finish_reason": "error"}]}

    def stream_error_frame(self, prompt: Prompt, fault: Fault) -> bytes:
        reply: Reply = prompt.options.get("reply") or Reply(prompt.model, [], 0, 0, id=self.next_id())
        if fault.code == "string_code":
            error: dict[str, Any] = {"code": "server_error", "message": fault.message or "Internal error"}
        else:
            etype = fault.code or "server"
            status = fault.status or _HINT_STATUS.get(etype) or _TYPE_INFO.get(etype, (500, ""))[0]
            error = self.error_payload(status, etype, fault.message, reply.model)["error"]
        return self.sse(self.error_chunk(reply, error))
