"""The usage page's server side, in-process (no browser): the page's query string becomes one exact
window and API query (parse_view), a page request without a session goes to /signin, and only an
admin gets the user filter.  The browser tests are in test_usage_page.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs

import helpers
import pytest
from helpers import sign_in

from llmrelay.web.usage_page import DEFAULT_RANGE, parse_view

web_fakes, inproc_app, inproc_keys, inproc_client = (helpers.web_fakes, helpers.inproc_app, helpers.inproc_keys,
                                                     helpers.inproc_client)
NOW = datetime(2025, 3, 10, 14, 30, 15, 500_000, tzinfo=UTC)


def test_a_preset_ends_now_in_whole_seconds_and_the_api_query_carries_exact_instants():
    view = parse_view({"range": "24h", "agent": "general-agent", "provider": "openai"}, now=NOW, is_admin=False)
    assert (view.start, view.end) == (datetime(2025, 3, 9, 14, 30, 16, tzinfo=UTC),
                                      datetime(2025, 3, 10, 14, 30, 16, tzinfo=UTC))
    assert parse_qs(view.api_query()) == {"from": ["2025-03-09T14:30:16Z"], "to": ["2025-03-10T14:30:16Z"],
                                          "agentId": ["general-agent"], "provider": ["openai"]}
    assert parse_view({}, now=NOW, is_admin=False).range == DEFAULT_RANGE == "7d"


def test_a_custom_range_is_whole_utc_days_with_both_ends_included():
    view = parse_view({"range": "custom", "from": "2025-03-01", "to": "2025-03-03"}, now=NOW, is_admin=False)
    assert (view.start, view.end) == (datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 4, tzinfo=UTC))
    assert (view.first_day, view.last_day, view.error) == ("2025-03-01", "2025-03-03", None)
    one_day = parse_view({"range": "custom", "from": "2025-03-05", "to": "2025-03-05"}, now=NOW, is_admin=False)
    assert one_day.end - one_day.start == timedelta(days=1)


@pytest.mark.parametrize(("query", "error"), [
    ({"range": "custom"}, "Pick a start"),
    ({"range": "custom", "from": "2025-03-05", "to": "2025-03-01"}, "after the end"),
    ({"range": "custom", "from": "1900-01-01", "to": "2025-03-01"}, "at most"),
    ({"range": "custom", "from": "nonsense", "to": "also"}, "Pick a start"),
])
def test_a_bad_custom_range_falls_back_to_the_default_with_a_message(query, error):
    view = parse_view(query, now=NOW, is_admin=False)
    assert view.range == DEFAULT_RANGE and error in (view.error or "")


def test_unknown_values_are_dropped_and_only_an_admin_may_pick_a_user():
    query = {"range": "1y", "provider": "acme", "agent": "x" * 65, "user": "someone"}
    view = parse_view(query, now=NOW, is_admin=False)
    assert (view.range, view.provider, view.agent, view.user) == (DEFAULT_RANGE, None, None, None)
    assert parse_view(query, now=NOW, is_admin=True).user == "someone"
    assert "userId" not in parse_view({"user": "someone"}, now=NOW, is_admin=False).api_query()


async def test_the_page_needs_a_session_and_shows_the_user_filter_to_admins_only(inproc_client, inproc_keys):
    r = await inproc_client.get("/usage?range=30d")
    assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=/usage")
    await sign_in(inproc_client, inproc_keys.admin)
    page = await inproc_client.get("/usage?range=30d&provider=openai")
    assert page.status_code == 200 and 'id="f-user"' in page.text and ">alice</option>" in page.text
    assert 'value="openai" selected' in page.text and "Last 30 days" in page.text
    inproc_client.cookies.clear()
    await sign_in(inproc_client, inproc_keys.alice)
    page = await inproc_client.get("/usage?user=someone")
    assert page.status_code == 200 and 'id="f-user"' not in page.text and "userId" not in page.text


def test_today_is_a_day_of_the_custom_range_that_ends_today():
    now = datetime.now(UTC)
    view = parse_view({"range": "custom", "to": now.date().isoformat()}, now=now, is_admin=False)
    assert view.error is None and view.end - view.start == timedelta(days=7)
