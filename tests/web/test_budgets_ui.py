"""Budgets in the web UI, in a real browser against `llmrelay serve`: the usage page's bars (spent, the
soft threshold, the hard limit, the level as a label, the reset date) for an admin and for a user who
sees only their own, and the chat badge's "downgraded by budget" marker, live and after a reload.

The module runs its own `llmrelay serve` (`server`: same fakes, its own home and ledger), so the skipped
links and seeded spend here never show up in the other modules' figures.  Budgets and spend are written
straight into that server's database (its SQLite file), as another process would: the page reads
budgets from the database on every view; the router takes them up within its refresh (5 s), which the
chat test waits for with API probes.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import expect
from sqlalchemy import insert, select
from tests.servers import Server

from llmrelay.db.budgets import BudgetSpec, BudgetStore
from llmrelay.db.engine import make_engine
from llmrelay.db.models import AIModelUsage, User
from llmrelay.routing.periods import period_bounds
from llmrelay.web.usage_page import exact, usd

# -- the module's server and its database ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(browser, live_server, tmp_path_factory) -> Iterator[Any]:
    """A second `llmrelay serve` on the session's fakes, with a home (and ledger) of its own; the same
    methods as `live_server` (add_user, api, chat).
    (It asks for the browser first so that without one nothing is started for tests that will skip.)"""
    workdir = tmp_path_factory.mktemp("web-budgets")
    env = {**live_server.env, "LLMRELAY_HOME": str(workdir / "home")}
    proc = Server(env, workdir)
    try:
        yield type(live_server)(proc.url, proc.stdout.split("admin api key: ")[1].split()[0], live_server.fakes,
                         workdir / "home", env, proc)
    finally:
        proc.kill()


def sign_in(page, server, key: str | None = None):
    """Through the real /signin form of `server`."""
    page.goto(server.url + "/signin")
    page.fill("input[name=key]", key or server.admin_key)
    with page.expect_navigation():
        page.click('form[action="/signin"] [type=submit]')
    assert "/signin" not in page.url, page.content()[:2000]
    return page


def in_db(server, work):
    """Run `await work(engine)` on the server's database (in a thread of its own: Playwright's sync API
    holds this thread's event loop)."""

    async def go():
        engine = make_engine(f"sqlite+aiosqlite:///{server.home / 'llmrelay.db'}")
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, go()).result()


def user_id(server, name: str) -> str:
    async def work(engine):
        async with engine.connect() as conn:
            return (await conn.execute(select(User.id).where(User.name == name))).scalar_one()

    return in_db(server, work)


def budget_with_spend(server, name: str, limit: str, spent: str, period: str = "month",
                      agent: str = "summarizer-agent") -> tuple[str, str]:
    """A new user `name` with a budget of `limit` USD per `period`, and one ledger row that spent `spent`
    of it now; returns (their API key, the budget's scope)."""
    key = server.add_user(name)
    uid = user_id(server, name)

    async def work(engine):
        spec = await BudgetStore(engine).put(BudgetSpec("", user_id=uid, agent_id=None, limit_usd=Decimal(limit),
                                                        period=period))
        async with engine.begin() as conn:
            await conn.execute(insert(AIModelUsage).values(
                id=uuid.uuid4(), request_id=f"seed-{uuid.uuid4().hex}", attempt=1, user_id=uid, agent_id=agent,
                provider="google", model="gemini-2.0-flash", status="success", prompt_tokens=10, completion_tokens=10,
                total_tokens=20, cost_usd=Decimal(spent), latency_ms=100, created_at=datetime.now(UTC)))
        return spec.scope

    return key, in_db(server, work)


@pytest.fixture(scope="module")
def budgets(server) -> dict[str, tuple[str, str]]:
    """carol: $0.50 a week, all spent (hard); dave: $10.00 a month, $1.234567 spent (ok)."""
    return {"carol": budget_with_spend(server, "budget-carol", "0.50", "0.50", period="week"),
            "dave": budget_with_spend(server, "budget-dave", "10.00", "1.234567")}


def open_usage(page, server):
    page.goto(server.url + "/usage")
    expect(page.locator("#usage-budgets")).to_be_visible()
    return page


def bar_width(item) -> float:
    """The filled part of a budget's bar, as a share of the bar."""
    return item.evaluate("""li => li.querySelector('.budget-fill').getBoundingClientRect().width
                                 / li.querySelector('.budget-bar').getBoundingClientRect().width""")


@pytest.mark.parametrize(("amount", "shown", "exactly"), [
    ("1234.565000000000", "$1,234.57", "1234.565"), ("0.999900000000", "$0.9999", "0.9999"),
    ("0.500000000000", "$0.50", "0.50"), ("0.000000400000", "< $0.000001", "0.0000004"), ("0", "$0.00", "0.00"),
])
def test_amounts_are_rounded_from_the_exact_decimal_only_for_display(amount, shown, exactly):
    assert (usd(Decimal(amount)), exact(Decimal(amount))) == (shown, exactly)


# -- the usage page ----------------------------------------------------------------------------------------


def test_an_admin_sees_every_budget_as_a_bar_with_its_level_and_reset(budgets, server, page, screenshot):
    page = open_usage(sign_in(page, server), server)
    carol = page.locator(f'.budget[data-scope="{budgets["carol"][1]}"]')
    dave = page.locator(f'.budget[data-scope="{budgets["dave"][1]}"]')

    expect(dave.locator(".budget-owner")).to_have_text("budget-dave")
    expect(dave.locator(".budget-level")).to_have_text("OK")
    expect(dave).to_have_attribute("data-level", "ok")
    expect(dave.locator(".budget-spent")).to_have_text("$1.23")
    expect(dave.locator(".budget-spent")).to_have_attribute("title", "Exactly $1.234567")
    expect(dave.locator(".budget-limit")).to_have_text("$10.00")
    expect(dave.locator(".budget-soft-at")).to_contain_text("soft at $8.00")
    month_end = period_bounds("month", datetime.now(UTC))[1]
    expect(dave.locator(".budget-reset")).to_have_text(f"· resets on {month_end:%Y-%m-%d} UTC")
    assert bar_width(dave) == pytest.approx(0.1234567, abs=0.01)
    mark = dave.evaluate("""li => (li.querySelector('.budget-mark').getBoundingClientRect().left
                                   - li.querySelector('.budget-bar').getBoundingClientRect().left)
                                  / li.querySelector('.budget-bar').getBoundingClientRect().width""")
    assert mark == pytest.approx(0.8, abs=0.02)  # the soft threshold's tick at 80%
    meter = dave.get_by_role("meter")
    expect(meter).to_have_attribute("aria-valuetext", "$1.23 of $10.00 spent (OK)")

    expect(carol.locator(".budget-level")).to_have_text("Hard limit reached")
    expect(carol).to_have_attribute("data-level", "hard")
    expect(carol.locator(".budget-spent")).to_have_text("$0.50")
    expect(carol.locator(".budget-limit")).to_have_text("$0.50")
    expect(carol.locator(".budget-period")).to_have_text("per week (from Monday)")
    week_end = period_bounds("week", datetime.now(UTC))[1]
    expect(carol.locator(".budget-reset")).to_contain_text(f"resets on {week_end:%Y-%m-%d} UTC")
    assert bar_width(carol) == pytest.approx(1.0, abs=0.01)
    # the levels differ by more than colour: their labels, and the hard one's border
    borders = [item.locator(".budget-level").evaluate("e => getComputedStyle(e).borderTopWidth")
               for item in (dave, carol)]
    assert borders[0] != borders[1]
    assert page.js_errors == []
    screenshot(page, "usage-budgets")


def test_a_user_sees_only_their_own_budget(budgets, server, page):
    sign_in(page, server, budgets["carol"][0])
    open_usage(page, server)
    expect(page.locator(".budget")).to_have_count(1)
    expect(page.locator(".budget")).to_have_attribute("data-scope", budgets["carol"][1])
    expect(page.locator(".budget-owner")).to_have_text("budget-carol")
    assert "budget-dave" not in page.inner_text("#usage-budgets")
    assert page.js_errors == []


def test_a_user_without_a_budget_reads_that_there_is_none(budgets, server, page):
    sign_in(page, server, server.add_user("budget-erin"))
    open_usage(page, server)
    expect(page.locator(".budget")).to_have_count(0)
    expect(page.locator("#usage-budgets")).to_contain_text("No budgets on your account.")


# -- the chat badge ----------------------------------------------------------------------------------------


def wait_until_downgraded(server, key: str) -> dict:
    """Probe through the API until the server's router has taken the new budget up (within its refresh)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        answer = server.chat("probe", agent="summarizer-agent", key=key)
        if answer.get("budgetDowngraded"):
            return answer
        time.sleep(0.5)
    raise AssertionError(f"the budget never downgraded a request: {answer}")


def wait_for_usage(server, key: str, conversation_id: str) -> None:
    """The recorder writes in the background: wait until the conversation's last answer has its usage."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        r = server.api("GET", f"/api/ai/conversations/{conversation_id}", key=key)
        assert r.status_code == 200, r.text
        if r.json()["messages"][-1]["usage"] is not None:
            return
        time.sleep(0.1)
    raise AssertionError("the answer's usage was not in the ledger after 10 s")


def test_an_answer_a_budget_downgraded_says_so_live_and_after_a_reload(server, page):
    # $1.00 a month with $0.9999 spent: every priced link of summarizer-agent (Gemini, GPT-4o mini, Haiku)
    # could cross it at worst, so only the free local llama3.2 may serve
    key, _ = budget_with_spend(server, "budget-bob", "1.00", "0.9999")
    probe = wait_until_downgraded(server, key)
    assert probe["usedProvider"] == "ollama", probe
    sign_in(page, server, key)
    page.goto(f"{server.url}/agents/summarizer-agent")
    expect(page.locator("#agents-app")).to_have_attribute("data-state", "ready")
    page.get_by_label("Message", exact=True).fill("Summarize: budgets keep spending in check.")
    page.get_by_role("button", name="Send").click()

    badge = page.locator(".msg.assistant .answer-badge").last
    expect(badge).to_have_attribute("data-budget", "downgraded", timeout=15_000)
    expect(badge.locator(".b-provider")).to_have_text("ollama")
    marker = badge.locator(".b-budget")
    expect(marker).to_be_visible()
    expect(marker).to_have_text("downgraded by budget")
    title = marker.get_attribute("title")
    assert "A budget kept a dearer model" in title and "google/gemini-2.0-flash: budget " in title, title

    wait_for_usage(server, key, page.evaluate(
        "() => localStorage.getItem(Object.keys(localStorage).find(k => k.startsWith('llmrelay.conversation.')))"))
    page.reload()
    restored = page.locator(".msg.assistant .answer-badge").last
    expect(restored.locator(".b-budget")).to_have_text("downgraded by budget", timeout=15_000)
    expect(restored).to_have_attribute("data-budget", "downgraded")
    assert page.js_errors == []


def test_an_answer_no_budget_touched_has_no_marker(server, page):
    sign_in(page, server)
    page.goto(f"{server.url}/agents/local-agent")
    expect(page.locator("#agents-app")).to_have_attribute("data-state", "ready")
    page.get_by_label("Message", exact=True).fill("Hi")
    page.get_by_role("button", name="Send").click()
    badge = page.locator(".msg.assistant .answer-badge").last
    expect(badge).to_have_attribute("data-budget", "no", timeout=15_000)
    expect(badge.locator(".b-budget")).to_have_count(0)
