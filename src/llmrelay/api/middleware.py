"""Plain ASGI middleware (no per-request task or body copy): request ids, one structured log
line per request, the body size limit, the HTTP metrics — and the fast lane.

The fast lane: the routes the traffic hits (the doors' `POST /v1/chat/completions`, `/v1/messages`,
`/v1/responses`, `/v1/embeddings`) are called from here
directly, with a plain Starlette `Request`, skipping FastAPI's router, its middleware stack and
dependency solving (together they cost more CPU than the route itself; see bench/README.md).  The
route is the same function FastAPI documents and would call; errors are rendered by the same
`errors` module, so nothing but the speed differs.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..types import new_request_id
from . import errors
from .metrics import observe_http

access_log = logging.getLogger("llmrelay.access")


class _TooLarge(Exception):
    pass


class ServiceMiddleware:
    """`fast` maps (method, path) to the FastAPI route whose endpoint the fast lane calls."""

    def __init__(self, app: ASGIApp, max_body: int, owner: Any = None,
                 fast: dict[tuple[str, str], APIRoute] | None = None) -> None:
        self.app = app
        self.max_body = max_body
        self.owner = owner  # the FastAPI application, as `request.app` in a fast-lane route
        self.fast = fast or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        headers = dict(scope["headers"])
        rid = new_request_id()
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        client_rid = headers.get(b"x-request-id")
        if client_rid:
            state["client_request_id"] = client_rid.decode("latin-1")[:100]
        status = 500
        length = headers.get(b"content-length")
        path = scope["path"]
        if length is not None and length.isdigit() and int(length) > self.max_body:
            status = 413
            await self._send_413(scope, send)
            self._finish(scope, rid, status, t0)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise _TooLarge
            return message

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            route = self.fast.get((scope["method"], path))
            if route is not None and self.owner is not None:
                await self._fast(route, scope, limited_receive, send_with_id)
            else:
                await self.app(scope, limited_receive, send_with_id)
        except _TooLarge:
            status = 413
            await self._send_413(scope, send)
        finally:
            self._finish(scope, rid, status, t0)

    async def _fast(self, route: APIRoute, scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = self.owner
        scope["route"] = route  # as FastAPI's router sets it: the access log and the error shape read it
        request = Request(scope, receive)
        try:
            response = await route.endpoint(request)
        except _TooLarge:
            raise
        except Exception as exc:
            response = errors.render(request, exc)
        await response(scope, receive, send)

    async def _send_413(self, scope: Scope, send: Send) -> None:
        """Before any route has run: in the error shape of the route that would have served it."""
        shape = errors.shape_for(scope, self.owner)
        body = shape.body(errors.Problem(413, f"the request body is over the limit of {self.max_body} bytes",
                                         code="request-too-large"))
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", shape.media_type.encode()),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    def _finish(self, scope: Scope, rid: str, status: int, t0: float) -> None:
        elapsed = time.perf_counter() - t0
        route = scope.get("route")
        name = getattr(route, "path", None) or "unmatched"
        observe_http(scope["method"], name, status, elapsed)
        if access_log.isEnabledFor(logging.INFO):
            state = scope.get("state", {})
            line = {"request_id": rid, "method": scope["method"], "path": scope["path"], "status": status,
                    "ms": round(elapsed * 1000, 2), "user": state.get("user_id")}
            if "client_request_id" in state:
                line["client_request_id"] = state["client_request_id"]
            access_log.info(orjson.dumps(line).decode())
