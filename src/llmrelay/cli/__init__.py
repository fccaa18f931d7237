"""The `llmrelay` command.  Each group of subcommands lives in its own module."""

from __future__ import annotations

import sys

from rich.markup import escape

from ..types import ConfigError, InvalidRequest
from . import audit, budgets, chat, db, fakes, info, pricing, serve, usage, users  # noqa: F401  (register their commands)
from .app import app, err_console


def main() -> None:
    """Entry point: bad configuration or input is one line on stderr and exit code 2."""
    try:
        app(standalone_mode=True)
    except (ConfigError, InvalidRequest) as exc:
        err_console.print(f"[red]llmrelay: error:[/] {escape(str(exc))}")
        sys.exit(2)


__all__ = ["app", "main"]
