"""`llmrelay usage`: what was used and what it cost, as a table with totals, JSON, or a CSV export."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from ..config import load_settings
from ..db.engine import display_url
from ..ledger import Ledger
from ..ledger.records import write_csv
from ..ledger.stats import GROUP_BY, UsageReport, UsageStats, usage_stats
from ..providers.registry import known_providers
from ..redaction import redact
from ..types import money
from .app import app, console, err_console, fail, show

DEFAULT_DAYS = 30
_KEY_COLUMNS = {None: [], "provider": ["provider"], "agent": ["agentId"], "user": ["userId"], "day": ["day"],
                "model": ["provider", "model"]}
_HEADERS = {"provider": "provider", "agentId": "agent", "userId": "user", "day": "day (UTC)", "model": "model"}


def parse_when(value: str, option: str) -> datetime:
    """YYYY-MM-DD (midnight) or an ISO date-time; without an offset it is UTC."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        raise fail(f"{option} {value!r}: expected YYYY-MM-DD or an ISO date-time such as 2025-03-10T14:00 (UTC)"
                   ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def window(since: str | None, until: str | None, now: datetime | None = None) -> tuple[datetime, datetime]:
    """[from, to): `to` defaults to now and `from` to 30 days before `to`."""
    end = parse_when(until, "--to") if until is not None else (now or datetime.now(UTC))
    start = parse_when(since, "--from") if since is not None else end - timedelta(days=DEFAULT_DAYS)
    if start >= end:
        raise fail(f"--from ({start.isoformat()}) must be before --to ({end.isoformat()}); --to is exclusive")
    return start, end


@app.command()
def usage(
    since: str | None = typer.Option(None, "--from", metavar="DATE",
                                     help="Start, inclusive: YYYY-MM-DD or ISO date-time, UTC. "
                                          "Default: 30 days before --to."),
    until: str | None = typer.Option(None, "--to", metavar="DATE",
                                     help="End, exclusive: YYYY-MM-DD or ISO date-time, UTC. Default: now."),
    by: str | None = typer.Option(None, "--by", metavar="KEY", help="Group by agent, provider, model, day or user."),
    agent: str | None = typer.Option(None, "--agent", metavar="ID", help="Only this agent."),
    provider: str | None = typer.Option(None, "--provider", metavar="P", help="Only this provider."),
    user: str | None = typer.Option(None, "--user", metavar="ID", help="Only this user."),
    csv_file: str | None = typer.Option(None, "--csv", metavar="FILE",
                                        help="Write every matching ledger row to FILE as CSV ('-': stdout)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Requests answered, attempts failed, fallbacks, tokens, exact cost and latency over a window of the ledger."""
    if by is not None and by not in GROUP_BY:
        raise fail(f"--by {by!r}: expected one of {', '.join(GROUP_BY)}")
    if provider is not None and provider not in known_providers():
        raise fail(f"--provider {provider!r}: unknown provider (known: {', '.join(known_providers())})")
    if csv_file is not None and (as_json or by is not None):
        raise fail("--csv exports the rows themselves: it takes no --json or --by")
    start, end = window(since, until)
    filters = {"start": start, "end": end, "agent_id": agent, "provider": provider, "user_id": user}
    settings = load_settings()
    target = _CsvTarget(csv_file) if csv_file is not None else None
    try:
        result = asyncio.run(_read(Ledger(settings), filters, by, target))
    except (OSError, SQLAlchemyError) as exc:
        brief = redact(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:300]
        raise fail(f"cannot read the ledger at {display_url(settings.db_url)}: {brief}", 1) from None
    finally:
        if target is not None:
            target.close()
    if isinstance(result, int):
        where = console if csv_file != "-" else err_console
        dest = "standard output" if csv_file == "-" else escape(csv_file or "")
        where.print(f"Wrote {result:,} row{'s' if result != 1 else ''} to {dest}")
    elif as_json:
        print(json.dumps(result.to_dict()))
    else:
        _print(result, agent, provider, user)


class _CsvTarget:
    """Standard output, or FILE written as FILE.part and renamed into place once complete."""

    def __init__(self, name: str) -> None:
        self.path = None if name == "-" else Path(name)
        self.part = None if self.path is None else self.path.with_name(self.path.name + ".part")
        try:  # closed by commit() or close()
            self.out: IO[str] = (sys.stdout if self.part is None
                                 else open(self.part, "w", encoding="utf-8", newline=""))  # noqa: SIM115
        except OSError as exc:
            raise fail(f"--csv {name}: cannot write: {exc.strerror or exc}") from None

    def commit(self) -> None:
        if self.path is not None and self.part is not None:
            self.out.close()
            os.replace(self.part, self.path)

    def close(self) -> None:
        if self.part is not None:
            self.out.close()
            self.part.unlink(missing_ok=True)


async def _read(ledger: Ledger, filters: dict[str, Any], by: str | None,
                target: _CsvTarget | None) -> UsageReport | int:
    try:
        await ledger.start()
        async with ledger.sessions() as session:
            if target is None:
                return await usage_stats(session, group_by=by, **filters)
            count = await write_csv(session, target.out, **filters)
            target.commit()
            return count
    finally:
        await ledger.aclose()


# -- the table ------------------------------------------------------------------------------------


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _cost(s: UsageStats) -> str:
    return f"${money(s.cost_usd)}" + (" *" if s.unpriced_calls else "")


def _ms(value: float | int | None, places: int = 0) -> str:
    return "—" if value is None else f"{value:,.{places}f}"


WIDE = ("requests", "answered", "attempts", "failed attempts", "fallback", "prompt tok", "completion tok",
        "total tok", "cost (USD)", "avg ms", "p95 ms")
MEDIUM = ("requests", "answered", "failed attempts", "tokens", "cost (USD)", "p95 ms")
NARROW = ("requests", "answered", "att. failed", "cost (USD)")


def _wide(s: UsageStats) -> list[str]:
    return [f"{s.requests:,}", _pct(s.request_success_rate), f"{s.calls:,}", _pct(s.attempt_failure_rate),
            _pct(s.fallback_rate), f"{s.tokens.prompt:,}", f"{s.tokens.completion:,}", f"{s.tokens.total:,}",
            _cost(s), _ms(s.avg_latency_ms, 1), _ms(s.p95_latency_ms)]


def _medium(s: UsageStats) -> list[str]:
    return [f"{s.requests:,}", _pct(s.request_success_rate), _pct(s.attempt_failure_rate), f"{s.tokens.total:,}",
            _cost(s), _ms(s.p95_latency_ms)]


def _narrow(s: UsageStats) -> list[str]:
    return [f"{s.requests:,}", _pct(s.request_success_rate), _pct(s.attempt_failure_rate), _cost(s)]


def _table(report: UsageReport, title: str, columns: tuple[str, ...], cells: Any) -> Table:
    table = Table(title=escape(title), title_justify="left")
    keys = _KEY_COLUMNS[report.group_by] or [""]
    for k in keys:
        table.add_column(_HEADERS.get(k, ""), no_wrap=True)
    for col in columns:
        table.add_column(col, justify="right", no_wrap=True)
    for g in report.groups:
        table.add_row(*(escape(g.key[k]) for k in keys), *cells(g.stats))
    if report.groups:
        table.add_section()
    table.add_row("total", *[""] * (len(keys) - 1), *cells(report.totals), style="bold")
    return table


def _print(report: UsageReport, agent: str | None, provider: str | None, user: str | None) -> None:
    span = f"{report.start:%Y-%m-%d %H:%M} → {report.end:%Y-%m-%d %H:%M} UTC"  # type: ignore[str-format]
    only = " · ".join(f"{k} {v}" for k, v in (("agent", agent), ("provider", provider), ("user", user)) if v)
    title = f"Usage {span}" + (f" · {only}" if only else "")
    show(_table(report, title, WIDE, _wide), _table(report, title, MEDIUM, _medium),
         _table(report, title, NARROW, _narrow), heading=len(_KEY_COLUMNS[report.group_by] or [""]))
    console.print("answered: requests answered / requests; failed: failed attempts / all attempts", style="dim",
                  soft_wrap=False)
    n = report.totals.unpriced_calls
    if n:
        console.print(f"* cost incomplete: {n:,} call{'s' if n != 1 else ''} of models without a known price "
                      "not included (`llmrelay pricing unpriced` lists them)", soft_wrap=False)
