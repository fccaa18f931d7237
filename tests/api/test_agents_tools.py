"""/api/ai/agents for agent-grade requests, through the fakes over real HTTP: answers that call tools
(JSON and SSE), a tool loop continued by sending the results as the message, images that reach the
provider, JSON answers, sampling settings, stored conversations that keep every part, and bad input
refused with the field named."""

from __future__ import annotations

import json

import orjson
import pytest

from llmrelay.agents import Agent, AgentOutput, AgentTool, ProviderOption
from llmrelay.testing import faults

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEElEQVR4nGP4z8AARAwQCgAf7gP9i18U1AAAAABJRU5ErkJggg=="
WEATHER = {"name": "get_weather", "description": "The weather in a city now",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
CITY = {"type": "object", "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
        "required": ["city", "celsius"], "additionalProperties": False}


def sse_events(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], orjson.loads(lines["data"])))
    return out


async def ask(client, keys, who="alice", **body):
    r = await client.post("/api/ai/agents", headers=keys.auth(who), json=body)
    assert r.status_code == 200, r.text
    return r.json()


async def test_an_answer_that_calls_tools_carries_them(client, keys, fakes):
    fakes["anthropic"].script(faults.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}]))
    d = await ask(client, keys, agentId="general-agent", message="Weather in Paris?", tools=[WEATHER])
    assert d["finishReason"] == "tool_calls" and d["usedProvider"] == "anthropic"
    [call] = d["toolCalls"]
    assert call["type"] == "toolCall" and call["name"] == "get_weather" and call["id"]
    assert json.loads(call["arguments"]) == {"city": "Paris"}
    sent = fakes["anthropic"].requests[-1].body
    assert [t["name"] for t in sent["tools"]] == ["get_weather"]
    assert sent["tools"][0]["input_schema"] == WEATHER["parameters"]


async def test_the_stream_shows_tool_calls_as_they_come(client, keys, fakes):
    fakes["anthropic"].script(faults.reply(
        tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}},
                    {"name": "get_weather", "arguments": {"city": "Rome"}}]))
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"), json={
        "agentId": "general-agent", "message": "Paris and Rome?", "tools": [WEATHER], "stream": True})
    events = sse_events(r.text)
    assert events[-1][0] == "done"
    done = events[-1][1]
    starts = [d for e, d in events if e == "toolCall"]
    assert [(s["index"], s["name"]) for s in starts] == [(0, "get_weather"), (1, "get_weather")]
    assert [s["id"] for s in starts] == [c["id"] for c in done["toolCalls"]]
    for i, call in enumerate(done["toolCalls"]):
        pieces = "".join(d["arguments"] for e, d in events if e == "toolCallDelta" and d["index"] == i)
        assert json.loads(pieces) == json.loads(call["arguments"])
    assert [json.loads(c["arguments"])["city"] for c in done["toolCalls"]] == ["Paris", "Rome"]
    assert done["finishReason"] == "tool_calls"


async def test_a_tool_loop_continues_by_conversation_with_the_results_as_the_message(client, keys, fakes):
    first = await ask(client, keys, agentId="general-agent", message="Use get_weather for Paris", tools=[WEATHER])
    [call] = first["toolCalls"]
    assert json.loads(call["arguments"]) == {"city": "example"}  # the fake fills the schema's required fields
    second = await ask(client, keys, agentId="general-agent", conversationId=first["conversationId"], tools=[WEATHER],
                       message=[{"type": "toolResult", "callId": call["id"], "content": '{"celsius": 18}'}])
    assert second["finishReason"] == "stop" and "toolCalls" not in second
    assert 'The tools said: {"celsius": 18}' in second["response"]
    sent = fakes["anthropic"].requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert [b["type"] for b in sent[1]["content"]] == ["tool_use"]
    assert sent[1]["content"][0]["id"] == call["id"] and sent[1]["content"][0]["input"] == {"city": "example"}
    assert sent[2]["content"][0] == {"type": "tool_result", "tool_use_id": call["id"], "content": '{"celsius": 18}'}

    conv = (await client.get(f"/api/ai/conversations/{first['conversationId']}", headers=keys.auth("alice"))).json()
    msgs = conv["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user", "assistant"]
    assert "parts" not in msgs[0] and msgs[0]["content"] == "Use get_weather for Paris"
    assert msgs[1]["parts"] == [call] and msgs[1]["content"] == ""
    assert msgs[2]["parts"] == [{"type": "toolResult", "callId": call["id"], "content": '{"celsius": 18}'}]
    assert "parts" not in msgs[3] and msgs[3]["content"] == second["response"]


async def test_a_tool_loop_without_a_stored_conversation(client, keys, fakes):
    """The client keeps the history itself: the answer's tool calls go back as an assistant turn."""
    fakes["openai"].script(faults.reply(tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}]))
    first = await ask(client, keys, agentId="code-review-agent", message="Oslo?", tools=[WEATHER])
    assert first["usedProvider"] == "openai"
    history = [{"role": "user", "content": "Oslo?"}, {"role": "assistant", "content": first["toolCalls"]}]
    result = {"type": "toolResult", "callId": first["toolCalls"][0]["id"], "content": "-3 and snowing"}
    second = await ask(client, keys, agentId="code-review-agent", conversationHistory=history, message=[result],
                       tools=[WEATHER])
    assert "The tools said: -3 and snowing" in second["response"]
    sent = fakes["openai"].requests[-1].body["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool"]
    assert sent[2]["tool_calls"][0]["function"] == {"name": "get_weather",
                                                     "arguments": first["toolCalls"][0]["arguments"]}
    assert sent[3] == {"role": "tool", "tool_call_id": result["callId"], "content": "-3 and snowing"}


@pytest.mark.parametrize("image", [
    {"type": "image", "data": PNG, "mediaType": "image/png"},
    {"type": "image", "url": "data:image/png;base64," + PNG},
])
async def test_an_image_reaches_the_provider_and_stays_in_the_conversation(client, keys, fakes, image):
    first = await ask(client, keys, agentId="general-agent", message=[{"type": "text", "text": "What is this?"}, image])
    assert "I saw 1 image" in first["response"]
    block = fakes["anthropic"].requests[-1].body["messages"][0]["content"][1]
    assert block == {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    second = await ask(client, keys, agentId="general-agent", conversationId=first["conversationId"],
                       message="And what colour is it?")
    assert "I saw 1 image" in second["response"]  # the stored turn sent its image again
    msgs = (await client.get(f"/api/ai/conversations/{first['conversationId']}",
                             headers=keys.auth("alice"))).json()["messages"]
    assert msgs[0]["content"] == "What is this?"
    assert msgs[0]["parts"] == [{"type": "text", "text": "What is this?"},
                                {"type": "image", "data": PNG, "mediaType": "image/png"}]


async def test_an_image_skips_a_link_whose_model_has_no_vision(client, keys, fakes):
    d = await ask(client, keys, agentId="summarizer-agent", preferredProvider="anthropic",
                  message=[{"type": "text", "text": "Describe"},
                           {"type": "image", "data": PNG, "mediaType": "image/png"}])
    skipped = d["attemptedProviders"][0]
    assert (skipped["provider"], skipped["status"]) == ("anthropic", "skipped")  # claude-3-5-haiku: no vision
    assert "images" in skipped["error"]
    assert d["usedProvider"] == "google" and "I saw 1 image" in d["response"]


async def test_a_json_schema_answer_fits_the_schema(client, keys, fakes):
    d = await ask(client, keys, agentId="general-agent", message="Weather in Paris as JSON",
                  responseFormat={"type": "json_schema", "name": "weather", "schema": CITY})
    assert json.loads(d["response"]) == {"city": "example", "celsius": 1.5}
    assert d["structuredOutput"] in ("native", "tool") and "toolCalls" in d and d["toolCalls"] == []


async def test_a_json_object_answer_is_json(client, keys, fakes):
    d = await ask(client, keys, agentId="local-agent", message="Say hi in JSON", responseFormat={"type": "json_object"})
    assert isinstance(json.loads(d["response"]), dict)
    assert fakes["ollama"].requests[-1].body["format"] == "json"


async def test_sampling_settings_reach_the_provider(client, keys, fakes):
    await ask(client, keys, agentId="code-review-agent", message="Hi", topP=0.5, seed=7, presencePenalty=0.25,
              frequencyPenalty=-0.5)
    sent = fakes["openai"].requests[-1].body
    assert (sent["top_p"], sent["seed"], sent["presence_penalty"], sent["frequency_penalty"]) == (0.5, 7, 0.25, -0.5)


@pytest.mark.parametrize(("chain", "body", "field"), [
    (("mistral", "llama3.2"), {"message": [{"type": "image", "data": PNG, "mediaType": "image/png"}]}, "message"),
    (("llava", "llama3.2-vision"), {"tools": [WEATHER]}, "tools"),
])
async def test_what_no_link_can_take_is_refused_naming_the_field(app, client, keys, fakes, chain, body, field):
    """Text-only models cannot see an image, and Ollama's vision models call no tools (the catalog's
    flags): each link is skipped with the reason, none is called, and the answer names the body field."""
    agent = Agent(id="local-pair", name="Local pair", default_provider="ollama", supported_providers=tuple(
        ProviderOption(provider="ollama", model=m, priority=i + 1) for i, m in enumerate(chain)))
    app.state.relay.agents[agent.id] = agent
    try:
        r = await client.post("/api/ai/agents", headers=keys.auth("alice"),
                              json={"agentId": agent.id, "message": "Hi", **body})
    finally:
        del app.state.relay.agents[agent.id]
    assert r.status_code == 400, r.text
    p = r.json()
    assert p["type"].endswith("unsupported-parameter") and p["field"] == field
    assert [a["status"] for a in p["attemptedProviders"]] == ["skipped", "skipped"]
    assert all(("images" if field == "message" else "tool") in a["error"] for a in p["attemptedProviders"])
    assert fakes["ollama"].requests == []


async def test_an_agents_own_tools_and_output_format_are_listed_and_used(app, client, keys, fakes):
    agent = Agent(id="weather-agent", name="Weather", tools=(AgentTool(**WEATHER),),
                  output_format=AgentOutput(type="json_object"), default_provider="anthropic",
                  supported_providers=(ProviderOption(provider="anthropic", model="claude-sonnet-4-5", priority=1),))
    app.state.relay.agents[agent.id] = agent
    try:
        listed = {a["id"]: a for a in (await client.get("/api/ai/agents", headers=keys.auth("alice"))).json()}
        assert listed["weather-agent"]["tools"] == [{**WEATHER, "strict": None}]
        assert listed["weather-agent"]["outputFormat"] == {"type": "json_object", "name": "response", "schema": None,
                                                           "strict": None}
        assert listed["general-agent"]["tools"] == [] and listed["general-agent"]["outputFormat"] is None
        d = await ask(client, keys, agentId="weather-agent", message="Use get_weather please")
        assert [c["name"] for c in d["toolCalls"]] == ["get_weather"]
        assert "get_weather" in [t["name"] for t in fakes["anthropic"].requests[-1].body["tools"]]
    finally:
        del app.state.relay.agents[agent.id]


async def test_the_openapi_document_describes_parts_tools_and_the_answer(client):
    doc = (await client.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    ask_props = schemas["AskAgent"]["properties"]
    assert {"tools", "toolChoice", "parallelToolCalls", "responseFormat", "topP", "topK", "seed", "presencePenalty",
            "frequencyPenalty", "reasoningEffort"} <= set(ask_props)
    message = orjson.dumps(ask_props["message"]).decode()
    for part in ("TextPart", "ImagePart", "ToolResultPart"):
        assert part in message
    assert {"toolCalls", "reasoning", "structuredOutput"} <= set(schemas["AgentAnswer"]["properties"])
    assert "parts" in schemas["StoredMessage"]["properties"]
    assert {"tools", "outputFormat"} <= set(schemas["AgentOut"]["properties"])


GOOD_CALL = {"type": "toolCall", "id": "call_1", "name": "get_weather", "arguments": '{"city": "Oslo"}'}


@pytest.mark.parametrize(("body", "status", "field"), [
    ({"message": []}, 422, "message"),
    ({"message": 5}, 422, "message"),
    ({"message": [{"type": "image", "url": "ftp://example.com/a.png"}]}, 422, "message.0.url"),
    ({"message": [{"type": "image", "url": "data:text/plain;base64,aGk="}]}, 422, "message.0.url"),
    ({"message": [{"type": "text", "text": "x"}, {"type": "image", "data": "not base64!", "mediaType": "image/png"}]},
     422, "message.1.data"),
    ({"message": [{"type": "image", "data": PNG}]}, 422, "message.0"),
    ({"message": [GOOD_CALL]}, 422, "message.0"),
    ({"message": [{"type": "video", "url": "https://x"}]}, 422, "message.0"),
    ({"message": [{"type": "text", "text": "  "}]}, 400, "message"),
    ({"message": [{"type": "toolResult", "callId": "call_9", "content": "18"}]}, 400, "message"),
    ({"message": "Hi", "conversationHistory": [{"role": "assistant", "content": [GOOD_CALL]}]}, 400, "message"),
    ({"message": [{"type": "toolResult", "callId": "call_1", "content": "1"}],
      "conversationHistory": [{"role": "assistant", "content": [GOOD_CALL]},
                              {"role": "assistant", "content": "more"}]}, 400, "conversationHistory.1.content"),
    ({"conversationHistory": [{"role": "assistant", "content": [{**GOOD_CALL, "arguments": "[1]"}]}]}, 422,
     "conversationHistory.0.content.0.arguments"),
    ({"conversationHistory": [{"role": "assistant", "content": [{"type": "image", "data": PNG,
                                                                 "mediaType": "image/png"}]}]},
     422, "conversationHistory.0"),
    ({"tools": [{"name": "get weather!"}]}, 422, "tools.0.name"),
    ({"tools": [{"name": "f", "parameters": {"type": "string"}}]}, 422, "tools.0.parameters"),
    ({"tools": [WEATHER, WEATHER]}, 422, "tools"),
    ({"toolChoice": "sometimes"}, 422, "toolChoice"),
    ({"toolChoice": {"name": "nope"}, "tools": [WEATHER]}, 400, "toolChoice.name"),
    ({"toolChoice": "required"}, 400, "toolChoice"),
    ({"responseFormat": {"type": "json_schema"}}, 422, "responseFormat"),
    ({"responseFormat": {"type": "xml"}}, 422, "responseFormat.type"),
    ({"topP": 1.5}, 422, "topP"),
    ({"topK": 0}, 422, "topK"),
    ({"seed": "seven"}, 422, "seed"),
    ({"presencePenalty": 3}, 422, "presencePenalty"),
    ({"reasoningEffort": "max"}, 422, "reasoningEffort"),
    ({"parallelToolCalls": "maybe"}, 422, "parallelToolCalls"),
])
async def test_bad_input_names_the_field(client, keys, fakes, body, status, field):
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"),
                          json={"agentId": "general-agent", "message": "Hi", **body})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["field"] == field, r.json()
    assert fakes["anthropic"].requests == []  # refused before any provider was called


async def test_reasoning_streams_as_its_own_events_and_comes_back_with_the_answer(client, keys, fakes):
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"), json={
        "agentId": "general-agent", "message": "Think about it", "reasoningEffort": "low", "stream": True,
        "preferredProvider": "anthropic", "preferredModel": "claude-sonnet-4-5"})
    events = sse_events(r.text)
    assert events[-1][0] == "done", events[-1]
    done = events[-1][1]
    thought = "".join(d["text"] for e, d in events if e == "reasoning")
    assert thought and [r["text"] for r in done["reasoning"]] == [thought]
    assert done["reasoning"][0]["signature"] and done["reasoning"][0]["provider"] == "anthropic"
    first_reasoning = next(i for i, (e, _) in enumerate(events) if e == "reasoning")
    first_delta = next(i for i, (e, _) in enumerate(events) if e == "delta")
    assert first_reasoning < first_delta
    # the signed thinking goes back with the history, and the fake accepts only its own signature
    again = await ask(client, keys, agentId="general-agent", conversationId=done["conversationId"], message="And?",
                      reasoningEffort="low", preferredProvider="anthropic", preferredModel="claude-sonnet-4-5")
    sent = fakes["anthropic"].requests[-1].body["messages"][1]["content"]
    assert sent[0] == {"type": "thinking", "thinking": thought, "signature": done["reasoning"][0]["signature"]}
    assert again["reasoning"]
