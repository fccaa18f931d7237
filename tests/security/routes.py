"""Every route of the app, classified: who may call it and how it says no.

`ROUTES` maps (method, path template), as `app.routes` lists them, to a `Door`: its kind, a concrete
request to send, and what alice (a non-admin with a live key) gets for it.  `test_route_matrix`
enumerates the routes of a freshly built app and fails on any route missing here (and on any entry
here that no longer names a route), so a new route cannot go unclassified.

Kinds:
    public     no credential needed (operations, docs, static assets, the sign-in form; and the /v1
               catch-all, which answers 404 in OpenAI's shape to anyone: it lists only public paths)
    page       the web UI's pages: a signed-in session, else 303 to /signin?next=<page>
    signout    the sign-out form: a session's CSRF token in the form, else 403
    api        /api: an API key, or the session cookie (with X-CSRF-Token when state-changing);
               errors are problem+json
    openai     /v1: an API key only; errors are OpenAI's error object
    anthropic  /v1/messages: an API key only; errors are Anthropic's
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import Any

from fastapi.routing import APIRoute

from llmrelay.api import create_app
from llmrelay.api.errors import all_routes
from llmrelay.config import load_settings

SAFE = frozenset({"GET", "HEAD", "OPTIONS"})
CHAT = [{"role": "user", "content": "Hello"}]


@dataclass(frozen=True)
class Door:
    kind: str
    path: str  # a concrete path (with query) to send
    ok: int  # what alice's live key (or her session, with CSRF) gets
    body: dict[str, Any] | None = None
    admin_only: bool = False  # alice's `ok` is the 403 of a non-admin
    form: dict[str, str] = field(default_factory=dict)

    @property
    def keyed(self) -> bool:
        return self.kind in ("api", "openai", "anthropic")


def _api(path: str, ok: int = 200, body: dict[str, Any] | None = None, admin_only: bool = False) -> Door:
    return Door("api", path, ok, body, admin_only)


ROUTES: dict[tuple[str, str], Door] = {
    # operations and documentation
    ("GET", "/healthz"): Door("public", "/healthz", 200),
    ("GET", "/readyz"): Door("public", "/readyz", 200),
    ("GET", "/metrics"): Door("public", "/metrics", 200),
    ("GET", "/openapi.json"): Door("public", "/openapi.json", 200),
    ("GET", "/docs"): Door("public", "/docs", 200),
    ("GET", "/docs/oauth2-redirect"): Door("public", "/docs/oauth2-redirect", 200),
    ("GET", "/redoc"): Door("public", "/redoc", 200),
    # the web UI
    ("GET", "/static/vendor/plotly.min.js"): Door("public", "/static/vendor/plotly.min.js", 200),
    ("GET", "/favicon.ico"): Door("public", "/favicon.ico", 200),
    ("GET", "/static/{path:path}"): Door("public", "/static/app.js", 200),
    ("GET", "/signin"): Door("public", "/signin", 200),
    ("POST", "/signin"): Door("public", "/signin", 200, form={"key": "lr_not-a-key"}),  # its own double-submit
    ("POST", "/signout"): Door("signout", "/signout", 303),
    ("GET", "/"): Door("page", "/", 200),
    ("GET", "/agents/{agent_id}"): Door("page", "/agents/general-agent", 200),
    ("GET", "/usage"): Door("page", "/usage?range=24h", 200),
    # /api
    ("GET", "/api/ai/agents"): _api("/api/ai/agents"),
    ("POST", "/api/ai/agents"): _api("/api/ai/agents", body={"agentId": "general-agent", "message": "Hello"}),
    ("GET", "/api/ai/conversations/{conversationId}"): _api("/api/ai/conversations/nope", 404),
    ("GET", "/api/ai/config"): _api("/api/ai/config"),
    ("POST", "/api/ai/config"): _api("/api/ai/config", body={"agentId": "local-agent", "primaryProvider": "ollama",
                                                              "primaryModel": "llama3.2"}),
    ("DELETE", "/api/ai/config/{agentId}"): _api("/api/ai/config/local-agent", 204),
    ("GET", "/api/ai/usage"): _api("/api/ai/usage"),
    ("GET", "/api/ai/usage/records"): _api("/api/ai/usage/records"),
    ("GET", "/api/ai/usage/export"): _api("/api/ai/usage/export?format=csv"),
    ("GET", "/api/ai/budgets"): _api("/api/ai/budgets"),
    ("PUT", "/api/ai/budgets"): _api("/api/ai/budgets", 403, {"agentId": "general-agent", "limitUsd": "5"},
                                     admin_only=True),
    ("DELETE", "/api/ai/budgets"): _api("/api/ai/budgets?agentId=general-agent", 403, admin_only=True),
    ("GET", "/api/ai/audit"): _api("/api/ai/audit", 403, admin_only=True),
    ("GET", "/api/ai/models"): _api("/api/ai/models"),
    ("GET", "/api/ai/providers"): _api("/api/ai/providers"),
    # /v1, OpenAI's shape
    ("POST", "/v1/chat/completions"): Door("openai", "/v1/chat/completions", 200,
                                           {"model": "agent:general-agent", "messages": CHAT}),
    ("GET", "/v1/models"): Door("openai", "/v1/models", 200),
    ("GET", "/v1/models/{model:path}"): Door("openai", "/v1/models/openai/gpt-4o", 200),
    ("POST", "/v1/responses"): Door("openai", "/v1/responses", 200, {"model": "agent:general-agent", "input": "Hi"}),
    ("GET", "/v1/responses/{response_id}"): Door("openai", "/v1/responses/resp_nope", 404),
    ("DELETE", "/v1/responses/{response_id}"): Door("openai", "/v1/responses/resp_nope", 404),
    ("POST", "/v1/embeddings"): Door("openai", "/v1/embeddings", 200,
                                     {"model": "openai/text-embedding-3-small", "input": "Hi"}),
    # /v1/messages, Anthropic's shape
    ("POST", "/v1/messages"): Door("anthropic", "/v1/messages", 200,
                                   {"model": "agent:general-agent", "max_tokens": 64, "messages": CHAT}),
    ("POST", "/v1/messages/count_tokens"): Door("anthropic", "/v1/messages/count_tokens", 200,
                                                {"model": "agent:general-agent", "messages": CHAT}),
}
# the /v1 catch-all answers every method the same way: 404 in OpenAI's shape, to anyone
for _method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
    ROUTES[(_method, "/v1/{path:path}")] = Door("public", "/v1/no-such-thing", 404)

NOT_SERVED = {"HEAD"}
"""Starlette adds HEAD to every GET route (it answers as the GET does, without a body); the /v1
catch-all's HEAD is its GET too."""


def served_routes() -> set[tuple[str, str]]:
    """(method, path template) of every route of a freshly built app (its lifespan not run)."""
    with tempfile.TemporaryDirectory() as home:
        app = create_app(load_settings(env_file=None, home=home))
        found = set()
        for route in all_routes(app):
            methods = getattr(route, "methods", None) or set()
            path = getattr(route, "path", None)
            assert path is not None and methods, f"a route that is not an HTTP route: {route!r}"
            found |= {(m, path) for m in methods if m not in NOT_SERVED}
        assert any(isinstance(r, APIRoute) for r in all_routes(app))
    return found


def request_args(door: Door, method: str) -> dict[str, Any]:
    args: dict[str, Any] = {"method": method, "url": door.path}
    if door.body is not None:
        args["json"] = door.body
    if door.form:
        args["data"] = door.form
    return args
