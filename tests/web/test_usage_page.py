"""The usage page (/usage) in a real browser (its server side in-process: test_usage_view.py).

Against `llmrelay serve`: the ledger is seeded with real traffic (successes,
fallbacks after a scripted overload, a request whose every link failed, two agents, a second user),
then the cards, the charts' data and the CSV download are checked against the JSON API read with the
very query the page used (the page publishes it in #usage-config), and the table, the filters, the
empty state, a non-admin's view and the phone layout are checked as a person would see them.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from llmrelay.testing import faults

# -- seeding the ledger ------------------------------------------------------------------------------


def wait_for_rows(live_server, request_ids: set[str], key: str | None = None) -> None:
    """The recorder writes in the background: wait until every request has its rows."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        seen = {r["requestId"] for r in all_records(live_server, "limit=1000", key)}
        if request_ids <= seen:
            return
        time.sleep(0.1)
    raise AssertionError(f"requests not in the ledger after 10 s: {request_ids - seen}")


def all_records(live_server, query: str, key: str | None = None) -> list[dict]:
    out, cursor = [], None
    while True:
        more = f"&cursor={cursor}" if cursor else ""
        r = live_server.api("GET", f"/api/ai/usage/records?{query}&limit=1000{more}", key=key)
        assert r.status_code == 200, r.text
        out += r.json()["records"]
        cursor = r.json()["nextCursor"]
        if cursor is None:
            return out


@pytest.fixture(scope="module")
def seeded(browser, live_server) -> dict[str, str]:
    """Real traffic: 22 answered requests over two agents (two of them by a fallback after Anthropic
    overloads), one request whose every link failed, one by a model without a price, and two
    requests by a second (non-admin) user.
    (It asks for the browser first so that without one nothing is seeded for tests that will skip.)"""
    fakes, ids = live_server.fakes, set()
    for i in range(20):
        ids.add(live_server.chat(f"hello {i}", agent=("general-agent", "code-review-agent")[i % 2])["requestId"])
    fakes["anthropic"].script(faults.overloaded(times=2))
    for i in range(2):
        answer = live_server.chat(f"falls back {i}")
        assert answer["fallbackUsed"] and answer["usedProvider"] == "openai", answer
        ids.add(answer["requestId"])
    fakes["ollama"].script(faults.overloaded(times=2))
    failed = live_server.api("POST", "/api/ai/agents", json={"agentId": "local-agent", "message": "nobody answers"})
    assert failed.status_code == 502, failed.text  # both of local-agent's Ollama links failed
    fakes.reset()
    unpriced = live_server.api("POST", "/api/ai/agents", json={  # a model no price covers: its cost is unknown
        "agentId": "general-agent", "message": "which model?", "preferredProvider": "openrouter",
        "preferredModel": "acme/unpriced-model-1"}).json()
    assert unpriced["costUsd"] is None, unpriced
    ids.add(unpriced["requestId"])
    alice = live_server.add_user("usage-alice")
    alice_ids = {live_server.chat(f"alice {i}", agent="summarizer-agent", key=alice)["requestId"] for i in range(2)}
    wait_for_rows(live_server, ids)
    wait_for_rows(live_server, alice_ids, alice)
    return {"alice": alice}


def open_usage(page, live_server, query: str = "") -> dict:
    page.goto(live_server.url + "/usage" + (f"?{query}" if query else ""))
    return loaded(page)


def loaded(page) -> dict:
    """Wait for the page's figures; returns its #usage-config (the API query it used)."""
    page.wait_for_selector("#usage:is([data-state=ready], [data-state=empty], [data-state=error])")
    assert page.get_attribute("#usage", "data-state") != "error", page.inner_text("#usage-error")
    return page.evaluate("JSON.parse(document.getElementById('usage-config').textContent)")


def cards(page) -> dict[str, dict[str, str]]:
    return page.evaluate("""() => Object.fromEntries([...document.querySelectorAll('.metric')].map(c =>
        [c.id.replace('card-', ''), {value: c.dataset.value, text: c.querySelector('.metric-value').textContent}]))""")


def plot(page, element_id: str) -> list[dict]:
    return page.evaluate(f"""() => (document.getElementById('{element_id}').data || []).map(t =>
        ({{labels: t.labels, values: t.values, x: t.x, y: t.y, customdata: t.customdata}}))""")


def api_usage(live_server, group_by: str, query: str, key: str | None = None) -> dict:
    r = live_server.api("GET", f"/api/ai/usage?groupBy={group_by}&{query}", key=key)
    assert r.status_code == 200, r.text
    return r.json()


def assert_cards_match(shown: dict[str, dict[str, str]], totals: dict) -> None:
    def value(v: object) -> str:
        return "" if v is None else str(v)

    assert shown["cost"]["value"] == totals["costUsd"]
    assert abs(Decimal(shown["cost"]["text"].lstrip("$").replace(",", "")) - Decimal(totals["costUsd"])) <= Decimal(
        "0.0000005") or Decimal(totals["costUsd"]) >= 1
    assert shown["calls"]["value"] == str(totals["calls"]) and shown["calls"]["text"] == f"{totals['calls']:,}"
    assert shown["requests"]["value"] == str(totals["requests"])
    for card, field in (("success", "requestSuccessRate"), ("failures", "attemptFailureRate"),
                        ("fallback", "fallbackRate")):
        assert float(shown[card]["value"] or "nan") == pytest.approx(totals[field], nan_ok=True)
        if totals[field] is not None:
            assert shown[card]["text"] == f"{totals[field] * 100:.1f}%"
    assert float(shown["avg-latency"]["value"]) == pytest.approx(totals["avgLatencyMs"])
    assert shown["p95-latency"]["value"] == value(totals["p95LatencyMs"])
    assert shown["p95-latency"]["text"] == f"{totals['p95LatencyMs']:,} ms"


# -- the checks ------------------------------------------------------------------------------------------


def test_cards_and_charts_agree_with_the_api_for_the_same_window(seeded, live_server, signed_in_page, screenshot):
    page = signed_in_page
    config = open_usage(page, live_server)
    q = config["apiQuery"]
    by_provider, by_agent, by_day = (api_usage(live_server, g, q) for g in ("provider", "agent", "day"))
    totals = by_provider["totals"]
    assert totals["fallbacks"] >= 2 and totals["failures"] >= 4 and totals["calls"] >= 29
    assert_cards_match(cards(page), totals)
    assert totals["unpricedCalls"] >= 1 and not totals["costComplete"]
    cost_card = page.locator("#card-cost")
    assert "flagged" in cost_card.get_attribute("class")
    assert f"{totals['unpricedCalls']} unpriced call" in cost_card.inner_text()
    assert cost_card.get_attribute("title") == f"Exactly ${totals['costUsd']}"

    [pie] = plot(page, "chart-tokens")
    expected = {g["provider"]: g["tokens"]["total"] for g in by_provider["groups"] if g["tokens"]["total"]}
    assert dict(zip(pie["labels"], pie["values"], strict=True)) == expected
    [bar] = plot(page, "chart-agents")
    assert bar["x"] == [g["agentId"] for g in by_agent["groups"]]
    assert bar["customdata"] == [g["costUsd"] for g in by_agent["groups"]]
    assert bar["y"] == [float(g["costUsd"]) for g in by_agent["groups"]]
    [line] = plot(page, "chart-days")
    per_day = dict(zip(line["x"], line["customdata"], strict=True))
    assert len(per_day) == 31  # the 30 days back from now (the default window) touch 31 calendar days
    assert {d: c for d, c in per_day.items() if c != "0"} == {g["day"]: g["costUsd"] for g in by_day["groups"]}
    assert sum(Decimal(c) for c in per_day.values()) == Decimal(totals["costUsd"])
    assert page.js_errors == []
    screenshot(page, "usage")


def test_the_table_shows_fallbacks_and_failures_by_request_and_pages_with_load_more(seeded, live_server,
                                                                                      signed_in_page):
    page = signed_in_page
    config = open_usage(page, live_server)
    rows = page.locator("#records-body tr")
    assert rows.count() == config["pageSize"]
    expected = all_records(live_server, config["apiQuery"])
    assert len(expected) > config["pageSize"]
    while page.locator("#records-more").is_visible():
        before = rows.count()
        page.click("#records-more")
        page.wait_for_function("n => document.querySelectorAll('#records-body tr').length > n", arg=before)
    assert rows.count() == len(expected)
    assert page.eval_on_selector_all("#records-body tr", "rows => rows.map(r => r.dataset.request)") == [
        r["requestId"] for r in expected]

    fallback = page.locator("#records-body tr[data-status=fallback]").first
    request_id = fallback.get_attribute("data-request")
    attempts = page.locator(f'#records-body tr[data-request="{request_id}"]')
    assert attempts.count() == 2
    assert attempts.nth(1).get_attribute("data-status") == "failed"
    assert "same-request" in (attempts.nth(1).get_attribute("class") or "")
    assert "#2" in attempts.nth(0).inner_text() and "#1" in attempts.nth(1).inner_text()
    assert "overloaded" in attempts.nth(1).inner_text()
    chip = fallback.locator(".chip-fallback")
    assert chip.inner_text() == "fallback"
    assert chip.evaluate("e => getComputedStyle(e).backgroundColor") != \
        page.locator(".chip-success").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert page.locator("#records-body .chip-failed").count() >= 4
    unpriced = page.locator("#records-body tr", has_text="acme/unpriced-model-1")
    assert unpriced.count() >= 1 and "unpriced" in unpriced.first.inner_text()


def test_filters_change_the_figures_and_the_url(seeded, live_server, signed_in_page):
    page = signed_in_page
    open_usage(page, live_server)
    everyone = int(cards(page)["calls"]["value"])
    with page.expect_navigation():
        page.select_option("#f-provider", "openai")
    config = loaded(page)
    assert parse_qs(urlsplit(page.url).query) == {"provider": ["openai"], "range": ["30d"]}
    assert "provider=openai" in config["apiQuery"]
    totals = api_usage(live_server, "provider", config["apiQuery"])["totals"]
    assert_cards_match(cards(page), totals)
    assert 0 < totals["calls"] < everyone
    assert {r.get_attribute("data-status") for r in page.locator("#records-body tr").all()} <= {"success", "fallback",
                                                                                                 "failed"}
    assert set(page.eval_on_selector_all("#records-body tr td:nth-child(5)", "tds => tds.map(t => t.textContent)")) \
        == {"openai"}

    alice_id = live_server.api("GET", "/api/ai/usage?groupBy=user", key=seeded["alice"]).json()["groups"][0]["userId"]
    with page.expect_navigation():
        page.select_option("#f-user", alice_id)
    config = loaded(page)
    assert f"userId={alice_id}" in config["apiQuery"] and "user=" + alice_id in page.url
    assert cards(page)["calls"]["value"] == "0"  # alice never used openai
    with page.expect_navigation():
        page.select_option("#f-provider", "")
    config = loaded(page)
    assert_cards_match(cards(page), api_usage(live_server, "provider", config["apiQuery"], seeded["alice"])["totals"])
    assert cards(page)["calls"]["value"] == "2"

    page.select_option("#f-range", "custom")  # a custom range waits for Apply
    assert page.is_visible("#f-from") and "range=custom" not in page.url
    today = datetime.now(UTC).date()
    page.fill("#f-from", (today - timedelta(days=1)).isoformat())
    page.fill("#f-to", today.isoformat())
    with page.expect_navigation():
        page.click("#usage-filters button[type=submit]")
    assert parse_qs(urlsplit(page.url).query)["range"] == ["custom"]
    config = loaded(page)
    assert (config["from"], config["to"]) == (f"{today - timedelta(days=1)}T00:00:00Z",
                                              f"{today + timedelta(days=1)}T00:00:00Z")


def test_export_csv_downloads_the_rows_of_the_window(seeded, live_server, signed_in_page):
    page = signed_in_page
    config = open_usage(page, live_server, "range=24h")
    with page.expect_download() as download:
        page.click("#export-csv")
    name = download.value.suggested_filename
    assert name.startswith("llmrelay-usage-") and name.endswith(".csv")
    text = download.value.path().read_text()
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = all_records(live_server, config["apiQuery"])
    assert len(rows) == len(expected) > 0
    by_id = {r["id"]: r for r in rows}
    for record in expected:
        row = by_id[record["id"]]
        assert (row["request_id"], row["attempt"], row["status"], row["provider"]) == (
            record["requestId"], str(record["attempt"]), record["status"], record["provider"])
        assert row["cost_usd"] == (record["costUsd"] or "")


def test_an_empty_range_shows_the_empty_state_and_no_chart(seeded, live_server, signed_in_page, screenshot):
    page = signed_in_page
    open_usage(page, live_server, "range=custom&from=2001-01-01&to=2001-01-31")
    assert page.get_attribute("#usage", "data-state") == "empty"
    assert page.is_visible("#usage-empty") and "No usage yet in this range" in page.inner_text("#usage-empty")
    assert not page.is_visible("#usage-charts") and not page.is_visible("#usage-records")
    assert page.locator(".js-plotly-plot").count() == 0
    assert cards(page)["calls"]["text"] == "0" and cards(page)["success"]["text"] == "—"
    assert page.get_attribute("#f-from", "value") == "2001-01-01"
    assert page.js_errors == []
    screenshot(page, "usage-empty")


def test_a_user_who_is_not_an_admin_sees_only_their_own_usage_and_no_user_filter(seeded, live_server, page, sign_in):
    sign_in(page, seeded["alice"])
    config = open_usage(page, live_server)
    assert page.locator("#f-user").count() == 0 and "userId" not in config["apiQuery"]
    assert config["userNames"] == {}
    assert_cards_match(cards(page), api_usage(live_server, "agent", config["apiQuery"], seeded["alice"])["totals"])
    assert cards(page)["calls"]["value"] == "2"
    assert set(page.eval_on_selector_all("#records-body tr td:nth-child(3)", "tds => tds.map(t => t.textContent)")) \
        == {"summarizer-agent"}  # no user column: the third column is the agent
    assert plot(page, "chart-agents")[0]["x"] == ["summarizer-agent"]
    r = page.request.get(live_server.url + "/api/ai/usage?userId=someone-else")  # with the page's cookie
    assert r.status == 403


def test_the_page_fits_a_phone(seeded, live_server, phone_page, sign_in, screenshot):
    page = sign_in(phone_page)
    open_usage(page, live_server)
    overflow = page.evaluate("() => [document.documentElement.scrollWidth, document.body.scrollWidth, innerWidth]")
    assert overflow[0] <= overflow[2] and overflow[1] <= overflow[2], overflow
    boxes = [page.locator(f"#{c}").bounding_box() for c in ("chart-tokens", "chart-agents")]
    assert boxes[1]["y"] >= boxes[0]["y"] + boxes[0]["height"]  # stacked, not side by side
    wrap = page.locator(".table-wrap")
    assert wrap.evaluate("e => e.scrollWidth > e.clientWidth")  # the table scrolls inside its box
    first, last = (page.locator(".metric").nth(i).bounding_box() for i in (0, 5))
    assert last["y"] > first["y"]  # the cards wrap onto several rows
    screenshot(page, "usage-phone", full_page=False)  # the first screen, as a phone shows it


# -- counting per request, the default window, URL parameters, direct calls -------------------------------


def test_success_is_per_request_and_failures_per_attempt_beside_it(seeded, live_server, signed_in_page):
    """The seeded traffic has fallbacks after failed attempts and one request no link answered: the
    success card counts requests, the failure card attempts, each labelled so."""
    page = signed_in_page
    config = open_usage(page, live_server)
    totals = api_usage(live_server, "provider", config["apiQuery"])["totals"]
    shown = cards(page)
    assert totals["requestSuccessRate"] < 1 and totals["attemptFailureRate"] > 0
    assert totals["requestSuccessRate"] != totals["successRate"]  # per request is not per attempt
    assert shown["success"]["text"] == f"{totals['requestSuccessRate'] * 100:.1f}%"
    assert shown["failures"]["text"] == f"{totals['attemptFailureRate'] * 100:.1f}%"
    answered = min(totals["successes"], totals["requests"])
    assert f"{answered:,} of {totals['requests']:,} requests answered" in page.inner_text("#card-success")
    assert "per request" in page.inner_text("#card-success").lower()
    assert "per attempt" in page.inner_text("#card-failures").lower()
    assert f"{totals['failures']:,} of {totals['calls']:,} attempts failed" in page.inner_text("#card-failures")
    success, failures = (page.locator(f"#card-{c}").bounding_box() for c in ("success", "failures"))
    assert success["y"] == failures["y"] and failures["x"] > success["x"]  # side by side
    for card in ("cost", "requests", "success", "failures"):  # no figure broken over two lines at 1280 px
        value = page.locator(f"#card-{card} .metric-value")
        line = float(value.evaluate("e => parseFloat(getComputedStyle(e).lineHeight)"))
        assert value.bounding_box()["height"] < 1.5 * line, card


def test_the_page_defaults_to_the_last_30_days_like_the_cli_and_the_api(seeded, live_server, signed_in_page):
    page = signed_in_page
    config = open_usage(page, live_server)
    start, end = (datetime.fromisoformat(config[k].replace("Z", "+00:00")) for k in ("from", "to"))
    assert end - start == timedelta(days=30)
    assert page.input_value("#f-range") == "30d" and "Last 30 days" in page.inner_text("#usage-window")
    assert page.locator("#url-errors").count() == 0


def test_from_and_to_in_the_url_are_a_custom_range_without_range_custom(seeded, live_server, signed_in_page):
    page = signed_in_page
    today = datetime.now(UTC).date()
    config = open_usage(page, live_server, f"from={today - timedelta(days=2)}&to={today}")
    assert (config["from"], config["to"]) == (f"{today - timedelta(days=2)}T00:00:00Z",
                                              f"{today + timedelta(days=1)}T00:00:00Z")
    assert page.input_value("#f-range") == "custom" and page.is_visible("#f-from")
    assert page.input_value("#f-from") == str(today - timedelta(days=2)) and page.input_value("#f-to") == str(today)
    assert page.locator("#url-errors").count() == 0
    assert_cards_match(cards(page), api_usage(live_server, "provider", config["apiQuery"])["totals"])


@pytest.mark.parametrize(("query", "says"), [
    ("range=1y", "“1y” is not a range (24h, 7d, 30d or custom): showing the last 30 days."),
    ("from=2025-02-30", "“from” is not a date (YYYY-MM-DD): '2025-02-30'."),
    ("range=custom&from=2025-03-05&to=2025-03-01", "The start date is after the end date."),
    ("provider=acme", "“acme” is not a known provider: showing every provider."),
    ("range=7d&to=2025-03-01", "“from” and “to” apply to a custom range: showing the last 7 days."),
])
def test_an_invalid_url_parameter_is_said_not_silently_replaced(seeded, live_server, signed_in_page, query, says,
                                                               screenshot):
    page = signed_in_page
    open_usage(page, live_server, query)
    box = page.locator("#url-errors")
    assert box.is_visible() and box.get_attribute("role") == "alert"
    assert says in box.inner_text()
    assert page.js_errors == []
    if query == "range=1y":
        screenshot(page, "usage-url-error", full_page=False)


def test_direct_calls_have_an_agent_filter_entry(seeded, live_server, signed_in_page):
    r = live_server.api("POST", "/v1/chat/completions", json={
        "model": "gpt-4o", "messages": [{"role": "user", "content": "a direct call"}]})
    assert r.status_code == 200, r.text
    wait_for_rows(live_server, {r.headers["x-request-id"]})
    page = signed_in_page
    open_usage(page, live_server)
    assert page.locator("#f-agent option[value=direct]").inner_text() == "Direct calls (no agent)"
    with page.expect_navigation():
        page.select_option("#f-agent", "direct")
    config = loaded(page)
    assert "agent=direct" in page.url and "agentId=direct" in config["apiQuery"]
    totals = api_usage(live_server, "provider", config["apiQuery"])["totals"]
    assert totals["requests"] >= 1
    assert_cards_match(cards(page), totals)
    agents = set(page.eval_on_selector_all("#records-body tr td:nth-child(4)", "tds => tds.map(t => t.textContent)"))
    assert agents == {"direct"}


def test_the_table_and_the_charts_fit_their_boxes_at_1280_px(seeded, live_server, signed_in_page, screenshot):
    page = signed_in_page
    page.set_viewport_size({"width": 1280, "height": 900})
    open_usage(page, live_server)
    page.wait_for_selector("#records-table tbody tr")
    fit = page.evaluate("""() => {
        const wrap = document.querySelector('.table-wrap'), box = wrap.getBoundingClientRect();
        const last = [...document.querySelectorAll('#records-table thead th')].at(-1).getBoundingClientRect();
        const errors = [...document.querySelectorAll('#records-table .error-text')].filter(e => e.textContent);
        return {scroll: wrap.scrollWidth, client: wrap.clientWidth, lastRight: last.right, boxRight: box.right,
                errorsCut: errors.filter(e => e.scrollWidth > e.clientWidth + 1).length, errors: errors.length};
    }""")
    assert fit["scroll"] <= fit["client"] and fit["lastRight"] <= fit["boxRight"] + 1, fit  # the Error column shows
    assert fit["errors"] and fit["errorsCut"] == 0, fit  # and its texts whole (they wrap)
    for chart in ("chart-agents", "chart-days"):
        clipped = page.evaluate("""(id) => {
            const plot = document.getElementById(id), box = plot.getBoundingClientRect();
            return [...plot.querySelectorAll('.xtick text, .ytick text')].filter(t => {
                const r = t.getBoundingClientRect();
                return r.width && (r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1
                                   || r.bottom > box.bottom + 1);
            }).map(t => t.textContent);
        }""", chart)
        assert clipped == [], (chart, clipped)
    screenshot(page, "usage-1280")
