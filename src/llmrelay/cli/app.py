"""The Typer application and what every command shares.

Tables: `show(table)` prints a Rich table only when every column fits the terminal whole; columns
made with `no_wrap=True` (ids, names, money, dates) are never folded or cut, the others (free text)
wrap at word boundaries.  When they do not fit, the narrower tables the command offers (secondary
columns left out) are tried, then each row is printed as a block of `column: value` lines.  Every
command that prints a table also takes `--json`.
"""

from __future__ import annotations

import typer
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from typer.core import TyperArgument, TyperOption

from ..config import load_settings
from ..ledger import Ledger
from ..version import __version__

app = typer.Typer(
    name="llmrelay", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="llmrelay: one API over Anthropic, OpenAI, Gemini, OpenRouter and Ollama, with fallback chains.",
    context_settings={"help_option_names": ["-h", "--help"]},
)
# emoji off: a model id such as `x/y:free` is printed as it is, never with `:free` turned into an emoji
console = Console(highlight=False, soft_wrap=True, emoji=False)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)


def _display_type(self: TyperOption, ctx: typer.Context) -> str | None:
    """A flag takes no value: its help shows no `<bool>` (Typer 0.29 shows one for every flag)."""
    return None if self.is_flag else _typer_display_type(self, ctx)


def _argument_type(self: TyperArgument, ctx: typer.Context) -> str | None:
    """An argument's metavar (MESSAGE, NAME) says what it is: no `<str>` beside it."""
    return None if self.metavar is not None else _typer_argument_type(self, ctx)


_typer_display_type, _typer_argument_type = TyperOption.display_type_rich, TyperArgument.display_type_rich
TyperOption.display_type_rich = _display_type  # type: ignore[method-assign]
TyperArgument.display_type_rich = _argument_type  # type: ignore[method-assign]


def _version(value: bool) -> None:
    if value:
        print(f"llmrelay {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """llmrelay: one API over Anthropic, OpenAI, Gemini, OpenRouter and Ollama, with fallback chains."""


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one line on stderr; the caller raises the returned Exit."""
    err_console.print(f"[red]llmrelay: error:[/] {escape(message)}")
    return typer.Exit(code)


def _fits(table: Table, out: Console) -> bool:
    """Whether `table` fits `out`'s width with its no-wrap columns whole and the others folded no
    narrower than their longest word (the widths Rich would give them)."""
    options = out.options
    need = len(table.columns) + 1 if table.box is not None else 0  # the vertical rules
    for column in table.columns:
        cells = [column.header, *column.cells]
        widths = [Measurement.get(out, options, cell) for cell in cells]
        need += max(m.maximum if column.no_wrap else m.minimum for m in widths) + 2  # + its padding
    return need <= out.width


def _blocks(table: Table, heading: int) -> list[RenderableType]:
    """Each row of `table` as `column: value` lines, under its first `heading` columns' values."""
    columns = table.columns
    rows = list(zip(*(list(c.cells) for c in columns), strict=True)) if columns else []
    out: list[RenderableType] = []
    for row in rows:
        grid = Table.grid(padding=(0, 1))
        grid.add_column(no_wrap=True, style="dim")
        grid.add_column(overflow="fold")
        for column, cell in zip(columns[heading:], row[heading:], strict=True):
            if cell != "":
                grid.add_row(f"{column.header}:", cell)
        title = " · ".join(str(c) for c in row[:heading] if c != "")
        out += [f"[bold]{title}[/]", grid, ""]
    return out


def show(table: Table, *narrower: Table, heading: int = 1, out: Console | None = None) -> None:
    """Print `table` if it fits, else the first of `narrower` that fits, else `table`'s rows as blocks,
    each headed by the values of its first `heading` columns (cells must be strings, already escaped)."""
    out = out or console
    for candidate in (table, *narrower):
        if _fits(candidate, out):
            out.print(candidate)
            return
    if table.title:
        out.print(table.title, soft_wrap=False)
    for block in _blocks(table, heading):
        out.print(block, soft_wrap=False)


async def with_ledger(fn):
    """Run `fn(ledger)` on a started ledger of the configured database, and close it after."""
    ledger = Ledger(load_settings())
    await ledger.start()
    try:
        return await fn(ledger)
    finally:
        await ledger.aclose()
