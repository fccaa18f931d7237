"""Every error the HTTP service answers, in one of two shapes.

`/api/*` (and everything else) answers RFC 9457 problem details
(`application/problem+json`: type, title, status, detail, and `field` naming the offending input);
`/v1/*` answers OpenAI's `{"error": {message, type, param, code}}`, so that OpenAI SDKs raise
their own typed errors.  Handlers map llmrelay's exceptions once, here.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from ..types import AllLinksFailed, InvalidRequest, LLMRelayError, UnknownAgent

log = logging.getLogger("llmrelay.api")
PROBLEM = "application/problem+json"
TYPE_BASE = "https://llmrelay.dev/problems/"

_TITLES = {400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found", 405: "Method not allowed",
           413: "Request too large", 415: "Unsupported media type", 422: "Invalid request", 429: "Too many requests",
           500: "Internal error", 502: "No provider answered", 503: "Unavailable"}
# OpenAI error `type`s by status, as the SDKs expect them
_OPENAI_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "permission_error",
                 404: "invalid_request_error", 413: "invalid_request_error", 422: "invalid_request_error",
                 429: "rate_limit_error", 502: "api_error", 503: "api_error"}


class Problem(Exception):
    """Raise it from a route to answer an error."""

    def __init__(self, status: int, detail: str, *, field: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.field, self.code = status, detail, field, code
        self.headers = headers or {}
        self.extra = extra or {}


def _openai_path(request: Request) -> bool:
    return request.url.path.startswith("/v1/")


def error_response(request: Request, p: Problem) -> Response:
    if _openai_path(request):
        body = {"error": {"message": p.detail, "type": _OPENAI_TYPES.get(p.status, "api_error"), "param": p.field,
                          "code": p.code}, **p.extra}
        return Response(orjson.dumps(body), p.status, p.headers, media_type="application/json")
    slug = p.code or _TITLES.get(p.status, "error").lower().replace(" ", "-")
    body = {"type": TYPE_BASE + slug, "title": _TITLES.get(p.status, "Error"), "status": p.status,
            "detail": p.detail, **({"field": p.field} if p.field else {}), **p.extra}
    return Response(orjson.dumps(body), p.status, p.headers, media_type=PROBLEM)


def as_problem(exc: Exception) -> Problem:
    """llmrelay's own exceptions as the HTTP error they mean."""
    if isinstance(exc, Problem):
        return exc
    if isinstance(exc, UnknownAgent):
        return Problem(404, str(exc), field=exc.field, code="unknown-agent")
    if isinstance(exc, InvalidRequest):
        return Problem(400, str(exc), field=exc.field, code="invalid-request")
    if isinstance(exc, AllLinksFailed):
        if exc.fatal is not None:
            return Problem(400, f"the provider rejected the request: {exc.fatal.message}", code="provider-rejected",
                           extra={"attemptedProviders": [a.to_dict() for a in exc.attempts]})
        return Problem(502, str(exc), code="all-providers-failed",
                       extra={"attemptedProviders": [a.to_dict() for a in exc.attempts]})
    if isinstance(exc, LLMRelayError):
        return Problem(500, str(exc))
    return Problem(500, "internal error (logged)")


def _field(loc: tuple) -> str | None:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or None


def install(app: FastAPI) -> None:
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
