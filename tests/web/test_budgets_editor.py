"""The usage page's budget editor, in a real browser against `llmrelay serve`: an admin sets a budget with the
"Set a budget" form, edits it from its card, and removes it (with a confirm step inside the page); mistakes
show next to their field and save nothing; a plain user gets neither the form nor the cards' buttons.

The module runs its own server (test_budgets_ui's `server` fixture, started anew for this module), so
`GET /api/ai/budgets` holds only the budgets made here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect
from test_budgets_ui import server, sign_in, user_id  # noqa: F401  (the module's own `llmrelay serve`, its sign-in)


def budgets_of(server, **params: str) -> list[dict[str, Any]]:  # noqa: F811
    r = server.api("GET", "/api/ai/budgets", params=params)
    assert r.status_code == 200, r.text
    return r.json()["budgets"]


def open_editor(page, server):  # noqa: F811
    page.goto(server.url + "/usage")
    expect(page.locator("#usage-budgets")).to_be_visible()
    editor = page.locator("#budget-editor")
    if editor.get_attribute("open") is None:
        page.get_by_text("Set a budget", exact=True).click()
    expect(page.locator("#budget-form")).to_be_visible()
    return page.locator("#budget-form")


def card_of(page, owner: str):
    return page.locator(".budget", has=page.locator(".budget-owner", has_text=owner))


@pytest.fixture(autouse=True)
def _no_budgets_left(server) -> Any:  # noqa: F811
    """Every test starts and ends without budgets on the module's server."""
    yield
    for b in budgets_of(server):
        params = {k: b[k] for k in ("userId", "agentId") if b[k]}
        assert server.api("DELETE", "/api/ai/budgets", params=params).status_code == 204


def test_an_admin_sets_edits_and_removes_a_budget_through_the_form(server, page, screenshot):  # noqa: F811
    server.add_user("editor-frank")
    sign_in(page, server)
    form = open_editor(page, server)
    form.get_by_label("User").select_option(label="editor-frank")
    form.get_by_label("Agent").select_option("summarizer-agent")
    form.get_by_label("Limit (USD)").fill("12.345678901234")  # 14 significant digits: exact, never a float
    form.get_by_label("Period").select_option("month")
    form.get_by_label("Reset day of the month").fill("15")
    form.get_by_label("Soft threshold (%)").fill("50")
    form.get_by_label("Unpriced models").select_option("allow")
    form.get_by_label("Webhook URL (optional)").fill("https://hooks.example.com/budget")
    form.get_by_role("button", name="Save budget").click()

    card = card_of(page, "editor-frank on agent summarizer-agent")
    expect(card).to_have_count(1)
    expect(card.locator(".budget-limit")).to_have_text("$12.35")
    expect(card.locator(".budget-limit")).to_have_attribute("title", "Exactly $12.345678901234")
    expect(card.locator(".budget-period")).to_have_text("per month (from day 15)")
    expect(card).to_have_class("budget budget-ok budget-saved")
    expect(page.locator("#budget-status")).to_have_text(
        "Saved the budget of editor-frank on agent summarizer-agent.")
    [saved] = budgets_of(server)
    assert (saved["limitUsd"], saved["period"], saved["resetDay"], saved["softPercent"], saved["unpriced"],
            saved["webhookUrl"], saved["agentId"]) == ("12.345678901234", "month", 15, 50, "allow",
                                                       "https://hooks.example.com/budget", "summarizer-agent")

    # Edit: the form is filled with the budget (its user and agent fixed), the limit changes
    card.get_by_role("button", name=re.compile("^Edit the budget of")).click()
    expect(page.locator("#budget-form-title")).to_have_text(
        "Edit the budget of editor-frank on agent summarizer-agent")
    limit = form.get_by_label("Limit (USD)")
    expect(limit).to_be_focused()
    expect(limit).to_have_value("12.345678901234")
    expect(form.get_by_label("User")).to_be_disabled()
    expect(form.get_by_label("Reset day of the month")).to_have_value("15")
    expect(form.get_by_label("Unpriced models")).to_have_value("allow")
    limit.fill("30")
    form.get_by_role("button", name="Save changes").click()
    card = card_of(page, "editor-frank on agent summarizer-agent")
    expect(card.locator(".budget-limit")).to_have_text("$30.00")
    [edited] = budgets_of(server)
    assert (edited["scope"], edited["limitUsd"], edited["resetDay"], edited["softPercent"]) == (
        saved["scope"], "30", 15, 50)

    # Remove: a confirm step inside the card, then the card is gone
    card.get_by_role("button", name=re.compile("^Remove the budget of")).click()
    confirm = card.get_by_role("group", name="Confirm removing the budget of editor-frank on agent summarizer-agent")
    expect(confirm).to_be_visible()
    expect(confirm.get_by_role("button", name="Keep it")).to_be_focused()
    confirm.get_by_role("button", name="Yes, remove").click()
    expect(card).to_have_count(0)
    expect(page.locator("#budget-status")).to_have_text(
        "Removed the budget of editor-frank on agent summarizer-agent.")
    expect(page.locator("#budgets-none-left")).to_be_visible()
    assert budgets_of(server) == []
    assert page.js_errors == []
    screenshot(page, "usage-budget-editor")


def test_a_bad_limit_shows_its_error_by_the_field_and_saves_nothing(server, page, screenshot):  # noqa: F811
    server.add_user("editor-gina")
    sign_in(page, server)
    form = open_editor(page, server)
    limit = form.get_by_label("Limit (USD)")

    form.get_by_role("button", name="Save budget").click()  # neither a user nor an agent
    expect(page.locator("#b-userId-error")).to_have_text(
        "Choose a user, an agent, or both: a budget is on at least one of them.")
    expect(form.get_by_label("User")).to_have_attribute("aria-invalid", "true")

    form.get_by_label("User").select_option(label="editor-gina")
    expect(page.locator("#b-userId-error")).to_have_text("")
    limit.fill("abc")
    form.get_by_role("button", name="Save budget").click()
    error = page.locator("#b-limitUsd-error")
    expect(error).to_contain_text("Enter the limit as a plain decimal number of dollars")
    expect(limit).to_have_attribute("aria-invalid", "true")
    expect(limit).to_be_focused()
    assert "b-limitUsd-error" in limit.get_attribute("aria-describedby")
    expect(error).to_have_attribute("aria-live", "polite")
    page.wait_for_timeout(300)
    assert budgets_of(server) == []
    assert page.js_errors == []

    # what only the API knows (at most a million USD): its detail, next to the field it names
    limit.fill("2000000")
    form.get_by_role("button", name="Save budget").click()
    expect(error).to_contain_text("limitUsd:")
    expect(error).to_contain_text("1000000")
    expect(limit).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#b-form-error")).to_be_hidden()
    expect(form.get_by_role("button", name="Save budget")).to_be_enabled()
    assert budgets_of(server) == []
    screenshot(page, "usage-budget-editor-error", full_page=False)


def test_remove_can_be_kept_with_the_keyboard(server, page):  # noqa: F811
    assert server.api("PUT", "/api/ai/budgets", json={"agentId": "local-agent", "limitUsd": "5"}).status_code == 200
    sign_in(page, server)
    page.goto(server.url + "/usage")
    card = card_of(page, "agent local-agent")
    card.get_by_role("button", name=re.compile("^Remove the budget of")).focus()
    page.keyboard.press("Enter")
    keep = card.get_by_role("button", name="Keep it")
    expect(keep).to_be_focused()
    page.keyboard.press("Escape")
    expect(keep).to_be_hidden()
    expect(card.get_by_role("button", name=re.compile("^Remove the budget of"))).to_be_focused()
    assert len(budgets_of(server)) == 1
    assert page.js_errors == []


def test_a_plain_user_sees_their_budget_without_the_editor(server, page):  # noqa: F811
    key = server.add_user("editor-hana")
    uid = user_id(server, "editor-hana")
    assert server.api("PUT", "/api/ai/budgets", json={"userId": uid, "limitUsd": "7.50"}).status_code == 200
    sign_in(page, server, key)
    page.goto(server.url + "/usage")
    expect(page.locator(".budget")).to_have_count(1)
    expect(page.locator(".budget-limit")).to_have_text("$7.50")
    expect(page.locator("#budget-form")).to_have_count(0)
    expect(page.get_by_text("Set a budget")).to_have_count(0)
    expect(page.get_by_role("button", name="Edit")).to_have_count(0)
    expect(page.get_by_role("button", name="Remove")).to_have_count(0)
    assert page.locator('script[src="/static/budgets.js"]').count() == 0
    assert "budgetSpecs" not in page.locator("#usage-config").text_content()
    assert page.js_errors == []


def test_the_editor_fits_a_phone(server, phone_page, screenshot):  # noqa: F811
    page = sign_in(phone_page, server)
    form = open_editor(page, server)
    form.get_by_label("Agent").select_option("general-agent")
    form.get_by_label("Period").select_option("day")
    expect(form.get_by_label("Reset day of the month")).to_be_hidden()
    form.get_by_label("Limit (USD)").fill("0.75")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px"
    form.get_by_role("button", name="Save budget").click()
    card = card_of(page, "agent general-agent")
    expect(card.locator(".budget-limit")).to_have_text("$0.75")
    expect(card.locator(".budget-period")).to_have_text("per day")
    [saved] = budgets_of(server)
    assert "resetDay" in saved and saved["period"] == "day"
    assert page.js_errors == []
    screenshot(page, "usage-budget-editor-phone")
