"""The fake OpenAI's `POST /v1/embeddings` (and, through `FakeOpenRouter`, OpenRouter's), as the real API
answers it: `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}], "model", "usage":
{"prompt_tokens", "total_tokens"}}`, vectors as floats or (`encoding_format: "base64"`) little-endian
float32 in base64.

Refused with OpenAI's 400 (`param` and `code` as the real API sets them): a parameter it does not define,
no `model`, an `input` that is missing, empty, holds an empty string or over 2048 items, an
`encoding_format` other than float and base64, `dimensions` for a model that cannot shorten its vectors
(text-embedding-ada-002) or beyond its length, an input over the model's context.  `input` may be token ids
(a list of integers, or a list of such lists), as the real API takes them: each id counts a token.  A
model that is not one of `embedding_models` is a 404.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any, ClassVar

from aiohttp import web

from .embeddings import OPENAI_MODELS, EmbeddingModel, input_tokens, serve, vector
from .faults import Fault
from .openai_checks import Rejection

MAX_INPUTS = 2048
_PARAMS = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
_INVALID_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."


class OpenAIEmbeddings:
    """Mixed into `FakeOpenAI`: the embeddings endpoint."""

    embedding_models: ClassVar[dict[str, EmbeddingModel]] = OPENAI_MODELS

    # supplied by FakeOpenAI
    read_json: Any
    authorized: Any
    error_response: Any
    rejection_response: Any
    next_id: Any
    name: str

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        body = await self.read_json(request)
        if not self.authorized(request):
            return self.error_response(401, None, None, None, "")
        checked = self.check_embedding_body(body)
        if isinstance(checked, Rejection):
            model = body.get("model") if isinstance(body, dict) and isinstance(body.get("model"), str) else ""
            return self.rejection_response(checked, model)
        model, texts = checked
        return await serve(self, request, model,  # type: ignore[arg-type]
                           lambda fault: self.embedding_reply(body, model, texts, fault))

    def check_embedding_body(self, body: Any) -> tuple[str, list[str]] | Rejection:
        """(model, the inputs as texts), or why the real API refuses the body."""
        if not isinstance(body, dict):
            return Rejection("We could not parse the JSON body of your request.", None, None)
        for name in body:
            if name not in _PARAMS:
                return Rejection(f"Unrecognized request argument supplied: {name}", None, None)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            return Rejection("you must provide a model parameter", None, None)
        texts = _texts(body.get("input"))
        if texts is None:
            return Rejection(_INVALID_INPUT, "input", None)
        if len(texts) > MAX_INPUTS:
            return Rejection(f"Too many inputs. The max number of inputs is {MAX_INPUTS}.", "input", None)
        if body.get("encoding_format", "float") not in ("float", "base64", None):
            return Rejection(f"Invalid value for 'encoding_format' = {body['encoding_format']}. Supported values "
                             "are: 'float' and 'base64'.", "encoding_format", "invalid_value")
        dims = body.get("dimensions")
        spec = self.embedding_models.get(model)
        if dims is not None and spec is not None:
            if not spec.shortens:
                return Rejection("This model does not support specifying dimensions.", "dimensions", None)
            if type(dims) is not int or not 1 <= dims <= spec.dimensions:
                return Rejection(f"Invalid value for 'dimensions' = {dims}. Must be between 1 and "
                                 f"{spec.dimensions}.", "dimensions", "invalid_value")
        for text in texts:
            if spec is not None and len(text.split()) > spec.context:
                return Rejection(f"This model's maximum context length is {spec.context} tokens, however you "
                                 f"requested {len(text.split())} tokens ({len(text.split())} in your prompt; 0 for "
                                 "the completion). Please reduce your prompt; or completion length.", None,
                                 "context_length_exceeded")
        return model, texts

    def embedding_reply(self, body: dict[str, Any], model: str, texts: list[str], fault: Fault | None) -> web.Response:
        spec = self.embedding_models.get(model)
        if spec is None:
            return self.error_response(404, None, None, None, model)
        dims = body.get("dimensions") or spec.dimensions
        b64 = body.get("encoding_format") == "base64"
        data = []
        for i, text in enumerate(texts):
            v = vector(model, text, dims, spec.dimensions)
            data.append({"object": "embedding", "index": i,
                         "embedding": base64.b64encode(_le_float32(v)).decode() if b64 else v})
        tokens = input_tokens(texts, fault)
        return web.json_response({"object": "list", "data": data, **self.embedding_envelope(model, tokens)})

    def embedding_envelope(self, model: str, tokens: int) -> dict[str, Any]:
        """`model` and `usage` (OpenRouter adds its id, provider and cost)."""
        return {"model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


def _texts(value: Any) -> list[str] | None:
    """The inputs as texts (token ids as their decimal text: a fake has no tokenizer), None when invalid."""
    if isinstance(value, str):
        return [value] if value else None
    if not isinstance(value, list) or not value:
        return None
    if all(type(x) is int for x in value):  # one input of token ids
        return [" ".join(map(str, value))]
    texts = []
    for item in value:
        if isinstance(item, str) and item:
            texts.append(item)
        elif isinstance(item, list) and item and all(type(x) is int for x in item):
            texts.append(" ".join(map(str, item)))
        else:
            return None
    return texts


def _le_float32(v: list[float]) -> bytes:
    a = array("f", v)
    if sys.byteorder == "big":
        a.byteswap()
    return a.tobytes()
