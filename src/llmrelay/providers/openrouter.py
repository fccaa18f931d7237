"""OpenRouter (shared/reference/providers.md §5): the OpenAI chat format plus its own error
categories, in-band errors and cost.

What differs from `OpenAIProvider`, and nothing else:

- `max_tokens` (not `max_completion_tokens`); no `stream_options` (usage always comes, in a
  final `choices: []` chunk); attribution headers; consecutive same-role turns merged, because
  OpenRouter forwards to upstreams whose chat templates insist on alternation.
- It takes `top_k` too, asks for reasoning as `reasoning: {"effort": …}` (and answers it in
  `message.reasoning` / `delta.reasoning`, read by the base class), and takes every sampling
  parameter for every model (OpenRouter itself drops what a model does not support).  Tool names are
  held to OpenAI's rule (letters, digits, _ and -, at most 64), the one every upstream accepts: the
  upstream's refusal would come back as a 400 no other link would be tried after.
- Errors: `error.metadata.error_type` first, else the HTTP status (or the in-band `error.code`,
  an int or a string); moderation metadata -> content_filtered; 402 never retried; a 503 "no
  available model provider meets your routing requirements" retried only with a Retry-After.
- In-band errors: the mid-stream chunk with a top-level `error` (handled by the base class),
  and a `choices[].error` next to `finish_reason: "error"` in a 200 body or a chunk.
- `usage.cost` is kept as the exact decimal text OpenRouter sent: JSON numbers with a fraction
  are decoded as strings, never as floats.
- Embeddings: OpenAI's `POST /embeddings`, inherited whole (its vectors read as floats).
- Prompt-cache breakpoints are not sent, as on OpenAI (OpenRouter itself takes Anthropic-style
  `cache_control` on content parts for the upstreams that cache explicitly; llmrelay does not relay it
  there yet).  Its cache reads and writes come back in the usage all the same.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from ..types import ErrorKind, Usage, decimal_or_none
from .base import ModelPricing, kind_for_status, parse_retry_after
from .openai import ErrorVerdict, OpenAIProvider
from .openai_request import OPENAI_TAKES

# error.metadata.error_type -> kind (reference §5 typed table, §8 OpenRouter column).
_ERROR_TYPES: dict[str, ErrorKind] = {
    "context_length_exceeded": ErrorKind.CONTEXT_LENGTH_EXCEEDED,
    "max_tokens_exceeded": ErrorKind.CONTEXT_LENGTH_EXCEEDED,
    "token_limit_exceeded": ErrorKind.CONTEXT_LENGTH_EXCEEDED,
    "string_too_long": ErrorKind.CONTEXT_LENGTH_EXCEEDED,
    "authentication": ErrorKind.AUTH,
    "permission_denied": ErrorKind.AUTH,
    "payment_required": ErrorKind.AUTH,
    "rate_limit_exceeded": ErrorKind.RATE_LIMITED,
    "provider_overloaded": ErrorKind.OVERLOADED,
    "provider_unavailable": ErrorKind.SERVER_ERROR,
    "invalid_request": ErrorKind.BAD_REQUEST,
    "invalid_prompt": ErrorKind.BAD_REQUEST,
    "not_found": ErrorKind.NOT_FOUND,
    "precondition_failed": ErrorKind.BAD_REQUEST,
    "payload_too_large": ErrorKind.BAD_REQUEST,
    "unprocessable": ErrorKind.BAD_REQUEST,
    "content_policy_violation": ErrorKind.CONTENT_FILTERED,
    "refusal": ErrorKind.CONTENT_FILTERED,
    "invalid_image": ErrorKind.BAD_REQUEST,
    "image_too_large": ErrorKind.BAD_REQUEST,
    "image_too_small": ErrorKind.BAD_REQUEST,
    "unsupported_image_format": ErrorKind.BAD_REQUEST,
    "image_download_failed": ErrorKind.BAD_REQUEST,
    "image_not_found": ErrorKind.BAD_REQUEST,
    "server": ErrorKind.SERVER_ERROR,
    "timeout": ErrorKind.TIMEOUT,
    "unmapped": ErrorKind.SERVER_ERROR,
    # older string `error.code` values seen in documented mid-stream chunks
    "server_error": ErrorKind.SERVER_ERROR,
    "rate_limited": ErrorKind.RATE_LIMITED,
}
_NO_ROUTE = "routing requirements"


class OpenRouterProvider(OpenAIProvider):
    name: ClassVar[str] = "openrouter"
    default_base_url: ClassVar[str] = "https://openrouter.ai/api/v1"
    model_pattern: ClassVar[re.Pattern[str] | None] = re.compile(
        r"^[a-z0-9][a-z0-9._\-]{0,60}/[A-Za-z0-9][A-Za-z0-9._\-]{0,100}(:[a-z0-9\-]{1,20})?$")
    probe_model: ClassVar[str] = "openai/gpt-4o-mini"

    max_tokens_field: ClassVar[str] = "max_tokens"
    stream_options: ClassVar[Mapping[str, Any] | None] = None
    merge_turns: ClassVar[bool] = True
    no_sampling_models = None  # OpenRouter drops parameters a model does not support
    takes: ClassVar[frozenset[str]] = OPENAI_TAKES | {"top_k", "embeddings"}
    title: ClassVar[str] = "llmrelay"
    """OpenRouter's optional app attribution (`X-Title`).  Its `HTTP-Referer` names the calling
    site; llmrelay has no site of its own to name, so it sends none rather than a made-up URL."""
    json_parse_float = str  # `usage.cost` keeps its exact decimal text, never a float

    async def model_prices(self) -> list[ModelPricing]:
        """`GET {base}/models`: every model's prices, read as exact decimals (never floats)."""
        return _model_pricing(self, await self.get_json("/models"))

    def extra_headers(self) -> dict[str, str]:
        return {"X-Title": self.title}

    def reasoning_to_wire(self, effort: str) -> dict[str, Any]:
        return {"reasoning": {"effort": effort}}

    # -- JSON, usage, cost --------------------------------------------------------------------

    def read_usage(self, usage: Mapping[str, Any]) -> Usage:
        base = super().read_usage(usage)
        details = usage.get("prompt_tokens_details")
        write = details.get("cache_write_tokens") if isinstance(details, dict) else None
        if isinstance(write, int) and not isinstance(write, bool) and write > 0:
            return Usage(base.input_tokens, base.output_tokens, base.cached_input_tokens,
                         base.reasoning_tokens, cache_write_tokens=write)
        return base

    def read_cost(self, usage: Mapping[str, Any]) -> str | None:
        """`usage.cost` (USD credits) exactly as sent; None if absent or not a number."""
        cost = usage.get("cost")
        if isinstance(cost, bool) or not isinstance(cost, int | str):
            return None
        text = str(cost)
        try:
            return text if Decimal(text).is_finite() else None
        except InvalidOperation:
            return None

    # -- in-band errors -----------------------------------------------------------------------

    def on_completion(self, data: dict[str, Any], model: str) -> None:
        self._raise_choice_error(data, model)

    def on_chunk(self, chunk: dict[str, Any], model: str) -> None:
        self._raise_choice_error(chunk, model)

    def _raise_choice_error(self, payload: dict[str, Any], model: str) -> None:
        """A provider that failed after producing output: `choices[].error` (reference §5)."""
        choices = payload.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if isinstance(choice, dict) and choice.get("error"):
                raise self.inband_error(choice["error"], model)

    # -- error mapping ------------------------------------------------------------------------

    def error_kind(self, status: int | None, err: Mapping[str, Any], message: str,
                   headers: Mapping[str, str]) -> ErrorVerdict:
        """`error.metadata.error_type` first, else the HTTP status (in-band: `error.code`)."""
        meta = err.get("metadata")
        meta = meta if isinstance(meta, dict) else {}
        etype = meta.get("error_type")
        code = err.get("code")
        if status is None and isinstance(code, int) and not isinstance(code, bool):
            status = code
        if meta.get("reasons") or meta.get("flagged_input"):
            return ErrorVerdict(ErrorKind.CONTENT_FILTERED)  # a moderation flag, not a key problem
        if status == 402 or etype == "payment_required":
            return ErrorVerdict(ErrorKind.AUTH, retryable=False)  # out of credits: never retry
        if _NO_ROUTE in message.lower():
            # No provider meets the routing requirements: waiting helps only if OpenRouter says so.
            return ErrorVerdict(ErrorKind.OVERLOADED, retryable=parse_retry_after(headers) is not None)
        if isinstance(etype, str) and etype in _ERROR_TYPES:
            return ErrorVerdict(_ERROR_TYPES[etype])
        if status is not None:
            return ErrorVerdict(kind_for_status(status))
        return ErrorVerdict(_ERROR_TYPES.get(code, ErrorKind.SERVER_ERROR) if isinstance(code, str)
                            else ErrorKind.SERVER_ERROR)


def _per_token(value: Any) -> Decimal | None:
    """A price string; missing, non-numeric or negative (the router's "-1" sentinel) is unknown."""
    d = decimal_or_none(value)
    return d if d is not None and d >= 0 else None


def _model_pricing(provider: OpenRouterProvider, data: Any) -> list[ModelPricing]:
    models = data.get("data") if isinstance(data, dict) else None
    if not isinstance(models, list):
        raise provider.malformed("model list", data, "")
    out = []
    for m in models:
        if not isinstance(m, dict) or not isinstance(m.get("id"), str):
            continue
        p = m.get("pricing") if isinstance(m.get("pricing"), dict) else {}
        ctx = m.get("context_length")
        out.append(ModelPricing(m["id"], _per_token(p.get("prompt")), _per_token(p.get("completion")),
                                _per_token(p.get("input_cache_read")), _per_token(p.get("input_cache_write")),
                                ctx if isinstance(ctx, int) else None))
    return out
