"""Signing in and out in a real browser: a bad key is refused on the page, a good one opens the
agents page with an HttpOnly, SameSite=Strict cookie, and signing out ends the session."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def test_sign_in_refuses_a_bad_key_then_accepts_a_good_one(live_server, page, screenshot):
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/signin$"))
    expect(page.get_by_label("API key")).to_be_visible()
    screenshot(page, "signin")
    page.get_by_label("API key").fill("lr_this-is-not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("not valid")
    assert "lr_this-is-not-a-key" not in page.content()
    page.get_by_label("API key").fill(live_server.admin_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url + "/")
    expect(page.locator(".who .user")).to_contain_text("admin")
    cookie = next(c for c in page.context.cookies() if c["name"] == "llmrelay_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and live_server.admin_key not in cookie["value"]
    assert page.evaluate("document.cookie").find("llmrelay_session") == -1  # not readable by scripts
    assert page.js_errors == []


def test_sign_in_returns_to_the_page_asked_for_and_sign_out_ends_the_session(live_server, page, sign_in):
    page.goto(live_server.url + "/agents/local-agent")
    expect(page).to_have_url(re.compile(r"/signin\?next=/agents/local-agent$"))
    page.get_by_label("API key").fill(live_server.admin_key)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(live_server.url + "/agents/local-agent")
    expect(page.locator(".agent-header h2")).to_have_text("Local Assistant")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/signin$"))
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/signin$"))
    assert page.request.get(live_server.url + "/api/ai/agents").status == 401


def test_a_user_sees_their_own_name(live_server, page, sign_in):
    sign_in(page, live_server.add_user("carol"))
    expect(page.locator(".who .user")).to_have_text("carol")
