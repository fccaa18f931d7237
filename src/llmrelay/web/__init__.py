"""The web UI, served by `llmrelay serve` itself: sign-in, the agents page with its chat, model
selector and chain editor, and the usage page.  Templates are Jinja2; the JavaScript and CSS are
our own files under `static/` (third-party code only from installed packages, see `assets`)."""

from __future__ import annotations

from fastapi import FastAPI

from . import assets, pages, usage_page


def install(app: FastAPI) -> None:
    """Add the pages, the static files and the redirect to /signin for pages that need a session."""
    for module in (pages, usage_page, assets):
        app.include_router(module.router)
    pages.install_handlers(app)


__all__ = ["install"]
