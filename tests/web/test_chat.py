"""Chatting with an agent in a real browser: the answer streams in, then carries its badge; a
failed primary shows the fallback and why; the conversation survives a reload; a model's answer
with <script> or an onerror image is shown as text and never runs."""

from __future__ import annotations

import re
import time

from playwright.sync_api import expect

from llmrelay.testing import faults

SONNET = "claude-3-5-sonnet-20241022"


def open_chat(page, live_server, agent_id: str = "general-agent"):
    page.goto(f"{live_server.url}/agents/{agent_id}")
    expect(page.locator("#agents-app")).to_have_attribute("data-state", "ready")
    return page


def reload_once_recorded(page, live_server, agent_id: str = "general-agent") -> None:
    """Reload the page once the ledger has the rows of the conversation's last answer (the recorder writes in
    the background): the restored badge is read from them."""
    cid = page.evaluate(f"Object.entries(localStorage).find(([k]) => k.endsWith('.{agent_id}'))[1]")
    deadline = time.monotonic() + 10
    while live_server.api("GET", f"/api/ai/conversations/{cid}").json()["messages"][-1]["usage"] is None:
        assert time.monotonic() < deadline, "the ledger never had the request's rows"
        time.sleep(0.1)
    page.reload()


def send(page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()


def test_answer_streams_in_then_shows_its_badge_and_survives_a_reload(live_server, signed_in_page, screenshot):
    live_server.fakes["anthropic"].script(faults.reply(
        text="Keep-alive reuses **one connection** for many requests.\n\n- fewer handshakes\n- lower latency",
        seconds=0.3))
    page = open_chat(signed_in_page, live_server)
    send(page, "Explain HTTP keep-alive")
    answer = page.locator(".msg.assistant").last
    streaming = answer.locator(".msg-body.streaming")
    expect(streaming).to_contain_text("Keep-alive")  # part of the answer, while the stream is still open
    expect(answer.locator(".answer-badge")).to_have_count(0)
    badge = answer.locator(".answer-badge")
    expect(badge).to_be_visible(timeout=15_000)
    expect(answer.locator(".msg-body strong")).to_have_text("one connection")
    expect(answer.locator(".msg-body li")).to_have_count(2)
    expect(badge.locator(".b-provider")).to_have_text("anthropic")
    expect(badge.locator(".b-model")).to_have_text(SONNET)
    expect(badge.locator(".b-tokens")).to_contain_text(re.compile(r"\d+ tokens"))
    expect(badge.locator(".b-cost")).to_contain_text("$")
    expect(badge.locator(".b-latency")).to_contain_text(re.compile(r"\d+(\.\d)? m?s"))
    expect(badge).to_have_attribute("data-fallback", "no")
    screenshot(page, "chat")

    page.reload()
    expect(page.locator(".msg.user")).to_have_text(re.compile("Explain HTTP keep-alive"))
    restored = page.locator(".msg.assistant").last
    expect(restored.locator(".msg-body strong")).to_have_text("one connection")
    expect(restored.locator(".b-model")).to_have_text(SONNET)

    live_server.fakes["anthropic"].script(faults.reply(text="Yes, the same conversation."))
    send(page, "Same conversation?")
    expect(page.locator(".msg.assistant .answer-badge")).to_have_count(2)
    sent = live_server.fakes["anthropic"].requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]  # the stored history went along

    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".msg")).to_have_count(0)
    page.reload()
    expect(page.locator(".agent-header h2")).to_be_visible()
    expect(page.locator(".msg")).to_have_count(0)
    assert page.js_errors == []


def test_fallback_badge_expands_to_the_failed_attempt(live_server, signed_in_page, screenshot):
    live_server.fakes["anthropic"].script(faults.overloaded())
    page = open_chat(signed_in_page, live_server)
    send(page, "Are you there?")
    badge = page.locator(".msg.assistant .answer-badge").last
    expect(badge).to_have_attribute("data-fallback", "yes", timeout=15_000)
    expect(badge.locator(".b-provider")).to_have_text("openai")
    details = badge.locator("details.fallback")
    expect(details.locator("summary")).to_contain_text("fallback")
    expect(details.locator(".attempt")).not_to_be_visible()
    details.locator("summary").click()
    failed = details.locator(".attempt-failed")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text(f"anthropic/{SONNET}")
    expect(failed).to_contain_text("overloaded")
    screenshot(page, "chat-fallback")

    # after a reload the badge comes back from the ledger, fallback and failed attempt included
    reload_once_recorded(page, live_server)
    restored = page.locator(".msg.assistant .answer-badge").last
    expect(restored).to_have_attribute("data-fallback", "yes")
    expect(restored.locator(".b-tokens")).to_contain_text(re.compile(r"\d+ tokens"))
    expect(restored.locator(".b-cost")).to_contain_text("$")
    restored.locator("details.fallback summary").click()
    expect(restored.locator(".attempt-failed")).to_contain_text(f"anthropic/{SONNET}")
    assert page.js_errors == []


def test_when_every_link_fails_the_page_says_why(live_server, signed_in_page):
    live_server.fakes["ollama"].script(faults.overloaded(times=2))
    page = open_chat(signed_in_page, live_server, "local-agent")
    send(page, "Hello?")
    answer = page.locator(".msg.assistant").last
    expect(answer.get_by_role("alert")).to_be_visible(timeout=15_000)
    expect(answer.locator(".attempt-failed")).to_have_count(2)


XSS = ('Look: <script>window.__pwned = "script"</script> and <img src=x onerror="window.__pwned = \'img\'"> '
       'and [click](javascript:window.__pwned=1) and [docs](https://example.com/x).')


def test_markup_in_an_answer_is_shown_as_text_and_never_runs(live_server, signed_in_page):
    dialogs: list[str] = []
    page = signed_in_page
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    live_server.fakes["anthropic"].script(faults.reply(text=XSS + "\n\n<b>not bold</b><script>alert(1)</script>"))
    open_chat(page, live_server)
    send(page, "Say something dangerous")
    body = page.locator(".msg.assistant .msg-body").last
    expect(page.locator(".msg.assistant .answer-badge")).to_have_count(1, timeout=15_000)

    def check() -> None:
        expect(body).to_contain_text('<script>window.__pwned = "script"</script>')
        expect(body).to_contain_text("<img src=x onerror=")
        expect(body).to_contain_text("<b>not bold</b><script>alert(1)</script>")
        assert body.locator("script, img, b, iframe").count() == 0
        assert body.locator("a").count() == 1  # only the https link became a link
        link = body.locator("a")
        expect(link).to_have_attribute("href", "https://example.com/x")
        expect(link).to_have_attribute("rel", re.compile("noopener"))
        expect(body).to_contain_text("[click](javascript:window.__pwned=1)")
        assert page.evaluate("window.__pwned") is None
        assert dialogs == []

    check()
    page.reload()  # the stored answer goes through the same renderer
    expect(page.locator(".msg.assistant .msg-body")).to_have_count(1)
    body = page.locator(".msg.assistant .msg-body").last
    check()
    assert page.js_errors == []
