"""Every error the HTTP service answers, in the shape of the router that serves the request.

Each router chooses its shape once, by its route class: `ApiRoute` (the /api routers) answers RFC
9457 problem details (`application/problem+json`: type, title, status, detail, and `field` naming
the offending input); `OpenAIRoute` (the /v1 routers) answers OpenAI's
`{"error": {message, type, param, code}}`, so that OpenAI SDKs raise their own typed errors; any
other route (health, pages) answers problem details too.  llmrelay's exceptions are mapped to HTTP
once, here (`as_problem`), and the handlers render them in the shape of the request's route
(`shape_for`, which also serves a request no route has matched yet: a body over the size limit).
The OpenAPI document says so (`document_errors`): every error response of a keyed operation is
described with the shape it really has, in place of FastAPI's default 422 body that these handlers
never send.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Scope

from ..ledger.recorder import LedgerUnavailable
from ..types import (
    AllLinksFailed,
    BudgetExceeded,
    BudgetUnavailable,
    ErrorKind,
    InvalidRequest,
    LLMRelayError,
    RateLimited,
    UnknownAgent,
    UnknownModel,
    money,
)

log = logging.getLogger("llmrelay.api")
PROBLEM = "application/problem+json"
TYPE_BASE = "https://llmrelay.dev/problems/"

_TITLES = {400: "Bad request", 401: "Unauthorized", 402: "Budget exceeded", 403: "Forbidden", 404: "Not found",
           405: "Method not allowed",
           413: "Request too large", 415: "Unsupported media type", 422: "Invalid request", 429: "Too many requests",
           500: "Internal error", 502: "No provider answered", 503: "Unavailable"}
# OpenAI error `type`s by status, as the SDKs expect them
_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 402: "insufficient_quota",
                 403: "permission_error",
                 404: "invalid_request_error", 405: "invalid_request_error", 413: "invalid_request_error",
                 422: "invalid_request_error", 429: "rate_limit_error", 502: "api_error", 503: "api_error"}
_OPENAI_CODES = {"unknown-agent": "model_not_found", "invalid-request": "invalid_value",
                 "invalid-field": "invalid_value", "content-filtered": "invalid_prompt"}
"""Problem codes that OpenAI spells otherwise; any other code has its dashes as underscores."""
_REFUSALS = {ErrorKind.CONTEXT_LENGTH_EXCEEDED: "context-length-exceeded",
             ErrorKind.CONTENT_FILTERED: "content-filtered"}
"""A chain every link refused: the problem's code and field by the refusal (OpenAI's clients look for
`context_length_exceeded` to shorten a conversation)."""


class ProblemDetails(BaseModel):
    """RFC 9457 problem details: the body of every error under /api (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    field: str | None = Field(None, description="The offending input (a body field or parameter), when one is")


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIErrorResponse(BaseModel):
    """The body of every error under /v1, as OpenAI's SDKs expect it."""

    model_config = ConfigDict(extra="allow")

    error: OpenAIErrorDetail


class AnthropicErrorDetail(BaseModel):
    type: str
    message: str


class AnthropicErrorResponse(BaseModel):
    """The body of every error under /v1/messages, as Anthropic's SDKs expect it."""

    model_config = ConfigDict(extra="allow")

    type: Literal["error"]
    error: AnthropicErrorDetail


class Problem(Exception):
    """Raise it from a route to answer an error."""

    def __init__(self, status: int, detail: str, *, field: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.field, self.code = status, detail, field, code
        self.headers = headers or {}
        self.extra = extra or {}


class ProblemShape:
    """RFC 9457 problem details."""

    media_type = PROBLEM

    def body(self, p: Problem) -> bytes:
        slug = p.code or _TITLES.get(p.status, "error").lower().replace(" ", "-")
        return orjson.dumps({"type": TYPE_BASE + slug, "title": _TITLES.get(p.status, "Error"), "status": p.status,
                             "detail": p.detail, **({"field": p.field} if p.field else {}), **p.extra})

    def response(self, p: Problem) -> Response:
        return Response(self.body(p), p.status, p.headers, media_type=self.media_type)


class OpenAIShape(ProblemShape):
    """OpenAI's error object: `type` by status, `param` the field, `code` in OpenAI's spelling."""

    media_type = "application/json"

    def body(self, p: Problem) -> bytes:
        code = _OPENAI_CODES.get(p.code, p.code.replace("-", "_")) if p.code else None
        return orjson.dumps({"error": {"message": p.detail, "type": _OPENAI_TYPES.get(p.status, "api_error"),
                                       "param": p.field, "code": code}, **p.extra})


_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                    403: "permission_error", 404: "not_found_error", 405: "invalid_request_error",
                    413: "request_too_large", 422: "invalid_request_error", 429: "rate_limit_error", 500: "api_error",
                    502: "api_error", 503: "overloaded_error", 529: "overloaded_error"}


class AnthropicShape(ProblemShape):
    """Anthropic's error body: `{"type": "error", "error": {"type", "message"}}`, `type` by status, as the
    anthropic SDKs read it (the request id travels in the `request-id` header, as Anthropic sends it)."""

    media_type = "application/json"

    def body(self, p: Problem) -> bytes:
        message = p.detail
        if p.code == "context-length-exceeded" and not message.startswith(_TOO_LONG):
            message = _TOO_LONG + message  # what Anthropic says, and what its clients look for to compact
        return orjson.dumps({"type": "error", "error": {"type": _ANTHROPIC_TYPES.get(p.status, "api_error"),
                                                        "message": message}, **p.extra})


_TOO_LONG = "prompt is too long: "


PROBLEM_SHAPE = ProblemShape()
OPENAI_SHAPE = OpenAIShape()
ANTHROPIC_SHAPE = AnthropicShape()


class ApiRoute(APIRoute):
    """The route class of llmrelay's own API routers: keyed, problem details."""

    error_shape: ProblemShape = PROBLEM_SHAPE
    keyed = True


class OpenAIRoute(APIRoute):
    """The route class of the OpenAI-compatible routers: keyed, OpenAI's error object."""

    error_shape: ProblemShape = OPENAI_SHAPE
    keyed = True


class AnthropicRoute(APIRoute):
    """The route class of the Anthropic-compatible router (`/v1/messages`): keyed, Anthropic's error body."""

    error_shape: ProblemShape = ANTHROPIC_SHAPE
    keyed = True


def all_routes(app: Any) -> Iterator[BaseRoute]:
    """Every route of `app`, those of included routers too (FastAPI >= 0.16x includes a router as one
    lazy entry, `original_router`; our routers carry their prefix themselves, so their routes' paths
    are whole)."""
    for route in getattr(app, "routes", ()):
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from all_routes(inner)
        else:
            yield route


def shape_for(scope: Scope, app: Any = None) -> ProblemShape:
    """The error shape of the route that serves (or, before routing, would serve) this request."""
    route = scope.get("route")
    if route is None and app is not None:
        for candidate in all_routes(app):
            if candidate.matches(scope)[0] is not Match.NONE:
                route = candidate
                break
    return getattr(route, "error_shape", PROBLEM_SHAPE)


def error_response(request: Request, p: Problem) -> Response:
    return shape_for(request.scope).response(p)


def as_problem(exc: Exception) -> Problem:
    """llmrelay's own exceptions as the HTTP error they mean."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, UnknownAgent):
        return Problem(404, str(exc), field=exc.field, code="unknown-agent")
    if isinstance(exc, UnknownModel):
        return Problem(404, str(exc), field=exc.field, code="model-not-found")
    if isinstance(exc, BudgetExceeded):
        return Problem(402, str(exc), code="budget-exceeded", extra={
            "budget": exc.budget, "spentUsd": money(exc.spent_usd), "limitUsd": money(exc.limit_usd),
            "resetsAt": exc.resets_at.isoformat()})
    if isinstance(exc, BudgetUnavailable):
        return Problem(503, str(exc), code="budget-unavailable", headers={"retry-after": "5"},
                       extra={"budget": exc.budget})
    if isinstance(exc, RateLimited):
        return Problem(429, str(exc), code="rate-limit-exceeded", headers={"retry-after": str(exc.retry_after)})
    if isinstance(exc, InvalidRequest):
        return Problem(400, str(exc), field=exc.field, code="invalid-request")
    if isinstance(exc, AllLinksFailed):  # the chain was walked, retries and all: a client's retry would walk it again
        walked = {"x-should-retry": "false"}
        if exc.unsupported is not None:
            return Problem(400, str(exc), field=exc.unsupported.split("=")[0], code="unsupported-parameter",
                           headers=walked, extra={"attemptedProviders": [a.to_dict() for a in exc.attempts]})
        if exc.fatal is not None:
            return Problem(400, f"the provider rejected the request: {exc.fatal.message}", code="provider-rejected",
                           headers=walked, extra={"attemptedProviders": [a.to_dict() for a in exc.attempts]})
        if exc.refused is not None:  # every link refused the request itself: a 400, as one provider would say it
            return Problem(400, str(exc), code=_REFUSALS.get(exc.refused, "request-refused"), headers=walked,
                           extra={"attemptedProviders": [a.to_dict() for a in exc.attempts]})
        return Problem(502, str(exc), code="all-providers-failed", headers=walked,
                       extra={"attemptedProviders": [a.to_dict() for a in exc.attempts]})
    if isinstance(exc, LedgerUnavailable):  # a durable answer whose rows could be kept nowhere
        return Problem(503, str(exc), code="ledger-unavailable", headers={"retry-after": "5"})
    if isinstance(exc, LLMRelayError):
        return Problem(500, str(exc))
    return Problem(500, "internal error (logged)")


def render(request: Request, exc: Exception) -> Response:
    """The response for an exception a route raised (what the handlers below answer)."""
    if not isinstance(exc, Problem | LLMRelayError):
        log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(request, as_problem(exc))


def _field(loc: tuple) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def _component(schemas: dict[str, Any], model: type[BaseModel]) -> dict[str, str]:
    js = model.model_json_schema(ref_template="#/components/schemas/{model}")
    for name, sub in js.pop("$defs", {}).items():
        schemas.setdefault(name, sub)
    schemas[model.__name__] = js
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def document_errors(doc: dict[str, Any], routes: list[Any]) -> dict[str, Any]:
    """Describe the error responses of every operation as they are sent, in its route's shape; 401
    on every keyed one, 400 (invalid JSON) and 413 (too large) wherever a body goes."""
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    contents = {PROBLEM_SHAPE: {PROBLEM: {"schema": _component(schemas, ProblemDetails)}},
                OPENAI_SHAPE: {"application/json": {"schema": _component(schemas, OpenAIErrorResponse)}},
                ANTHROPIC_SHAPE: {"application/json": {"schema": _component(schemas, AnthropicErrorResponse)}}}
    paths = doc.get("paths", {})
    for route in routes:
        if not isinstance(route, APIRoute) or route.path_format not in paths:
            continue
        ours = getattr(route, "keyed", False)
        shape = contents[getattr(route, "error_shape", PROBLEM_SHAPE)]
        item = paths[route.path_format]
        for op in (item.get(m.lower()) for m in route.methods):
            if not isinstance(op, dict) or "responses" not in op:
                continue
            responses = op["responses"]
            if ours:
                responses.setdefault("401", {"description": "Missing, invalid or revoked API key"})
                if "requestBody" in op:
                    responses.setdefault("400", {"description": "The body is not valid JSON (or the request cannot "
                                                                "be served as asked: the error says why)"})
                    responses.setdefault("413", {"description": "Request body over LLMRELAY_MAX_BODY_BYTES"})
            for status, response in responses.items():
                if not status.startswith(("4", "5")):
                    continue
                content = response.get("content")
                if status == "422" and content and "HTTPValidationError" in orjson.dumps(content).decode():
                    response["content"] = shape
                    response["description"] = "A parameter or the body is invalid (the error names which)"
                elif content is None and ours:
                    response["content"] = shape
    used = orjson.dumps(doc["paths"]).decode()
    for name in ("HTTPValidationError", "ValidationError"):
        if name in schemas and f"/{name}\"" not in used:
            del schemas[name]
    return doc


def install(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        fresh = app.openapi_schema is None
        doc = generate()  # FastAPI caches it in app.openapi_schema: amend it once
        return document_errors(doc, list(all_routes(app))) if fresh else doc

    app.openapi = openapi  # type: ignore[method-assign]

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> Response:
        return error_response(request, exc)

    @app.exception_handler(LLMRelayError)
    async def _relay(request: Request, exc: LLMRelayError) -> Response:
        return error_response(request, as_problem(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        if first.get("type") == "json_invalid":
            return error_response(request, Problem(400, f"the body is not valid JSON: {first.get('msg')}",
                                                   code="invalid-json"))
        field = _field(tuple(first.get("loc", ())))
        detail = f"{field}: {first.get('msg')}" if field else str(first.get("msg"))
        return error_response(request, Problem(422, detail, field=field, code="invalid-field"))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(request, Problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {})))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(request, Problem(500, "internal error (logged)"))
