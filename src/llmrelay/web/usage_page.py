"""GET /usage: the usage dashboard.

The page is a shell: this module turns the page's query string (what the filter form submits, so a
reload or a shared link keeps the filters) into one exact window and the `/api/ai/usage` query that
goes with it; `static/usage.js` fetches the figures, charts and records with that query, and the
"Export CSV" link is the export API with the same query.  Every request of one page view therefore
reads the same window, even when the range is "the last 24 hours".

    range     24h | 7d | 30d (the window ends now; the default, as for the CLI and the API, is 30d)
              | custom (from and to, whole UTC days, both included)
    from, to  YYYY-MM-DD; either one alone, without `range`, means a custom range too
    agent     an agent's id, or `direct` for calls that name a model rather than an agent
    provider
    user      admins only: one user's usage (everyone's without it)

A value the page cannot use (an unknown range, a date that is not one, an unknown provider, a user filter
from a non-admin) is never replaced in silence: the page shows what it shows instead and why
(`UsageView.errors`), never a 4xx for a mistyped link.

Beside the window, the page shows the budgets the viewer may see (an admin: all; a user: those on them)
as they stand in their current period, computed here (`budget_views`) and rendered by the template.
An admin also gets the "Set a budget" form (`static/budgets.js`, which saves through `PUT` and `DELETE
/api/ai/budgets`): the template is given the users and agents to choose from, and the page's config carries
each budget as the API takes it (`budgetSpecs`, by scope) for the cards' "Edit" buttons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from starlette.responses import Response

from ..db.users import user_names
from ..providers.registry import known_providers
from ..routing.budgets import BudgetStatus
from ..routing.targets import DIRECT_AGENT
from .session import PageUser
from .templating import render

router = APIRouter(include_in_schema=False)

PRESETS = {"24h": ("Last 24 hours", timedelta(hours=24)), "7d": ("Last 7 days", timedelta(days=7)),
           "30d": ("Last 30 days", timedelta(days=30))}
DEFAULT_RANGE = "30d"
DIRECT_LABEL = "Direct calls (no agent)"
MAX_CUSTOM_DAYS = 3660
PAGE_SIZE = 25


@dataclass(frozen=True, slots=True)
class UsageView:
    """What the page shows: the window (UTC, `end` exclusive) and the filters."""

    range: str
    start: datetime
    end: datetime
    agent: str | None = None
    provider: str | None = None
    user: str | None = None
    errors: tuple[str, ...] = ()
    """What in the page's URL could not be used, and what the page shows instead."""

    @property
    def error(self) -> str | None:
        return " ".join(self.errors) or None

    @property
    def first_day(self) -> str:
        return self.start.date().isoformat()

    @property
    def last_day(self) -> str:
        """The last day the window touches (shown in the custom range's "to", which includes it)."""
        return (self.end - timedelta(microseconds=1)).date().isoformat()

    @property
    def label(self) -> str:
        return PRESETS[self.range][0] if self.range in PRESETS else "Custom dates"

    @property
    def window_text(self) -> str:
        if self.range == "custom":
            days = self.first_day if self.first_day == self.last_day else f"{self.first_day} to {self.last_day}"
            return f"{days}, whole days"
        return f"{self.start:%Y-%m-%d %H:%M} to {self.end:%Y-%m-%d %H:%M}"

    def api_params(self) -> dict[str, str]:
        params = {"from": _stamp(self.start), "to": _stamp(self.end)}
        for name, value in (("agentId", self.agent), ("provider", self.provider), ("userId", self.user)):
            if value:
                params[name] = value
        return params

    def api_query(self) -> str:
        return urlencode(self.api_params())


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _day(value: str | None, name: str, errors: list[str]) -> date | None:
    value = (value or "").strip()
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append(f"“{name}” is not a date (YYYY-MM-DD): {value[:40]!r}.")
        return None


def _choice(value: str | None, name: str, errors: list[str], max_length: int = 64) -> str | None:
    value = (value or "").strip()
    if len(value) > max_length:
        errors.append(f"The {name} filter is longer than {max_length} characters: showing every {name}.")
        return None
    return value or None


def _custom_window(first: date | None, last: date | None, today: date) -> tuple[datetime, datetime] | str:
    """Whole UTC days from `first` through `last` (both included), or why not.  One of them alone
    means the week that ends (or starts) there; the end defaults to today."""
    if first is None and last is None:
        return "Pick a start and an end date for a custom range."
    if last is None:
        last = max(today, first)  # type: ignore[type-var]  (first is a date here)
    if first is None:
        first = last - timedelta(days=6)
    if first > last:
        return "The start date is after the end date."
    if (last - first).days >= MAX_CUSTOM_DAYS:
        return f"A custom range spans at most {MAX_CUSTOM_DAYS} days."
    start = datetime.combine(first, time.min, UTC)
    return start, start + timedelta(days=(last - first).days + 1)


def parse_view(query: Mapping[str, str], *, now: datetime, is_admin: bool) -> UsageView:
    """The page's query string as a window and filters.  What cannot be used is left out and said in
    `errors` (the page shows them), never a 4xx for a mistyped link."""
    errors: list[str] = []
    provider = _choice(query.get("provider"), "provider", errors)
    if provider is not None and provider not in known_providers():
        errors.append(f"“{provider[:40]}” is not a known provider: showing every provider.")
        provider = None
    user = _choice(query.get("user"), "user", errors)
    if user is not None and not is_admin:
        errors.append("Only an admin can look at another user's usage: showing yours.")
        user = None
    filters = {"agent": _choice(query.get("agent"), "agent", errors), "provider": provider, "user": user}
    end = (now + timedelta(seconds=1)).replace(microsecond=0)  # whole seconds, and nothing recorded by now left out
    dates = [query.get("from"), query.get("to")]
    choice = (query.get("range") or "").strip() or ("custom" if any(d and d.strip() for d in dates) else DEFAULT_RANGE)
    fallback = PRESETS[DEFAULT_RANGE][0].lower()
    if choice == "custom":
        before = len(errors)
        first, last = _day(dates[0], "from", errors), _day(dates[1], "to", errors)
        if len(errors) == before:  # the dates given are dates
            window = _custom_window(first, last, today=end.date())
            if isinstance(window, tuple):
                return UsageView("custom", *window, **filters, errors=tuple(errors))
            errors.append(window)
        errors.append(f"Showing the {fallback} instead.")
        return UsageView(DEFAULT_RANGE, end - PRESETS[DEFAULT_RANGE][1], end, **filters, errors=tuple(errors))
    if choice not in PRESETS:
        errors.append(f"“{choice[:40]}” is not a range (24h, 7d, 30d or custom): showing the {fallback}.")
        choice = DEFAULT_RANGE
    elif any(d and d.strip() for d in dates):
        errors.append(f"“from” and “to” apply to a custom range: showing the {PRESETS[choice][0].lower()}.")
    return UsageView(choice, end - PRESETS[choice][1], end, **filters, errors=tuple(errors))


LEVELS = {"ok": ("OK", "Under the soft threshold"),
          "soft": ("Soft limit passed", "Past the soft threshold: still serving, the hard limit is near"),
          "hard": ("Hard limit reached", "At the limit: links that cost money are skipped, free ones still serve")}
PERIODS = {"month": "per month", "week": "per week (from Monday)", "day": "per day"}
_CENT, _MICRO = Decimal("0.01"), Decimal("0.000001")


def usd(value: Decimal) -> str:
    """Dollars for display, from the exact decimal: cents from $1 up, below that up to six decimals."""
    if abs(value) >= 1:
        return f"${value.quantize(_CENT, ROUND_HALF_UP):,}"
    shown = value.quantize(_MICRO, ROUND_HALF_UP)
    if value and not shown:
        return "< $0.000001"
    whole, frac = f"{shown:f}".split(".")
    return f"${whole}.{frac[:2]}{frac[2:].rstrip('0')}"


def exact(value: Decimal) -> str:
    """The exact amount, without the storage scale's trailing zeros (at least the cents)."""
    text = f"{value:f}"
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.rstrip('0').ljust(2, '0')}"


def _percent(part: Decimal, whole: Decimal) -> str:
    if whole <= 0:  # a limit of $0: nothing may be spent, the bar is full
        return "100"
    return f"{min(max(part / whole * 100, Decimal(0)), Decimal(100)).quantize(Decimal('0.1'))}"


@dataclass(frozen=True, slots=True)
class BudgetView:
    """One budget's bar: whose it is, the amounts (display and exact), the level and the reset."""

    scope: str
    owner: str
    period: str
    level: str
    level_label: str
    level_hint: str
    spent: str
    spent_exact: str
    soft: str
    soft_exact: str
    limit: str
    limit_exact: str
    reserved: str | None
    fill: str
    mark: str
    resets_on: str
    resets_at: str
    spec: dict[str, Any]
    """The budget as `PUT /api/ai/budgets` takes it (what an admin's "Edit" starts from)."""


def budget_view(status: BudgetStatus, names: Mapping[str, str]) -> BudgetView:
    spec = status.spec
    who = [names.get(spec.user_id, spec.user_id)] if spec.user_id else []
    owner = " on ".join([*who, f"agent {spec.agent_id}"] if spec.agent_id else who)
    period = PERIODS.get(spec.period, spec.period)
    if spec.period == "month" and spec.reset_day != 1:
        period += f" (from day {spec.reset_day})"
    label, hint = LEVELS[status.level]
    return BudgetView(
        spec.scope, owner, period, status.level, label, hint, usd(status.spent), exact(status.spent),
        usd(spec.soft_usd), exact(spec.soft_usd), usd(spec.limit_usd), exact(spec.limit_usd),
        usd(status.reserved) if status.reserved > 0 else None, _percent(status.spent, spec.limit_usd),
        _percent(spec.soft_usd, spec.limit_usd), f"{status.end:%Y-%m-%d}", _stamp(status.end), edit_spec(status))


def edit_spec(status: BudgetStatus) -> dict[str, Any]:
    """The budget's fields by their API names, the limit as its exact decimal text (never a float)."""
    spec = status.spec
    return {"userId": spec.user_id, "agentId": spec.agent_id, "limitUsd": exact(spec.limit_usd),
            "period": spec.period, "resetDay": spec.reset_day, "softPercent": spec.soft_percent,
            "unpriced": spec.unpriced, "webhookUrl": spec.webhook_url}


async def budget_views(request: Request, user: PageUser, names: Mapping[str, str]) -> list[BudgetView] | None:
    """The budgets `user` may see as they stand now (None without a ledger: no budgets at all)."""
    budgets = request.app.state.relay.budgets
    if budgets is None:
        return None
    specs = [s for s in await budgets.store.all() if user.is_admin or s.user_id == user.user_id]
    return [budget_view(status, names) for status in await budgets.status(specs)]


async def _user_names(request: Request) -> dict[str, str]:
    """Every user's id and name, for an admin's user filter and the table's user column."""
    async with request.app.state.relay.ledger.sessions() as s:
        return await user_names(s)


@router.get("/usage")
async def usage_page(request: Request, user: PageUser) -> Response:
    view = parse_view(request.query_params, now=datetime.now(UTC), is_admin=user.is_admin)
    relay = request.app.state.relay
    users = await _user_names(request) if user.is_admin else {}
    agents = sorted((set(relay.agents) | ({view.agent} if view.agent else set())) - {DIRECT_AGENT})
    config = {"apiQuery": view.api_query(), "from": _stamp(view.start), "to": _stamp(view.end),
              "pageSize": PAGE_SIZE, "isAdmin": user.is_admin, "userNames": users}
    budgets = await budget_views(request, user, users or {user.user_id: user.name})
    if user.is_admin and budgets is not None:  # the editor's starting points (webhook URLs: admins only)
        config["budgetSpecs"] = {b.scope: b.spec for b in budgets}
    return render(request, "usage.html", view=view, presets=PRESETS, agents=agents, direct=DIRECT_AGENT,
                  direct_label=DIRECT_LABEL, providers=known_providers(),
                  users=users, config=config, budgets=budgets,
                  budget_agents=sorted(relay.agents) if user.is_admin else [], budget_periods=PERIODS)
