"""The agents page in a real browser: the list with tiers, the model selector and the chain editor
(saved through /api/ai/config, kept across a reload, reset to the agent's default), at desktop and
phone width."""

from __future__ import annotations

import re
import time

import helpers
from playwright.sync_api import expect

server_without_openai = helpers.server_without_openai


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


def chain_names(page) -> list[str]:
    return page.locator("#chain-links .chain-link .link-name").all_text_contents()


def test_model_selector_saves_the_primary_and_the_chain_editor_keeps_edits(live_server, signed_in_page, screenshot):
    agent = "web-dev-agent"
    live_server.api("DELETE", f"/api/ai/config/{agent}")
    page = open_agent(signed_in_page, live_server, agent)
    default = ["anthropic/claude-3-5-sonnet-20241022", "google/gemini-2.0-flash", "ollama/mistral"]
    try:
        page.locator("#model-selector-wrap > summary").click()
        selector = page.locator("#model-selector")
        option = selector.locator('.model-option:has(input[value="openai/gpt-4o-mini"])')
        expect(option.locator(".tier")).to_have_text("Low")
        expect(option.locator(".price")).to_contain_text("per 1M")
        expect(option.locator(".ctx")).to_contain_text("128k context")
        expect(option.locator(".speed")).to_be_visible()
        screenshot(page, "model-selector-open")
        option.locator("input[type=radio]").check()
        expect(page.locator("#current-model")).to_have_text("openai/gpt-4o-mini")
        assert chain_names(page) == ["openai/gpt-4o-mini", *default]
        saved = live_server.api("GET", f"/api/ai/config?agentId={agent}").json()[0]
        assert (saved["primaryProvider"], saved["primaryModel"]) == ("openai", "gpt-4o-mini")

        page.locator(".chain-editor > summary").click()
        page.get_by_role("button", name="Remove ollama/mistral").click()
        page.get_by_role("button", name="Move google/gemini-2.0-flash up").click()
        page.get_by_label("Add a link").select_option("ollama/llama3.2")
        page.get_by_role("button", name="Add", exact=True).click()
        page.get_by_label("Max tokens").fill("1000")
        page.get_by_label("Temperature").fill("0.5")
        expected = ["openai/gpt-4o-mini", "google/gemini-2.0-flash", "anthropic/claude-3-5-sonnet-20241022",
                    "ollama/llama3.2"]
        assert chain_names(page) == expected
        page.get_by_role("button", name="Save chain").click()
        expect(page.locator("#toast")).to_contain_text("Saved")
        screenshot(page, "chain-editor")

        page.reload()
        expect(page.locator("#agents-app")).to_have_attribute("data-state", "ready")
        expect(page.locator("#current-model")).to_have_text("openai/gpt-4o-mini")
        assert chain_names(page) == expected
        expect(page.get_by_label("Max tokens")).to_have_value("1000")
        expect(page.get_by_label("Temperature")).to_have_value("0.5")
        expect(page.locator(f'.agent-item[data-agent-id="{agent}"] .agent-model')).to_contain_text("gpt-4o-mini")
        saved = live_server.api("GET", f"/api/ai/config?agentId={agent}").json()[0]
        assert saved["fallbackChain"][0] == {"provider": "google", "model": "gemini-2.0-flash"}
        assert (saved["maxTokens"], saved["temperature"]) == (1000, 0.5)

        page.locator(".chain-editor > summary").click()
        page.get_by_role("button", name="Reset to default").click()
        expect(page.locator("#current-model")).to_have_text(default[0])
        assert chain_names(page) == default
        page.reload()
        expect(page.locator("#agents-app")).to_have_attribute("data-state", "ready")
        assert chain_names(page) == default
        assert live_server.api("GET", f"/api/ai/config?agentId={agent}").json() == []
        assert page.js_errors == []
    finally:
        live_server.api("DELETE", f"/api/ai/config/{agent}")


def test_a_refused_chain_shows_the_servers_reason(live_server, signed_in_page):
    agent = "summarizer-agent"
    page = open_agent(signed_in_page, live_server, agent)
    page.locator(".chain-editor > summary").click()
    page.get_by_label("Max tokens").fill("900000")  # over the smallest output limit in the chain
    page.get_by_role("button", name="Save chain").click()
    expect(page.locator(".chain-errors [role=alert]")).to_contain_text("over the output limit")
    assert live_server.api("GET", f"/api/ai/config?agentId={agent}").json() == []


def test_disabled_providers_are_greyed_with_their_reason(server_without_openai, page, sign_in, screenshot):
    url, admin_key = server_without_openai
    page.goto(url + "/signin")
    page.get_by_label("API key").fill(admin_key)
    page.get_by_role("button", name="Sign in").click()
    page.goto(url + "/agents/code-review-agent")
    expect(page.locator("#agents-app")).to_have_attribute("data-state", "ready")
    # the chain starts with openai/gpt-4o, which is disabled: the first usable link answers first
    expect(page.locator("#current-model")).to_have_text("anthropic/claude-3-5-sonnet-20241022")
    page.locator("#model-selector-wrap > summary").click()
    option = page.locator('.model-option:has(input[value="openai/gpt-4o"])')
    expect(option).to_have_class(re.compile("disabled"))
    expect(option.locator("input")).to_be_disabled()
    expect(option.locator(".reason")).to_have_text("OPENAI_API_KEY is not set")
    page.locator(".chain-editor > summary").click()
    expect(page.locator('.chain-link[data-link="openai/gpt-4o"] .reason')).to_contain_text("OPENAI_API_KEY is not set")
    screenshot(page, "model-selector")
    assert page.js_errors == []


def test_agents_page_fits_a_phone(live_server, phone_page, sign_in, screenshot):
    page = sign_in(phone_page)
    page.goto(live_server.url + "/agents/general-agent")
    expect(page.locator("#agents-app")).to_have_attribute("data-state", "ready")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "agents-phone")


def test_the_speed_indicator_shows_each_models_own_median_latency(live_server, signed_in_page):
    """After calls to the summarizer's primary, its option shows that model's median latency (the
    figure /api/ai/models gives); a model nobody called shows its provider's, or no data."""
    agent = "summarizer-agent"
    live_server.api("DELETE", f"/api/ai/config/{agent}")
    for i in range(3):
        assert live_server.chat(f"summarise {i}", agent=agent)["usedProvider"] == "google"
    deadline = time.monotonic() + 10
    while True:  # the ledger writer commits its batch within a flush interval
        models = {(m["provider"], m["model"]): m["recent"] for m in live_server.api("GET", "/api/ai/models").json()}
        flash = models[("google", "gemini-2.0-flash")]
        if flash["calls"] >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert flash["calls"] >= 3 and flash["p50LatencyMs"] is not None
    page = open_agent(signed_in_page, live_server, agent)
    page.locator("#model-selector-wrap > summary").click()
    option = page.locator('#model-selector .model-option:has(input[value="google/gemini-2.0-flash"]) .speed')
    expect(option).to_have_attribute("data-of", "model")
    expect(option).to_have_attribute("data-p50", str(flash["p50LatencyMs"]))
    assert "gemini-2.0-flash" in option.get_attribute("title")
    never = [key for key, recent in models.items() if key[0] == "google" and recent["calls"] == 0]
    assert never, "some google model was never called"
    other = page.locator(f'#model-selector .model-option:has(input[value="google/{never[0][1]}"]) .speed')
    expect(other).to_have_count(1)  # every known model is offered: the agent's links, then the others
    expect(other).not_to_have_attribute("data-of", "model")
    assert page.js_errors == []
