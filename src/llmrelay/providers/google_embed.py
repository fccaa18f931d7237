"""Gemini embeddings: `POST {base}/v1beta/models/{model}:batchEmbedContents`.

    {"requests": [{"model": "models/<model>", "content": {"parts": [{"text": …}]}, "outputDimensionality": N}]}
    -> {"embeddings": [{"values": [...]}, …]}   (one per request, in order)

Every request of a batch names the same model as the URL (Gemini refuses a batch that does not), and a
batch holds at most `MAX_BATCH` requests: a longer list of inputs is sent as several batches, at once,
and their vectors joined in order (nothing is cut); one failed batch fails the attempt.

Tokens: Gemini reports none for an embedding call.  The input tokens recorded (and priced, and charged
to rate limits) are an ESTIMATE, `providers.embeddings.estimated_tokens` (four characters a token, per
input, rounded up), unless a reply carries `usageMetadata.promptTokenCount` (as Vertex AI's do), which
then wins.  Counting them exactly would take a `countTokens` call per request, which Gemini meters
against the same per-minute quota, doubling the calls an embedding costs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from ..types import EmbeddingRequest, EmbeddingResponse, Usage
from .base import HTTPProvider
from .embeddings import checked_vectors, estimated_tokens, post_for_vectors

MAX_BATCH = 100
"""The most requests Gemini takes in one `batchEmbedContents` call."""


def batch_body(model: str, texts: Sequence[str], dimensions: int | None) -> dict[str, Any]:
    name = f"models/{model}"
    requests = []
    for text in texts:
        one: dict[str, Any] = {"model": name, "content": {"parts": [{"text": text}]}}
        if dimensions is not None:
            one["outputDimensionality"] = dimensions
        requests.append(one)
    return {"requests": requests}


def _reported_tokens(data: dict[str, Any]) -> int | None:
    meta = data.get("usageMetadata")
    count = meta.get("promptTokenCount") if isinstance(meta, dict) else None
    if isinstance(count, str) and count.isdigit():  # int64 fields travel as strings
        return int(count)
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else None


async def embed(provider: HTTPProvider, path: str, model: str, request: EmbeddingRequest) -> EmbeddingResponse:
    """The vectors of `request.inputs`, in batches of `MAX_BATCH` sent at once."""
    texts = request.inputs
    batches = [texts[i:i + MAX_BATCH] for i in range(0, len(texts), MAX_BATCH)]
    replies = await asyncio.gather(*(post_for_vectors(provider, path, batch_body(model, b, request.dimensions), model)
                                     for b in batches), return_exceptions=True)
    for reply in replies:  # every batch has ended: the first failure is the attempt's
        if isinstance(reply, BaseException):
            raise reply
    vectors: list[list[float]] = []
    reported: int | None = 0
    for batch, data in zip(batches, replies, strict=True):
        rows = data.get("embeddings")
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise provider.malformed("batchEmbedContents reply", {k: v for k, v in data.items()
                                                                  if k != "embeddings"}, model)
        vectors += checked_vectors(provider, [r.get("values") for r in rows], len(batch), model)
        count = _reported_tokens(data)
        reported = None if count is None or reported is None else reported + count
    tokens = reported if reported is not None else estimated_tokens(texts)
    return EmbeddingResponse(vectors, model, provider.name, Usage(input_tokens=tokens))
