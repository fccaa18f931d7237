"""OpenAI's embeddings request read into `Relay.embed`'s terms, and its answer rendered (`POST /v1/embeddings`).

Taken: `input` (a text or a list of texts), `model`, `dimensions`, `encoding_format` (`float`, or
`base64`: each vector's little-endian float32 bytes in base64, as OpenAI encodes them and as the openai SDK
asks by default) and `user` (the end user's id, for providers that take one).  `input` as token ids (a list
of integers, or of lists of them) is refused with a 400 naming `input`: ids belong to one tokenizer (OpenAI's
cl100k), and the models behind llmrelay each have their own, so they cannot be relayed.  (LangChain's
`OpenAIEmbeddings` sends ids unless `check_embedding_ctx_length=False`.)  Any other parameter is refused as
OpenAI refuses it ("Unrecognized request argument supplied: foo").
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..relay import EmbeddingOutcome
from .errors import Problem

IDS_REFUSED = ("input holds token ids: llmrelay relays texts only (token ids belong to one tokenizer, and the models "
             "behind it each have their own); send the texts themselves (LangChain: "
             "OpenAIEmbeddings(check_embedding_ctx_length=False))")
_INPUT_DOC = {"anyOf": [{"type": "string", "minLength": 1},
                        {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1,
                         "maxItems": 2048}],
              "description": "A text, or a list of up to 2048 texts (token ids are refused)"}


class EmbeddingsRequest(BaseModel):
    """OpenAI's embeddings request as llmrelay takes it; any other parameter is unrecognized (400)."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": False})
    """Extras are collected to be refused by name, not taken."""

    input: Any = Field(json_schema_extra=_INPUT_DOC)
    model: str = Field(min_length=1, max_length=300,
                       description="`<provider>/<model>`, an embedding model name the catalog knows, or "
                                   "`agent:<agentId>` of an embedding agent")
    dimensions: int | None = Field(None, ge=1, le=65_536, description="Shorter vectors, where the model can give "
                                                                      "them")
    encoding_format: Literal["float", "base64"] | None = Field(None, description="`float` (the default) or "
                                                                               "`base64` (little-endian float32)")
    user: str | None = Field(None, max_length=256, description="Your end user's id, passed on where a provider "
                                                               "takes one")


class EmbeddingItem(BaseModel):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str = Field(description="The vector, or with `encoding_format: base64` its "
                                                     "little-endian float32 bytes in base64")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(BaseModel):
    object: Literal["list"]
    data: list[EmbeddingItem]
    model: str
    usage: EmbeddingUsage


def parse_embeddings_request(raw: bytes) -> tuple[EmbeddingsRequest, list[str]]:
    """The body validated and its inputs as a list of texts, or a 400 in OpenAI's terms naming the parameter.
    (Empty texts and too many of them are `Relay.embed`'s to refuse, in the same terms.)"""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None
    try:
        body = EmbeddingsRequest.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc) from None
    for name in body.model_extra or ():
        raise Problem(400, f"Unrecognized request argument supplied: {name}")
    value = body.input
    if isinstance(value, str):
        return body, [value]
    if isinstance(value, list) and value and (all(type(x) is int for x in value)
                                              or all(isinstance(x, list) for x in value)):
        raise Problem(400, IDS_REFUSED, field="input", code="unsupported_parameter")
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise Problem(400, "invalid 'input': a text or a list of texts", field="input", code="invalid_value")
    return body, value


def _invalid(exc: ValidationError) -> Problem:
    err = exc.errors(include_url=False, include_input=False)[0]
    param = str(err["loc"][0]) if err["loc"] else None
    if err["type"] == "missing":
        return Problem(400, f"missing required parameter: {param!r}", field=param, code="missing_required_parameter")
    return Problem(400, (f"invalid {param!r}: " if param else "invalid body: ") + err["msg"], field=param,
                   code="invalid_value")


def float32_base64(vector: list[float]) -> str:
    """The vector's little-endian float32 bytes in base64, as OpenAI encodes `encoding_format: base64`."""
    a = array("f", vector)
    if sys.byteorder == "big":
        a.byteswap()
    return base64.b64encode(a.tobytes()).decode("ascii")


def embedding_list(outcome: EmbeddingOutcome, encoding: str | None) -> bytes:
    """The `list` body of the answer."""
    encode = float32_base64 if encoding == "base64" else None
    data = [{"object": "embedding", "index": i, "embedding": encode(v) if encode else v}
            for i, v in enumerate(outcome.vectors)]
    tokens = outcome.usage.input_tokens
    return orjson.dumps({"object": "list", "data": data, "model": outcome.model,
                         "usage": {"prompt_tokens": tokens, "total_tokens": tokens}})
