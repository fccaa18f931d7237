"""`GoogleProvider.count_tokens` against the fake Gemini (real HTTP on 127.0.0.1): the request goes as a
`generateContentRequest` to `countTokens`, and its count is the input the same request's answer reports;
and a prompt-cache breakpoint is never sent to Gemini."""

from __future__ import annotations

import json

import pytest
from pydantic import SecretStr

from llmrelay.content import Message, Text, Tool
from llmrelay.providers.base import Timeouts
from llmrelay.providers.google import GoogleProvider
from llmrelay.testing import FakeServers
from llmrelay.types import ChatRequest, ErrorKind, ProviderError

MODEL = "gemini-2.5-flash"
WEATHER = Tool("get_weather", "The weather in a city.", {"type": "object", "properties": {"city": {"type": "string"}}},
               cache="1h")


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["google"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()
    fakes["google"].models = None


@pytest.fixture
async def provider(fakes):
    p = GoogleProvider(fakes.url("google"), SecretStr("AIzaSyTEST-google-key-000000000000000"),
                       timeouts=Timeouts(connect=2, idle=5))
    yield p
    await p.aclose()


def request(**kw) -> ChatRequest:
    return ChatRequest(model=MODEL, messages=(Message("user", [Text("Will it rain in Oslo today?", cache="5m")]),),
                       system="Answer in one sentence.", system_cache="5m", tools=(WEATHER,), max_tokens=50,
                       temperature=0.3, **kw)


async def test_the_count_is_the_input_the_answer_reports(provider, fakes):
    counted = await provider.count_tokens(request())
    sent = fakes["google"].requests[-1]
    assert sent.path == f"/v1beta/models/{MODEL}:countTokens"
    inner = sent.body["generateContentRequest"]
    assert set(sent.body) == {"generateContentRequest"}
    assert set(inner) == {"model", "contents", "systemInstruction", "tools"} and inner["model"] == f"models/{MODEL}"
    answer = await provider.complete(request())
    assert counted == answer.usage.input_tokens == 6 + 4 + 10  # the question's words, the system prompt's, one tool


async def test_breakpoints_are_not_sent_to_gemini(provider, fakes):
    await provider.count_tokens(request())
    await provider.complete(request())
    for seen in fakes["google"].requests:
        assert "cache" not in json.dumps(seen.body).lower()


async def test_a_model_gemini_does_not_have_cannot_be_counted(provider, fakes):
    fakes["google"].models = {"gemini-2.0-flash"}
    with pytest.raises(ProviderError) as info:
        await provider.count_tokens(request())
    assert info.value.kind is ErrorKind.NOT_FOUND


async def test_what_gemini_cannot_take_is_refused_before_counting(provider, fakes):
    with pytest.raises(ProviderError) as info:
        await provider.count_tokens(request(stop=("a", "b", "c", "d", "e", "f")))
    assert info.value.kind is ErrorKind.BAD_REQUEST and fakes["google"].requests == []
