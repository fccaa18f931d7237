"""Budget periods are calendar periods in UTC: every moment lies in exactly one, periods follow each other
without gap or overlap, a month starts on its reset day (or its last day when it has no such day)."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrelay.routing.periods import period_bounds

moments = st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2999, 12, 1),
                       timezones=st.just(UTC))


@given(moments, st.sampled_from(["month", "week", "day"]), st.integers(1, 31))
def test_every_moment_lies_in_one_period_and_the_next_begins_where_it_ends(at, period, reset_day):
    start, end = period_bounds(period, at, reset_day)
    assert start <= at < end
    assert (start.hour, start.minute, start.second, start.microsecond) == (0, 0, 0, 0)
    assert period_bounds(period, end, reset_day)[0] == end
    assert period_bounds(period, end - timedelta(microseconds=1), reset_day) == (start, end)


@given(moments, st.integers(1, 31))
def test_a_month_starts_on_its_reset_day_or_the_last_day_it_has(at, reset_day):
    start, end = period_bounds("month", at, reset_day)
    assert start.day == min(reset_day, calendar.monthrange(start.year, start.month)[1])
    assert 28 <= (end - start).days <= 31
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == 1


@given(moments)
def test_a_week_starts_on_monday_and_a_day_at_midnight(at):
    start, end = period_bounds("week", at)
    assert start.weekday() == 0 and end - start == timedelta(days=7)
    start, end = period_bounds("day", at)
    assert start.date() == at.date() and end - start == timedelta(days=1)


def test_the_last_second_of_january_and_the_first_of_february():
    jan = period_bounds("month", datetime(2027, 1, 31, 23, 59, 59, tzinfo=UTC))
    feb = period_bounds("month", datetime(2027, 2, 1, 0, 0, 0, tzinfo=UTC))
    assert jan == (datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 2, 1, tzinfo=UTC))
    assert feb == (datetime(2027, 2, 1, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC))
    # reset on the 31st: February's period starts on its last day, March's on the 31st
    assert period_bounds("month", datetime(2027, 3, 15, tzinfo=UTC), 31) == (
        datetime(2027, 2, 28, tzinfo=UTC), datetime(2027, 3, 31, tzinfo=UTC))


def test_a_moment_in_another_zone_counts_where_it_is_in_utc():
    from zoneinfo import ZoneInfo

    at = datetime(2027, 2, 1, 0, 30, tzinfo=ZoneInfo("Europe/Paris"))  # 23:30 UTC on January 31st
    assert period_bounds("month", at)[0] == datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="unknown period"):
        period_bounds("fortnight", at)
