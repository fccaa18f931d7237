"""`create_app()`: the FastAPI application.

The lifespan starts the Relay (migrating the database, starting the ledger writer) and the key
cache; on shutdown it closes provider connections and writes out every queued ledger row.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRoute

from .. import web
from ..access.keys import KeyCache
from ..config import Settings, load_settings
from ..relay import Relay
from ..version import __version__
from . import errors
from .metrics import observe_attempt, observe_cost
from .middleware import ServiceMiddleware
from .routes import (
    agents,
    anthropic_compat,
    audit,
    budgets,
    catalog,
    config,
    conversations,
    embeddings,
    health,
    openai_compat,
    responses,
    usage,
)


class RelayApp(FastAPI):
    """FastAPI with a front door: every request passes `ServiceMiddleware` first, which serves the
    fast-lane route itself and hands everything else to FastAPI's own stack."""

    front: ServiceMiddleware | None = None

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if self.front is None or scope["type"] != "http":
            await super().__call__(scope, receive, send)
        else:
            await self.front(scope, receive, send)

    async def _fastapi(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, relay: Relay | None = None, server: bool = False) -> FastAPI:
    """The app; `server`: it is the whole process (`llmrelay serve`), which may tune the process for it."""
    settings = settings or load_settings()
    relay = relay or Relay(settings)
    if relay.ledger is None:
        raise ValueError("the HTTP service needs a Relay with a ledger")
    relay.observers.append(observe_attempt)
    relay.ledger.recorder.cost_observers.append(observe_cost)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await relay.start()
        keys = KeyCache(relay.ledger.sessions, settings.key_refresh)  # type: ignore[union-attr]
        await keys.start()
        if relay.changes is not None:  # a key revoked or a user disabled elsewhere stops working here at once
            relay.changes.watch("api_keys", keys.reload)
            relay.changes.watch("users", keys.reload)
        app.state.keys = keys
        if server:
            tune_collector()
        try:
            yield
        finally:
            await keys.aclose()
            await relay.aclose()

    app = RelayApp(
        title="llmrelay", version=__version__, lifespan=lifespan,
        description="One API over Anthropic, OpenAI, Gemini, OpenRouter and Ollama, with per-agent fallback "
                    "chains and an exact usage-and-cost ledger.",
    )
    app.state.settings = settings
    app.state.relay = relay
    errors.install(app)
    for module in (health, agents, conversations, config, usage, budgets, catalog, openai_compat, anthropic_compat,
                   responses, embeddings, audit):
        app.include_router(module.router)
    web.install(app)
    app.include_router(openai_compat.unmatched)  # last: every other /v1 path, answered in OpenAI's shape
    # the doors' busiest routes take a plain Request (no dependencies to solve): served by the fast lane
    lanes = {openai_compat.chat_completions, anthropic_compat.create_message, responses.create_response,
             embeddings.create_embeddings}
    fast = [r for module in (openai_compat, anthropic_compat, responses, embeddings) for r in module.router.routes
            if isinstance(r, APIRoute) and r.endpoint in lanes]
    app.front = ServiceMiddleware(app._fastapi, max_body=settings.max_body_bytes, owner=app,
                                  fast={(method, r.path): r for r in fast for method in r.methods})
    return app


def tune_collector() -> None:
    """The cycle collector, set for a server (bench/README.md measures it).  Everything built before the
    first request (modules, the app, its routes and models) lives as long as the process: frozen, so that
    no collection walks it again.  A young-generation collection every 10,000 net allocations instead of
    700: what a request allocates (thousands of objects for a body with tools) is freed by reference
    counting as soon as the request ends, and a collection in between only walks it in vain (with the
    default, the collector cost a tool-carrying request a third of its CPU)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def app_factory() -> FastAPI:
    """For `uvicorn --factory llmrelay.api.app:app_factory` (each worker builds its own app)."""
    return create_app(server=True)
