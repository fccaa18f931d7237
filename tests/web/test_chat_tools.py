"""Agent-grade chat in a real browser: an answer's tool calls as collapsible blocks (shown, never run),
the results the user writes going back as tool results, images attached (file input or paste) and
sent, the attach control disabled where the serving model takes no images, and the models' capability
badges in the model selector."""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib

from playwright.sync_api import expect

from llmrelay.testing import faults


def gradient_png(size: int = 48) -> bytes:
    """A small RGB PNG (a colour gradient), made here rather than stored as a binary file."""
    rows = b"".join(b"\x00" + b"".join(bytes((x * 255 // size, y * 255 // size, 160)) for x in range(size))
                    for y in range(size))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


PNG = gradient_png()
DANGER = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'


def open_chat(page, live_server, agent_id: str = "general-agent"):
    page.goto(f"{live_server.url}/agents/{agent_id}")
    expect(page.locator("#agents-app")).to_have_attribute("data-state", "ready")
    page.get_by_role("button", name="New conversation").click()  # whatever an earlier test left
    return page


def send(page, text: str) -> None:
    page.get_by_label("Message", exact=True).fill(text)
    page.get_by_role("button", name="Send").click()


def test_tool_calls_show_as_blocks_and_their_results_go_back(live_server, signed_in_page, screenshot):
    anthropic = live_server.fakes["anthropic"]
    anthropic.script(faults.reply(text="Let me check the weather.", seconds=0.2, tool_calls=[
        {"name": "get_weather", "arguments": {"city": "Paris", "units": "celsius", "note": DANGER}},
        {"name": "get_time", "arguments": {"zone": "Europe/Paris"}}]))
    page = open_chat(signed_in_page, live_server)
    send(page, "Weather and time in Paris?")
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".answer-badge")).to_be_visible(timeout=15_000)
    expect(answer.locator(".msg-body")).to_contain_text("Let me check the weather.")
    calls = answer.locator(".tool-block.tool-call")
    expect(calls).to_have_count(2)
    weather = calls.nth(0)
    expect(weather.locator("summary .tool-name")).to_have_text("get_weather")
    expect(weather.locator("summary .tool-preview")).to_contain_text('"city":"Paris"')
    expect(weather.locator(".tool-body")).not_to_be_visible()  # collapsed until opened
    weather.locator("summary").click()
    body = weather.locator(".tool-body")
    expect(body).to_be_visible()
    shown = body.text_content()
    assert json.loads(shown) == {"city": "Paris", "units": "celsius", "note": DANGER}
    assert '\n  "city": "Paris"' in shown  # pretty-printed
    assert weather.locator("img, script").count() == 0 and page.evaluate("window.__pwned") is None
    expect(calls.nth(1).locator(".tool-name")).to_have_text("get_time")

    # llmrelay runs no tool: the composer asks for what each returned
    form = page.locator(".tool-results-form")
    expect(form).to_be_visible()
    expect(form).to_contain_text("runs no tool")
    page.get_by_label("Result of get_weather").fill('{"celsius": 18, "sky": "clear"}')
    page.get_by_label("Result of get_time").fill("14:05")
    screenshot(page, "chat-tool-call")
    send(page, "")
    expect(page.locator(".msg.assistant .answer-badge")).to_have_count(2, timeout=15_000)
    expect(form).to_be_hidden()
    mine = page.locator(".msg.user").last
    results = mine.locator(".tool-block.tool-result")
    expect(results).to_have_count(2)
    expect(results.nth(0).locator(".tool-name")).to_have_text("get_weather")
    final = page.locator(".msg.assistant").last
    expect(final.locator(".msg-body")).to_contain_text('The tools said: {"celsius": 18, "sky": "clear"}; 14:05')
    sent = anthropic.requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent[2]["content"]] == ["tool_result", "tool_result"]

    page.reload()  # the stored conversation brings the blocks back
    expect(page.locator(".msg.assistant .tool-block.tool-call")).to_have_count(2)
    expect(page.locator(".msg.user .tool-block.tool-result")).to_have_count(2)
    expect(page.locator(".msg.user .tool-result .tool-name").first).to_have_text("get_weather")
    expect(page.locator(".tool-results-form")).to_be_hidden()  # the last answer called nothing
    assert page.evaluate("window.__pwned") is None
    assert page.js_errors == []


def test_a_restored_answer_that_called_tools_still_waits_for_their_results(live_server, signed_in_page):
    live_server.fakes["anthropic"].script(faults.reply(tool_calls=[{"name": "lookup", "arguments": {"q": "x"}}]))
    page = open_chat(signed_in_page, live_server)
    send(page, "Look it up")
    expect(page.get_by_label("Result of lookup")).to_be_visible(timeout=15_000)
    page.reload()
    expect(page.locator(".msg.assistant .tool-call .tool-name")).to_have_text("lookup")
    expect(page.get_by_label("Result of lookup")).to_be_visible()
    page.get_by_role("button", name="New conversation").click()
    expect(page.locator(".tool-results-form")).to_be_hidden()
    assert page.js_errors == []


def test_an_attached_image_is_shown_then_sent(live_server, signed_in_page, screenshot):
    page = open_chat(signed_in_page, live_server)
    attach = page.get_by_role("button", name="Attach image")
    expect(attach).to_be_enabled()
    files = [{"name": "dot.png", "mimeType": "image/png", "buffer": PNG},
             {"name": "other.png", "mimeType": "image/png", "buffer": PNG}]
    page.set_input_files("#chat-image", files)
    thumbs = page.locator(".composer .attachments img.thumb")
    expect(thumbs).to_have_count(2)
    page.get_by_role("button", name="Remove other.png").click()
    expect(thumbs).to_have_count(1)
    expect(thumbs.first).to_have_attribute("src", re.compile(r"^data:image/png;base64,"))
    page.get_by_label("Message", exact=True).fill("What is in this picture?")
    screenshot(page, "chat-image")
    page.get_by_role("button", name="Send").click()
    answer = page.locator(".msg.assistant").last
    expect(answer.locator(".answer-badge")).to_be_visible(timeout=15_000)
    expect(answer.locator(".msg-body")).to_contain_text("I saw 1 image")
    expect(page.locator(".msg.user").last.locator("img.thumb")).to_have_count(1)
    expect(thumbs).to_have_count(0)  # the composer is empty again
    block = live_server.fakes["anthropic"].requests[-1].body["messages"][0]["content"]
    assert [b["type"] for b in block] == ["text", "image"]
    assert base64.b64decode(block[1]["source"]["data"]) == PNG

    page.reload()
    expect(page.locator(".msg.user").last.locator("img.thumb")).to_have_count(1)
    assert page.js_errors == []


def test_a_pasted_image_is_attached(live_server, signed_in_page):
    page = open_chat(signed_in_page, live_server)
    page.locator("#chat-input").focus()
    page.evaluate("""(bytes) => {
        const data = new DataTransfer();
        data.items.add(new File([new Uint8Array(bytes)], "pasted.png", {type: "image/png"}));
        document.getElementById("chat-input").dispatchEvent(
            new ClipboardEvent("paste", {clipboardData: data, bubbles: true, cancelable: true}));
    }""", list(PNG))
    expect(page.locator(".composer .attachments img.thumb")).to_have_count(1)
    send(page, "And this one?")
    expect(page.locator(".msg.assistant").last.locator(".msg-body")).to_contain_text("I saw 1 image", timeout=15_000)
    assert page.js_errors == []


def test_attaching_is_off_where_the_serving_model_takes_no_images(live_server, signed_in_page):
    page = open_chat(signed_in_page, live_server, "local-agent")
    attach = page.get_by_role("button", name="Attach image")
    expect(attach).to_be_disabled()
    expect(attach).to_have_attribute("title", re.compile(r"ollama/mistral, which answers first, takes no images"))
    expect(page.locator(".attach-wrap")).to_have_attribute("title", re.compile("takes no images"))
    page.set_input_files("#chat-image", [{"name": "dot.png", "mimeType": "image/png", "buffer": PNG}])
    expect(page.locator(".composer .attachments img")).to_have_count(0)
    expect(page.locator("#toast")).to_contain_text("takes no images")
    assert page.js_errors == []


def test_the_model_selector_shows_capability_badges(live_server, signed_in_page, screenshot):
    page = open_chat(signed_in_page, live_server, "summarizer-agent")
    header = page.locator("#model-selector-wrap > summary")
    expect(header.locator(".cap")).to_have_text(["tools", "vision", "JSON"])  # gemini-2.0-flash
    header.click()
    selector = page.locator("#model-selector")

    def caps(link: str):
        return selector.locator(f'.model-option:has(input[value="{link}"]) .cap')

    expect(caps("openai/gpt-4o")).to_have_text(["tools", "vision", "JSON"])
    expect(caps("ollama/llama3.2")).to_have_text(["tools", "JSON"])
    expect(caps("anthropic/claude-3-5-haiku-20241022")).to_have_text(["tools", "JSON"])
    expect(caps("openai/gpt-4")).to_have_text(["tools"])
    unknown = caps("anthropic/claude-3-5-sonnet-20240620")  # priced, not in the catalog
    expect(unknown).to_have_text(["?"])
    expect(unknown).to_have_attribute("title", re.compile("does not know"))
    expect(caps("openai/gpt-4o").nth(1)).to_have_attribute("title", "Takes images")
    screenshot(page, "model-selector-capabilities", full_page=False)
    assert page.js_errors == []
