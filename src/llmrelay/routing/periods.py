"""A budget's period in UTC: the calendar month from a reset day, the week from Monday, or the day.

Calendar, not a count of days ("monthly" is not 30 days): a period runs from 00:00:00 UTC of its first day
up to, not including, 00:00:00 UTC of the next period's.  A monthly period with a reset day the month does
not have (31 in April, 30 in February) starts on that month's last day.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta


def _month_start(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, min(day, calendar.monthrange(year, month)[1]), tzinfo=UTC)


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + n
    return index // 12, index % 12 + 1


def period_bounds(period: str, at: datetime, reset_day: int = 1) -> tuple[datetime, datetime]:
    """[start, end) of the `period` (`month`, `week`, `day`) that holds the moment `at` (aware)."""
    at = at.astimezone(UTC)
    midnight = datetime(at.year, at.month, at.day, tzinfo=UTC)
    if period == "day":
        return midnight, midnight + timedelta(days=1)
    if period == "week":
        start = midnight - timedelta(days=at.weekday())
        return start, start + timedelta(days=7)
    if period != "month":
        raise ValueError(f"unknown period {period!r} (month, week or day)")
    start = _month_start(at.year, at.month, reset_day)
    if at < start:
        start = _month_start(*_add_months(at.year, at.month, -1), reset_day)
    return start, _month_start(*_add_months(start.year, start.month, 1), reset_day)
