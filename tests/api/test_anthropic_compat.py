"""/v1/messages over plain HTTP (the official SDK is in test_anthropic_sdk.py): the exact stream event
sequence, every error in Anthropic's shape, what is relayed to the provider and what is refused by name;
and the door's pieces as pure functions (the stream's block bookkeeping, the estimate, the parser)."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmrelay.api.anthropic_answer import Frames, message
from llmrelay.api.anthropic_format import conversation, effort_for, options, parse_count, parse_messages
from llmrelay.api.errors import Problem
from llmrelay.api.token_count import estimate
from llmrelay.content import Image, Message, Reasoning, Text, Tool, ToolCall, ToolResult
from llmrelay.testing import faults
from llmrelay.types import (
    AttemptEvent,
    ChatRequest,
    ChatResponse,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
)

HI = [{"role": "user", "content": "Hi there"}]
WEATHER = {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


def ask(model: str = "openai/gpt-4o", messages: list | None = None, **more) -> dict:
    return {"model": model, "max_tokens": 100, "messages": HI if messages is None else messages, **more}


def events(body: str) -> list[tuple[str, dict]]:
    """(event name, data) of each SSE event; the name must equal the data's type, as Anthropic sends it."""
    out = []
    for block in body.strip().split("\n\n"):
        name_line, data_line = block.split("\n")
        name, data = name_line.removeprefix("event: "), orjson.loads(data_line.removeprefix("data: "))
        assert data["type"] == name, block
        out.append((name, data))
    return out


def shape(events_: list[tuple[str, dict]]) -> list[str]:
    """The sequence, compressed: each event's name with its block index and delta or block type."""
    out = []
    for name, d in events_:
        if name == "content_block_start":
            out.append(f"start {d['index']} {d['content_block']['type']}")
        elif name == "content_block_delta":
            out.append(f"delta {d['index']} {d['delta']['type']}")
        elif name == "content_block_stop":
            out.append(f"stop {d['index']}")
        else:
            out.append(name)
    return [x for i, x in enumerate(out) if i == 0 or x != out[i - 1] or not x.startswith("delta")]


async def post(client, keys, body: dict | bytes, path: str = "/v1/messages", **headers):
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return await client.post(path, content=content, headers={"x-api-key": keys.alice, "anthropic-version": "2023-06-01",
                                                              "content-type": "application/json", **headers})


def error_of(r, status: int, etype: str) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == etype, body
    assert body["request_id"] == r.headers["request-id"] == "req_" + r.headers["x-request-id"]
    return body["error"]["message"]


# -- streams: the exact sequence --------------------------------------------------------------------------


async def test_a_text_stream_is_anthropics_exact_event_sequence(client, keys):
    r = await post(client, keys, ask(stream=True))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["request-id"] == "req_" + r.headers["x-request-id"]
    assert r.headers["x-llmrelay-provider"] == "openai"
    got = events(r.text)
    assert shape(got) == ["message_start", "ping", "start 0 text", "delta 0 text_delta", "stop 0", "message_delta",
                          "message_stop"]
    start = got[0][1]["message"]
    assert start["id"] == "msg_" + r.headers["x-request-id"] and start["content"] == [] and start["model"] == "gpt-4o"
    assert start["stop_reason"] is None and start["role"] == "assistant"
    text = "".join(d["delta"]["text"] for n, d in got if n == "content_block_delta")
    final = got[-2][1]
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert final["usage"]["output_tokens"] == len(text.split()) and final["usage"]["input_tokens"] > 0


async def test_a_thinking_text_and_tool_call_stream_numbers_its_blocks_in_order(client, keys):
    r = await post(client, keys, ask("anthropic/claude-sonnet-4-5", [{"role": "user", "content": "use get_weather"}],
                                     max_tokens=3000, stream=True, tools=[WEATHER], thinking={
                                         "type": "enabled", "budget_tokens": 1024}))
    got = events(r.text)
    assert shape(got) == ["message_start", "ping", "start 0 thinking", "delta 0 thinking_delta",
                          "delta 0 signature_delta", "stop 0", "start 1 tool_use", "delta 1 input_json_delta",
                          "stop 1", "message_delta", "message_stop"]
    call = next(d["content_block"] for n, d in got if n == "content_block_start" and d["index"] == 1)
    assert call["input"] == {} and call["name"] == "get_weather" and call["id"].startswith("toolu_")
    pieces = "".join(d["delta"]["partial_json"] for n, d in got if n == "content_block_delta" and d["index"] == 1)
    assert json.loads(pieces) == {"city": "example"} and got[-2][1]["delta"]["stop_reason"] == "tool_use"


async def test_an_empty_answer_is_a_stream_without_blocks(client, keys, fakes):
    fakes["openai"].script(faults.reply(text=""))
    r = await post(client, keys, ask(stream=True))
    assert shape(events(r.text)) == ["message_start", "ping", "message_delta", "message_stop"]


async def test_a_stream_that_fails_before_output_is_an_ordinary_error(client, keys, fakes):
    fakes["openai"].script(faults.http_error(500))
    r = await post(client, keys, ask(stream=True))
    assert "openai/gpt-4o" in error_of(r, 502, "api_error")


async def test_a_stream_that_breaks_after_output_ends_with_an_error_event(client, keys, fakes):
    fakes["anthropic"].script(faults.stream_error(after_chunks=2))
    r = await post(client, keys, ask("anthropic/claude-3-5-sonnet-20241022", stream=True))
    got = events(r.text)
    assert shape(got)[-2:] == ["delta 0 text_delta", "error"] and "message_stop" not in shape(got)
    error = got[-1][1]
    assert error["error"]["type"] == "overloaded_error" and error["request_id"] == r.headers["request-id"]


# -- what reaches the provider ----------------------------------------------------------------------------


async def test_sampling_stop_sequences_system_blocks_and_the_end_user_reach_the_provider(client, keys, fakes):
    r = await post(client, keys, ask("anthropic/claude-3-5-sonnet-20241022", temperature=0.5, top_p=0.9, top_k=7,
                                     stop_sequences=["fake"], metadata={"user_id": "end-user-1"},
                                     system=[{"type": "text", "text": "Be brief."},
                                             {"type": "text", "text": "Be kind."}]))
    assert r.status_code == 200, r.text
    sent = fakes["anthropic"].requests[-1].body
    assert (sent["temperature"], sent["top_p"], sent["top_k"]) == (0.5, 0.9, 7)
    assert sent["stop_sequences"] == ["fake"] and sent["metadata"] == {"user_id": "end-user-1"}
    assert sent["system"] == "Be brief.\n\nBe kind."
    assert r.json()["content"][0]["text"] == "Hello from "  # the fake stopped at the stop sequence
    r = await post(client, keys, ask(metadata={"user_id": "end-user-2"}, stop_sequences=["x", "y"]))
    sent = fakes["openai"].requests[-1].body
    assert sent["user"] == "end-user-2" and sent["stop"] == ["x", "y"]


async def test_the_key_may_come_as_a_bearer_token_and_beta_headers_are_accepted(client, keys):
    r = await client.post("/v1/messages", json=ask(), headers={"authorization": f"Bearer {keys.bob}",
                                                               "anthropic-beta": "some-feature-2026-01-01"})
    assert r.status_code == 200 and r.json()["type"] == "message"


# -- errors and refusals, each in Anthropic's shape --------------------------------------------------------


@pytest.mark.parametrize(("body", "message"), [
    (ask(max_tokens=None), "max_tokens: Input should be a valid integer"),
    ({"model": "gpt-4o", "messages": HI}, "max_tokens: Field required"),
    (ask(temperature=1.5), "temperature: Input should be less than or equal to 1"),
    (ask(messages=[]), "messages: List should have at least 1 item after validation, not 0"),
    (ask(frobnicate=True), "frobnicate: Extra inputs are not permitted"),
    (ask(service_tier="standard_only"), "service_tier: service tiers are Anthropic's own and are not relayed"),
    (ask(container="c1"), "container: containers (code execution) are Anthropic's own and are not relayed"),
    (ask(cache_control={"type": "persistent"}), "cache_control.type: Input should be 'ephemeral'"),
    (ask(cache_control="ephemeral"),
     "cache_control: Input should be a valid dictionary or object to extract fields from"),
    (ask(messages=[{"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {
        "type": "ephemeral", "ttl": "2h"}}]}]), "messages.0.content.0.cache_control.ttl: Input should be '5m' or '1h'"),
    (ask(system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral", "scope": "global"}}]),
     "system.0.cache_control.scope: Extra inputs are not permitted"),
    (ask(tools=[{**WEATHER, "cache_control": {"type": "ephemeral", "ttl": 60}}]),
     "tools.0.cache_control.ttl: Input should be '5m' or '1h'"),
    (ask(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [
        {"type": "text", "text": "r", "cache_control": {}}]}]}]),
     "messages.0.content.0.content.0.cache_control.type: Input should be 'ephemeral'"),
    (ask("anthropic/claude-sonnet-4-5", messages=[
        HI[0], {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s",
                                                  "cache_control": {"type": "ephemeral"}}]}]),
     "messages.1.content.0.cache_control: Extra inputs are not permitted"),
    (ask(messages=[{"role": "user", "content": "hi", "name": "x"}]), "messages.0.name: Extra inputs are not permitted"),
    (ask(messages=[{"role": "user", "content": [{"type": "document", "source": {}}]}]),
     "messages.0.content.0.type: content blocks of type 'document' are not supported (text, image, tool_use, "
     "tool_result, thinking and redacted_thinking are)"),
    (ask(messages=[{"role": "system", "content": "hi"}]), "messages.0.role: Input should be 'user' or 'assistant'"),
    (ask(tools=[{"type": "web_search_20250305", "name": "web_search"}]),
     "tools.0: server tools (web_search_20250305) are not relayed: llmrelay never runs a tool (custom tools, with "
     "name, description and input_schema, are)"),
    (ask(tools=[{"name": "bad name", "input_schema": {"type": "object"}}]),
     "tools.0.custom.name: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"),
    (ask(tools=[WEATHER, WEATHER]), "tools: Tool names must be unique."),
    (ask(tools=[WEATHER], tool_choice={"type": "none", "disable_parallel_tool_use": True}),
     "tool_choice.none.disable_parallel_tool_use: Extra inputs are not permitted"),
    (ask(tools=[WEATHER], tool_choice={"type": "tool", "name": "nope"}),
     "tool_choice names 'nope', which is not among the tools"),
    (ask(thinking={"type": "adaptive"}), "thinking.type: 'adaptive' thinking is not relayed: use {\"type\": "
                                         "\"enabled\", \"budget_tokens\": N}, which every provider's thinking level "
                                         "can honour"),
    (ask(thinking={"type": "enabled", "budget_tokens": 500}),
     "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"),
    (ask(thinking={"type": "enabled", "budget_tokens": 2000}),
     "`max_tokens` must be greater than `thinking.budget_tokens`"),
    (ask(output_config={"effort": "high"}),
     "output_config.effort: effort levels are Anthropic's own and are not relayed"),
    (ask(metadata={"user_id": "u", "tier": "gold"}), "metadata.tier: Extra inputs are not permitted"),
    (ask(messages=[{"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {}}]}]),
     "messages.0: `tool_use` ids were found without `tool_result` blocks immediately after: t1. Each `tool_use` block "
     "must have a corresponding `tool_result` block in the next message."),
    (ask(messages=[{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t9"}]}]),
     "messages.0: unexpected `tool_use_id` found in `tool_result` blocks: t9. Each `tool_result` block must have a "
     "corresponding `tool_use` block in the previous message."),
    (ask(messages=[{"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": "file:///x"}}]}]),
     "messages.0.content.0.source.url: an image URL must be http(s) or a base64 data: URL"),
    (ask(stop_sequences=[" "]), "stop_sequences: each stop sequence must contain non-whitespace"),
])
async def test_bad_or_unrelayable_input_is_a_400_naming_it(client, keys, body, message):
    r = await post(client, keys, body)
    assert error_of(r, 400, "invalid_request_error") == message


async def test_invalid_json_is_a_400(client, keys):
    r = await post(client, keys, b"{not json")
    assert error_of(r, 400, "invalid_request_error").startswith("the body is not valid JSON")


async def test_a_missing_key_is_an_authentication_error(client):
    r = await client.post("/v1/messages", json=ask())
    assert "API key is required" in error_of(r, 401, "authentication_error")


async def test_an_unknown_model_is_not_found(client, keys):
    r = await post(client, keys, ask("no-such-provider-model-xyz"))
    assert "no-such-provider-model-xyz" in error_of(r, 404, "not_found_error")


async def test_a_body_over_the_limit_is_request_too_large(client, keys, app):
    r = await post(client, keys, ask(messages=[{"role": "user", "content": "x" * (app.state.settings.max_body_bytes)}]))
    assert r.status_code == 413 and r.json()["error"]["type"] == "request_too_large"


async def test_a_provider_rejecting_the_request_is_a_bad_request(client, keys, fakes):
    fakes["openai"].script(faults.http_error(400, message="nope"))
    r = await post(client, keys, ask())
    assert "the provider rejected the request" in error_of(r, 400, "invalid_request_error")


# -- count_tokens over HTTP --------------------------------------------------------------------------------


async def test_count_tokens_refuses_what_its_endpoint_does_not_take(client, keys):
    r = await post(client, keys, ask(), path="/v1/messages/count_tokens")
    assert error_of(r, 400, "invalid_request_error") == "max_tokens: Extra inputs are not permitted"
    r = await post(client, keys, {"model": "nope-model-xyz", "messages": HI}, path="/v1/messages/count_tokens")
    error_of(r, 404, "not_found_error")


async def test_count_tokens_counts_an_agents_system_prompt_and_tools_too(client, keys, fakes):
    body = {"model": "agent:general-agent", "messages": HI}
    r = await post(client, keys, body, path="/v1/messages/count_tokens")
    assert r.headers["x-llmrelay-token-count"] == "provider"
    sent = fakes["anthropic"].requests[-1].body
    assert sent["system"] and sent["model"] == "claude-3-5-sonnet-20241022"
    answered = await post(client, keys, {**body, "max_tokens": 50})
    assert r.json()["input_tokens"] == answered.json()["usage"]["input_tokens"]


async def test_count_tokens_estimates_when_no_link_can_take_the_request(client, keys):
    r = await post(client, keys, {"model": "ollama/llama3.1", "messages": [{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]}]},
        path="/v1/messages/count_tokens")
    assert r.headers["x-llmrelay-token-count"] == "estimate" and "x-llmrelay-provider" not in r.headers
    assert r.json() == {"input_tokens": 3 + 4 + 1600}


# -- the pieces ---------------------------------------------------------------------------------------------


def test_thinking_budgets_map_to_levels_at_the_geometric_midpoints():
    assert [effort_for(b) for b in (1024, 2048, 2049, 8192, 8193, 64000)] == [
        "low", "low", "medium", "medium", "high", "high"]


def test_the_estimate_counts_every_part_and_tool():
    request = ChatRequest("m", (Message("user", [Text("a" * 40), Image(url="https://x/y.png")]),
                                Message("assistant", [ToolCall("c", "f", '{"a":1}')]),
                                Message("user", [ToolResult("c", "b" * 8)])), system="s" * 4,
                          tools=(Tool("f", "d", {"type": "object"}),))
    chars = 40 + 1 + 7 + 8 + 4 + 1 + 1 + len('{"type":"object"}')
    assert estimate(request) == 3 + 3 * 4 + 1600 + 10 + -(-chars // 4)


def render(evs: list) -> list[tuple[str, dict]]:
    frames = Frames("msg_1", "m")
    body = frames.start() + b"".join(frames.event(e) for e in evs)
    body += frames.finish(ChatResponse("", "m", "p", Usage(10, 5), "tool_calls", tool_calls=(ToolCall("a", "f"),)))
    return events(body.decode())


def test_interleaved_tool_calls_still_reassemble_by_index():
    got = render([TextDelta("hi"), ToolCallStart(0, "a", "f"), ToolCallDelta(0, '{"x"'), ToolCallStart(1, "b", "g"),
                  ToolCallDelta(0, ":1}"), ToolCallDelta(1, "{}"), ToolCallEnd(0), ToolCallEnd(1),
                  AttemptEvent(None)])  # type: ignore[arg-type]
    assert shape(got) == ["message_start", "ping", "start 0 text", "delta 0 text_delta", "stop 0", "start 1 tool_use",
                          "delta 1 input_json_delta", "stop 1", "start 2 tool_use", "delta 1 input_json_delta",
                          "delta 2 input_json_delta", "stop 2", "message_delta", "message_stop"]
    pieces = "".join(d["delta"]["partial_json"] for n, d in got if n == "content_block_delta" and d["index"] == 1)
    assert json.loads(pieces) == {"x": 1}
    assert got[-2][1]["usage"] == {"input_tokens": 10, "cache_creation_input_tokens": 0,
                                   "cache_read_input_tokens": 0, "output_tokens": 5}


def test_redacted_thinking_and_a_gemini_signature_have_their_places():
    got = render([ReasoningDelta(index=0, redacted="enc"), ReasoningDelta("hmm", 1), ToolCallStart(0, "a", "f", "sig")])
    assert shape(got)[2:9] == ["start 0 redacted_thinking", "stop 0", "start 1 thinking", "delta 1 thinking_delta",
                               "stop 1", "start 2 tool_use", "stop 2"]
    assert got[2][1]["content_block"] == {"type": "redacted_thinking", "data": "enc"}
    assert got[7][1]["content_block"]["id"] == "a__thought__sig"


def test_an_answer_names_a_stop_reason_for_every_finish():
    def stop(finish: str, calls: tuple = ()) -> str:
        return orjson.loads(message("m", ChatResponse("t", "m", "p", Usage(), finish, tool_calls=calls)))[
            "stop_reason"]
    call = (ToolCall("a", "f", "{}"),)
    assert [stop("stop"), stop("length"), stop("content_filter"), stop("tool_calls"), stop("tool_calls", call),
            stop("stop", call)] == ["end_turn", "max_tokens", "refusal", "end_turn", "tool_use", "tool_use"]
    broken = orjson.loads(message("m", ChatResponse("", "m", "p", Usage(), "tool_calls",
                                                    tool_calls=(ToolCall("a", "f", "not json"),))))
    assert broken["content"] == [{"type": "tool_use", "id": "a", "name": "f", "input": {"arguments": "not json"}}]


# -- properties of the parser and of the answer ------------------------------------------------------------

json_values = st.recursive(st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=4),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                       max_size=3), max_leaves=8)
FIELDS = ["model", "max_tokens", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
          "metadata", "stop_sequences", "temperature", "top_p", "top_k", "stream", "service_tier", "role",
          "content", "type", "text", "input", "tool_use_id", "name", "input_schema", "budget_tokens",
          "cache_control", "ttl"]
bodies = st.recursive(st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
                      lambda inner: st.dictionaries(st.sampled_from(FIELDS), inner | st.lists(inner, max_size=3),
                                                    max_size=6), max_leaves=12)


@given(bodies)
@settings(max_examples=400, suppress_health_check=list(HealthCheck), deadline=None)
def test_any_body_is_either_read_or_refused_with_a_400(body):
    for parse in (parse_messages, parse_count):
        try:
            parsed = parse(orjson.dumps(body))
            system, _ = conversation(parsed)
            options(parsed, system, "rid")
        except Problem as exc:
            assert exc.status == 400 and exc.detail


ids = st.text(alphabet="abcXYZ019_-", min_size=1, max_size=8)
calls = st.builds(ToolCall, ids, st.sampled_from(["get_weather", "f-2"]),
                  st.dictionaries(st.text(max_size=4), json_values, max_size=3).map(
                      lambda d: json.dumps(d, ensure_ascii=False)),
                  st.none() | st.sampled_from(["gemini+sig/=", "s2"]))
answers = st.builds(
    lambda text, reasoning, tool_calls: ChatResponse(text, "m", "p", Usage(), "stop", tool_calls=tuple(
        {c.id: c for c in tool_calls}.values()), reasoning=tuple(reasoning)),
    st.text(max_size=10), st.lists(st.builds(Reasoning, st.text(max_size=8), st.text(min_size=1, max_size=6),
                                             provider=st.just("anthropic")), max_size=2),
    st.lists(calls, max_size=3))


@given(answers)
@settings(max_examples=200, deadline=None)
def test_what_the_door_answers_comes_back_as_the_same_parts(resp):
    """A client sends the answer's content back as the assistant turn: the door reads the same parts
    (thinking with its signature, the text, each call with its id and Gemini signature)."""
    content = orjson.loads(message("m", resp))["content"]
    results = [{"type": "tool_result", "tool_use_id": b["id"], "content": "ok"} for b in content
               if b["type"] == "tool_use"]
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": content or "x"}]
    if results:
        messages.append({"role": "user", "content": results})
    _, turns = conversation(parse_messages(orjson.dumps(ask(messages=messages))))
    expected = (*resp.reasoning, *((Text(resp.text),) if resp.text else ()), *resp.tool_calls)
    assert turns[1].parts == (expected or (Text("x"),))
    assert [p.call_id for p in turns[2].parts] == [c.id for c in resp.tool_calls] if results else len(turns) == 2
