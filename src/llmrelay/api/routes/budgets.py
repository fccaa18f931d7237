"""`/api/ai/budgets`: USD budgets per user, per agent, or per user on one agent, and where each stands.

    GET    /api/ai/budgets                    every budget's current period: spent, reserved, level
    PUT    /api/ai/budgets                    set (create or replace) the budget of one scope   (admins)
    DELETE /api/ai/budgets?userId=&agentId=   remove it                                           (admins)

A user sees only the budgets on them (`user:<me>` and `user:<me>/agent:<id>`): an agent-wide budget
counts everyone's spend on that agent, which is not theirs to read.  An admin sees them all.

Money is exact end to end: `limitUsd` is read from the body's text as a `Decimal` (a JSON number is
never a float on the way), with at most 12 decimal places (the ledger's pico-dollar), up to a million;
every amount is answered as a plain decimal string ("25", "0.0015").  A write takes effect in this
process at once (`Budgets.changed`) and in the others within their budget reload interval.

Validation, each failure naming the offending field:

    userId / agentId     at least one; a known user, a known agent              422 / 404
    limitUsd             a number or decimal string, > 0, <= 1,000,000           422
    period               month, week or day                                      422
    resetDay             1 to 31, only with a monthly period                     422
    softPercent          1 to 100                                                422
    unpriced             refuse (the default) or allow                           422
    webhookUrl           an http(s) URL, or null                                 422
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema
from starlette.responses import Response

from ...db.audit import Action
from ...db.budgets import BudgetSpec, scope_of
from ...db.users import user_exists
from ...relay import Relay
from ...routing.budgets import Budgets
from ...types import UnknownAgent
from ..deps import CurrentUser, RelayDep
from ..errors import ApiRoute, Problem

router = APIRouter(prefix="/api/ai", tags=["budgets"], route_class=ApiRoute)
JSON = "application/json"
MAX_LIMIT = Decimal(1_000_000)
"""The largest limit: SQLite keeps money as a 64-bit count of pico-dollars (at most about 9.2 million USD)."""


def _http_url(value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected an http:// or https:// URL with a host")
    return value


_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def _plain_decimal(value: Any) -> Any:
    if isinstance(value, str) and not _DECIMAL.fullmatch(value):
        raise ValueError("expected a decimal number such as 25 or 0.50")
    return value

Usd = Annotated[Decimal, BeforeValidator(_plain_decimal), WithJsonSchema({"anyOf": [
    {"type": "number", "exclusiveMinimum": 0}, {"type": "string", "pattern": "^[0-9]+(\\.[0-9]+)?$"}]})]
"""An amount of USD: a JSON number (read exactly, never as a float) or a plain decimal string."""


class BudgetIn(BaseModel):
    """The body of `PUT /api/ai/budgets`: the whole budget of one scope (fields left out take their default)."""

    model_config = ConfigDict(extra="forbid")

    userId: str | None = Field(None, min_length=1, max_length=64, description="The user's id")
    agentId: str | None = Field(None, min_length=1, max_length=64, description="The agent's id")
    limitUsd: Usd = Field(gt=0, le=MAX_LIMIT, decimal_places=12, allow_inf_nan=False,
                          description="The hard limit in USD per period: a number or a decimal string, exact "
                                      f"(at most {MAX_LIMIT} and 12 decimal places)")
    period: Literal["month", "week", "day"] = "month"
    resetDay: int | None = Field(None, ge=1, le=31, description="The day a monthly period starts on (default 1); "
                                                               "a shorter month's last day stands in")
    softPercent: int = Field(80, ge=1, le=100, description="The soft threshold, in percent of the limit")
    unpriced: Literal["refuse", "allow"] = Field("refuse", description="Whether a model without a known "
                                                                         "price may serve under this budget")
    webhookUrl: Annotated[str | None, AfterValidator(_http_url)] = Field(
        None, max_length=2000, description="Told (POST, JSON) when a period first crosses the soft or hard limit")

    def check(self) -> BudgetIn:
        """The rules between fields (a Problem naming the field that breaks one)."""
        if self.userId is None and self.agentId is None:
            raise Problem(422, "userId: a budget is on a user (userId), an agent (agentId), or both",
                          field="userId", code="invalid-field")
        if self.resetDay is not None and self.period != "month":
            raise Problem(422, f"resetDay: only a monthly period has a reset day (period is {self.period!r})",
                          field="resetDay", code="invalid-field")
        return self

    def spec(self) -> BudgetSpec:
        return BudgetSpec("", self.userId, self.agentId, self.limitUsd, self.period, self.resetDay or 1,
                          self.softPercent, self.unpriced, self.webhookUrl)


class BudgetOut(BaseModel):
    """A budget and its current period (amounts in USD, as exact decimal strings)."""

    id: str
    scope: str = Field(description="`user:<id>`, `agent:<id>` or `user:<id>/agent:<id>`")
    userId: str | None
    agentId: str | None
    period: Literal["month", "week", "day"]
    resetDay: int
    limitUsd: str
    softPercent: int
    softUsd: str
    unpriced: Literal["refuse", "allow"]
    webhookUrl: str | None = Field(description="Admins only (null for anyone else: it often carries a token)")
    createdAt: str | None
    updatedAt: str | None
    periodStart: str
    resetsAt: str = Field(description="When the current period ends (UTC)")
    spentUsd: str = Field(description="What the ledger holds for the period")
    reservedUsd: str = Field(description="Set aside for requests in flight and the next ones")
    level: Literal["ok", "soft", "hard"]


class BudgetList(BaseModel):
    budgets: list[BudgetOut]


def parse_budget(raw: bytes) -> BudgetIn:
    """The body, validated, with its numbers read as exact decimals; or a Problem naming the field."""
    try:
        data = json.loads(raw, parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        raise Problem(400, f"the body is not valid JSON: {exc}", code="invalid-json") from None
    if not isinstance(data, dict):
        raise Problem(422, "the body is a JSON object", code="invalid-field")
    try:
        body = BudgetIn.model_validate(data)
    except ValidationError as exc:
        raise invalid(exc) from None
    return body.check()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def invalid(exc: ValidationError) -> Problem:
    """The first error of `exc` as a 422 naming its field."""
    err = exc.errors(include_url=False, include_input=False)[0]
    field = ".".join(str(p) for p in err["loc"]) or None
    msg = str(err["msg"]).removeprefix("Value error, ")
    return Problem(422, f"{field}: {msg}" if field else msg, field=field, code="invalid-field")


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status, media_type=JSON)


def _budgets(relay: Relay) -> Budgets:
    if relay.budgets is None:  # (create_app refuses a Relay without a ledger)
        raise Problem(503, "budgets need the ledger database")
    return relay.budgets


def _admin(user: Any, what: str) -> None:
    if not user.is_admin:
        raise Problem(403, f"only an admin may {what} a budget", code="forbidden")


_USER = Query(None, min_length=1, max_length=64, description="Only budgets on this user (others': admins only)")
_AGENT = Query(None, min_length=1, max_length=64, description="Only budgets on this agent")
_WHOSE_USER = Query(None, min_length=1, max_length=64, description="The budget's user (with or without agentId)")
_WHOSE_AGENT = Query(None, min_length=1, max_length=64, description="The budget's agent (with or without userId)")


@router.get("/budgets", summary="Budgets and where their current periods stand", response_model=BudgetList,
            responses={403: {"description": "Another user's budgets, not an admin"}})
async def list_budgets(user: CurrentUser, relay: RelayDep, userId: str | None = _USER,
                       agentId: str | None = _AGENT) -> Response:
    if userId is not None and userId != user.user_id and not user.is_admin:
        raise Problem(403, "only an admin may read another user's budgets", field="userId", code="forbidden")
    budgets = _budgets(relay)
    specs = await budgets.store.all()
    if not user.is_admin:
        userId = user.user_id
    specs = [s for s in specs if (userId is None or s.user_id == userId)
             and (agentId is None or s.agent_id == agentId)]
    found = [s.to_dict() for s in await budgets.status(specs)]
    if not user.is_admin:  # the webhook URL is admin data (it often carries a token), as on the usage page
        for b in found:
            b["webhookUrl"] = None
    return _json({"budgets": found})


@router.put(
    "/budgets", summary="Set the budget of a user, an agent, or a user on an agent (admins)",
    response_model=BudgetOut,
    openapi_extra={"requestBody": {"required": True, "content": {JSON: {"schema": BudgetIn.model_json_schema()}}}},
    responses={403: {"description": "Not an admin"}, 404: {"description": "Unknown user or agent"},
               422: {"description": "A field is invalid (the error names which)"}})
async def put_budget(request: Request, user: CurrentUser, relay: RelayDep) -> Response:
    _admin(user, "set")
    body = parse_budget(await request.body())
    if body.agentId is not None and body.agentId not in relay.agents:
        raise UnknownAgent(body.agentId, list(relay.agents))
    if body.userId is not None:
        async with relay.ledger.sessions() as s:  # type: ignore[union-attr]
            if not await user_exists(s, body.userId):
                raise Problem(404, f"no user with id {body.userId!r}", field="userId", code="unknown-user")
    budgets = _budgets(relay)
    wanted = body.spec()
    spec = await budgets.store.put(wanted, Action(user.user_id, "budget.set", wanted.scope, wanted.audited(), "api"))
    budgets.changed(spec, spec.scope)
    return _json((await budgets.status([spec]))[0].to_dict())


@router.delete("/budgets", status_code=204, response_class=Response, summary="Remove a budget (admins)",
               responses={403: {"description": "Not an admin"}, 404: {"description": "No budget on that scope"},
                          422: {"description": "Neither userId nor agentId"}})
async def delete_budget(user: CurrentUser, relay: RelayDep, userId: str | None = _WHOSE_USER,
                        agentId: str | None = _WHOSE_AGENT) -> Response:
    _admin(user, "remove")
    if userId is None and agentId is None:
        raise Problem(422, "userId: a budget is on a user (userId), an agent (agentId), or both", field="userId",
                      code="invalid-field")
    scope = scope_of(userId, agentId)
    budgets = _budgets(relay)
    if not await budgets.store.delete(scope, Action(user.user_id, "budget.clear", scope, source="api")):
        raise Problem(404, f"no budget on {scope}", field="agentId" if agentId else "userId", code="unknown-budget")
    budgets.changed(None, scope)
    return Response(status_code=204)
