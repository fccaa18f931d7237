"""/v1/responses over plain HTTP (in-process, the fakes upstream): the response object and its typed
stream events, validated by the openai SDK's own pydantic types; what is refused and how; store,
previous_response_id, GET and DELETE with their owner; the ledger rows; reasoning going back only to
the provider that wrote it.  (The SDK as a client: test_responses_sdk.py; frameworks against
`llmrelay serve`: tests/clients/test_responses_clients.py.)"""

from __future__ import annotations

import base64
import json

import orjson
import pytest
from openai.types.responses import Response as SDKResponse
from openai.types.responses import ResponseStreamEvent
from pydantic import TypeAdapter
from sqlalchemy import select

from llmrelay.db.models import AIModelUsage
from llmrelay.testing import faults

EVENT = TypeAdapter(ResponseStreamEvent)
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}}
ASK_WEATHER = "what is the weather in Paris? use get_weather"


def sse(text: str) -> list[dict]:
    """The events of a Responses stream, each checked against the SDK's strict type and its `event:` line."""
    out = []
    for block in text.strip().split("\n\n"):
        head, data = block.split("\n", 1)
        event = orjson.loads(data.removeprefix("data: "))
        assert head == "event: " + event["type"]
        EVENT.validate_python(event)
        out.append(event)
    assert [e["sequence_number"] for e in out] == list(range(len(out)))
    return out


async def create(client, keys, who: str = "alice", **body):
    return await client.post("/v1/responses", headers=keys.auth(who), json={"model": "openai/gpt-4o", **body})


async def ledger_rows(app, request_id: str) -> list[AIModelUsage]:
    await app.state.relay.ledger.recorder.flush()
    async with app.state.relay.ledger.sessions() as s:
        stmt = select(AIModelUsage).where(AIModelUsage.request_id == request_id).order_by(AIModelUsage.attempt)
        return list((await s.execute(stmt)).scalars().all())


# -- the response object -------------------------------------------------------------------------------


async def test_a_response_is_the_sdks_response_with_llmrelays_headers(app, client, keys, fakes):
    r = await create(client, keys, input="Hello there", instructions="Be brief.", metadata={"ticket": "42"},
                     temperature=0.5, max_output_tokens=300)
    assert r.status_code == 200, r.text
    rid = r.headers["x-request-id"]
    body = r.json()
    parsed = SDKResponse.model_validate(body)
    assert parsed.id == "resp_" + rid and parsed.status == "completed" and parsed.model == "gpt-4o"
    assert parsed.output_text == "Hello from fake openai (gpt-4o). You said: Hello there"
    assert body["output"][0]["id"] == "msg_" + rid and body["output"][0]["content"][0]["annotations"] == []
    assert body["instructions"] == "Be brief." and body["metadata"] == {"ticket": "42"}
    assert (body["temperature"], body["max_output_tokens"], body["store"]) == (0.5, 300, True)
    u = body["usage"]
    assert u["total_tokens"] == u["input_tokens"] + u["output_tokens"] > 0
    assert u["input_tokens_details"]["cached_tokens"] == 0 and u["output_tokens_details"] == {"reasoning_tokens": 0}
    assert r.headers["x-llmrelay-provider"] == "openai" and r.headers["x-llmrelay-fallback"] == "false"
    assert float(r.headers["x-llmrelay-cost-usd"]) > 0
    sent = fakes["openai"].requests[-1].body
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["max_completion_tokens"] == 300 and sent["temperature"] == 0.5


async def test_input_items_become_the_conversation(client, keys, fakes):
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
    r = await create(client, keys, model="anthropic/claude-3-5-sonnet-20241022", instructions="Rule one.", input=[
        {"type": "message", "role": "developer", "content": "Rule two."},
        {"role": "user", "content": [
            {"type": "input_text", "text": "Look:"},
            {"type": "input_image", "detail": "auto", "image_url": f"data:image/png;base64,{png}"}]},
        {"type": "message", "role": "assistant", "id": "msg_1", "status": "completed",
         "content": [{"type": "output_text", "text": "A picture.", "annotations": []}]},
        {"role": "user", "content": "And now?"}])
    assert r.status_code == 200, r.text
    sent = fakes["anthropic"].requests[-1].body
    assert sent["system"] == "Rule one.\n\nRule two."
    assert [m["role"] for m in sent["messages"]] == ["user", "assistant", "user"]
    assert sent["messages"][0]["content"][1]["source"] == {"type": "base64", "media_type": "image/png", "data": png}
    assert sent["messages"][1]["content"] in ("A picture.", [{"type": "text", "text": "A picture."}])


async def test_a_function_tool_loop_over_items(client, keys, fakes):
    model = "anthropic/claude-3-5-sonnet-20241022"
    items: list = [{"role": "user", "content": ASK_WEATHER}]
    first = (await create(client, keys, model=model, input=items, tools=[WEATHER])).json()
    call = first["output"][-1]
    assert call["type"] == "function_call" and call["name"] == "get_weather" and call["status"] == "completed"
    assert call["id"].startswith("fc_") and call["call_id"].startswith("toolu_")
    assert first["tools"] == [{**WEATHER}] and first["tool_choice"] == "auto"
    items += [*first["output"], {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny, 21 C"}]
    final = await create(client, keys, model=model, input=items, tools=[WEATHER])
    assert final.status_code == 200, final.text
    assert "The tools said: sunny, 21 C" in SDKResponse.model_validate(final.json()).output_text
    blocks = fakes["anthropic"].requests[-1].body["messages"][-1]["content"]
    assert blocks[0] == {"type": "tool_result", "tool_use_id": call["call_id"], "content": "sunny, 21 C"}


async def test_a_named_tool_choice_and_structured_output_reach_the_provider(client, keys, fakes):
    r = await create(client, keys, input="Paris", tools=[WEATHER], parallel_tool_calls=False,
                     tool_choice={"type": "function", "name": "get_weather"})
    assert r.status_code == 200 and r.json()["tool_choice"] == {"type": "function", "name": "get_weather"}
    sent = fakes["openai"].requests[-1].body
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    fmt = {"type": "json_schema", "name": "weather", "schema": schema, "strict": True}
    r = await create(client, keys, model="anthropic/claude-3-5-sonnet-20241022", input="Paris", text={"format": fmt})
    assert r.status_code == 200 and r.headers["x-llmrelay-structured-output"] == "tool"
    assert json.loads(SDKResponse.model_validate(r.json()).output_text) == {"city": "example"}
    assert r.json()["text"] == {"format": fmt}


async def test_a_cut_answer_is_incomplete_with_the_reason(client, keys, fakes):
    fakes["openai"].script(*[faults.reply(text="Too long", finish="length")] * 2)
    body = (await create(client, keys, input="Hi", max_output_tokens=2)).json()
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["status"] == "incomplete"
    events = sse((await create(client, keys, input="Hi", max_output_tokens=2, stream=True)).text)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


async def test_the_ledger_rows_are_chat_rows_under_the_request_id(app, client, keys, fakes):
    fakes["anthropic"].script(faults.overloaded())
    r = await create(client, keys, model="agent:general-agent", input="Hi")
    assert r.status_code == 200 and r.headers["x-llmrelay-fallback"] == "true"
    rows = await ledger_rows(app, r.headers["x-request-id"])
    assert [(x.provider, x.status, x.kind) for x in rows] == [("anthropic", "failed", "chat"),
                                                               ("openai", "fallback", "chat")]
    assert rows[1].agent_id == "general-agent"


# -- what is refused -----------------------------------------------------------------------------------


@pytest.mark.parametrize("tool", [
    {"type": "web_search"}, {"type": "web_search_preview"}, {"type": "file_search", "vector_store_ids": ["vs_1"]},
    {"type": "computer_use_preview", "display_width": 1024, "display_height": 768, "environment": "linux"},
    {"type": "code_interpreter", "container": {"type": "auto"}}, {"type": "image_generation"},
    {"type": "mcp", "server_label": "x", "server_url": "https://example.com"}, {"type": "local_shell"}])
async def test_hosted_tools_are_refused_naming_them(client, keys, fakes, tool):
    r = await create(client, keys, input="Hi", tools=[WEATHER, tool])
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["param"] == "tools[1]" and error["code"] == "unsupported_parameter"
    assert repr(tool["type"]) in error["message"] and "built-in (hosted) tools" in error["message"]
    assert fakes["openai"].requests == []


@pytest.mark.parametrize(("extra", "param", "says"), [
    ({"background": True}, "background", "background"),
    ({"conversation": "conv_1"}, "conversation", "previous_response_id"),
    ({"prompt": {"id": "pmpt_1"}}, "prompt", "stored prompts"),
    ({"service_tier": "flex"}, "service_tier", "service tiers"),
    ({"prompt_cache_key": "k"}, "prompt_cache_key", "prompt cache"),
    ({"include": ["message.output_text.logprobs"]}, "include", "logprobs"),
    ({"truncation": "auto"}, "truncation", "disabled"),
    ({"text": {"verbosity": "low"}}, "text.verbosity", "verbosity"),
    ({"reasoning": {"effort": "minimal"}}, "reasoning.effort", "low, medium and high"),
    ({"reasoning": {"summary": "detailed"}}, "reasoning.summary", "auto"),
    ({"tool_choice": {"type": "web_search"}}, "tool_choice", "web_search"),
    ({"stream_options": {"include_obfuscation": True}}, "stream_options", "obfuscation"),
    ({"tools": [{**WEATHER, "defer_loading": True}]}, "tools[0].defer_loading", "defer_loading"),
    ({"input": [{"role": "user", "content": [{"type": "input_image", "detail": "auto", "file_id": "file_1"}]}]},
     "input[0].content[0].file_id", "keeps no files"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "file_1"}]}]},
     "input[0].content[0]", "input_file"),
    ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0]", "previous_response_id"),
    ({"input": [{"type": "web_search_call", "id": "ws_1", "status": "completed"}]}, "input[0].type",
     "web_search_call"),
    ({"input": [{"role": "critic", "content": "x"}]}, "input[0].role", "critic"),
    ({"temperature": 3}, "temperature", "less than or equal to 2"),
    ({"metadata": {"k": "v" * 513}}, "metadata", "512"),
])
async def test_what_cannot_be_honoured_is_a_400_naming_it(client, keys, fakes, extra, param, says):
    r = await create(client, keys, **{"input": "Hi", **extra})
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == param and says in error["message"], error
    assert error["type"] == "invalid_request_error"
    assert fakes["openai"].requests == []


async def test_unknown_parameters_are_refused_as_openai_refuses_them(client, keys):
    r = await create(client, keys, input="Hi", top_k=3)
    assert r.status_code == 400 and r.json()["error"]["message"] == "Unrecognized request argument supplied: top_k"
    r = await client.post("/v1/responses", headers=keys.auth("alice"), json={"model": "openai/gpt-4o"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input"


async def test_their_null_or_off_values_are_accepted(client, keys):
    r = await create(client, keys, input="Hi", background=False, include=["reasoning.encrypted_content"],
                     truncation="disabled", service_tier=None, prompt=None, store=True, stream=False,
                     tools=[{**WEATHER, "defer_loading": False}], reasoning={"effort": None, "summary": "auto"},
                     stream_options=None, text={"format": {"type": "text"}, "verbosity": None})
    assert r.status_code == 200, r.text
    r = await create(client, keys, input="Hi", service_tier="auto", text={"verbosity": "medium"})  # the defaults
    assert r.status_code == 200, r.text


async def test_function_calls_and_outputs_must_pair_up_as_openai_says(client, keys, fakes):
    call = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"}
    r = await create(client, keys, input=[{"role": "user", "content": "Hi"}, call], tools=[WEATHER])
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "No tool output found for function call call_1."
    assert r.json()["error"]["param"] == "input"
    r = await create(client, keys, tools=[WEATHER], input=[{"role": "user", "content": "Hi"}, {
        "type": "function_call_output", "call_id": "call_9", "output": "x"}])
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "No tool call found for function call output with call_id call_9."
    assert fakes["openai"].requests == []


async def test_a_failure_before_any_output_is_an_http_error(client, keys, fakes):
    fakes["openai"].script(faults.http_error(503))
    r = await create(client, keys, input="Hi", stream=True)
    assert r.status_code == 502 and r.headers["content-type"] == "application/json"
    assert r.json()["error"]["code"] == "all_providers_failed"
    r = await create(client, keys, model="agent:no-such-agent", input="Hi")
    assert r.status_code == 404 and r.json()["error"]["param"] == "model"


# -- streams -----------------------------------------------------------------------------------------------


async def test_a_stream_is_the_typed_events_in_order(client, keys, fakes):
    r = await create(client, keys, input="Hello stream", stream=True)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-llmrelay-provider"] == "openai"
    events = sse(r.text)
    kinds = [e["type"] for e in events]
    assert kinds[:5] == ["response.created", "response.in_progress", "response.output_item.added",
                         "response.content_part.added", "response.output_text.delta"]
    assert kinds[-4:] == ["response.output_text.done", "response.content_part.done", "response.output_item.done",
                          "response.completed"]
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert text == "Hello from fake openai (gpt-4o). You said: Hello stream"
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["usage"] is None
    done = events[-1]["response"]
    assert done["id"] == "resp_" + r.headers["x-request-id"] and done["status"] == "completed"
    assert done["output"] == [events[-2]["item"]] and done["usage"]["output_tokens"] > 0
    assert SDKResponse.model_validate(done).output_text == text


async def test_a_streamed_function_call(client, keys, fakes):
    r = await create(client, keys, model="google/gemini-2.0-flash", input=ASK_WEATHER, tools=[WEATHER], stream=True)
    events = sse(r.text)
    added = next(e for e in events if e["type"] == "response.output_item.added")
    assert added["item"]["type"] == "function_call" and added["item"]["arguments"] == ""
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    assert json.loads(deltas) == json.loads(done["arguments"]) == {"city": "example"}
    final = events[-1]["response"]
    assert final["output"] == [{**added["item"], "arguments": done["arguments"], "status": "completed"}]


async def test_a_stream_falls_back_invisibly_before_its_first_output(client, keys, fakes):
    fakes["anthropic"].script(faults.overloaded())
    r = await create(client, keys, model="agent:general-agent", input="Hi", stream=True)
    assert r.headers["x-llmrelay-provider"] == "openai" and r.headers["x-llmrelay-fallback"] == "true"
    assert sse(r.text)[-1]["type"] == "response.completed"


async def test_a_stream_that_breaks_after_output_ends_with_response_failed(client, keys, fakes):
    fakes["openai"].script(faults.stream_error(after_chunks=3, code="server_error"))
    r = await create(client, keys, input="Hi", stream=True)
    events = sse(r.text)
    failed = events[-1]
    assert failed["type"] == "response.failed" and failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["code"] == "server_error"
    assert "broke after output" in failed["response"]["error"]["message"]
    assert failed["response"]["output"][0]["content"][0]["text"] == "Hello from fake"
    assert failed["response"]["output"][0]["status"] == "incomplete"
    got = await client.get(f"/v1/responses/{failed['response']['id']}", headers=keys.auth("alice"))
    assert got.status_code == 404  # only answered responses are stored


# -- store, previous_response_id, GET, DELETE ------------------------------------------------------------------


async def test_previous_response_id_continues_a_stored_conversation(client, keys, fakes):
    first = (await create(client, keys, input="My name is Ada.", instructions="Old rules.")).json()
    r = await create(client, keys, model="google/gemini-2.0-flash", input="What is my name?",
                     previous_response_id=first["id"], instructions="New rules.")
    assert r.status_code == 200 and r.json()["previous_response_id"] == first["id"]
    sent = fakes["google"].requests[-1].body
    assert [c["role"] for c in sent["contents"]] == ["user", "model", "user"]
    assert sent["contents"][1]["parts"][0]["text"] == first["output"][0]["content"][0]["text"]
    assert sent["systemInstruction"]["parts"][0]["text"] == "New rules."  # instructions are not carried over
    third = await create(client, keys, input="Again?", previous_response_id=r.json()["id"], stream=True)
    assert sse(third.text)[-1]["type"] == "response.completed"
    assert [m["role"] for m in fakes["openai"].requests[-1].body["messages"]] == ["user", "assistant"] * 2 + ["user"]


async def test_a_tool_loop_continues_from_the_stored_calls(client, keys, fakes):
    model = "anthropic/claude-3-5-sonnet-20241022"
    first = (await create(client, keys, model=model, input=ASK_WEATHER, tools=[WEATHER])).json()
    call = first["output"][-1]
    r = await create(client, keys, model=model, tools=[WEATHER], previous_response_id=first["id"], input=[
        {"type": "function_call_output", "call_id": call["call_id"], "output": "rainy"}])
    assert r.status_code == 200, r.text
    assert "The tools said: rainy" in SDKResponse.model_validate(r.json()).output_text
    r = await create(client, keys, model=model, tools=[WEATHER], previous_response_id=first["id"], input="Hi")
    assert r.status_code == 400 and call["call_id"] in r.json()["error"]["message"]


async def test_a_stored_response_is_its_owners_alone(client, keys):
    made = await create(client, keys, input="Hi", metadata={"k": "v"})
    rid = made.json()["id"]
    got = await client.get(f"/v1/responses/{rid}", headers=keys.auth("alice"))
    assert got.status_code == 200 and got.json() == made.json()
    for call in (client.get(f"/v1/responses/{rid}", headers=keys.auth("bob")),
                 client.delete(f"/v1/responses/{rid}", headers=keys.auth("bob"))):
        r = await call
        assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
    r = await create(client, keys, "bob", input="Hi", previous_response_id=rid)
    assert r.status_code == 404
    assert r.json()["error"] == {"message": f"Previous response with id {rid!r} not found.",
                                 "type": "invalid_request_error", "param": "previous_response_id",
                                 "code": "previous_response_not_found"}
    r = await client.get(f"/v1/responses/{rid}?stream=true", headers=keys.auth("alice"))
    assert r.status_code == 400 and r.json()["error"]["param"] == "stream"
    r = await client.delete(f"/v1/responses/{rid}", headers=keys.auth("alice"))
    assert r.status_code == 200 and r.json() == {"id": rid, "object": "response", "deleted": True}
    assert (await client.get(f"/v1/responses/{rid}", headers=keys.auth("alice"))).status_code == 404


async def test_store_false_keeps_nothing(client, keys):
    made = (await create(client, keys, input="Hi", store=False)).json()
    assert made["store"] is False
    assert (await client.get(f"/v1/responses/{made['id']}", headers=keys.auth("alice"))).status_code == 404
    r = await create(client, keys, input="Hi", previous_response_id=made["id"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "previous_response_not_found"


async def test_a_streamed_response_is_stored_as_it_was_sent(client, keys):
    events = sse((await create(client, keys, input="Hi", stream=True)).text)
    done = events[-1]["response"]
    got = await client.get(f"/v1/responses/{done['id']}", headers=keys.auth("alice"))
    assert got.json() == done


# -- reasoning ------------------------------------------------------------------------------------------------


async def test_reasoning_goes_back_only_to_the_provider_that_wrote_it(client, keys, fakes):
    """Claude thinks before a tool call: its signed thinking comes back with the items (Claude refuses a tool
    loop without it); sent to another provider it is left out; an item llmrelay did not issue is dropped."""
    model = "anthropic/claude-3-5-sonnet-20241022"
    ask = {"tools": [WEATHER], "reasoning": {"effort": "low"}, "max_output_tokens": 4000}
    first = (await create(client, keys, model=model, input=ASK_WEATHER, **ask)).json()
    thought, call = first["output"][0], first["output"][-1]
    assert thought["type"] == "reasoning" and thought["summary"][0]["text"]
    assert thought["encrypted_content"].startswith("llmrelay:") and first["usage"]["output_tokens_details"][
        "reasoning_tokens"] > 0
    items = [{"role": "user", "content": ASK_WEATHER}, *first["output"],
             {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]
    r = await create(client, keys, model=model, input=items, **ask)
    assert r.status_code == 200, r.text
    sent = fakes["anthropic"].requests[-1].body["messages"][1]["content"]
    assert sent[0]["type"] == "thinking" and sent[0]["thinking"] == thought["summary"][0]["text"]
    r = await create(client, keys, model="ollama/llama3.1", input=items, tools=[WEATHER])
    assert r.status_code == 200, r.text
    assert "thinking" not in json.dumps(fakes["ollama"].requests[-1].body["messages"])
    foreign = [items[0], {**thought, "encrypted_content": "gAAAA-from-openai"}, *items[2:]]
    r = await create(client, keys, model=model, input=foreign, tools=[WEATHER])
    assert r.status_code == 200, r.text
    assert "thinking" not in json.dumps(fakes["anthropic"].requests[-1].body["messages"])
    forged = [items[0], {**thought, "encrypted_content": "llmrelay:not-base64-json"}, *items[2:]]
    r = await create(client, keys, model=model, input=forged, tools=[WEATHER])
    assert r.status_code == 400 and r.json()["error"]["param"] == "input[1].encrypted_content"


async def test_streamed_reasoning_is_a_reasoning_item_with_its_summary(client, keys, fakes):
    r = await create(client, keys, model="anthropic/claude-3-5-sonnet-20241022", input="Hi", stream=True,
                     reasoning={"effort": "low"}, max_output_tokens=4000)
    events = sse(r.text)
    kinds = [e["type"] for e in events]
    assert kinds[2:4] == ["response.output_item.added", "response.reasoning_summary_part.added"]
    summary = "".join(e["delta"] for e in events if e["type"] == "response.reasoning_summary_text.delta")
    item = next(e["item"] for e in events if e["type"] == "response.output_item.done")
    assert item["summary"] == [{"type": "summary_text", "text": summary}] and summary
    assert item["encrypted_content"].startswith("llmrelay:")
    assert [i["type"] for i in events[-1]["response"]["output"]] == ["reasoning", "message"]


async def test_a_parameter_the_model_refuses_is_named_as_this_api_names_it(client, keys):
    r = await create(client, keys, model="openai/gpt-4o", input="Hi", reasoning={"effort": "low"})
    err = r.json()["error"]
    assert r.status_code == 400 and err["code"] == "request_refused"
    assert "'reasoning.effort' cannot be sent: gpt-4o is not a reasoning model" in err["message"]
    assert "reasoning_effort" not in err["message"]
