"""The chat page's rough edges, in a real browser: Enter sends and Shift+Enter makes a new line; the fallback
badge counts attempts and links apart; the badge's latency is the same live and after a reload; the model
selector closes after a choice; a toast never covers the latest answer; a failed answer has a Retry button."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from tests.web.test_chat import open_chat, reload_once_recorded, send

from llmrelay.testing import faults


def test_enter_sends_and_shift_enter_makes_a_new_line(live_server, signed_in_page):
    page = open_chat(signed_in_page, live_server)
    box = page.get_by_label("Message", exact=True)
    box.fill("first line")
    box.press("Shift+Enter")
    box.type("second line")
    expect(page.locator(".msg.user")).to_have_count(0)
    assert box.input_value() == "first line\nsecond line"
    box.press("Enter")
    expect(page.locator(".msg.user")).to_have_count(1)
    expect(page.locator(".msg.user .msg-body")).to_have_text("first line\nsecond line")
    expect(page.locator(".msg.assistant .answer-badge")).to_be_visible(timeout=15_000)
    assert box.input_value() == ""
    assert page.js_errors == []


def test_the_fallback_badge_counts_attempts_and_links_apart(live_server, signed_in_page):
    live_server.fakes["anthropic"].script(faults.overloaded())
    live_server.fakes["openai"].script(faults.http_error(500))
    page = open_chat(signed_in_page, live_server)
    send(page, "Anyone?")
    badge = page.locator(".msg.assistant .answer-badge").last
    expect(badge).to_have_attribute("data-fallback", "yes", timeout=15_000)
    expect(badge.locator("details.fallback summary")).to_have_text("fallback after 2 failed attempts on 2 links")
    said = page.evaluate("""async () => { const { fallbackSummary } = await import("/static/chat.js"); return [
      fallbackSummary([1, 2, 3].map(() => ({provider: "anthropic", model: "m", status: "failed"}))
                         .concat([{provider: "openai", model: "g", status: "success"}])),
      fallbackSummary([{provider: "a", model: "m", status: "failed"}, {provider: "b", model: "n", status: "skipped"},
                          {provider: "c", model: "o", status: "success"}]),
    ]; }""")
    assert said == ["fallback after 3 failed attempts on 1 link",
                    "fallback after 1 failed attempt on 1 link and 1 skipped link"]


def test_the_badge_shows_the_same_latency_live_and_after_a_reload(live_server, signed_in_page):
    live_server.fakes["anthropic"].script(faults.reply(text="Slow but sure.", seconds=0.4))
    page = open_chat(signed_in_page, live_server)
    page.get_by_role("button", name="New conversation").click()
    send(page, "Take your time")
    latency = page.locator(".msg.assistant .answer-badge .b-latency").last
    expect(latency).to_be_visible(timeout=15_000)
    live = latency.text_content()
    reload_once_recorded(page, live_server)
    restored = page.locator(".msg.assistant .answer-badge .b-latency").last
    expect(restored).to_have_text(live)
    assert re.fullmatch(r"\d+ ms|\d+\.\d s", live), live


def test_the_model_selector_closes_after_a_choice_and_its_toast_covers_no_answer(live_server, signed_in_page):
    page = open_chat(signed_in_page, live_server)
    page.get_by_role("button", name="New conversation").click()
    send(page, "Before the choice")
    expect(page.locator(".msg.assistant .answer-badge")).to_be_visible(timeout=15_000)
    wrap = page.locator("#model-selector-wrap")
    wrap.locator("summary").click()
    expect(wrap).to_have_attribute("open", "")
    option = wrap.locator("input[name=primary]:not(:checked)").first
    option.check()
    expect(page.locator("#toast")).to_contain_text("Saved")
    expect(page.locator("#model-selector-wrap")).not_to_have_attribute("open", "")
    toast = page.locator("#toast").bounding_box()
    for locator in (page.locator(".msg").last, page.locator("#chat-input")):
        box = locator.bounding_box()
        assert toast["y"] + toast["height"] <= box["y"] or box["y"] + box["height"] <= toast["y"], (toast, box)
    page.get_by_label("Message", exact=True).fill("After the choice")
    page.get_by_label("Message", exact=True).press("Enter")
    expect(page.locator(".msg.assistant .answer-badge")).to_have_count(2, timeout=15_000)
    if page.locator("#toast").is_visible():
        toast = page.locator("#toast").bounding_box()
        box = page.locator(".msg").last.bounding_box()
        assert toast["y"] + toast["height"] <= box["y"] or box["y"] + box["height"] <= toast["y"], (toast, box)
    live_server.api("DELETE", "/api/ai/config/general-agent")
    assert page.js_errors == []


def test_a_failed_answer_has_a_retry_button_that_asks_again(live_server, signed_in_page):
    live_server.fakes["ollama"].script(faults.overloaded(times=2))
    page = open_chat(signed_in_page, live_server, "local-agent")
    page.get_by_role("button", name="New conversation").click()
    send(page, "Hello?")
    failed = page.locator(".msg.assistant").last
    expect(failed.get_by_role("alert")).to_be_visible(timeout=15_000)
    failed.get_by_role("button", name="Retry").click()
    expect(failed.get_by_role("button", name="Retry")).to_have_count(0)
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".answer-badge")).to_be_visible(timeout=15_000)
    expect(page.locator(".msg.user")).to_have_count(2)
    assert page.js_errors == []


def test_every_page_shows_money_exactly_with_one_formatter(live_server, signed_in_page):
    page = open_chat(signed_in_page, live_server)
    shown = page.evaluate("""async () => { const { usd } = await import("/static/app.js");
        return [usd("1234.005"), usd("0.000012345"), usd("0.0000004"), usd("0"), usd(null), usd("-2.5")]; }""")
    # 1234.005 as a float is 1234.00499…: a float formatter shows $1,234.00
    assert shown == ["$1,234.01", "$0.000012", "< $0.000001", "$0.00", "unpriced", "-$2.50"]
    live_server.fakes["anthropic"].script(faults.reply(text="Priced."))
    send(page, "What does it cost?")
    badge = page.locator(".msg.assistant .answer-badge").last
    expect(badge).to_be_visible(timeout=15_000)
    exact = badge.locator(".b-cost").text_content()
    assert re.fullmatch(r"\$\d[\d,]*\.\d+", exact), exact
