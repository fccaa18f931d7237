"""The agents page in a real browser: the list with tiers, the model selector and the chain editor
(saved through /api/ai/config, kept across a reload, reset to the agent's default), at desktop and
phone width."""

from __future__ import annotations

import re

from playwright.sync_api import expect


def open_agent(page, live_server, agent_id: str):
    page.goto(f"{live_server.url}/agents/{agent_id}")
    expect(page.locator("#agents-app")).to_have_attribute("data-state", "ready")
    return page


def test_agents_list_shows_tiers_and_current_models(live_server, signed_in_page, screenshot):
    page = signed_in_page
    page.goto(live_server.url + "/")
    expect(page.locator("#agents-app")).to_have_attribute("data-state", "ready")
    items = page.locator(".agent-item")
    expect(items).to_have_count(5)
    general = page.locator('.agent-item[data-agent-id="general-agent"]')
    expect(general.locator(".tier")).to_have_text("Medium")
    expect(general.locator(".agent-model")).to_contain_text("anthropic/claude-3-5-sonnet-20241022")
    expect(page.locator('.agent-item[data-agent-id="local-agent"] .tier')).to_have_text("Free")
    expect(page.locator('.agent-item[data-agent-id="code-review-agent"] .tier')).to_have_text("High")
    screenshot(page, "agents")
    general.click()
    expect(page).to_have_url(re.compile(r"/agents/general-agent$"))
    expect(page.locator(".agent-header h2")).to_have_text("General Assistant")
    assert page.js_errors == []
