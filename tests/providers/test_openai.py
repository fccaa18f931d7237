"""The OpenAI adapter against the fake OpenAI server (real HTTP on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from aiohttp import web
from pydantic import SecretStr

from llmrelay.providers.base import Timeouts
from llmrelay.providers.openai import OpenAIProvider, StreamState, retry_hint
from llmrelay.providers.registry import provider_class
from llmrelay.providers.sse import SSEEvent
from llmrelay.testing import FakeServers, faults
from llmrelay.types import (
    ChatRequest,
    ErrorKind,
    Finished,
    Message,
    ProviderError,
    Sampling,
    TextDelta,
    Usage,
    UsageReport,
)

MODEL = "gpt-4o"


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["openai"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


@pytest.fixture
async def provider(fakes):
    p = provider_class("openai")(fakes.url("openai"), SecretStr("sk-test-openai-key"),
                                 timeouts=Timeouts(connect=2, idle=5))
    yield p
    await p.aclose()


def req(text: str = "hello there", stream: bool = False, **kw) -> ChatRequest:
    return ChatRequest(model=kw.pop("model", MODEL), messages=(Message("user", text),), stream=stream, **kw)


async def collect(provider, request: ChatRequest) -> list:
    return [ev async for ev in provider.stream(request)]


async def failure(provider, request: ChatRequest, *, stream: bool) -> tuple[ProviderError, list]:
    """The ProviderError a call raises, and (for a stream) the events received before it."""
    events: list = []
    with pytest.raises(ProviderError) as info:
        if stream:
            async for ev in provider.stream(request):
                events.append(ev)
        else:
            await provider.complete(request)
    return info.value, events


def last_body(fakes) -> dict:
    return fakes["openai"].requests[-1].body


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def raw_server(handler) -> AsyncIterator[str]:
    """A bare HTTP server answering every path with `handler`: for replies no fake sends."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        await runner.cleanup()


# -- answers ---------------------------------------------------------------------------------


async def test_complete_returns_text_model_usage_and_id(provider):
    resp = await provider.complete(req("hello there"))
    assert resp.text == f"Hello from fake openai ({MODEL}). You said: hello there"
    assert resp.model == MODEL and resp.provider == "openai"
    assert resp.finish_reason == "stop"
    assert resp.raw_id.startswith("chatcmpl-")
    assert resp.usage == Usage(input_tokens=2, output_tokens=len(resp.text.split()))
    assert resp.provider_cost_usd is None


async def test_stream_yields_deltas_then_usage_then_one_finished_last(provider):
    events = await collect(provider, req("hello there", stream=True))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert "".join(d.text for d in deltas) == f"Hello from fake openai ({MODEL}). You said: hello there"
    assert len(deltas) > 3
    assert isinstance(events[-2], UsageReport) and events[-1] == Finished("stop")
    assert sum(isinstance(e, Finished) for e in events) == 1
    report = events[-2]
    assert report.usage.input_tokens == 2 and report.usage.output_tokens == len(deltas)
    assert report.model == MODEL and report.raw_id.startswith("chatcmpl-")


async def test_stream_deltas_arrive_as_they_are_sent(provider, fakes):
    fakes["openai"].script(faults.reply(text="one two three", seconds=0.4))
    start = time.monotonic()
    async for ev in provider.stream(req(stream=True)):
        assert isinstance(ev, TextDelta) and ev.text == "one"
        assert time.monotonic() - start < 0.35
        break


@pytest.mark.parametrize("stream", [False, True])
async def test_usage_includes_cached_and_reasoning_tokens(provider, fakes, stream):
    fakes["openai"].script(faults.reply(usage={"input": 1200, "cached_input": 1024, "output": 300,
                                                "reasoning": 256}))
    expected = Usage(input_tokens=1200, output_tokens=300, cached_input_tokens=1024, reasoning_tokens=256)
    if stream:
        events = await collect(provider, req(stream=True))
        assert [e.usage for e in events if isinstance(e, UsageReport)] == [expected]
    else:
        assert (await provider.complete(req())).usage == expected


@pytest.mark.parametrize("native,unified", [("stop", "stop"), ("length", "length"),
                                            ("tool_calls", "tool_calls"), ("function_call", "tool_calls"),
                                            ("content_filter", "content_filter")])
@pytest.mark.parametrize("stream", [False, True])
async def test_finish_reason_is_normalised(provider, fakes, native, unified, stream):
    fakes["openai"].script(faults.reply(finish=native))
    if stream:
        assert (await collect(provider, req(stream=True)))[-1] == Finished(unified)
    else:
        assert (await provider.complete(req())).finish_reason == unified


async def test_max_tokens_cut_reports_length(provider):
    resp = await provider.complete(req(max_tokens=3))
    assert resp.finish_reason == "length" and len(resp.text.split()) == 3


def test_refusal_is_a_content_filter_finish_not_text(provider):
    body = {"id": "chatcmpl-1", "model": MODEL, "choices": [{"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": None, "refusal": "I can't help with that."}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 6}}
    resp = provider.response_from(body, MODEL)
    assert resp.finish_reason == "content_filter" and resp.text == ""


def test_stream_refusal_delta_becomes_content_filter(provider):
    state = StreamState()
    chunk = ('{"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"refusal":"No."},'
             '"finish_reason":"stop"}]}')
    assert provider.stream_events(SSEEvent("message", chunk), state, MODEL) == []
    assert provider.finish_reason(state.finish, state.refused) == "content_filter"


# -- what the fake received --------------------------------------------------------------------


async def test_request_wire_format(provider, fakes):
    request = ChatRequest(model=MODEL, system="Be terse.", max_tokens=50, temperature=0.7,
                          stop=("a", "b", "c", "d"),
                          messages=(Message("user", "one"), Message("user", "two"), Message("assistant", ""),
                                    Message("assistant", "three"), Message("user", "four")))
    await provider.complete(request)
    recorded = fakes["openai"].requests[-1]
    assert recorded.path == "/v1/chat/completions"
    assert recorded.headers["authorization"] == "<present>"
    body = recorded.body
    assert body["messages"] == [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "one"},
                                {"role": "user", "content": "two"}, {"role": "assistant", "content": "three"},
                                {"role": "user", "content": "four"}]
    assert body["max_completion_tokens"] == 50 and "max_tokens" not in body
    assert body["temperature"] == 0.7
    assert body["stop"] == ["a", "b", "c", "d"]
    assert "stream" not in body and "stream_options" not in body


async def test_stream_request_asks_for_usage(provider, fakes):
    await collect(provider, req(stream=True))
    body = last_body(fakes)
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("given,sent", [(3.5, 2.0), (-1.0, 0.0), (2.0, 2.0), (0.0, 0.0)])
async def test_temperature_is_clamped_to_0_2(provider, fakes, given, sent):
    await provider.complete(req(temperature=given))
    assert last_body(fakes)["temperature"] == sent


@pytest.mark.parametrize(("kw", "param"), [({"temperature": 0.2}, "temperature"), ({"stop": ("x",)}, "stop"),
                                           ({"sampling": Sampling(top_p=0.5)}, "top_p"),
                                           ({"sampling": Sampling(logit_bias={"50256": -100})}, "logit_bias")])
@pytest.mark.parametrize("stream", [False, True])
async def test_a_reasoning_model_asked_for_what_it_refuses_fails_honestly_before_sending(provider, fakes, kw, param,
                                                                                        stream):
    err, _ = await failure(provider, req(model="o3-mini", stream=stream, **kw), stream=stream)
    assert err.kind is ErrorKind.BAD_REQUEST and repr(param) in err.message and "o3-mini" in err.message
    assert err.falls_through and not err.retryable  # another link may take it; this one never will
    assert fakes["openai"].requests == []


async def test_a_reasoning_model_takes_the_default_temperature_and_a_reasoning_effort(provider, fakes):
    await provider.complete(req(model="o3-mini", temperature=1.0, max_tokens=0,
                                sampling=Sampling(reasoning_effort="high", seed=7)))
    body = last_body(fakes)
    assert body["temperature"] == 1.0 and body["reasoning_effort"] == "high" and body["seed"] == 7
    assert body["max_completion_tokens"] == 1 and "max_tokens" not in body


async def test_reasoning_effort_for_a_model_that_does_not_reason_fails_before_sending(provider, fakes):
    err, _ = await failure(provider, req(sampling=Sampling(reasoning_effort="low")), stream=False)
    assert err.kind is ErrorKind.BAD_REQUEST and "'reasoning_effort'" in err.message and err.falls_through
    assert fakes["openai"].requests == []


def test_authorization_header_is_bearer(provider):
    assert provider.headers() == {"authorization": "Bearer sk-test-openai-key"}


async def test_wrong_key_is_auth_and_right_key_works():
    with FakeServers(["openai"], api_key="right") as servers:
        for key, ok in (("wrong", False), ("right", True)):
            p = OpenAIProvider(servers.url("openai"), SecretStr(key))
            try:
                if ok:
                    assert (await p.complete(req())).text
                else:
                    err, _ = await failure(p, req(), stream=False)
                    assert err.kind is ErrorKind.AUTH and err.status == 401
                    assert "sk-fake" not in err.message  # the echoed key is redacted
            finally:
                await p.aclose()


# -- errors ------------------------------------------------------------------------------------

ERRORS = [
    (400, None, ErrorKind.BAD_REQUEST),
    (400, "context_length_exceeded", ErrorKind.CONTEXT_LENGTH_EXCEEDED),
    (400, "invalid_prompt", ErrorKind.CONTENT_FILTERED),
    (401, None, ErrorKind.AUTH),
    (403, None, ErrorKind.AUTH),
    (404, None, ErrorKind.NOT_FOUND),
    (409, None, ErrorKind.BAD_REQUEST),
    (422, None, ErrorKind.BAD_REQUEST),
    (429, None, ErrorKind.RATE_LIMITED),
    (429, "tokens", ErrorKind.RATE_LIMITED),
    (500, None, ErrorKind.SERVER_ERROR),
    (502, None, ErrorKind.SERVER_ERROR),
    (503, None, ErrorKind.OVERLOADED),
    (504, None, ErrorKind.TIMEOUT),
]


@pytest.mark.parametrize("status,code,kind", ERRORS)
@pytest.mark.parametrize("stream", [False, True])
async def test_http_error_maps_to_kind(provider, fakes, status, code, kind, stream):
    fakes["openai"].script(faults.http_error(status, code))
    err, events = await failure(provider, req(stream=stream), stream=stream)
    assert (err.kind, err.status, err.provider, err.model) == (kind, status, "openai", MODEL)
    assert err.retryable is kind.retryable and err.falls_through is kind.falls_through
    assert err.message and not err.message.startswith("HTTP")  # the provider's own message
    assert events == []


async def test_overloaded_503_maps_to_overloaded(provider, fakes):
    fakes["openai"].script(faults.overloaded(retry_after="2"))
    err, _ = await failure(provider, req(), stream=False)
    assert err.kind is ErrorKind.OVERLOADED and err.retry_after == 2.0 and err.retryable


async def test_insufficient_quota_429_is_auth_never_retried(provider, fakes):
    fakes["openai"].script(faults.http_error(429, "insufficient_quota", should_retry="true"))
    err, _ = await failure(provider, req(), stream=False)
    assert err.kind is ErrorKind.AUTH and err.status == 429
    assert not err.retryable and err.falls_through


async def test_request_too_large_429_is_bad_request_that_falls_through(provider, fakes):
    fakes["openai"].script(faults.http_error(429, "request_too_large", retry_after="1"))
    err, _ = await failure(provider, req(), stream=False)
    assert err.kind is ErrorKind.BAD_REQUEST
    assert not err.retryable and err.falls_through


async def test_retry_after_seconds_header(provider, fakes):
    fakes["openai"].script(faults.http_error(429, retry_after="7"))
    err, _ = await failure(provider, req(), stream=False)
    assert err.retry_after == 7.0


async def test_retry_after_http_date_header(provider, fakes):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fakes["openai"].script(faults.http_error(429, retry_after=when))
    err, _ = await failure(provider, req(), stream=False)
    assert 25 < err.retry_after <= 30


async def test_retry_after_ms_header_wins(provider, fakes):
    fakes["openai"].script(faults.http_error(429, retry_after="9", retry_after_ms="1500"))
    err, _ = await failure(provider, req(), stream=False)
    assert err.retry_after == 1.5


@pytest.mark.parametrize("code,wait", [(None, 20.0), ("tokens", 0.644)])
async def test_retry_after_from_message_when_no_header(provider, fakes, code, wait):
    fakes["openai"].script(faults.http_error(429, code))
    err, _ = await failure(provider, req(), stream=False)
    assert err.retry_after == pytest.approx(wait)


@pytest.mark.parametrize("text,wait", [("Please try again in 1m30s.", 90.0), ("try again in 6ms", 0.006),
                                       ("Please try again in 2.5s.", 2.5), ("no hint here", None)])
def test_retry_hint_parses_go_durations(text, wait):
    assert retry_hint(text) == (pytest.approx(wait) if wait else None)


@pytest.mark.parametrize("status,header,retryable", [(500, "false", False), (400, "true", True)])
async def test_x_should_retry_header_wins(provider, fakes, status, header, retryable):
    fakes["openai"].script(faults.http_error(status, should_retry=header))
    err, _ = await failure(provider, req(), stream=False)
    assert err.retryable is retryable


@pytest.mark.parametrize("status,kind", [(502, ErrorKind.SERVER_ERROR), (503, ErrorKind.OVERLOADED),
                                         (429, ErrorKind.RATE_LIMITED), (403, ErrorKind.AUTH)])
async def test_non_json_error_body_maps_by_status_with_excerpt(status, kind):
    async def handler(request):
        return web.Response(status=status, text="<html><body><h1>Bad Gateway</h1></body></html>",
                            content_type="text/html", headers={"retry-after": "3"})

    async with raw_server(handler) as base:
        p = OpenAIProvider(base, SecretStr("sk-test-openai-key"))
        try:
            err, _ = await failure(p, req(), stream=False)
        finally:
            await p.aclose()
    assert err.kind is kind and err.status == status
    assert "Bad Gateway" in err.message and err.retry_after == 3.0


async def test_malformed_body_is_server_error_with_excerpt(provider, fakes):
    fakes["openai"].script(faults.malformed())
    err, _ = await failure(provider, req(), stream=False)
    assert err.kind is ErrorKind.SERVER_ERROR and "502 Bad Gateway" in err.message


@pytest.mark.parametrize("body", [{"id": "x"}, {"choices": []}, {"choices": [{"message": "hi"}]},
                                  {"choices": [{"message": {"content": ["a"]}}]}])
def test_json_of_the_wrong_shape_is_malformed(provider, body):
    with pytest.raises(ProviderError) as info:
        provider.response_from(body, MODEL)
    assert info.value.kind is ErrorKind.SERVER_ERROR and "unexpected completion" in info.value.message


async def test_malformed_stream_frame_is_server_error_with_excerpt(provider, fakes):
    fakes["openai"].script(faults.malformed())
    err, events = await failure(provider, req(stream=True), stream=True)
    assert err.kind is ErrorKind.SERVER_ERROR and "not json at all" in err.message
    assert not any(isinstance(e, Finished) for e in events)


@pytest.mark.parametrize("stream", [False, True])
async def test_connection_refused_is_connection(stream):
    p = OpenAIProvider(f"http://127.0.0.1:{closed_port()}/v1", SecretStr("k"), timeouts=Timeouts(connect=2))
    try:
        err, _ = await failure(p, req(stream=stream), stream=stream)
    finally:
        await p.aclose()
    assert err.kind is ErrorKind.CONNECTION and err.retryable


async def test_refused_listener_is_connection(provider, fakes):
    fakes.refuse("openai", 0.5)
    err, _ = await failure(provider, req(), stream=False)
    assert err.kind is ErrorKind.CONNECTION
    await asyncio.sleep(0.7)
    assert (await provider.complete(req())).text


@pytest.mark.parametrize("stream", [False, True])
async def test_disconnect_is_connection(provider, fakes, stream):
    fakes["openai"].script(faults.disconnect())
    err, _ = await failure(provider, req(stream=stream), stream=stream)
    assert err.kind is ErrorKind.CONNECTION


async def test_cut_body_is_connection(provider, fakes):
    fakes["openai"].script(faults.cut())
    err, _ = await failure(provider, req(), stream=False)
    assert err.kind in (ErrorKind.CONNECTION, ErrorKind.SERVER_ERROR)


async def test_cut_stream_keeps_deltas_and_fails(provider, fakes):
    fakes["openai"].script(faults.cut(2))
    err, events = await failure(provider, req(stream=True), stream=True)
    assert err.kind in (ErrorKind.CONNECTION, ErrorKind.SERVER_ERROR)
    assert [e.text for e in events] == ["Hello", " from"]


async def test_stream_ending_without_done_is_server_error():
    async def handler(request):
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b'data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"},'
                         b'"finish_reason":"stop"}]}\n\n')
        await resp.write_eof()
        return resp

    async with raw_server(handler) as base:
        p = OpenAIProvider(base, SecretStr("k"))
        try:
            err, events = await failure(p, req(stream=True), stream=True)
        finally:
            await p.aclose()
    assert err.kind is ErrorKind.SERVER_ERROR and "[DONE]" in err.message
    assert events == [TextDelta("Hi")]


@pytest.mark.parametrize("status,code,kind", [(None, None, ErrorKind.SERVER_ERROR),
                                              (429, None, ErrorKind.RATE_LIMITED),
                                              (None, "context_length_exceeded", ErrorKind.CONTEXT_LENGTH_EXCEEDED),
                                              (None, "insufficient_quota", ErrorKind.AUTH)])
async def test_mid_stream_error_frame_maps_to_kind_after_deltas(provider, fakes, status, code, kind):
    fakes["openai"].script(faults.Fault("stream_error", after_chunks=2, status=status, code=code))
    err, events = await failure(provider, req(stream=True), stream=True)
    assert err.kind is kind and err.status is None
    assert [e.text for e in events] == ["Hello", " from"]


def test_sse_event_named_error_raises(provider):
    frame = SSEEvent("error", '{"error":{"message":"boom","type":"server_error"}}')
    with pytest.raises(ProviderError) as info:
        provider.stream_events(frame, StreamState(), MODEL)
    assert info.value.kind is ErrorKind.SERVER_ERROR and info.value.message == "boom"


async def test_stalled_stream_times_out(fakes):
    p = OpenAIProvider(fakes.url("openai"), SecretStr("k"), timeouts=Timeouts(connect=2, idle=0.3))
    fakes["openai"].script(faults.reply(text="slow words here", seconds=1.0))
    try:
        err, events = await failure(p, req(stream=True), stream=True)
    finally:
        await p.aclose()
    assert err.kind is ErrorKind.TIMEOUT and events == [TextDelta("slow")]


async def test_hang_can_be_cancelled_without_leaking_the_connection(provider, fakes):
    fakes["openai"].script(faults.hang(5))

    async def consume():
        return await collect(provider, req(stream=True))

    with pytest.raises(TimeoutError):
        await asyncio.wait_for(consume(), 0.5)
    assert not provider.session.connector._acquired
    assert (await provider.complete(req())).text
