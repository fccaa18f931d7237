"""The HTTP service: `create_app()` builds the FastAPI application `llmrelay serve` runs."""

from .app import create_app

__all__ = ["create_app"]
