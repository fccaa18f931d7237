"""The Ollama adapter against the fake Ollama (and, for replies the fake never sends, a tiny
raw server): native /api/chat wire format, NDJSON streams, usage, finish reasons, errors."""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from contextlib import aclosing

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr

from llmrelay.providers.base import Timeouts
from llmrelay.providers.ollama import OllamaProvider
from llmrelay.providers.registry import provider_class
from llmrelay.testing import FakeServers, faults
from llmrelay.types import (
    ChatRequest,
    ErrorKind,
    Finished,
    Message,
    ProviderError,
    TextDelta,
    Usage,
    UsageReport,
)

TIMEOUTS = Timeouts(connect=2.0, idle=5.0)


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["ollama"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()
    yield
    fakes["ollama"].models = None


@pytest.fixture
async def provider(fakes):
    p = provider_class("ollama")(fakes.url("ollama"), None, timeouts=TIMEOUTS)
    yield p
    await p.aclose()


def ask(text: str = "Hi there", *, stream: bool = False, **kw) -> ChatRequest:
    return ChatRequest(model=kw.pop("model", "llama3.2"), messages=(Message("user", text),), stream=stream, **kw)


async def collect(provider, request):
    events = []
    async for ev in provider.stream(request):
        events.append(ev)
    return events


async def stream_until_error(provider, request):
    """The events received before the stream failed, and the error."""
    events = []
    with pytest.raises(ProviderError) as info:
        async for ev in provider.stream(request):
            events.append(ev)
    return events, info.value


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def sent(fakes) -> dict:
    return fakes["ollama"].requests[-1].body


# -- success -----------------------------------------------------------------------------------


def test_registry_finds_the_adapter():
    assert provider_class("ollama") is OllamaProvider
    assert OllamaProvider.name == "ollama"


async def test_complete_returns_text_model_usage_and_stop(provider):
    resp = await provider.complete(ask("hello world"))
    assert resp.text == "Hello from fake ollama (llama3.2). You said: hello world"
    assert resp.model == "llama3.2"
    assert resp.provider == "ollama"
    assert resp.finish_reason == "stop"
    assert resp.usage == Usage(input_tokens=2, output_tokens=9)
    assert resp.raw_id is None


async def test_stream_yields_deltas_then_one_usage_report_then_finished_last(provider):
    events = await collect(provider, ask("hello world", stream=True))
    assert text_of(events) == "Hello from fake ollama (llama3.2). You said: hello world"
    assert [type(e) for e in events[-2:]] == [UsageReport, Finished]
    assert sum(isinstance(e, Finished) for e in events) == 1
    assert all(isinstance(e, TextDelta) and e.text for e in events[:-2])
    assert events[-2] == UsageReport(Usage(input_tokens=2, output_tokens=9), model="llama3.2")
    assert events[-1] == Finished("stop")


async def test_stream_yields_each_delta_as_it_arrives(provider, fakes):
    fakes["ollama"].script(faults.reply(text="one two three", seconds=0.4))
    start = time.monotonic()
    async with aclosing(provider.stream(ask(stream=True))) as events:
        assert await anext(events) == TextDelta("one")
        assert time.monotonic() - start < 0.35  # not held back until the 0.8 s stream ends


async def test_usage_is_prompt_eval_count_and_eval_count_with_no_cached_or_reasoning(provider, fakes):
    usage = {"input": 120, "output": 30, "cached_input": 50, "reasoning": 10, "cache_write": 5}
    fakes["ollama"].script(faults.reply(usage=usage), faults.reply(usage=usage))
    expected = Usage(input_tokens=120, output_tokens=30)  # Ollama reports neither cached nor reasoning
    assert (await provider.complete(ask())).usage == expected
    events = await collect(provider, ask(stream=True))
    assert [e.usage for e in events if isinstance(e, UsageReport)] == [expected]


async def test_zero_metrics_omitted_by_the_server_count_as_zero(provider, fakes):
    fakes["ollama"].script(faults.reply(usage={"input": 0, "output": 0}),
                           faults.reply(usage={"input": 0, "output": 0}))
    assert (await provider.complete(ask())).usage == Usage()
    events = await collect(provider, ask(stream=True))
    assert events[-2] == UsageReport(Usage(), model="llama3.2")


FINISHES = [
    (None, "stop"),
    ("stop", "stop"),
    ("length", "length"),
    ("tool_calls", "tool_calls"),  # the fake answers done_reason "stop" + message.tool_calls
    ("load", "error"),
    ("unload", "error"),
    ("some_future_reason", "stop"),
]


@pytest.mark.parametrize(("native", "unified"), FINISHES)
async def test_finish_reason_mapping_non_streaming(provider, fakes, native, unified):
    fakes["ollama"].script(faults.reply(finish=native))
    assert (await provider.complete(ask())).finish_reason == unified


@pytest.mark.parametrize(("native", "unified"), FINISHES)
async def test_finish_reason_mapping_streaming(provider, fakes, native, unified):
    fakes["ollama"].script(faults.reply(finish=native))
    events = await collect(provider, ask(stream=True))
    assert events[-1] == Finished(unified)


async def test_max_tokens_truncation_reports_length(provider):
    resp = await provider.complete(ask(max_tokens=3))
    assert resp.text == "Hello from fake"
    assert resp.finish_reason == "length"


async def test_request_with_only_empty_turns_is_a_load_request_and_finishes_with_error(provider, fakes):
    resp = await provider.complete(ChatRequest(model="llama3.2", messages=(Message("user", ""),)))
    assert sent(fakes)["messages"] == []
    assert (resp.text, resp.finish_reason) == ("", "error")


async def test_model_without_tag_matches_installed_latest_and_reply_echoes_requested_name(provider, fakes):
    fakes["ollama"].models = {"mistral:latest"}
    resp = await provider.complete(ask(model="mistral"))
    assert resp.model == "mistral"
    with pytest.raises(ProviderError) as info:
        await provider.complete(ask(model="llama3.2"))
    assert info.value.kind is ErrorKind.NOT_FOUND
    assert info.value.message == 'model "llama3.2" not found, try pulling it first'


# -- wire format -------------------------------------------------------------------------------


async def test_wire_format_system_message_roles_merged_turns_and_options(provider, fakes):
    request = ChatRequest(
        model="llama3.2", system="Be terse.",
        messages=(Message("user", "first"), Message("user", "second"), Message("assistant", ""),
                  Message("assistant", "answer"), Message("user", "third")),
        max_tokens=256, temperature=0.2, stop=("END", "", "STOP"))
    await provider.complete(request)
    req = fakes["ollama"].requests[-1]
    assert req.path == "/api/chat"
    assert req.body == {
        "model": "llama3.2",
        "messages": [{"role": "system", "content": "Be terse."},
                     {"role": "user", "content": "first\n\nsecond"},
                     {"role": "assistant", "content": "answer"},
                     {"role": "user", "content": "third"}],
        "stream": False,
        "options": {"num_predict": 256, "temperature": 0.2, "stop": ["END", "STOP"]},
    }


async def test_stream_flag_is_always_explicit(provider, fakes):
    await provider.complete(ask())
    assert sent(fakes)["stream"] is False
    await collect(provider, ask(stream=True))
    assert sent(fakes)["stream"] is True


async def test_no_options_and_no_authorization_header_by_default(provider, fakes):
    await provider.complete(ask())
    req = fakes["ollama"].requests[-1]
    assert "options" not in req.body
    assert "authorization" not in req.headers


@pytest.mark.parametrize(("given", "sent_value"), [(3.5, 2.0), (-0.5, 0.0), (0.0, 0.0), (1.3, 1.3)])
async def test_temperature_is_clamped_to_the_unified_range(provider, fakes, given, sent_value):
    await provider.complete(ask(temperature=given))
    assert sent(fakes)["options"]["temperature"] == sent_value


async def test_api_key_is_sent_as_bearer_for_ollama_cloud():
    with FakeServers(["ollama"], api_key="cloud-key") as cloud:
        url = cloud.url("ollama")
        right = OllamaProvider(url, SecretStr("cloud-key"), timeouts=TIMEOUTS)
        wrong = OllamaProvider(url, SecretStr("other-key"), timeouts=TIMEOUTS)
        keyless = OllamaProvider(url, None, timeouts=TIMEOUTS)
        try:
            assert (await right.complete(ask())).finish_reason == "stop"
            assert cloud["ollama"].requests[-1].headers["authorization"] == "<present>"
            for p in (wrong, keyless):
                with pytest.raises(ProviderError) as info:
                    await p.complete(ask())
                assert (info.value.kind, info.value.status) == (ErrorKind.AUTH, 401)
        finally:
            for p in (right, wrong, keyless):
                await p.aclose()


# -- HTTP errors -------------------------------------------------------------------------------


ERRORS = [
    (faults.http_error(400), ErrorKind.BAD_REQUEST, 400, "invalid request"),
    (faults.http_error(400, "context_length_exceeded"), ErrorKind.CONTEXT_LENGTH_EXCEEDED, 400,
     "request (351 tokens) exceeds the available context size (256 tokens), try increasing it"),
    (faults.http_error(400, message="prompt is longer than the context length"),
     ErrorKind.CONTEXT_LENGTH_EXCEEDED, 400, "prompt is longer than the context length"),
    (faults.http_error(401), ErrorKind.AUTH, 401, "unauthorized"),
    (faults.http_error(403), ErrorKind.AUTH, 403, "forbidden"),
    (faults.http_error(404), ErrorKind.NOT_FOUND, 404, 'model "llama3.2" not found, try pulling it first'),
    (faults.http_error(429), ErrorKind.RATE_LIMITED, 429, "too many requests, please wait and try again"),
    (faults.http_error(500), ErrorKind.SERVER_ERROR, 500, "llama runner process has terminated: exit status 2"),
    (faults.http_error(502), ErrorKind.SERVER_ERROR, 502, "bad gateway: the remote model is unreachable"),
    (faults.overloaded(), ErrorKind.OVERLOADED, 503,
     "server busy, please try again.  maximum pending requests exceeded"),
    (faults.http_error(504), ErrorKind.TIMEOUT, 504, "gateway timeout"),
]


@pytest.mark.parametrize(("fault", "kind", "status", "message"), ERRORS,
                         ids=[f"{e[2]}-{e[1].value}" for e in ERRORS])
async def test_http_error_maps_to_kind(provider, fakes, fault, kind, status, message):
    fakes["ollama"].script(fault)
    with pytest.raises(ProviderError) as info:
        await provider.complete(ask())
    err = info.value
    assert (err.kind, err.status, err.message) == (kind, status, message)
    assert (err.provider, err.model) == ("ollama", "llama3.2")
    assert err.retryable is kind.retryable
    assert err.falls_through is kind.falls_through


async def test_http_error_on_a_stream_request_maps_before_any_event(provider, fakes):
    fakes["ollama"].script(faults.http_error(404))
    events, err = await stream_until_error(provider, ask(stream=True))
    assert events == []
    assert (err.kind, err.status) == (ErrorKind.NOT_FOUND, 404)


async def test_bad_request_is_fatal(provider, fakes):
    fakes["ollama"].script(faults.http_error(400))
    with pytest.raises(ProviderError) as info:
        await provider.complete(ask())
    assert not info.value.retryable
    assert not info.value.falls_through


@pytest.mark.parametrize(("hint", "expected"), [
    ({"retry_after": "7"}, 7.0),
    ({"retry_after": "2.5"}, 2.5),
    ({"retry_after_ms": "1500"}, 1.5),
])
async def test_rate_limited_429_carries_retry_after(provider, fakes, hint, expected):
    fakes["ollama"].script(faults.http_error(429, **hint))
    with pytest.raises(ProviderError) as info:
        await provider.complete(ask())
    assert info.value.kind is ErrorKind.RATE_LIMITED
    assert info.value.retry_after == expected


async def test_retry_after_as_http_date(provider, fakes):
    fakes["ollama"].script(faults.http_error(429, retry_after=email.utils.formatdate(time.time() + 30,
                                                                                     usegmt=True)))
    with pytest.raises(ProviderError) as info:
        await provider.complete(ask())
    assert 25 < info.value.retry_after <= 31


async def test_x_should_retry_false_overrides_a_retryable_status(provider, fakes):
    fakes["ollama"].script(faults.http_error(500, should_retry="false"))
    with pytest.raises(ProviderError) as info:
        await provider.complete(ask())
    assert info.value.kind is ErrorKind.SERVER_ERROR
    assert not info.value.retryable


# -- malformed replies (a raw server sends what the fake never would) ----------------------------


@pytest.fixture
async def raw_server():
    """`await raw_server(handler)` -> base URL of a one-route (/api/chat) server."""
    servers = []

    async def start(handler):
        app = web.Application()
        app.router.add_post("/api/chat", handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("")).rstrip("/")

    yield start
    for s in servers:
        await s.close()


def reply_with(status: int, body: bytes, content_type: str = "application/json"):
    async def handler(request):
        await request.read()
        return web.Response(status=status, body=body, content_type=content_type)
    return handler


def ndjson_stream(*lines: bytes):
    async def handler(request):
        await request.read()
        resp = web.StreamResponse(headers={"content-type": "application/x-ndjson"})
        await resp.prepare(request)
        for line in lines:
            await resp.write(line)
        await resp.write_eof()
        return resp
    return handler


async def test_malformed_non_json_200_is_server_error_with_excerpt(provider, fakes):
    fakes["ollama"].script(faults.malformed())
    with pytest.raises(ProviderError) as info:
        await provider.complete(ask())
    assert info.value.kind is ErrorKind.SERVER_ERROR
    assert "not JSON" in info.value.message and "<html><body>502 Bad Gateway" in info.value.message


async def test_malformed_stream_line_is_server_error_with_excerpt_after_earlier_deltas(provider, fakes):
    fakes["ollama"].script(faults.malformed(after_chunks=2))
    events, err = await stream_until_error(provider, ask(stream=True))
    assert text_of(events) == "Hello from"
    assert err.kind is ErrorKind.SERVER_ERROR
    assert "stream line is not JSON" in err.message and "{not json at all" in err.message


@pytest.mark.parametrize("status", [502, 503, 500])
async def test_non_json_error_body_maps_by_status_with_excerpt(raw_server, status):
    url = await raw_server(reply_with(status, b"<html><head><title>Bad Gateway</title></head></html>",
                                      "text/html"))
    provider = OllamaProvider(url, timeouts=TIMEOUTS)
    try:
        with pytest.raises(ProviderError) as info:
            await provider.complete(ask())
    finally:
        await provider.aclose()
    expected = {502: ErrorKind.SERVER_ERROR, 503: ErrorKind.OVERLOADED, 500: ErrorKind.SERVER_ERROR}[status]
    assert (info.value.kind, info.value.status) == (expected, status)
    assert "<title>Bad Gateway</title>" in info.value.message


async def test_openai_shaped_error_body_from_a_proxy_still_gives_its_message(raw_server):
    url = await raw_server(reply_with(400, b'{"error":{"message":"context length exceeded","type":"x"}}'))
    provider = OllamaProvider(url, timeouts=TIMEOUTS)
    try:
        with pytest.raises(ProviderError) as info:
            await provider.complete(ask())
    finally:
        await provider.aclose()
    assert info.value.kind is ErrorKind.CONTEXT_LENGTH_EXCEEDED
    assert info.value.message == "context length exceeded"


@pytest.mark.parametrize(("body", "what"), [
    (b'{"model":"llama3.2","message":"hello","done":true}', "unexpected message"),
    (b'{"model":"llama3.2","message":{"role":"assistant","content":["a"]},"done":true}', "unexpected message"),
    (b'{"model":"llama3.2","message":{"content":"hi"},"done":true,"eval_count":"12"}', "unexpected eval_count"),
    (b'{"model":"llama3.2","done":true,"done_reason":"stop"}', "unexpected message"),
    (b'["not", "an", "object"]', "not a JSON object"),
    (b'{"error":"an error was encountered while running the model"}',
     "an error was encountered while running the model"),
])
async def test_json_reply_of_the_wrong_shape_is_server_error(raw_server, body, what):
    url = await raw_server(reply_with(200, body))
    provider = OllamaProvider(url, timeouts=TIMEOUTS)
    try:
        with pytest.raises(ProviderError) as info:
            await provider.complete(ask())
    finally:
        await provider.aclose()
    assert info.value.kind is ErrorKind.SERVER_ERROR
    assert what in info.value.message


async def test_stream_that_ends_cleanly_without_done_true_is_server_error(raw_server):
    line = b'{"model":"llama3.2","message":{"role":"assistant","content":"%s"},"done":false}\n'
    url = await raw_server(ndjson_stream(line % b"Hel", line % b"lo"))
    provider = OllamaProvider(url, timeouts=TIMEOUTS)
    try:
        events, err = await stream_until_error(provider, ask(stream=True))
    finally:
        await provider.aclose()
    assert text_of(events) == "Hello"
    assert err.kind is ErrorKind.SERVER_ERROR
    assert err.message == "stream ended before done:true"


async def test_stream_error_line_first_is_server_error_before_any_delta(raw_server):
    url = await raw_server(ndjson_stream(b'{"error":"model runner has unexpectedly stopped"}\n'))
    provider = OllamaProvider(url, timeouts=TIMEOUTS)
    try:
        events, err = await stream_until_error(provider, ask(stream=True))
    finally:
        await provider.aclose()
    assert events == []
    assert (err.kind, err.message) == (ErrorKind.SERVER_ERROR, "model runner has unexpectedly stopped")


async def test_stream_final_line_split_across_reads_and_text_on_done_line(raw_server):
    final = (b'{"model":"llama3.2","message":{"role":"assistant","content":"!"},"done":true,'
             b'"done_reason":"stop","prompt_eval_count":11,"eval_count":18}')
    first = b'{"model":"llama3.2","message":{"role":"assistant","content":"Hi"},"done":false}\n'
    url = await raw_server(ndjson_stream(first + final[:30], final[30:]))  # no trailing newline
    provider = OllamaProvider(url, timeouts=TIMEOUTS)
    try:
        events = await collect(provider, ask(stream=True))
    finally:
        await provider.aclose()
    assert events == [TextDelta("Hi"), TextDelta("!"),
                      UsageReport(Usage(input_tokens=11, output_tokens=18), model="llama3.2"), Finished("stop")]


async def test_done_line_without_done_reason_from_an_older_server_is_stop(raw_server):
    url = await raw_server(reply_with(200, b'{"model":"llama2","message":{"role":"assistant","content":"ok"},'
                                           b'"done":true}'))
    provider = OllamaProvider(url, timeouts=TIMEOUTS)
    try:
        resp = await provider.complete(ask())
    finally:
        await provider.aclose()
    assert (resp.text, resp.model, resp.finish_reason, resp.usage) == ("ok", "llama2", "stop", Usage())


# -- in-band and transport failures ------------------------------------------------------------


async def test_mid_stream_error_line_is_server_error_after_the_deltas_before_it(provider, fakes):
    fakes["ollama"].script(faults.stream_error(after_chunks=2))
    events, err = await stream_until_error(provider, ask(stream=True))
    assert events == [TextDelta("Hello"), TextDelta(" from")]
    assert err.kind is ErrorKind.SERVER_ERROR
    assert err.message == "an error was encountered while running the model"
    assert err.retryable


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_connection_refused_says_ollama_is_not_reachable_at_base_url():
    url = f"http://127.0.0.1:{closed_port()}"
    provider = OllamaProvider(url, timeouts=TIMEOUTS)
    try:
        for call in (provider.complete(ask()), collect(provider, ask(stream=True))):
            with pytest.raises(ProviderError) as info:
                await call
            assert info.value.kind is ErrorKind.CONNECTION
            assert info.value.message.startswith(f"Ollama is not reachable at {url} (")
            assert info.value.retryable and info.value.falls_through
    finally:
        await provider.aclose()


async def test_refused_while_the_fake_is_down_then_served_when_it_is_back(provider, fakes):
    await provider.complete(ask())  # a pooled keep-alive connection exists
    fakes.refuse("ollama", 0.5)
    with pytest.raises(ProviderError) as info:
        await provider.complete(ask())
    assert info.value.kind is ErrorKind.CONNECTION
    for _ in range(40):
        await asyncio.sleep(0.1)
        try:
            await provider.complete(ask())
            break
        except ProviderError:
            continue
    else:
        pytest.fail("the fake did not come back")


@pytest.mark.parametrize("stream", [False, True])
async def test_disconnect_is_connection(provider, fakes, stream):
    fakes["ollama"].script(faults.disconnect())
    with pytest.raises(ProviderError) as info:
        if stream:
            await collect(provider, ask(stream=True))
        else:
            await provider.complete(ask())
    assert info.value.kind is ErrorKind.CONNECTION


async def test_stream_cut_before_done_is_connection_or_server_error_after_its_deltas(provider, fakes):
    fakes["ollama"].script(faults.cut(2))
    events, err = await stream_until_error(provider, ask(stream=True))
    assert text_of(events) == "Hello from"
    assert not any(isinstance(e, Finished | UsageReport) for e in events)
    assert err.kind in (ErrorKind.CONNECTION, ErrorKind.SERVER_ERROR)


async def test_non_streaming_body_cut_in_half_is_connection(provider, fakes):
    fakes["ollama"].script(faults.cut())
    with pytest.raises(ProviderError) as info:
        await provider.complete(ask())
    assert info.value.kind is ErrorKind.CONNECTION


async def test_stalled_stream_times_out_on_the_idle_timeout(fakes):
    provider = OllamaProvider(fakes.url("ollama"), timeouts=Timeouts(connect=2.0, idle=0.3))
    fakes["ollama"].script(faults.reply(text="slow words here", seconds=1.0))
    try:
        events, err = await stream_until_error(provider, ask(stream=True))
    finally:
        await provider.aclose()
    assert events == [TextDelta("slow")]
    assert err.kind is ErrorKind.TIMEOUT
    assert err.retryable


async def test_hanging_call_can_be_cancelled_and_the_provider_stays_usable(provider, fakes):
    fakes["ollama"].script(faults.hang(1.0))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(provider.complete(ask()), 0.5)
    fakes["ollama"].script(faults.hang(1.0))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(collect(provider, ask(stream=True)), 0.5)
    assert (await provider.complete(ask())).finish_reason == "stop"
    connector = provider.session.connector
    assert connector is not None
    assert not connector._acquired  # nothing left checked out by the cancelled calls
