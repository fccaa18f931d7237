"""Plain ASGI middleware (no per-request task or body copy): request ids, one structured log
line per request, the body size limit, and the HTTP metrics."""

from __future__ import annotations

import logging
import time
import uuid

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .metrics import HTTP_LATENCY, HTTP_REQUESTS

access_log = logging.getLogger("llmrelay.access")


class _TooLarge(Exception):
    pass


def _problem_413(limit: int, path: str) -> bytes:
    if path.startswith("/v1/"):
        body = {"error": {"message": f"request body over {limit} bytes", "type": "invalid_request_error",
                          "param": None, "code": "request_too_large"}}
    else:
        body = {"type": "https://llmrelay.dev/problems/request-too-large", "title": "Request too large",
                "status": 413, "detail": f"the request body is over the limit of {limit} bytes"}
    return orjson.dumps(body)


class ServiceMiddleware:
    def __init__(self, app: ASGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        headers = dict(scope["headers"])
        rid = headers.get(b"x-request-id", b"").decode("latin-1")[:64] or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        status = 500
        length = headers.get(b"content-length")
        path = scope["path"]
        if length is not None and length.isdigit() and int(length) > self.max_body:
            status = 413
            await self._send_413(send, path)
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
            await self.app(scope, limited_receive, send_with_id)
        except _TooLarge:
            status = 413
            await self._send_413(send, path)
        finally:
            self._finish(scope, rid, status, t0)

    async def _send_413(self, send: Send, path: str) -> None:
        body = _problem_413(self.max_body, path)
        ctype = b"application/json" if path.startswith("/v1/") else b"application/problem+json"
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    def _finish(self, scope: Scope, rid: str, status: int, t0: float) -> None:
        elapsed = time.perf_counter() - t0
        route = scope.get("route")
        name = getattr(route, "path", None) or "unmatched"
        HTTP_REQUESTS.labels(scope["method"], name, str(status)).inc()
        HTTP_LATENCY.labels(name).observe(elapsed)
        if access_log.isEnabledFor(logging.INFO):
            state = scope.get("state", {})
            access_log.info(orjson.dumps({"request_id": rid, "method": scope["method"], "path": scope["path"],
                                          "status": status, "ms": round(elapsed * 1000, 2),
                                          "user": state.get("user_id")}).decode())
