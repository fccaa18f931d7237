"""The executor's rules for agent-grade requests: a stream falls back only until output of any kind (text, a
tool call, reasoning) has reached the caller; a link that cannot take the request is skipped with the
reason (and no link at all is a 400-worthy `AllLinksFailed.unsupported`); parallel calls off holds on every
provider.  End to end through the fakes where they can show it; a scripted adapter for the one case they
cannot produce (a stream that breaks after a tool call has gone out)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from llmrelay.agents import Agent
from llmrelay.content import Message, Tool
from llmrelay.providers.base import Provider
from llmrelay.routing.fallback import FallbackExecutor
from llmrelay.routing.fit import Fit
from llmrelay.testing import faults
from llmrelay.types import (
    AllLinksFailed,
    AttemptEvent,
    ChatRequest,
    ChatResponse,
    ErrorKind,
    Finished,
    Link,
    Outcome,
    ProviderError,
    ReasoningDelta,
    RequestOptions,
    Sampling,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
    needs_of,
)

WEATHER = Tool("get_weather", "The weather in a city.",
               {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})
TIME = Tool("get_time", "The time in a city.", {"type": "object", "properties": {"city": {"type": "string"}}})
CALLS = [{"name": "get_weather", "arguments": {"city": "Paris"}}, {"name": "get_time", "arguments": {"city": "Oslo"}}]


def chain(*links: tuple[str, str]) -> dict[str, Agent]:
    from llmrelay.agents import ProviderOption

    return {"chain": Agent(id="chain", name="Chain", supported_providers=tuple(
        ProviderOption(provider=p, model=m, priority=i + 1) for i, (p, m) in enumerate(links)))}


async def collect(run) -> tuple[list, Outcome]:
    events = [e async for e in run]
    assert isinstance(events[-1], Outcome)
    return events[:-1], events[-1]


async def test_a_stream_falls_back_before_its_first_tool_call_and_serves_the_next_links_calls(fakes, make_relay):
    fakes["anthropic"].script(faults.overloaded())
    fakes["openai"].script(faults.reply(tool_calls=CALLS[:1]))
    relay = make_relay(agents=chain(("anthropic", "claude-3-5-sonnet-20241022"), ("openai", "gpt-4o")))
    events, outcome = await collect(relay.run(None, "agent:chain", [Message("user", "Weather?")],
                                              RequestOptions(tools=(WEATHER,))))
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [s.name for s in starts] == ["get_weather"]
    args = "".join(e.arguments for e in events if isinstance(e, ToolCallDelta))
    assert json.loads(args) == {"city": "Paris"}
    assert outcome.error is None and outcome.link == Link("openai", "gpt-4o") and outcome.fallback_used
    (call,) = outcome.response.tool_calls
    assert (call.id, call.name, json.loads(call.arguments)) == (starts[0].id, "get_weather", {"city": "Paris"})
    assert outcome.response.finish_reason == "tool_calls"
    assert [(a.provider, a.status, a.tool_calls) for a in outcome.attempts] == [
        ("anthropic", "failed", 0), ("openai", "success", 1)]
    assert outcome.history[-1] == outcome.response.message


class Scripted(Provider):
    """An adapter that streams exactly what it is given, then fails (`error`) or finishes."""

    name = "scripted"
    default_base_url = "http://scripted.invalid"
    takes = frozenset({"tools"})

    def __init__(self, events: list[StreamEvent], error: ProviderError | None = None) -> None:
        self.events, self.err, self.calls = events, error, 0

    async def complete(self, request: ChatRequest) -> ChatResponse:
        raise NotImplementedError

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        self.calls += 1
        for event in self.events:
            yield event
        if self.err is not None:
            raise self.err
        yield Finished("stop")


async def test_once_a_tool_call_has_reached_the_caller_a_broken_stream_does_not_fall_back():
    broken = Scripted([ToolCallStart(0, "call_1", "get_weather"), ToolCallDelta(0, '{"city":')],
                      ProviderError(ErrorKind.SERVER_ERROR, "cut", provider="scripted", model="a"))
    spare = Scripted([TextDelta("never")])
    executor = FallbackExecutor({"scripted": broken, "spare": spare})
    request = ChatRequest("a", (Message("user", "hi"),), tools=(WEATHER,))
    events = [e async for e in executor.stream([Link("scripted", "a"), Link("spare", "b")], request)]
    outcome = events[-1]
    assert isinstance(outcome.error, ProviderError) and spare.calls == 0
    assert [type(e).__name__ for e in events[:2]] == ["ToolCallStart", "ToolCallDelta"]
    assert outcome.response.tool_calls[0].arguments == '{"city":'  # what had gone out, kept


async def test_reasoning_is_output_too_a_stream_broken_after_it_does_not_fall_back():
    broken = Scripted([ReasoningDelta("Let me think")],
                      ProviderError(ErrorKind.OVERLOADED, "gone", provider="scripted", model="a"))
    spare = Scripted([TextDelta("never")])
    executor = FallbackExecutor({"scripted": broken, "spare": spare})
    events = [e async for e in executor.stream([Link("scripted", "a"), Link("spare", "b")],
                                               ChatRequest("a", (Message("user", "hi"),)))]
    assert spare.calls == 0 and events[-1].error is not None
    assert events[-1].response.reasoning[0].text == "Let me think"


async def test_usage_alone_is_no_output_a_stream_broken_after_it_falls_back():
    broken = Scripted([UsageReport(Usage(10, 0))], ProviderError(ErrorKind.OVERLOADED, "gone", provider="scripted",
                                                                   model="a"))
    spare = Scripted([TextDelta("served")])
    executor = FallbackExecutor({"scripted": broken, "spare": spare})
    events = [e async for e in executor.stream([Link("scripted", "a"), Link("spare", "b")],
                                               ChatRequest("a", (Message("user", "hi"),)))]
    assert events[-1].error is None and events[-1].text == "served"
    assert isinstance(events[0], AttemptEvent) and events[0].attempt.usage == Usage(10, 0)


async def test_a_link_whose_provider_cannot_take_a_parameter_is_skipped_with_the_reason(fakes, make_relay):
    relay = make_relay(agents=chain(("anthropic", "claude-3-5-sonnet-20241022"), ("openai", "gpt-4o")))
    outcome = await relay.run(None, "agent:chain", [Message("user", "Hi")],
                              RequestOptions(sampling=Sampling(seed=7, top_p=0.5)))
    assert [(a.provider, a.status, a.error_message) for a in outcome.attempts] == [
        ("anthropic", "skipped", "anthropic cannot take 'seed'"), ("openai", "success", None)]
    assert fakes["anthropic"].requests == []
    sent = fakes["openai"].requests[-1].body
    assert (sent["seed"], sent["top_p"]) == (7, 0.5)


async def test_when_no_link_can_take_the_request_it_says_which_parameter(fakes, make_relay):
    relay = make_relay(agents=chain(("anthropic", "claude-3-5-sonnet-20241022"), ("google", "gemini-2.0-flash")))
    outcome = await relay.run(None, "agent:chain", [Message("user", "Hi")],
                              RequestOptions(sampling=Sampling(logit_bias={"50256": -100})))
    assert isinstance(outcome.error, AllLinksFailed) and outcome.error.unsupported == "logit_bias"
    assert "anthropic cannot take 'logit_bias'" in str(outcome.error)
    assert all(a.status == "skipped" for a in outcome.attempts)


async def test_a_model_the_catalog_knows_has_no_vision_is_skipped_for_images(fakes, make_relay):
    from llmrelay.content import Image, Text

    relay = make_relay(agents=chain(("openai", "gpt-4"), ("openai", "gpt-4o")))
    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    outcome = await relay.run(None, "agent:chain", [Message("user", [Text("What is this?"),
                                                                       Image(data=png, media_type="image/png")])])
    assert [(a.model, a.status) for a in outcome.attempts] == [("gpt-4", "skipped"), ("gpt-4o", "success")]
    assert outcome.attempts[0].error_message == "openai/gpt-4 has no images (the request uses 'images')"
    assert outcome.text.endswith("(I saw 1 image.)")


async def test_an_input_far_over_a_models_context_window_skips_it(fakes, make_relay):
    relay = make_relay(agents=chain(("openai", "gpt-4"), ("openai", "gpt-4o")))
    outcome = await relay.run(None, "agent:chain", [Message("user", "word " * 20_000)])  # >= 20k tokens at 5 chars
    assert [(a.model, a.status) for a in outcome.attempts] == [("gpt-4", "skipped"), ("gpt-4o", "success")]
    assert "context window of 8192 tokens is too small" in outcome.attempts[0].error_message


async def test_parallel_calls_off_keeps_the_first_call_where_the_provider_cannot_be_told(fakes, make_relay):
    relay = make_relay()
    for stream in (False, True):
        fakes["google"].script(faults.reply(tool_calls=CALLS))
        run = relay.run(None, "google/gemini-2.0-flash", [Message("user", "Both, please")],
                        RequestOptions(tools=(WEATHER, TIME), parallel_tool_calls=False))
        if stream:
            events, outcome = await collect(run)
            assert [e.index for e in events if isinstance(e, ToolCallStart | ToolCallEnd)] == [0, 0]
        else:
            outcome = await run
        assert [c.name for c in outcome.response.tool_calls] == ["get_weather"]
        assert outcome.attempts[-1].tool_calls == 1
    fakes["google"].script(faults.reply(tool_calls=CALLS))
    both = await relay.run(None, "google/gemini-2.0-flash", [Message("user", "Both")], RequestOptions(
        tools=(WEATHER, TIME)))
    assert [c.name for c in both.response.tool_calls] == ["get_weather", "get_time"]


def test_a_plain_request_needs_nothing_and_is_not_checked():
    needs, images, chars = needs_of([Message("user", "hello")])
    assert (needs, images, chars) == (frozenset(), 0, 5)
    assert Fit({})(Link("nobody", "x"), ChatRequest("x", (Message("user", "hello"),))) is None
