"""What every adapter's `embed` shares: reading a reply of vectors, and the OpenAI embeddings wire format
(OpenAI's `POST /embeddings`, which OpenRouter speaks too).

A reply of vectors is read with floats as floats whatever the adapter's own JSON rule (OpenRouter reads
its chat replies' numbers as text to keep a cost exact; a vector of 3072 numbers as text would be slow
and useless), and checked: one vector per input, each a list of numbers.  A reply that is not so is a
`server_error` (the next link may answer properly).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import orjson

from ..types import EmbeddingRequest, ErrorKind, Usage
from .base import HTTPProvider, excerpt

CHARS_PER_TOKEN = 4
"""Google's rule of thumb for its models ("a token is about 4 characters"), for a provider that reports
no token count for an embedding call (`estimated_tokens`)."""


async def post_for_vectors(provider: HTTPProvider, path: str, body: dict[str, Any], model: str,
                           params: Mapping[str, str] | None = None) -> dict[str, Any]:
    """POST `body`, return the reply's JSON object (numbers as floats); any failure is a `ProviderError`
    mapped as the adapter's chat replies are (`error_from_response`)."""
    async with provider.open(path, body, model, params=params) as resp:
        try:
            raw = await resp.read()
        except aiohttp.ClientError as exc:
            raise provider.transport_error(exc, model) from None
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise provider.error(ErrorKind.SERVER_ERROR, f"reply is not JSON: {excerpt(raw)!r}", model) from None
    if not isinstance(data, dict):
        raise provider.error(ErrorKind.SERVER_ERROR, f"reply is not a JSON object: {excerpt(raw)!r}", model)
    return data


def checked_vectors(provider: HTTPProvider, vectors: Any, inputs: int, model: str) -> list[list[float]]:
    """`vectors` when it is one list of numbers per input; else a `server_error`."""
    if not isinstance(vectors, list) or len(vectors) != inputs:
        n = len(vectors) if isinstance(vectors, list) else "no"
        raise provider.error(ErrorKind.SERVER_ERROR, f"the reply holds {n} vectors for {inputs} inputs", model)
    for v in vectors:
        if not isinstance(v, list) or not v or not all(type(x) is float or type(x) is int for x in v):
            raise provider.malformed("vector", v if not isinstance(v, list) else v[:8], model)
    return vectors


def estimated_tokens(texts: Sequence[str]) -> int:
    """Input tokens at `CHARS_PER_TOKEN` characters a token, rounded up per input: an estimate, for a
    provider whose embedding replies carry no token count (Gemini's)."""
    return sum(math.ceil(len(t) / CHARS_PER_TOKEN) for t in texts)


# -- OpenAI's wire format (OpenAI, OpenRouter) ----------------------------------------------------------


def openai_body(request: EmbeddingRequest) -> dict[str, Any]:
    """`POST /embeddings`: every input in one list, floats (the /v1 door encodes base64 itself)."""
    body: dict[str, Any] = {"model": request.model, "input": list(request.inputs), "encoding_format": "float"}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    if request.end_user:
        body["user"] = request.end_user
    return body


def openai_vectors(provider: HTTPProvider, data: dict[str, Any], inputs: int, model: str) -> list[list[float]]:
    """`data: [{index, embedding}]`, in the order of `index` (OpenAI keeps the inputs' order; a compatible
    server need not)."""
    rows = data.get("data")
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise provider.malformed("embeddings reply", {k: v for k, v in data.items() if k != "data"}, model)
    if all(isinstance(r.get("index"), int) for r in rows):
        rows = sorted(rows, key=lambda r: r["index"])
    return checked_vectors(provider, [r.get("embedding") for r in rows], inputs, model)


def openai_usage(data: dict[str, Any]) -> Usage:
    usage = data.get("usage")
    tokens = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    return Usage(input_tokens=tokens if isinstance(tokens, int) and not isinstance(tokens, bool) and tokens > 0
                 else 0)
