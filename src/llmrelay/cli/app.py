"""The Typer application and what every command shares."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.markup import escape

from ..version import __version__

app = typer.Typer(
    name="llmrelay", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="llmrelay: one API over Anthropic, OpenAI, Gemini, OpenRouter and Ollama, with fallback chains.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def _version(value: bool) -> None:
    if value:
        console.print(f"llmrelay {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """llmrelay: one API over Anthropic, OpenAI, Gemini, OpenRouter and Ollama, with fallback chains."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line on stderr; the caller raises the returned Exit."""
    err_console.print(f"[red]llmrelay: error:[/] {escape(message)}")
    return typer.Exit(code)
