"""The tool loops of real agent frameworks, each against `llmrelay serve` with every provider as the
serving link: the model asks for a tool, the client runs it, the model answers from its result.

The fakes call a tool when the user's text names it (testing/tools.py), answer from tool results by
quoting them, and answer structured output with a JSON instance of the schema; every test puts a token of
its own in its prompt and checks that the intended provider's fake received it."""

from __future__ import annotations

import json
import sqlite3
import uuid

import httpx
import pytest
from pydantic import BaseModel

from llmrelay.testing import faults
from tests.servers import wait_for

SERVING = {
    "anthropic": "anthropic/claude-3-5-sonnet-20241022",
    "anthropic-native-json": "anthropic/claude-sonnet-4-5",
    "openai": "openai/gpt-4o",
    "google": "google/gemini-2.0-flash",
    "openrouter": "openrouter/openai/gpt-4o",
    "ollama": "ollama/llama3.1",
}
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


class Weather(BaseModel):
    city: str
    temperature: float


def weather_in(city: str) -> str:
    return f"sunny, 21 C in {city}"


def token() -> str:
    return "tok" + uuid.uuid4().hex[:10]


def ledger_rows(relay, request_id: str, count: int) -> list[tuple]:
    """The request's rows (provider, status, error, tool_calls, images) once the writer has written `count`."""
    def read() -> list[tuple]:
        with sqlite3.connect(relay.home / "llmrelay.db") as db:
            return db.execute("SELECT provider, status, error_message, tool_calls, images FROM ai_model_usage "
                              "WHERE request_id = ? ORDER BY attempt", (request_id,)).fetchall()
    def enough() -> list[tuple] | None:
        rows = read()
        return rows if len(rows) >= count else None
    return wait_for(f"{count} ledger rows", enough, 10)


def served_by(relay, name: str, tok: str) -> None:
    """The provider's fake received a request carrying `tok`."""
    provider = SERVING[name].split("/")[0]
    bodies = [json.dumps(r.body) for r in relay.fakes[provider].requests]
    assert any(tok in b for b in bodies), f"{provider} never saw {tok}"


providers = pytest.mark.parametrize("name", list(SERVING))


# -- the openai SDK ------------------------------------------------------------------------------------


@providers
def test_openai_sdk_tool_loop(relay, name):
    from openai import OpenAI

    client = OpenAI(base_url=relay.v1, api_key=relay.key, max_retries=0)
    tok = token()
    messages: list = [{"role": "user", "content": f"{tok}: what is the weather in Paris? use get_weather"}]
    first = client.chat.completions.create(model=SERVING[name], messages=messages, tools=[WEATHER_TOOL])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    messages += [choice.message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": weather_in(args["city"])}]
    final = client.chat.completions.create(model=SERVING[name], messages=messages, tools=[WEATHER_TOOL])
    assert final.choices[0].finish_reason == "stop"
    assert weather_in(args["city"]) in final.choices[0].message.content
    served_by(relay, name, tok)


@providers
def test_openai_sdk_streamed_tool_loop(relay, name):
    from openai import OpenAI

    client = OpenAI(base_url=relay.v1, api_key=relay.key, max_retries=0)
    tok = token()
    messages: list = [{"role": "user", "content": f"{tok}: what is the weather in Paris? use get_weather"}]
    with client.chat.completions.stream(model=SERVING[name], messages=messages, tools=[WEATHER_TOOL]) as stream:
        first = stream.get_final_completion()
    call = first.choices[0].message.tool_calls[0]
    assert first.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    messages += [{"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude_none=True)]},
                 {"role": "tool", "tool_call_id": call.id, "content": weather_in(args["city"])}]
    chunks = list(client.chat.completions.create(model=SERVING[name], messages=messages, tools=[WEATHER_TOOL],
                                                 stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert weather_in(args["city"]) in text
    served_by(relay, name, tok)


@providers
def test_openai_sdk_parses_structured_output(relay, name):
    from openai import OpenAI

    client = OpenAI(base_url=relay.v1, api_key=relay.key, max_retries=0)
    tok = token()
    done = client.chat.completions.parse(model=SERVING[name], response_format=Weather,
                                         messages=[{"role": "user", "content": f"{tok}: the weather in Paris"}])
    assert isinstance(done.choices[0].message.parsed, Weather)
    served_by(relay, name, tok)


# -- LangChain -------------------------------------------------------------------------------------------


def _langchain(relay, name):
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=SERVING[name], base_url=relay.v1, api_key=relay.key, max_retries=0)


@providers
def test_langchain_bind_tools_loop(relay, name):
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
    assert weather_in(ai.tool_calls[0]["args"]["city"]) in final.content
    served_by(relay, name, tok)


@providers
@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_langchain_with_structured_output(relay, name, method):
    tok = token()
    answer = _langchain(relay, name).with_structured_output(Weather, method=method).invoke(
        f"{tok}: the weather in Paris")
    assert isinstance(answer, Weather)
    served_by(relay, name, tok)


# -- pydantic-ai ------------------------------------------------------------------------------------------


def _pydantic_ai_model(relay, name):
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    return OpenAIChatModel(SERVING[name], provider=OpenAIProvider(base_url=relay.v1, api_key=relay.key))


@providers
def test_pydantic_ai_agent_with_a_tool(relay, name):
    from pydantic_ai import Agent

    agent = Agent(_pydantic_ai_model(relay, name))

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return weather_in(city)

    tok = token()
    result = agent.run_sync(f"{tok}: what is the weather in Paris? use get_weather")
    assert weather_in("example") in result.output
    served_by(relay, name, tok)


@providers
def test_pydantic_ai_agent_with_an_output_type(relay, name):
    from pydantic_ai import Agent

    agent = Agent(_pydantic_ai_model(relay, name), output_type=Weather)

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return weather_in(city)

    tok = token()
    result = agent.run_sync(f"{tok}: the weather in Paris, use get_weather")
    assert isinstance(result.output, Weather)
    assert any(getattr(p, "tool_name", None) == "get_weather" for m in result.all_messages() for p in m.parts)
    served_by(relay, name, tok)


# -- openai-agents --------------------------------------------------------------------------------------


@providers
def test_openai_agents_function_tool_over_chat_completions(relay, name):
    from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return weather_in(city)

    model = OpenAIChatCompletionsModel(model=SERVING[name], openai_client=AsyncOpenAI(
        base_url=relay.v1, api_key=relay.key, max_retries=0))
    agent = Agent(name="forecaster", instructions="You answer questions about the weather.", tools=[get_weather],
                  model=model)
    tok = token()
    result = Runner.run_sync(agent, f"{tok}: what is the weather in Paris? use get_weather")
    assert weather_in("example") in result.final_output
    served_by(relay, name, tok)


# -- a fallback in the middle of the loop -------------------------------------------------------------------


def test_a_tool_loop_started_on_claude_continues_on_gemini_after_a_529(relay):
    """The first tool call is answered by Anthropic; the follow-up, after Anthropic answers 529, by Gemini,
    with the history (tool_use / tool_result) translated to functionCall / functionResponse."""
    from openai import OpenAI

    client = OpenAI(base_url=relay.v1, api_key=relay.key, max_retries=0)
    tok = token()
    messages: list = [{"role": "user", "content": f"{tok}: what is the weather in Paris? use get_weather"}]
    first = client.chat.completions.with_raw_response.create(model="agent:claude-then-gemini", messages=messages,
                                                             tools=[WEATHER_TOOL])
    assert first.headers["x-llmrelay-provider"] == "anthropic"
    message = first.parse().choices[0].message
    call = message.tool_calls[0]
    assert call.id.startswith("toolu_")
    messages += [message.model_dump(exclude_none=True),
                 {"role": "tool", "tool_call_id": call.id, "content": weather_in("Paris")}]
    relay.fakes["anthropic"].script(faults.overloaded(model="claude-3-5-haiku-20241022"))
    final = client.chat.completions.with_raw_response.create(model="agent:claude-then-gemini", messages=messages,
                                                             tools=[WEATHER_TOOL])
    assert final.headers["x-llmrelay-provider"] == "google" and final.headers["x-llmrelay-fallback"] == "true"
    assert weather_in("Paris") in final.parse().choices[0].message.content
    sent = [r.body for r in relay.fakes["google"].requests if tok in json.dumps(r.body)][-1]
    parts = [p for turn in sent["contents"] for p in turn["parts"]]
    assert {"functionCall": {"name": "get_weather", "args": json.loads(call.function.arguments)}}.items() <= \
        next(p for p in parts if "functionCall" in p).items() or any(
            p.get("functionCall", {}).get("name") == "get_weather" for p in parts)
    assert any(p.get("functionResponse", {}).get("name") == "get_weather" for p in parts)
    rows = ledger_rows(relay, final.headers["x-request-id"], 2)
    assert [(r[0], r[1], r[3]) for r in rows] == [("anthropic", "failed", 0), ("google", "fallback", 0)]


def test_a_link_that_cannot_take_the_request_is_skipped_with_the_reason(relay):
    """Ollama cannot fetch an image by URL: its link is skipped (with the reason), the next one serves."""
    tok = token()
    r = httpx.post(relay.v1 + "/chat/completions", headers={"authorization": f"Bearer {relay.key}"}, timeout=30,
                   json={"model": "ollama/llava", "models": ["openai/gpt-4o"], "messages": [{
                       "role": "user", "content": [
                           {"type": "text", "text": f"{tok}: what is this?"},
                           {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]})
    assert r.status_code == 200 and r.headers["x-llmrelay-provider"] == "openai"
    rows = ledger_rows(relay, r.headers["x-request-id"], 2)
    assert rows[0][:2] == ("ollama", "skipped") and "image_url" in rows[0][2]
    assert rows[1] == ("openai", "fallback", None, 0, 1)


@pytest.mark.parametrize("name", ["openai", "openrouter"])
def test_langchain_named_speakers_of_a_multi_agent_conversation_reach_the_provider(relay, name):
    """LangGraph's multi-agent graphs name each agent's messages (`AIMessage(name=...)`), and ChatOpenAI
    sends that `name`: llmrelay sends it on to the providers that take it."""
    from langchain_core.messages import AIMessage, HumanMessage

    tok = token()
    history = [HumanMessage(f"{tok}: plan a trip", name="lead"),
               AIMessage("Day one: Paris", name="planner"), HumanMessage("and day two?", name="lead")]
    answer = _langchain(relay, name).invoke(history)
    assert answer.content
    provider = SERVING[name].split("/")[0]
    sent = next(r.body for r in relay.fakes[provider].requests if tok in json.dumps(r.body))
    assert [m.get("name") for m in sent["messages"] if m["role"] != "system"] == ["lead", "planner", "lead"]
