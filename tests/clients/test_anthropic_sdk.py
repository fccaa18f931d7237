"""The official `anthropic` SDK against `llmrelay serve` as a real process: a Claude application's tool
loop with every provider as the serving link, a fallback from Claude to Gemini in the middle of one, and
token counting both ways.  Each test puts a token of its own in its prompt and checks that the intended
provider's fake received it and that the ledger recorded the request."""

from __future__ import annotations

import json
import sqlite3
import uuid

import anthropic
import pytest

from llmrelay.testing import faults
from tests.servers import wait_for

SERVING = {
    "anthropic": "anthropic/claude-3-5-sonnet-20241022",
    "openai": "openai/gpt-4o",
    "google": "google/gemini-2.0-flash",
    "openrouter": "openrouter/openai/gpt-4o",
    "ollama": "ollama/llama3.1",
}
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def client(relay) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=relay.server.url, api_key=relay.key, max_retries=0)


def token() -> str:
    return "tok" + uuid.uuid4().hex[:10]


def ledger_rows(relay, request_id: str, count: int) -> list[tuple]:
    """The request's rows (provider, status, kind, tool_calls) once the writer has written `count`."""
    def enough() -> list[tuple] | None:
        with sqlite3.connect(relay.home / "llmrelay.db") as db:
            rows = db.execute("SELECT provider, status, kind, tool_calls FROM ai_model_usage WHERE request_id = ? "
                              "ORDER BY attempt", (request_id,)).fetchall()
        return rows if len(rows) >= count else None
    return wait_for(f"{count} ledger rows", enough, 10)  # type: ignore[return-value]


def served_by(relay, provider: str, tok: str) -> None:
    assert any(tok in json.dumps(r.body) for r in relay.fakes[provider].requests), f"{provider} never saw {tok}"


@pytest.mark.parametrize("name", list(SERVING))
def test_a_claude_applications_streamed_tool_loop_with_each_provider_serving(relay, name):
    sdk, tok = client(relay), token()
    messages: list = [{"role": "user", "content": f"{tok}: what is the weather in Paris? use get_weather"}]
    with sdk.messages.stream(model=SERVING[name], max_tokens=300, messages=messages, tools=[WEATHER]) as stream:
        first = stream.get_final_message()
        assert stream.response.headers["x-llmrelay-provider"] == name
    assert first.stop_reason == "tool_use"
    [call] = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "get_weather" and call.input == {"city": "example"}
    messages += [{"role": "assistant", "content": first.content},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id,
                                               "content": "sunny, 21 C in Paris"}]}]
    raw = sdk.messages.with_raw_response.create(model=SERVING[name], max_tokens=300, messages=messages, tools=[WEATHER])
    final = raw.parse()
    assert final.stop_reason == "end_turn" and "sunny, 21 C in Paris" in final.content[0].text
    served_by(relay, name, tok)
    assert ledger_rows(relay, raw.headers["x-request-id"], 1) == [(name, "success", "chat", 0)]


def test_a_claude_tool_loop_falls_back_to_gemini_when_claude_is_overloaded(relay):
    sdk, tok = client(relay), token()
    messages: list = [{"role": "user", "content": f"{tok}: what is the weather in Paris? use get_weather"}]
    first = sdk.messages.create(model="agent:claude-then-gemini", max_tokens=300, messages=messages, tools=[WEATHER])
    call = first.content[-1]
    assert call.type == "tool_use" and call.id.startswith("toolu_")
    relay.fakes["anthropic"].script(faults.overloaded(model="claude-3-5-haiku-20241022"))
    messages += [{"role": "assistant", "content": first.content},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "21 C"}]}]
    raw = sdk.messages.with_raw_response.create(model="agent:claude-then-gemini", max_tokens=300, messages=messages,
                                                tools=[WEATHER])
    assert raw.headers["x-llmrelay-provider"] == "google" and raw.headers["x-llmrelay-fallback"] == "true"
    assert "21 C" in raw.parse().content[0].text
    served_by(relay, "google", tok)
    assert ledger_rows(relay, raw.headers["x-request-id"], 2) == [
        ("anthropic", "failed", "chat", 0), ("google", "fallback", "chat", 0)]


def test_a_claude_applications_prompt_cache_is_written_then_read_and_recorded(relay):
    sdk, tok = client(relay), token()
    ask = {"model": SERVING["anthropic"], "max_tokens": 50, "messages": [{"role": "user", "content": "Will it rain?"}],
           "system": [{"type": "text", "text": f"{tok}: you answer about the weather.",
                       "cache_control": {"type": "ephemeral"}}]}
    first = sdk.messages.create(**ask)
    raw = sdk.messages.with_raw_response.create(**ask)
    again = raw.parse()
    assert first.usage.cache_creation_input_tokens == 6  # the fake counts words: the system prompt's
    assert (again.usage.cache_read_input_tokens, again.usage.cache_creation_input_tokens) == (6, 0)
    assert ledger_rows(relay, raw.headers["x-request-id"], 1) == [("anthropic", "success", "chat", 0)]
    with sqlite3.connect(relay.home / "llmrelay.db") as db:
        cached, written, cost = db.execute("SELECT cached_prompt_tokens, cache_write_tokens, cost_usd FROM "
                                           "ai_model_usage WHERE request_id = ?", (raw.headers["x-request-id"],)
                                           ).fetchone()
    assert (cached, written) == (6, 0) and cost > 0


def test_count_tokens_by_anthropic_by_gemini_and_by_estimate(relay):
    sdk = client(relay)
    ask = {"messages": [{"role": "user", "content": "Count these six words, please."}], "system": "Be brief."}
    for model in ("anthropic/claude-3-5-sonnet-20241022", "google/gemini-2.0-flash"):
        raw = sdk.messages.with_raw_response.count_tokens(model=model, **ask)
        assert raw.headers["x-llmrelay-token-count"] == "provider", model
        assert raw.parse().input_tokens == 2 + 5, model  # the fakes count words: "Be brief." and the message
    raw = sdk.messages.with_raw_response.count_tokens(model="openai/gpt-4o", **ask)
    assert raw.headers["x-llmrelay-token-count"] == "estimate"
    assert raw.parse().input_tokens == 3 + 4 + -(-(len("Be brief.") + len(ask["messages"][0]["content"])) // 4)


def test_errors_are_the_sdks_own(relay):
    with pytest.raises(anthropic.NotFoundError) as err:
        client(relay).messages.create(model="agent:nobody", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert err.value.body["error"]["type"] == "not_found_error" and err.value.request_id.startswith("req_")
