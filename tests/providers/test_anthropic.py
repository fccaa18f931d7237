"""The Anthropic adapter against the fake Anthropic server (and, for replies the fake never
sends, a bare local HTTP server): wire format out, unified types and error kinds back."""

from __future__ import annotations

import asyncio
import email.utils
import json
import socket
import time

import pytest
from aiohttp import web
from pydantic import SecretStr

from llmrelay.providers.anthropic import API_VERSION, DEFAULT_MAX_TOKENS, AnthropicProvider
from llmrelay.providers.base import Timeouts
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

KEY = "sk-ant-api03-test-key-0123456789"
MODEL = "claude-haiku-4-5"


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["anthropic"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


@pytest.fixture
async def provider(fakes):
    p = provider_class("anthropic")(fakes.url("anthropic"), SecretStr(KEY),
                                    timeouts=Timeouts(connect=2.0, idle=2.0))
    yield p
    await p.aclose()


@pytest.fixture
async def raw_server():
    """A bare HTTP server answering every request with `state["reply"]` = (status, content
    type, body bytes): for replies the fake never produces (HTML error pages, hand-made streams)."""
    state: dict = {}

    async def handler(request: web.Request) -> web.Response:
        await request.read()
        status, ctype, body = state["reply"]
        return web.Response(status=status, body=body, headers={"content-type": ctype})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    p = AnthropicProvider(f"http://127.0.0.1:{port}", SecretStr(KEY), timeouts=Timeouts(connect=2, idle=2))
    yield p, state
    await p.aclose()
    await runner.cleanup()


def chat(*turns: tuple[str, str], **kw) -> ChatRequest:
    messages = tuple(Message(role, text) for role, text in turns) or (Message("user", "hello there"),)
    return ChatRequest(model=kw.pop("model", MODEL), messages=messages, **kw)


async def collect(provider, request: ChatRequest) -> list:
    return [event async for event in provider.stream(request)]


async def stream_until_error(provider, request: ChatRequest) -> tuple[list, ProviderError]:
    seen = []
    with pytest.raises(ProviderError) as info:
        async for event in provider.stream(request):
            seen.append(event)
    return seen, info.value


def sse(events: list[dict]) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


# -- answers ---------------------------------------------------------------------------------------


async def test_complete_returns_text_model_usage_and_id(provider):
    resp = await provider.complete(chat(("user", "hello there")))
    assert resp.text == f"Hello from fake anthropic ({MODEL}). You said: hello there"
    assert resp.model == MODEL
    assert resp.provider == "anthropic"
    assert resp.finish_reason == "stop"
    assert resp.raw_id and resp.raw_id.startswith("msg_")
    assert resp.usage == Usage(input_tokens=2, output_tokens=9)


async def test_stream_yields_usage_deltas_as_they_come_and_one_final_finished(provider):
    events = await collect(provider, chat(("user", "hello there")))
    assert isinstance(events[0], UsageReport)  # message_start: input side, provisional output
    assert events[0].usage == Usage(input_tokens=2, output_tokens=1)
    assert events[0].raw_id and events[0].raw_id.startswith("msg_")
    assert events[0].model == MODEL
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 9 and all(d.text for d in deltas)
    assert "".join(d.text for d in deltas) == f"Hello from fake anthropic ({MODEL}). You said: hello there"
    assert isinstance(events[-2], UsageReport) and events[-2].usage == Usage(input_tokens=2, output_tokens=9)
    assert events[-1] == Finished("stop")
    assert sum(isinstance(e, Finished) for e in events) == 1


@pytest.mark.parametrize("stream", [False, True])
async def test_usage_counts_cache_reads_and_writes_as_input_and_thinking_as_reasoning(provider, fakes, stream):
    # Unified 100 input = 15 uncached + 60 read from cache + 25 written to cache (native input 15).
    usage = {"input": 100, "cached_input": 60, "cache_write": 25, "output": 40, "reasoning": 30}
    expected = Usage(input_tokens=100, output_tokens=40, cached_input_tokens=60, reasoning_tokens=30,
                     cache_write_tokens=25)
    fakes["anthropic"].script(faults.reply(text="cached answer", usage=usage))
    if not stream:
        assert (await provider.complete(chat())).usage == expected
        return
    reports = [e.usage for e in await collect(provider, chat()) if isinstance(e, UsageReport)]
    assert reports[0] == Usage(input_tokens=100, output_tokens=1, cached_input_tokens=60,
                               cache_write_tokens=25)
    assert reports[-1] == expected


STOP_REASONS = [("end_turn", "stop"), ("stop_sequence", "stop"), ("pause_turn", "stop"),
                ("max_tokens", "length"), ("model_context_window_exceeded", "length"),
                ("tool_use", "tool_calls"), ("refusal", "content_filter"),
                ("a_future_stop_reason", "stop")]


@pytest.mark.parametrize(("native", "unified"), STOP_REASONS)
async def test_complete_maps_stop_reason(provider, fakes, native, unified):
    fakes["anthropic"].script(faults.reply(text="some text", finish=native))
    assert (await provider.complete(chat())).finish_reason == unified


@pytest.mark.parametrize(("native", "unified"), STOP_REASONS)
async def test_stream_maps_stop_reason_in_the_last_event(provider, fakes, native, unified):
    fakes["anthropic"].script(faults.reply(text="some partial text", finish=native))
    events = await collect(provider, chat())
    assert events[-1] == Finished(unified)
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "some partial text"


async def test_refusal_keeps_the_partial_text_and_reports_content_filter(provider, fakes):
    fakes["anthropic"].script(faults.reply(text="I started but", finish="refusal"))
    resp = await provider.complete(chat())
    assert (resp.text, resp.finish_reason) == ("I started but", "content_filter")


async def test_max_tokens_cut_reports_length(provider):
    resp = await provider.complete(chat(max_tokens=3))
    assert resp.text == "Hello from fake"
    assert resp.finish_reason == "length"
    assert resp.usage.output_tokens == 3


async def test_stop_sequence_ends_the_answer_before_it(provider, fakes):
    resp = await provider.complete(chat(("user", "hello there"), stop=("You said",)))
    assert resp.text == f"Hello from fake anthropic ({MODEL}). "
    assert resp.finish_reason == "stop"
    assert fakes["anthropic"].requests[-1].body["stop_sequences"] == ["You said"]


# -- wire format -----------------------------------------------------------------------------------


async def test_request_wire_format(provider, fakes):
    request = chat(("user", "first"), ("user", "second"), ("assistant", "answer"), ("user", ""),
                   ("assistant", "more"), ("user", "last"),
                   system="Be brief.", max_tokens=77, temperature=0.4, stop=("END", "STOP"))
    await provider.complete(request)
    seen = fakes["anthropic"].requests[-1]
    assert (seen.method, seen.path) == ("POST", "/v1/messages")
    assert seen.body == {
        "model": MODEL,
        "max_tokens": 77,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": "first\n\nsecond"},
                     {"role": "assistant", "content": "answer\n\nmore"},
                     {"role": "user", "content": "last"}],
        "temperature": 0.4,
        "stop_sequences": ["END", "STOP"],
    }
    assert seen.headers["x-api-key"] == "<present>"
    assert "authorization" not in seen.headers
    assert seen.headers["anthropic-version"] == API_VERSION == "2023-06-01"
    assert seen.headers["content-type"].startswith("application/json")


async def test_stream_request_sets_stream_true(provider, fakes):
    await collect(provider, chat())
    assert fakes["anthropic"].requests[-1].body["stream"] is True


async def test_missing_max_tokens_gets_the_default(provider, fakes):
    await provider.complete(chat())
    body = fakes["anthropic"].requests[-1].body
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS == 4096
    assert "system" not in body and "temperature" not in body and "stop_sequences" not in body
    assert "stream" not in body


@pytest.mark.parametrize(("given", "sent"), [(1.7, 1.0), (2.0, 1.0), (-0.5, 0.0), (0.0, 0.0), (1.0, 1.0)])
async def test_temperature_is_clamped_into_zero_to_one(provider, fakes, given, sent):
    await provider.complete(chat(temperature=given))  # the fake, like the API, 400s outside 0..1
    assert fakes["anthropic"].requests[-1].body["temperature"] == sent


async def test_history_starting_with_assistant_is_sent_as_is(provider, fakes):
    await provider.complete(chat(("assistant", "How can I help?"), ("user", "tell me")))
    assert [m["role"] for m in fakes["anthropic"].requests[-1].body["messages"]] == ["assistant", "user"]


async def test_trailing_assistant_prefill_loses_trailing_whitespace(provider, fakes):
    await provider.complete(chat(("user", "count"), ("assistant", "one two  \n")))
    assert fakes["anthropic"].requests[-1].body["messages"][-1] == {"role": "assistant", "content": "one two"}


async def test_whitespace_only_stop_sequences_are_not_sent(provider, fakes):
    await provider.complete(chat(stop=(" ", "\n", "END")))
    assert fakes["anthropic"].requests[-1].body["stop_sequences"] == ["END"]


async def test_conversation_without_text_is_refused_before_sending(provider, fakes):
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat(("user", "  "), ("assistant", "")))
    assert info.value.kind is ErrorKind.BAD_REQUEST
    assert fakes["anthropic"].requests == []


async def test_zero_max_tokens_is_raised_to_one(provider, fakes):
    await provider.complete(chat(max_tokens=0))
    assert fakes["anthropic"].requests[-1].body["max_tokens"] == 1


# -- errors ----------------------------------------------------------------------------------------

ERRORS = [
    # status, code hint, kind, retryable, falls through
    (400, "context_length", ErrorKind.CONTEXT_LENGTH_EXCEEDED, False, True),
    (400, "context_limit", ErrorKind.CONTEXT_LENGTH_EXCEEDED, False, True),
    (400, "spend_limit", ErrorKind.AUTH, False, True),
    (400, "credit_balance", ErrorKind.AUTH, False, True),
    (400, None, ErrorKind.BAD_REQUEST, False, False),
    (401, None, ErrorKind.AUTH, False, True),
    (402, None, ErrorKind.AUTH, False, True),
    (403, None, ErrorKind.AUTH, False, True),
    (404, None, ErrorKind.NOT_FOUND, False, True),
    (409, None, ErrorKind.BAD_REQUEST, False, False),
    (413, None, ErrorKind.BAD_REQUEST, False, False),
    (500, None, ErrorKind.SERVER_ERROR, True, True),
    (503, None, ErrorKind.SERVER_ERROR, True, True),
    (504, None, ErrorKind.TIMEOUT, True, True),
    (529, None, ErrorKind.OVERLOADED, True, True),
]


@pytest.mark.parametrize(("status", "code", "kind", "retryable", "falls_through"), ERRORS)
async def test_http_error_maps_to_kind(provider, fakes, status, code, kind, retryable, falls_through):
    fakes["anthropic"].script(faults.http_error(status, code))
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    err = info.value
    assert (err.kind, err.status, err.provider, err.model) == (kind, status, "anthropic", MODEL)
    assert (err.retryable, err.falls_through) == (retryable, falls_through)
    assert err.message.startswith(("invalid_request_error", "authentication_error", "billing_error",
                                   "permission_error", "not_found_error", "conflict_error",
                                   "request_too_large", "api_error", "timeout_error", "overloaded_error"))


async def test_context_length_message_is_the_providers(provider, fakes):
    fakes["anthropic"].script(faults.http_error(400, "context_length"))
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    assert "prompt is too long: 208656 tokens > 200000 maximum" in info.value.message


async def test_rate_limit_429_with_retry_after_seconds_is_retryable(provider, fakes):
    fakes["anthropic"].script(faults.http_error(429, retry_after="7"))
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    err = info.value
    assert (err.kind, err.retry_after, err.retryable, err.falls_through) == (
        ErrorKind.RATE_LIMITED, 7.0, True, True)


async def test_rate_limit_429_with_retry_after_http_date(provider, fakes):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fakes["anthropic"].script(faults.http_error(429, retry_after=when))
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    assert info.value.kind is ErrorKind.RATE_LIMITED
    assert 25 <= info.value.retry_after <= 31
    assert info.value.retryable


async def test_rate_limit_429_with_retry_after_ms(provider, fakes):
    fakes["anthropic"].script(faults.http_error(429, retry_after_ms="1500"))
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    assert (info.value.retry_after, info.value.retryable) == (1.5, True)


@pytest.mark.parametrize("code", [None, "spend_cap"])
async def test_429_without_retry_after_is_the_spend_cap_never_retried_but_falls_through(provider, fakes, code):
    fakes["anthropic"].script(faults.http_error(429, code, retry_after="5" if code else None))
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    err = info.value
    assert (err.kind, err.retry_after) == (ErrorKind.RATE_LIMITED, None)
    assert (err.retryable, err.falls_through) == (False, True)


async def test_overloaded_529_maps_to_overloaded_with_retry_after(provider, fakes):
    fakes["anthropic"].script(faults.overloaded(retry_after="3"))
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    err = info.value
    assert (err.kind, err.status, err.retry_after, err.retryable) == (ErrorKind.OVERLOADED, 529, 3.0, True)
    assert err.message == "overloaded_error: Overloaded"


async def test_x_should_retry_false_wins_over_the_kind(provider, fakes):
    fakes["anthropic"].script(faults.overloaded(should_retry="false"))
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    assert info.value.kind is ErrorKind.OVERLOADED and not info.value.retryable


async def test_x_should_retry_true_wins_over_the_spend_cap_rule(provider, fakes):
    fakes["anthropic"].script(faults.http_error(429, should_retry="true"))
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    assert info.value.retryable


async def test_http_error_on_a_stream_request_maps_the_same(provider, fakes):
    fakes["anthropic"].script(faults.overloaded())
    seen, err = await stream_until_error(provider, chat())
    assert seen == [] and err.kind is ErrorKind.OVERLOADED and err.status == 529


async def test_wrong_key_is_auth(fakes):
    with FakeServers(["anthropic"], api_key="right-key") as guarded:
        p = AnthropicProvider(guarded.url("anthropic"), SecretStr("wrong-key"))
        try:
            with pytest.raises(ProviderError) as info:
                await p.complete(chat())
            assert (info.value.kind, info.value.status) == (ErrorKind.AUTH, 401)
            assert "invalid x-api-key" in info.value.message
            good = AnthropicProvider(guarded.url("anthropic"), SecretStr("right-key"))
            assert (await good.complete(chat())).text
            await good.aclose()
        finally:
            await p.aclose()


async def test_unknown_model_is_not_found(fakes):
    with FakeServers(["anthropic"], models={"claude-opus-4-7"}) as limited:
        p = AnthropicProvider(limited.url("anthropic"), SecretStr(KEY))
        try:
            with pytest.raises(ProviderError) as info:
                await p.complete(chat(model="claude-nonexistent"))
            assert (info.value.kind, info.value.status) == (ErrorKind.NOT_FOUND, 404)
            assert "claude-nonexistent" in info.value.message
        finally:
            await p.aclose()


@pytest.mark.parametrize(("status", "kind"), [(502, ErrorKind.SERVER_ERROR), (529, ErrorKind.OVERLOADED),
                                              (504, ErrorKind.TIMEOUT), (429, ErrorKind.RATE_LIMITED),
                                              (403, ErrorKind.AUTH)])
async def test_non_json_error_body_maps_by_status_with_an_excerpt(raw_server, status, kind):
    provider, state = raw_server
    state["reply"] = (status, "text/html", b"<html><body><h1>502 Bad Gateway</h1> nginx</body></html>")
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    assert (info.value.kind, info.value.status) == (kind, status)
    assert "502 Bad Gateway" in info.value.message


async def test_malformed_200_body_is_server_error_with_excerpt(provider, fakes):
    fakes["anthropic"].script(faults.malformed())
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    assert info.value.kind is ErrorKind.SERVER_ERROR
    assert "502 Bad Gateway" in info.value.message


@pytest.mark.parametrize("body", [
    {"id": "msg_1", "type": "message", "content": "not a list", "usage": {"input_tokens": 1, "output_tokens": 1}},
    {"id": "msg_1", "type": "message", "content": [{"type": "text", "text": "hi"}]},
    {"id": "msg_1", "type": "message", "content": [{"type": "text"}], "usage": {"input_tokens": 1,
                                                                                 "output_tokens": 1}},
    {"id": "msg_1", "type": "message", "content": [], "usage": {"input_tokens": "1", "output_tokens": 1}},
    [1, 2, 3],
])
async def test_json_reply_of_the_wrong_shape_is_server_error(raw_server, body):
    provider, state = raw_server
    state["reply"] = (200, "application/json", json.dumps(body).encode())
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    assert info.value.kind is ErrorKind.SERVER_ERROR


async def test_connection_refused_is_connection():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = AnthropicProvider(f"http://127.0.0.1:{port}", SecretStr(KEY))
    try:
        with pytest.raises(ProviderError) as info:
            await p.complete(chat())
        assert info.value.kind is ErrorKind.CONNECTION and info.value.retryable
    finally:
        await p.aclose()


async def test_refused_by_the_fake_is_connection(provider, fakes):
    fakes.refuse("anthropic", 0.3)
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    assert info.value.kind is ErrorKind.CONNECTION
    await asyncio.sleep(0.5)
    assert (await provider.complete(chat())).text  # listening again


@pytest.mark.parametrize("stream", [False, True])
async def test_disconnect_is_connection(provider, fakes, stream):
    fakes["anthropic"].script(faults.disconnect())
    with pytest.raises(ProviderError) as info:
        if stream:
            await collect(provider, chat())
        else:
            await provider.complete(chat())
    assert info.value.kind is ErrorKind.CONNECTION


async def test_non_streaming_body_cut_in_half_is_connection(provider, fakes):
    fakes["anthropic"].script(faults.cut())
    with pytest.raises(ProviderError) as info:
        await provider.complete(chat())
    assert info.value.kind is ErrorKind.CONNECTION


async def test_stream_cut_before_message_stop_fails_after_the_deltas_it_got(provider, fakes):
    fakes["anthropic"].script(faults.cut(2))
    seen, err = await stream_until_error(provider, chat())
    assert err.kind in (ErrorKind.CONNECTION, ErrorKind.SERVER_ERROR)
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Hello", " from"]
    assert isinstance(seen[0], UsageReport)  # the input tokens are known even though it failed
    assert not any(isinstance(e, Finished) for e in seen)


async def test_stream_ending_cleanly_without_message_stop_is_server_error(raw_server):
    provider, state = raw_server
    start = {"type": "message_start", "message": {"id": "msg_x", "type": "message", "role": "assistant",
                                                  "model": MODEL, "content": [], "stop_reason": None,
                                                  "usage": {"input_tokens": 5, "output_tokens": 1}}}
    delta = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}
    state["reply"] = (200, "text/event-stream", sse([start, delta]))
    seen, err = await stream_until_error(provider, chat())
    assert err.kind is ErrorKind.SERVER_ERROR and "message_stop" in err.message
    assert TextDelta("Hi") in seen


MID_STREAM = [
    (None, None, ErrorKind.OVERLOADED),
    ("overloaded_error", None, ErrorKind.OVERLOADED),
    ("rate_limit_error", None, ErrorKind.RATE_LIMITED),
    ("api_error", None, ErrorKind.SERVER_ERROR),
    ("timeout_error", None, ErrorKind.TIMEOUT),
    ("context_length", None, ErrorKind.CONTEXT_LENGTH_EXCEEDED),
    (None, 500, ErrorKind.SERVER_ERROR),
]


@pytest.mark.parametrize(("code", "status", "kind"), MID_STREAM)
async def test_mid_stream_error_event_maps_to_its_kind_after_the_deltas(provider, fakes, code, status, kind):
    fakes["anthropic"].script(faults.stream_error(2, code=code, status=status))
    seen, err = await stream_until_error(provider, chat())
    assert err.kind is kind
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Hello", " from"]
    assert not any(isinstance(e, Finished) for e in seen)


async def test_malformed_stream_frame_is_server_error_with_excerpt(provider, fakes):
    fakes["anthropic"].script(faults.malformed(after_chunks=1))
    seen, err = await stream_until_error(provider, chat())
    assert err.kind is ErrorKind.SERVER_ERROR
    assert "not json at all" in err.message
    assert TextDelta("Hello") in seen


async def test_stalled_stream_is_timeout(fakes):
    p = AnthropicProvider(fakes.url("anthropic"), SecretStr(KEY), timeouts=Timeouts(connect=2, idle=0.3))
    fakes["anthropic"].script(faults.reply(text="slow words here", seconds=1.0))
    try:
        seen, err = await stream_until_error(p, chat())
    finally:
        await p.aclose()
    assert err.kind is ErrorKind.TIMEOUT
    assert TextDelta("slow") in seen


async def test_hung_request_can_be_cancelled_and_the_provider_still_works(provider, fakes):
    fakes["anthropic"].script(faults.hang(1.0))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(provider.complete(chat()), 0.5)
    assert (await provider.complete(chat())).text
    connector = provider.session.connector
    assert connector is not None and len(connector._acquired) == 0  # nothing left checked out


async def test_stream_ignores_pings_unknown_events_and_non_text_blocks_and_keeps_the_last_usage(raw_server):
    provider, state = raw_server
    start = {"type": "message_start", "message": {
        "id": "msg_raw", "type": "message", "role": "assistant", "model": "claude-opus-4-7", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": None, "cache_read_input_tokens": 4,
                  "output_tokens": 1}}}
    frames = [
        start, {"type": "ping"}, {"type": "some_future_event", "x": 1},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "s"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Yes"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": 20}},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
         "usage": {"input_tokens": 12, "cache_read_input_tokens": 4, "output_tokens": 30,
                   "output_tokens_details": {"thinking_tokens": 25}}},
        {"type": "message_stop"},
    ]
    state["reply"] = (200, "text/event-stream", sse(frames) + b": a comment\n\n")
    events = await collect(provider, chat())
    assert [e for e in events if isinstance(e, TextDelta)] == [TextDelta("Yes")]
    reports = [e for e in events if isinstance(e, UsageReport)]
    assert [r.usage.output_tokens for r in reports] == [1, 20, 30]  # cumulative: never summed
    assert reports[-1].usage == Usage(input_tokens=16, output_tokens=30, cached_input_tokens=4,
                                      reasoning_tokens=25)
    assert (reports[-1].model, reports[-1].raw_id) == ("claude-opus-4-7", "msg_raw")
    assert events[-1] == Finished("stop")


def test_registry_points_at_the_adapter():
    assert provider_class("anthropic") is AnthropicProvider
    assert AnthropicProvider.name == "anthropic" and AnthropicProvider.probe_model.startswith("claude-")
