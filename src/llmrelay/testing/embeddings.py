"""What the fakes' embedding endpoints share: deterministic vectors, each fake's table of embedding models,
and the fault queue applied as it is to a chat (`serve`).

A vector is a function of the model and the text alone (SHAKE-256 of both, read as numbers in [-1, 1],
scaled to unit length, each a float32 as the real APIs send them), so a test can compute the vector an
answer must hold (`vector`).  A shorter vector asked for (`dimensions`, `outputDimensionality`) is the
full one cut to that length and scaled to unit length again, as OpenAI's text-embedding-3 shorten theirs.

Faults, taken by model as a chat's are: ``http_error`` and ``overloaded`` answer the provider's own error
reply, ``hang`` answers nothing, ``slow_first_byte`` waits first, ``disconnect`` drops the connection,
``malformed`` answers 200 with a body that is not JSON, ``cut`` sends half the body, and ``reply`` with
``usage={"input": N}`` reports N input tokens.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from array import array
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from aiohttp import web

from .faults import Fault
from .server import count_tokens

if TYPE_CHECKING:
    from .server import FakeProvider


class EmbeddingModel(NamedTuple):
    dimensions: int
    shortens: bool
    """Gives shorter vectors on request."""
    context: int = 8192
    """The most tokens one input may hold."""


OPENAI_MODELS = {"text-embedding-3-small": EmbeddingModel(1536, True),
                 "text-embedding-3-large": EmbeddingModel(3072, True),
                 "text-embedding-ada-002": EmbeddingModel(1536, False)}
OPENROUTER_MODELS = {"openai/" + name: m for name, m in OPENAI_MODELS.items()}
GOOGLE_MODELS = {"gemini-embedding-001": EmbeddingModel(3072, True, 2048),
                 "text-embedding-004": EmbeddingModel(768, True, 2048)}
OLLAMA_MODELS = {"nomic-embed-text": EmbeddingModel(768, True, 8192),
                 "mxbai-embed-large": EmbeddingModel(1024, True, 512),
                 "all-minilm": EmbeddingModel(384, True, 512)}


def vector(model: str, text: str, dimensions: int, native: int | None = None) -> list[float]:
    """The vector a fake gives `text` on `model`: the model's `native`-long one cut to `dimensions`."""
    digest = hashlib.shake_256(f"{model}\0{text}".encode()).digest(2 * (native or dimensions))
    raw = [(digest[i] << 8 | digest[i + 1]) / 32767.5 - 1.0 for i in range(0, 2 * dimensions, 2)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return array("f", (x / norm for x in raw)).tolist()  # float32 values, as the real APIs send


def input_tokens(texts: list[str], fault: Fault | None) -> int:
    """The fakes' count (a token per word, as their chats count), unless a `reply` fault says otherwise."""
    if fault is not None and fault.usage and "input" in fault.usage:
        return fault.usage["input"]
    return sum(count_tokens(t) for t in texts)


async def serve(fake: FakeProvider, request: web.Request, model: str,
                respond: Callable[[Fault | None], web.Response]) -> web.StreamResponse:
    """Answer one embedding request through the fault queue; `respond(reply_fault)` makes the answer (or the
    provider's error for a request it refuses)."""
    fault = fake.take_fault(model)
    kind = fault.type if fault is not None else None
    if kind in ("disconnect", "hang"):
        if kind == "hang":
            await asyncio.sleep(fault.seconds)  # type: ignore[union-attr]
        if request.transport is not None:
            request.transport.abort()
        return web.Response()  # never sent: the transport is gone
    if kind == "slow_first_byte":
        await asyncio.sleep(fault.seconds)  # type: ignore[union-attr]
    if kind == "http_error":
        return fake.error_response(fault.status, fault.code, fault.message, fault, model)  # type: ignore
    if kind == "overloaded":
        return fake.overloaded_response(fault, model)  # type: ignore[arg-type]
    if kind == "malformed":
        return web.Response(status=200, body=b"<html><body>502 Bad Gateway</body></html>",
                            content_type="application/json")
    resp = respond(fault if kind == "reply" else None)
    if kind == "cut" and resp.status == 200:
        body = resp.body if isinstance(resp.body, bytes) else b""
        half = web.StreamResponse(status=200, headers={"content-type": "application/json",
                                                       "content-length": str(len(body))})
        await half.prepare(request)
        await half.write(body[: len(body) // 2])
        if request.transport is not None:
            request.transport.abort()
        return half
    return resp
