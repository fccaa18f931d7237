"""The fake Ollama's `POST /api/embed`, as the real server answers it: `{"model", "embeddings": [[...]],
"total_duration", "load_duration", "prompt_eval_count"}` (the count omitted when 0).

`input` is a text or a list of texts; without one (or with an empty list) the model is only loaded and
`embeddings` is empty.  `truncate` (default true) cuts an input longer than the model's context to fit;
false refuses it with a 400 "the input length exceeds the context length".  `dimensions` shortens the
vectors (at most the model's length).  A model that is not one of `OLLAMA_MODELS` (by name, any tag) is a
404 "model … not found, try pulling it first"; errors are `{"error": "<text>"}`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .embeddings import OLLAMA_MODELS, EmbeddingModel, input_tokens, serve, vector
from .server import FakeProvider


def _spec(model: str) -> EmbeddingModel | None:
    return OLLAMA_MODELS.get(model.rsplit(":", 1)[0] if ":" in model.rsplit("/", 1)[-1] else model)


def _checked(body: Any) -> tuple[str, list[str], int | None, bool] | str:
    """(model, texts, dimensions, truncate), or the message of the 400."""
    if not isinstance(body, dict):
        return "invalid request body"
    model = body.get("model")
    if not isinstance(model, str) or not model:
        return "model is required"
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw if raw is not None else []
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        return "invalid input type"
    if any(not t for t in texts):
        return "input cannot be empty"
    dims = body.get("dimensions")
    if dims is not None and (type(dims) is not int or dims < 1):
        return "dimensions must be a positive integer"
    truncate = body.get("truncate")
    return model, texts, dims, truncate is not False


async def embed(fake: FakeProvider, request: web.Request) -> web.StreamResponse:
    body = await fake.read_json(request)
    if not fake.authorized(request):
        return fake.error_response(401, None, None, None, "")
    checked = _checked(body)
    if isinstance(checked, str):
        return fake.error_response(400, None, checked, None, "")
    model, texts, dims, truncate = checked

    def respond(fault: Any) -> web.Response:
        spec = _spec(model)
        if spec is None:
            return fake.error_response(404, None, None, None, model)
        if dims is not None and dims > spec.dimensions:
            return fake.error_response(400, None, f"dimensions must be between 1 and {spec.dimensions}", None, model)
        cut = []
        for text in texts:
            words = text.split()
            if len(words) > spec.context:
                if not truncate:
                    return fake.error_response(400, None, "the input length exceeds the context length", None, model)
                text = " ".join(words[: spec.context])
            cut.append(text)
        tokens = input_tokens(cut, fault)
        out: dict[str, Any] = {"model": model, "embeddings": [vector(model, t, dims or spec.dimensions,
                                                                        spec.dimensions) for t in cut],
                               "total_duration": 14_143_917 + tokens * 1_200_000, "load_duration": 1_019_500}
        if tokens:
            out["prompt_eval_count"] = tokens
        return web.json_response(out)

    return await serve(fake, request, model, respond)
