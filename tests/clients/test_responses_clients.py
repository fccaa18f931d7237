"""The Responses API (`/v1/responses`) from real clients against `llmrelay serve`, each provider serving in
turn: the openai SDK (create, streamed, the stream helper, previous_response_id, a function tool loop, parse),
openai-agents with its default model (OpenAIResponsesModel) running a `function_tool` agent, and LangChain's
`ChatOpenAI(use_responses_api=True)` with `bind_tools` in a loop; hosted tools are refused by name.

As in test_tool_loops.py, every test puts a token of its own in its prompt and checks that the intended
provider's fake received it."""

from __future__ import annotations

import json
import sqlite3

import pytest

from tests.clients.test_tool_loops import Weather, served_by, token, weather_in
from tests.servers import wait_for

SERVING = {
    "openai": "openai/gpt-4o",
    "anthropic": "anthropic/claude-3-5-sonnet-20241022",
    "google": "google/gemini-2.0-flash",
    "openrouter": "openrouter/openai/gpt-4o",
    "ollama": "ollama/llama3.1",
}
AGENTS_MODEL = {  # openai-agents' default provider strips `openai/` and refuses other prefixes: bare names
    "openai": "openai/gpt-4o",
    "anthropic": "claude-3-5-sonnet-20241022",
    "google": "gemini-2.0-flash",
    "ollama": "llama3.1",
}
WEATHER = {"type": "function", "name": "get_weather", "description": "The weather in a city.", "strict": True,
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                          "additionalProperties": False}}
providers = pytest.mark.parametrize("name", list(SERVING))


def _sdk(relay):
    from openai import OpenAI

    return OpenAI(base_url=relay.v1, api_key=relay.key, max_retries=0)


def ledger_kinds(relay, request_id: str) -> list[tuple]:
    def read() -> list[tuple] | None:
        with sqlite3.connect(relay.home / "llmrelay.db") as db:
            rows = db.execute("SELECT provider, status, kind FROM ai_model_usage WHERE request_id = ? ORDER BY attempt",
                              (request_id,)).fetchall()
        return rows or None
    return wait_for("the ledger rows", read, 10)


# -- the openai SDK ------------------------------------------------------------------------------------


@providers
def test_openai_sdk_create_stream_and_continue(relay, name):
    client = _sdk(relay)
    tok = token()
    raw = client.responses.with_raw_response.create(model=SERVING[name], input=f"{tok}: hello", instructions="Hi.")
    first = raw.parse()
    provider = SERVING[name].split("/")[0]
    assert raw.headers["x-llmrelay-provider"] == provider and first.status == "completed"
    assert first.output_text.startswith(f"Hello from fake {provider}")
    assert ledger_kinds(relay, raw.headers["x-request-id"]) == [(provider, "success", "chat")]
    events = list(client.responses.create(model=SERVING[name], input="streamed", stream=True,
                                          previous_response_id=first.id))
    assert events[-1].type == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == events[-1].response.output_text and text.endswith("You said: streamed")
    with client.responses.stream(model=SERVING[name], input="once more",
                                 previous_response_id=events[-1].response.id) as stream:
        final = stream.get_final_response()
    assert final.output_text.endswith("You said: once more")
    sent = json.dumps(relay.fakes[provider].requests[-1].body)
    assert tok in sent and "streamed" in sent  # the whole conversation went to the provider
    served_by(relay, name, tok)


@providers
def test_openai_sdk_function_tool_loop(relay, name):
    client = _sdk(relay)
    tok = token()
    items: list = [{"role": "user", "content": f"{tok}: what is the weather in Paris? use get_weather"}]
    first = client.responses.create(model=SERVING[name], input=items, tools=[WEATHER])
    call = next(o for o in first.output if o.type == "function_call")
    assert call.name == "get_weather"
    result = weather_in(json.loads(call.arguments)["city"])
    stateless = client.responses.create(model=SERVING[name], tools=[WEATHER], input=[
        *items, *(o.model_dump(exclude_none=True) for o in first.output),
        {"type": "function_call_output", "call_id": call.call_id, "output": result}])
    assert result in stateless.output_text
    with client.responses.stream(model=SERVING[name], tools=[WEATHER], previous_response_id=first.id, input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": result}]) as stream:
        stateful = stream.get_final_response()
    assert result in stateful.output_text
    served_by(relay, name, tok)


@providers
def test_openai_sdk_parse_with_a_pydantic_model(relay, name):
    tok = token()
    done = _sdk(relay).responses.parse(model=SERVING[name], input=f"{tok}: the weather in Paris", text_format=Weather)
    assert isinstance(done.output_parsed, Weather)
    served_by(relay, name, tok)


def test_hosted_tools_are_refused_by_name(relay):
    from openai import BadRequestError

    for tool in ({"type": "web_search"}, {"type": "file_search", "vector_store_ids": ["vs_1"]},
                 {"type": "code_interpreter", "container": {"type": "auto"}}):
        with pytest.raises(BadRequestError) as err:
            _sdk(relay).responses.create(model="openai/gpt-4o", input="Hi", tools=[WEATHER, tool])
        assert err.value.param == "tools[1]" and repr(tool["type"]) in err.value.message


# -- openai-agents, its default model -------------------------------------------------------------------------


def _agents_default(relay):
    from agents import set_default_openai_api, set_default_openai_client, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)
    set_default_openai_client(AsyncOpenAI(base_url=relay.v1, api_key=relay.key, max_retries=0),
                              use_for_tracing=False)
    set_default_openai_api("responses")


@pytest.mark.parametrize("name", list(AGENTS_MODEL))
async def test_openai_agents_default_model_runs_a_function_tool(relay, name):
    from agents import Agent, Runner, function_tool

    _agents_default(relay)

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return weather_in(city)

    agent = Agent(name="forecaster", instructions="You answer questions about the weather.", tools=[get_weather],
                  model=AGENTS_MODEL[name])
    tok = token()
    result = await Runner.run(agent, f"{tok}: what is the weather in Paris? use get_weather")
    assert weather_in("example") in result.final_output
    assert len(result.raw_responses) == 2 and all(r.response_id.startswith("resp_") for r in result.raw_responses)
    streamed = Runner.run_streamed(agent, f"{tok}: and in Rome? use get_weather")
    kinds = {event.type async for event in streamed.stream_events()}
    assert "raw_response_event" in kinds and weather_in("example") in streamed.final_output
    served_by(relay, name, tok)


async def test_openai_agents_hosted_tool_is_refused_by_name(relay):
    from agents import Agent, Runner, WebSearchTool
    from openai import BadRequestError

    _agents_default(relay)
    agent = Agent(name="searcher", instructions="Search.", tools=[WebSearchTool()], model="openai/gpt-4o")
    with pytest.raises(BadRequestError) as err:
        await Runner.run(agent, "search the web")
    assert "'web_search" in err.value.message and err.value.param == "tools[0]"


# -- LangChain ------------------------------------------------------------------------------------------------


def _langchain(relay, name):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=SERVING[name], base_url=relay.v1, api_key=relay.key, max_retries=0,
                      use_responses_api=True)


@providers
def test_langchain_responses_api_bind_tools_loop(relay, name):
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import tool

    @tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return weather_in(city)

    llm = _langchain(relay, name).bind_tools([get_weather])
    tok = token()
    history: list = [HumanMessage(f"{tok}: what is the weather in Paris? use get_weather")]
    ai = llm.invoke(history)
    assert ai.tool_calls and ai.tool_calls[0]["name"] == "get_weather"
    history += [ai, get_weather.invoke(ai.tool_calls[0])]
    final = llm.invoke(history)
    assert weather_in(ai.tool_calls[0]["args"]["city"]) in final.text
    streamed = "".join(chunk.text for chunk in llm.stream(history))
    assert weather_in(ai.tool_calls[0]["args"]["city"]) in streamed
    served_by(relay, name, tok)


def test_langchain_hosted_tool_is_refused_by_name(relay):
    from openai import BadRequestError

    llm = _langchain(relay, "openai").bind_tools([{"type": "web_search_preview"}])
    with pytest.raises(BadRequestError) as err:
        llm.invoke("search the web")
    assert "'web_search_preview'" in err.value.message
