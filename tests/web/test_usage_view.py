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
    default = parse_view({}, now=NOW, is_admin=False)
    assert default.range == DEFAULT_RANGE == "30d" and default.end - default.start == timedelta(days=30)
    assert default.errors == ()


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
    ({"range": "custom", "from": "nonsense", "to": "also"}, "“from” is not a date (YYYY-MM-DD): 'nonsense'"),
    ({"from": "2025-02-30"}, "“from” is not a date"),
    ({"to": "2025-13-01"}, "“to” is not a date"),
])
def test_a_bad_custom_range_falls_back_to_the_default_with_a_message(query, error):
    view = parse_view(query, now=NOW, is_admin=False)
    assert view.range == DEFAULT_RANGE and error in (view.error or "")
    assert view.errors[-1] == "Showing the last 30 days instead."


def test_unknown_values_are_dropped_each_with_a_message_and_only_an_admin_may_pick_a_user():
    query = {"range": "1y", "provider": "acme", "agent": "x" * 65, "user": "someone"}
    view = parse_view(query, now=NOW, is_admin=False)
    assert (view.range, view.provider, view.agent, view.user) == (DEFAULT_RANGE, None, None, None)
    assert set(view.errors) == {
        "“acme” is not a known provider: showing every provider.",
        "Only an admin can look at another user's usage: showing yours.",
        "The agent filter is longer than 64 characters: showing every agent.",
        "“1y” is not a range (24h, 7d, 30d or custom): showing the last 30 days."}
    admin = parse_view(query, now=NOW, is_admin=True)
    assert admin.user == "someone" and len(admin.errors) == 3
    assert "userId" not in parse_view({"user": "someone"}, now=NOW, is_admin=False).api_query()


def test_from_and_to_without_range_are_a_custom_range():
    view = parse_view({"from": "2025-03-01", "to": "2025-03-03"}, now=NOW, is_admin=False)
    assert (view.range, view.start, view.end, view.errors) == (
        "custom", datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 4, tzinfo=UTC), ())
    only_from = parse_view({"from": "2025-03-08"}, now=NOW, is_admin=False)
    assert (only_from.range, only_from.start, only_from.end) == (
        "custom", datetime(2025, 3, 8, tzinfo=UTC), datetime(2025, 3, 11, tzinfo=UTC))  # through today


def test_from_and_to_beside_a_preset_are_said_to_be_ignored():
    view = parse_view({"range": "24h", "from": "2025-03-01"}, now=NOW, is_admin=False)
    assert view.range == "24h" and view.errors == ("“from” and “to” apply to a custom range: showing the last "
                                                   "24 hours.",)


def test_direct_calls_are_an_agent_filter():
    view = parse_view({"agent": "direct"}, now=NOW, is_admin=False)
    assert view.agent == "direct" and parse_qs(view.api_query())["agentId"] == ["direct"]


async def test_the_page_needs_a_session_and_shows_the_user_filter_to_admins_only(inproc_client, inproc_keys):
    r = await inproc_client.get("/usage?range=30d")
    assert r.status_code == 303 and r.headers["location"].startswith("/signin?next=/usage")
    await sign_in(inproc_client, inproc_keys.admin)
    page = await inproc_client.get("/usage?range=30d&provider=openai")
    assert page.status_code == 200 and 'id="f-user"' in page.text and ">alice</option>" in page.text
    assert 'value="openai" selected' in page.text and "Last 30 days" in page.text
    assert '<option value="direct" >Direct calls (no agent)</option>' in page.text
    page = await inproc_client.get("/usage?range=1y&from=2025-03-01")
    assert page.status_code == 200 and 'id="url-errors"' in page.text
    assert "“1y” is not a range (24h, 7d, 30d or custom): showing the last 30 days." in page.text
    inproc_client.cookies.clear()
    await sign_in(inproc_client, inproc_keys.alice)
    page = await inproc_client.get("/usage?user=someone")
    assert page.status_code == 200 and 'id="f-user"' not in page.text and "userId" not in page.text


def test_today_is_a_day_of_the_custom_range_that_ends_today():
    now = datetime.now(UTC)
    view = parse_view({"range": "custom", "to": now.date().isoformat()}, now=now, is_admin=False)
    assert view.error is None and view.end - view.start == timedelta(days=7)
