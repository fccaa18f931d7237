"""The fake Gemini's `POST /v1beta/models/{model}:batchEmbedContents`, as the real API answers it:
`{"embeddings": [{"values": [...]}, …]}`, one per request in order, and no token count (Gemini reports
none for embeddings).

Refused with Gemini's 400 INVALID_ARGUMENT: no `requests`, more than 100 of them, one whose `model` is not
the URL's (`models/<model>`), one without text (or with an empty text), an `outputDimensionality` beyond
the model's length (or for a model that cannot shorten its vectors), a text over the model's input limit.
A model that is not one of `GOOGLE_MODELS` is a 404 NOT_FOUND.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .embeddings import GOOGLE_MODELS, serve, vector
from .server import FakeProvider

MAX_BATCH = 100
_WHERE = "* BatchEmbedContentsRequest.requests"


def _refusal(body: Any, model: str) -> tuple[str, list[str], int | None] | str:
    """(model, texts, outputDimensionality), or the message of the 400."""
    requests = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(requests, list) or not requests:
        return f"{_WHERE}: at least one request is required\n"
    if len(requests) > MAX_BATCH:
        return f"{_WHERE}: at most {MAX_BATCH} requests can be in one batch\n"
    texts: list[str] = []
    dims: set[int | None] = set()
    spec = GOOGLE_MODELS.get(model)
    for i, one in enumerate(requests):
        where = f"{_WHERE}[{i}]"
        if not isinstance(one, dict) or one.get("model") != f"models/{model}":
            return f"{where}.model: the model of every request must be the batch's, models/{model}\n"
        content = one.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        text = "".join(p.get("text", "") for p in parts if isinstance(p, dict)) if isinstance(parts, list) else ""
        if not text:
            return f"{where}.content: contents must not be empty\n"
        dim = one.get("outputDimensionality", one.get("output_dimensionality"))
        if dim is not None and spec is not None and (type(dim) is not int or not 1 <= dim <= spec.dimensions
                                                      or not spec.shortens):
            return f"{where}.output_dimensionality: must be between 1 and {spec.dimensions}\n"
        if spec is not None and len(text.split()) > spec.context:
            return (f"{where}: input text is too long: {len(text.split())} tokens, the model takes at most "
                    f"{spec.context}\n")
        texts.append(text)
        dims.add(dim)
    return model, texts, dims.pop() if len(dims) == 1 else None


async def batch_embed(fake: FakeProvider, request: web.Request, model: str, body: Any) -> web.StreamResponse:
    checked = _refusal(body, model)
    if isinstance(checked, str):
        return fake.error_response(400, None, checked, None, model)
    _, texts, dims = checked

    def respond(fault: Any) -> web.Response:
        spec = GOOGLE_MODELS.get(model)
        if spec is None:
            return fake.error_response(404, None, f"models/{model} is not found for API version v1beta, or is not "
                                       "supported for batchEmbedContents. Call ListModels to see the list of "
                                       "available models and their supported methods.", None, model)
        return web.json_response({"embeddings": [{"values": vector(model, t, dims or spec.dimensions, spec.dimensions)}
                                                 for t in texts]})

    return await serve(fake, request, model, respond)
