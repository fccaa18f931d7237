"""The Jinja2 environment of the pages (autoescaped) and `render`, which every page calls."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from .session import context

TEMPLATES = Path(__file__).parent / "templates"
env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                  trim_blocks=True, lstrip_blocks=True)

SECURITY_HEADERS = {
    # our own scripts only (no inline script, no eval): a model's answer could not run code even if
    # it reached the DOM as HTML; inline styles are allowed for Plotly's charts
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'; form-action 'self'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}


def render(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
    """The template `name` with `user`, `csrf_token` and `ctx`, plus the pages' security headers."""
    html = env.get_template(name).render(context(request, **ctx))
    return HTMLResponse(html, status, headers=SECURITY_HEADERS)
