"""`/api/ai/config`: each user's saved model preference per agent (primary, fallback chain,
max tokens, temperature).

The Relay reads these through `ConfigStore` (its config lookup), so a saved config changes the
chain of that user's requests at once in this process, and within the store's reload interval
in the others.  A user reads and writes only their own configs; an admin may pass `?userId=`.

Validation, each failure naming the offending field:

    agentId              a known agent                                          404
    *.provider           a known provider                                       400
    *.model              in the catalog, in the price table, or shaped like the
                         provider's model ids (`catalog.plausible`)             400
    the chain            primary + fallbacks: at most 8 links, all distinct     400
    temperature          0 to 2                                                 422
    maxTokens            1 to the output limit of the chain's smallest model    422 / 400

`DELETE /api/ai/config/{agentId}` is idempotent: 204 whether or not a config was saved (either
way the agent's own chain applies afterwards); 404 only for an id that is neither an agent nor
a saved config.
"""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ... import catalog
from ...db.users import user_exists
from ...providers.registry import known_providers
from ...relay import Relay
from ...types import ChainConfig, Link, UnknownAgent
from ..deps import CurrentUser, RelayDep
from ..errors import ApiRoute, Problem

router = APIRouter(prefix="/api/ai", tags=["config"], route_class=ApiRoute)
MAX_LINKS = 8
"""A saved chain holds at most this many distinct links, the primary included."""


class ChainLink(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: str = Field(min_length=1, max_length=32)
    model: str = Field(min_length=1, max_length=200)


class SaveConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    agentId: str = Field(min_length=1, max_length=64)
    primaryProvider: str = Field(min_length=1, max_length=32)
    primaryModel: str = Field(min_length=1, max_length=200)
    fallbackChain: list[ChainLink] = Field(default_factory=list, max_length=64,
                                           description=f"At most {MAX_LINKS - 1} links, all distinct")
    maxTokens: int | None = Field(None, ge=1, le=catalog.DEFAULT_MAX_OUTPUT,
                                  description="At most the smallest output limit among the chain's models")
    temperature: float | None = Field(None, ge=0, le=2)


class SavedConfigOut(BaseModel):
    agentId: str
    primaryProvider: str
    primaryModel: str
    fallbackChain: list[ChainLink]
    maxTokens: int | None
    temperature: float | None
    createdAt: str
    updatedAt: str


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type="application/json")


_USER_ID = Query(None, min_length=1, max_length=64, description="Admins only: whose config to read or change.")


async def config_owner(user: CurrentUser, relay: RelayDep, userId: str | None = _USER_ID) -> str:
    """Whose configs a call concerns: the caller's, or (admins only) the user `userId` names."""
    if userId is None or userId == user.user_id:
        return user.user_id
    if not user.is_admin:
        raise Problem(403, "only an admin may read or change another user's config", field="userId",
                      code="forbidden")
    async with relay.ledger.sessions() as s:  # type: ignore[union-attr]
        if not await user_exists(s, userId):
            raise Problem(404, f"no user with id {userId!r}", field="userId", code="unknown-user")
    return userId


Owner = Annotated[str, Depends(config_owner)]


def _known_model(relay: Relay, provider: str, model: str) -> bool:
    if catalog.plausible(provider, model):
        return True
    price = relay.ledger.recorder.prices.lookup(provider, model)  # type: ignore[union-attr]
    return price is not None and price.model == model


def _link(relay: Relay, provider: str, model: str, provider_field: str, model_field: str) -> Link:
    known = known_providers()
    if provider not in known:
        raise Problem(400, f"{provider_field}: unknown provider {provider!r} (known: {', '.join(known)})",
                      field=provider_field, code="unknown-provider")
    if not _known_model(relay, provider, model):
        raise Problem(400, f"{model_field}: {model!r} is not a known {provider} model and does not look like one",
                      field=model_field, code="unknown-model")
    return Link(provider, model)


def validated_chain(relay: Relay, body: SaveConfig) -> ChainConfig:
    """The chain `body` describes, or a Problem naming the first field that is wrong."""
    links = [_link(relay, body.primaryProvider, body.primaryModel, "primaryProvider", "primaryModel")]
    for i, x in enumerate(body.fallbackChain):
        links.append(_link(relay, x.provider, x.model, f"fallbackChain.{i}.provider", f"fallbackChain.{i}.model"))
    seen: dict[tuple[str, str], str] = {}
    for i, link in enumerate(links):
        where = f"fallbackChain.{i - 1}" if i else "the primary"
        key = (link.provider, link.model)
        if key in seen:  # never the primary: it comes first
            raise Problem(400, f"{where}: {link.provider}/{link.model} is already in the chain (as {seen[key]}); "
                               "each link appears once", field=where, code="duplicate-link")
        seen[key] = where
    if len(links) > MAX_LINKS:
        raise Problem(400, f"fallbackChain: a chain has at most {MAX_LINKS} links, the primary included "
                           f"({len(links)} given)", field="fallbackChain", code="chain-too-long")
    if body.maxTokens is not None:
        tightest = min(links, key=lambda x: catalog.max_output(x.provider, x.model))
        limit = catalog.max_output(tightest.provider, tightest.model)
        if body.maxTokens > limit:
            raise Problem(400, f"maxTokens: {body.maxTokens} is over the output limit of {tightest.provider}/"
                               f"{tightest.model} ({limit} tokens), the smallest in the chain",
                          field="maxTokens", code="max-tokens-over-limit")
    return ChainConfig(links[0], tuple(links[1:]), body.maxTokens, body.temperature)


async def _saved_agents(relay: Relay, owner: str) -> set[str]:
    return {c.agent_id for c in await relay.ledger.configs.list(owner)}  # type: ignore[union-attr]


async def _require_agent(relay: Relay, owner: str, agent_id: str) -> None:
    """404 for an id that is neither an agent nor one of `owner`'s saved configs (a config may
    outlive its agent: it can still be read and deleted)."""
    if agent_id not in relay.agents and agent_id not in await _saved_agents(relay, owner):
        raise UnknownAgent(agent_id, list(relay.agents))


@router.get("/config", summary="Your saved model configs (one per agent you configured)",
            response_model=list[SavedConfigOut], responses={403: {"description": "Another user's, not an admin"},
                                                           404: {"description": "Unknown agent or user"}})
async def list_configs(owner: Owner, relay: RelayDep,
                       agentId: str | None = Query(None, min_length=1, max_length=64)) -> Response:
    if agentId is not None:
        await _require_agent(relay, owner, agentId)
    configs = await relay.ledger.configs.list(owner, agentId)  # type: ignore[union-attr]
    return _json([c.to_dict() for c in configs])


@router.post("/config", summary="Save (create or replace) your model config for an agent",
             response_model=SavedConfigOut,
             responses={400: {"description": "Unknown provider or model, duplicate link, chain too long, "
                                             "maxTokens over the model's limit"},
                        403: {"description": "Another user's, not an admin"},
                        404: {"description": "Unknown agent or user"}})
async def save_config(body: SaveConfig, owner: Owner, relay: RelayDep) -> Response:
    relay.agent(body.agentId)  # 404 for an unknown agent
    chain = validated_chain(relay, body)
    saved = await relay.ledger.configs.save(owner, body.agentId, chain)  # type: ignore[union-attr]
    return _json(saved.to_dict())


@router.delete("/config/{agentId}", status_code=204, response_class=Response,
               summary="Forget your config for an agent: its own chain applies again",
               responses={403: {"description": "Another user's, not an admin"},
                          404: {"description": "Neither an agent nor a saved config"}})
async def reset_config(agentId: Annotated[str, Path(min_length=1, max_length=64)], owner: Owner,
                       relay: RelayDep) -> Response:
    await _require_agent(relay, owner, agentId)
    await relay.ledger.configs.delete(owner, agentId)  # type: ignore[union-attr]
    return Response(status_code=204)
