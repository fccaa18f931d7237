"""Ollama embeddings: `POST {base}/api/embed`.

    {"model": …, "input": [texts], "truncate": false, "dimensions": N?}
    -> {"model": …, "embeddings": [[...], …], "prompt_eval_count": N, …}

`truncate` is sent false: Ollama's default (true) cuts an input longer than the model's context to fit,
without a word; llmrelay has it fail instead (a 400 "the input length exceeds the context length", mapped
to `context_length_exceeded`), as OpenAI does.  `prompt_eval_count` is the input tokens (omitted when 0).
"""

from __future__ import annotations

from typing import Any

from ..types import EmbeddingRequest, EmbeddingResponse, Usage
from .base import HTTPProvider
from .embeddings import checked_vectors, post_for_vectors

EMBED_PATH = "/api/embed"


def embed_body(request: EmbeddingRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": request.model, "input": list(request.inputs), "truncate": False}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    return body


def embedding_from(provider: HTTPProvider, data: dict[str, Any], request: EmbeddingRequest) -> EmbeddingResponse:
    model = request.model
    vectors = checked_vectors(provider, data.get("embeddings"), len(request.inputs), model)
    count = data.get("prompt_eval_count", 0)
    if count is None:
        count = 0
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise provider.malformed("prompt_eval_count", {"prompt_eval_count": count}, model)
    name = data.get("model")
    return EmbeddingResponse(vectors, name if isinstance(name, str) and name else model, provider.name,
                             Usage(input_tokens=count))


async def embed(provider: HTTPProvider, request: EmbeddingRequest) -> EmbeddingResponse:
    data = await post_for_vectors(provider, EMBED_PATH, embed_body(request), request.model)
    return embedding_from(provider, data, request)
