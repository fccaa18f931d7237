"""`POST /v1/embeddings`: OpenAI's embeddings API, so an OpenAI SDK (or LangChain's `OpenAIEmbeddings`)
pointed at llmrelay keeps its code.  A codec around `Relay.embed`: parse (`api.openai_embeddings`), embed,
render.

`model` is `<provider>/<model>` (OpenAI's, Gemini's, Ollama's or OpenRouter's embedding models; Anthropic
has none, so its links are skipped with that reason), an embedding model name the catalog knows
(`text-embedding-3-small`, `nomic-embed-text`, …), or `agent:<agentId>` of an agent of kind `embedding`,
whose chain falls back between models of one dimension (`routing.embeddings`).  A link that cannot make
the vectors asked for (not an embedding model, `dimensions` it cannot give) is skipped with the reason;
when no link can, the answer is a 400 naming the parameter (`model`, `dimensions`, `input`).

The answer is OpenAI's `list` of `embedding`s (floats, or with `encoding_format: base64` little-endian
float32 in base64) with `usage.prompt_tokens`, and names who served it in `x-llmrelay-provider`,
`x-llmrelay-fallback` (true/false) and, when every attempt could be priced, `x-llmrelay-cost-usd` (the exact
decimal the ledger recorded).  Each attempt is a ledger row of kind `embedding` with its input tokens (an
estimate for Gemini, which reports none), and the caller's rate limits are charged those tokens.  Errors are
OpenAI's error object, as on /v1/chat/completions.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import Response

from ...relay import Relay
from ..deps import key_user
from ..errors import OpenAIRoute
from ..openai_embeddings import EmbeddingList, EmbeddingsRequest, embedding_list, parse_embeddings_request
from ..served import answer_headers

router = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute)
JSON = "application/json"
_ERRORS: dict[int | str, dict[str, Any]] = {  # their body: OpenAI's error object (see errors.document_errors)
    status: {"description": what} for status, what in (
        (400, "Bad input (`param` names it), or no link can make these embeddings"),
        (401, "Missing or invalid API key"), (404, "Unknown model or agent"),
        (413, "Body too large"), (429, "Rate limited (see Retry-After)"), (502, "No provider answered"))}


@router.post(
    "/embeddings", summary="Embeddings (OpenAI-compatible)", response_model=EmbeddingList,
    openapi_extra={"requestBody": {"required": True,
                                   "content": {JSON: {"schema": EmbeddingsRequest.model_json_schema()}}}},
    responses=_ERRORS)
async def create_embeddings(request: Request) -> Response:
    user = await key_user(request)
    body, inputs = parse_embeddings_request(await request.body())
    relay: Relay = request.app.state.relay
    outcome = await relay.embed(user, body.model, inputs, dimensions=body.dimensions, end_user=body.user,
                                request_id=request.scope["state"]["request_id"])
    if outcome.error is not None:
        raise outcome.error
    assert outcome.link is not None
    return Response(embedding_list(outcome, body.encoding_format),
                    headers=answer_headers(outcome.link.provider, outcome), media_type=JSON)
