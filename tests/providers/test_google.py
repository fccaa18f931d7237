"""The Gemini adapter against the fake Gemini server (real HTTP on 127.0.0.1), plus a raw
server for the stream shapes the fake does not send (bare JSON error lines, EOF without a
finishReason, repeated finishReasons, reply shapes it never produces)."""

from __future__ import annotations

import asyncio
import email.utils
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from llmrelay.providers.base import Timeouts
from llmrelay.providers.google import GoogleProvider, StreamDecoder
from llmrelay.providers.google_wire import call_id as call_id_of
from llmrelay.providers.registry import provider_class
from llmrelay.testing import FakeServers, faults
from llmrelay.types import (
    ChatRequest,
    ErrorKind,
    Finished,
    Message,
    ProviderError,
    ReasoningDelta,
    TextDelta,
    ToolCallDelta,
    ToolCallEnd,
    ToolCallStart,
    Usage,
    UsageReport,
)

MODEL = "gemini-2.5-flash"
KEY = "AIzaSyTEST-google-key-000000000000000"


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["google"]) as servers:
        yield servers


@pytest.fixture(scope="module")
def strict_fakes():
    """A fake that accepts only the key "right-key"."""
    with FakeServers(["google"], api_key="right-key") as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


def make(url: str, key: str | None = KEY, idle: float = 5.0) -> GoogleProvider:
    cls = provider_class("google")
    assert cls is GoogleProvider
    return cls(url, SecretStr(key) if key is not None else None, timeouts=Timeouts(connect=2, idle=idle))


@pytest.fixture
async def provider(fakes):
    p = make(fakes.url("google"))
    yield p
    await p.aclose()


def req(text: str = "hello there", **kw) -> ChatRequest:
    return ChatRequest(model=kw.pop("model", MODEL), messages=(Message("user", text),), **kw)


async def collect(provider, request: ChatRequest) -> list:
    return [ev async for ev in provider.stream(request)]


async def raises(coro) -> ProviderError:
    with pytest.raises(ProviderError) as info:
        await coro
    return info.value


async def stream_until_error(provider, request: ChatRequest) -> tuple[list, ProviderError]:
    events: list = []
    with pytest.raises(ProviderError) as info:
        async for ev in provider.stream(request):
            events.append(ev)
    return events, info.value


def last_body(fakes) -> dict:
    return fakes["google"].requests[-1].body


# -- answers --------------------------------------------------------------------------------------


async def test_complete_returns_text_model_usage_and_response_id(provider):
    resp = await provider.complete(req("what is up"))
    assert resp.text == "Hello from fake google (gemini-2.5-flash). You said: what is up"
    assert resp.provider == "google"
    assert resp.model == MODEL
    assert resp.finish_reason == "stop"
    assert resp.raw_id and resp.raw_id.startswith("fakeGemini")
    assert resp.usage == Usage(input_tokens=3, output_tokens=10)


async def test_stream_yields_each_delta_cumulative_usage_and_finished_last(provider):
    events = await collect(provider, req("what is up"))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) == 10
    assert "".join(deltas) == "Hello from fake google (gemini-2.5-flash). You said: what is up"
    reports = [e for e in events if isinstance(e, UsageReport)]
    assert [r.usage.output_tokens for r in reports] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10]
    assert reports[-1].usage == Usage(input_tokens=3, output_tokens=10)
    assert {r.model for r in reports} == {MODEL}
    assert len({r.raw_id for r in reports}) == 1
    assert events[-1] == Finished("stop")
    assert sum(isinstance(e, Finished) for e in events) == 1


async def test_stream_deltas_arrive_before_the_stream_ends(provider, fakes):
    fakes["google"].script(faults.reply(text="one two three", seconds=0.3))
    started = time.monotonic()
    first_at = None
    async for ev in provider.stream(req()):
        if isinstance(ev, TextDelta) and first_at is None:
            first_at = time.monotonic() - started
    assert first_at is not None and first_at < 0.3 < time.monotonic() - started


@pytest.mark.parametrize("streaming", [False, True])
async def test_usage_counts_cached_and_thought_tokens_per_reference(provider, fakes, streaming):
    fakes["google"].script(faults.reply(usage={"input": 120, "cached_input": 100, "output": 50,
                                               "reasoning": 30}))
    if streaming:
        usage = [e for e in await collect(provider, req()) if isinstance(e, UsageReport)][-1].usage
    else:
        usage = (await provider.complete(req())).usage
    assert usage == Usage(input_tokens=120, output_tokens=50, cached_input_tokens=100, reasoning_tokens=30)


async def test_omitted_zero_usage_fields_read_as_zero(provider, fakes):
    fakes["google"].script(faults.reply(text="", usage={"input": 7, "output": 0}))
    resp = await provider.complete(req())
    assert resp.text == ""
    assert resp.usage == Usage(input_tokens=7)


NATIVE_FINISH = [
    ("STOP", "stop"), ("MAX_TOKENS", "length"),
    ("SAFETY", "content_filter"), ("RECITATION", "content_filter"), ("BLOCKLIST", "content_filter"),
    ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"), ("IMAGE_SAFETY", "content_filter"),
    ("MALFORMED_FUNCTION_CALL", "error"), ("UNEXPECTED_TOOL_CALL", "error"), ("TOO_MANY_TOOL_CALLS", "error"),
    ("OTHER", "error"), ("LANGUAGE", "error"), ("FINISH_REASON_UNSPECIFIED", "error"),
    ("SOME_FUTURE_VALUE", "error"), ("tool_calls", "tool_calls"),
]


@pytest.mark.parametrize(("native", "unified"), NATIVE_FINISH)
async def test_complete_maps_native_finish_reason(provider, fakes, native, unified):
    fakes["google"].script(faults.reply(finish=native))
    assert (await provider.complete(req())).finish_reason == unified


@pytest.mark.parametrize(("native", "unified"), NATIVE_FINISH)
async def test_stream_maps_native_finish_reason(provider, fakes, native, unified):
    fakes["google"].script(faults.reply(finish=native))
    events = await collect(provider, req())
    assert events[-1] == Finished(unified)


async def test_output_cut_at_max_tokens_finishes_with_length(provider):
    resp = await provider.complete(req(max_tokens=3))
    assert resp.text == "Hello from fake"
    assert resp.finish_reason == "length"


# -- the wire format ------------------------------------------------------------------------------


async def test_request_wire_format(provider, fakes):
    request = ChatRequest(
        model=MODEL, system="You are terse.",
        messages=(Message("user", "first"), Message("user", "second"), Message("assistant", "answer"),
                  Message("assistant", ""), Message("assistant", "more"), Message("user", "   "),
                  Message("user", "last")),
        max_tokens=256, temperature=0.7, stop=("END", "STOP"))
    await provider.complete(request)
    sent = fakes["google"].requests[-1]
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent"
    assert sent.query == {}
    assert sent.headers["x-goog-api-key"] == "<present>"
    assert "authorization" not in sent.headers
    assert sent.body == {
        "systemInstruction": {"parts": [{"text": "You are terse."}]},
        "contents": [{"role": "user", "parts": [{"text": "first\n\nsecond"}]},
                     {"role": "model", "parts": [{"text": "answer\n\nmore"}]},
                     {"role": "user", "parts": [{"text": "last"}]}],
        "generationConfig": {"maxOutputTokens": 256, "temperature": 0.7, "stopSequences": ["END", "STOP"]},
    }


async def test_stream_uses_stream_method_with_alt_sse(provider, fakes):
    await collect(provider, req())
    sent = fakes["google"].requests[-1]
    assert sent.path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    assert sent.query == {"alt": "sse"}


async def test_model_id_with_models_prefix_is_accepted(provider, fakes):
    resp = await provider.complete(req(model="models/gemini-2.5-pro"))
    assert fakes["google"].requests[-1].path == "/v1beta/models/gemini-2.5-pro:generateContent"
    assert resp.model == "gemini-2.5-pro"


async def test_minimal_request_sends_no_system_and_no_generation_config(provider, fakes):
    await provider.complete(req("hi"))
    assert last_body(fakes) == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.mark.parametrize(("given", "sent"), [(-0.5, 0.0), (0.0, 0.0), (1.3, 1.3), (2.0, 2.0), (3.5, 2.0)])
async def test_temperature_is_clamped_to_zero_to_two(provider, fakes, given, sent):
    await provider.complete(req(temperature=given))
    assert last_body(fakes)["generationConfig"]["temperature"] == sent


async def test_up_to_five_stop_sequences_are_sent_and_empty_ones_dropped(provider, fakes):
    await provider.complete(req(stop=("", "a", "b", "c", "d", "e")))
    assert last_body(fakes)["generationConfig"]["stopSequences"] == ["a", "b", "c", "d", "e"]
    err = await raises(provider.complete(req(stop=("a", "b", "c", "d", "e", "f"))))  # never cut silently
    assert err.kind is ErrorKind.BAD_REQUEST and err.falls_through


async def test_request_without_any_text_is_bad_request_and_not_sent(provider, fakes):
    err = await raises(provider.complete(ChatRequest(model=MODEL, messages=(Message("user", " "),))))
    assert err.kind is ErrorKind.BAD_REQUEST and not err.falls_through
    assert fakes["google"].requests == []


# -- errors from the status line --------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "kind"), [
    (faults.http_error(400), ErrorKind.BAD_REQUEST),
    (faults.http_error(400, "API_KEY_INVALID"), ErrorKind.AUTH),
    (faults.http_error(400, "failed_precondition"), ErrorKind.AUTH),
    (faults.http_error(400, "context_length_exceeded"), ErrorKind.CONTEXT_LENGTH_EXCEEDED),
    (faults.http_error(401), ErrorKind.AUTH),
    (faults.http_error(403), ErrorKind.AUTH),
    (faults.http_error(404), ErrorKind.NOT_FOUND),
    (faults.http_error(429), ErrorKind.RATE_LIMITED),
    (faults.http_error(500), ErrorKind.SERVER_ERROR),
    (faults.overloaded(), ErrorKind.OVERLOADED),
    (faults.http_error(503), ErrorKind.OVERLOADED),
    (faults.http_error(504), ErrorKind.TIMEOUT),
], ids=lambda v: v.code or str(v.status or v.type) if isinstance(v, faults.Fault) else str(v))
@pytest.mark.parametrize("streaming", [False, True])
async def test_error_status_maps_to_kind(provider, fakes, fault, kind, streaming):
    fakes["google"].script(fault)
    call = collect(provider, req()) if streaming else provider.complete(req())
    err = await raises(call)
    assert err.kind is kind
    assert err.provider == "google" and err.model == MODEL
    assert err.status == (fault.status or 503)
    assert err.message and "HTTP" not in err.message  # Google's own message


async def test_context_overflow_message_is_kept(provider, fakes):
    fakes["google"].script(faults.http_error(400, "context_length_exceeded"))
    err = await raises(provider.complete(req()))
    assert "exceeds the maximum number of tokens allowed" in err.message
    assert not err.retryable and err.falls_through


async def test_wrong_key_is_auth_from_the_real_400_api_key_invalid(strict_fakes):
    p = make(strict_fakes.url("google"), key="wrong-key")
    try:
        err = await raises(p.complete(req()))
    finally:
        await p.aclose()
    assert err.kind is ErrorKind.AUTH and err.status == 400
    assert "API key not valid" in err.message
    assert not err.retryable and err.falls_through


async def test_missing_key_is_auth_from_403_and_no_key_header_is_sent(strict_fakes):
    p = make(strict_fakes.url("google"), key=None)
    try:
        err = await raises(p.complete(req()))
    finally:
        await p.aclose()
    assert err.kind is ErrorKind.AUTH and err.status == 403
    assert "x-goog-api-key" not in strict_fakes["google"].requests[-1].headers


async def test_the_right_key_is_accepted(strict_fakes):
    p = make(strict_fakes.url("google"), key="right-key")
    try:
        assert (await p.complete(req())).finish_reason == "stop"
    finally:
        await p.aclose()


async def test_unknown_model_is_not_found():
    with FakeServers(["google"], models={"gemini-2.5-flash"}) as servers:
        p = make(servers.url("google"))
        try:
            err = await raises(p.complete(req(model="gemini-9-ultra")))
        finally:
            await p.aclose()
    assert err.kind is ErrorKind.NOT_FOUND
    assert "models/gemini-9-ultra is not found" in err.message


async def test_bad_gateway_html_body_maps_by_status_with_excerpt(provider, fakes):
    fakes["google"].script(faults.http_error(502))
    err = await raises(provider.complete(req()))
    assert err.kind is ErrorKind.SERVER_ERROR and err.status == 502
    assert "Error 502 (Server Error)" in err.message


@pytest.mark.parametrize(("hint", "expected"), [
    (dict(retry_delay="58s"), 58.0),
    (dict(retry_delay="1.217843437s"), 1.217843437),
    (dict(retry_after="7"), 7.0),
    (dict(retry_after_ms="1500"), 1.5),
    ({}, None),
])
async def test_rate_limit_retry_after_from_retry_info_or_headers(provider, fakes, hint, expected):
    fakes["google"].script(faults.http_error(429, **hint))
    err = await raises(provider.complete(req()))
    assert err.kind is ErrorKind.RATE_LIMITED and err.retryable
    assert err.retry_after == pytest.approx(expected) if expected is not None else err.retry_after is None


async def test_rate_limit_retry_after_from_http_date(provider, fakes):
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    fakes["google"].script(faults.http_error(429, retry_after=when))
    err = await raises(provider.complete(req()))
    assert 25 < err.retry_after <= 30


async def test_retry_info_wins_over_a_retry_after_header(provider, fakes):
    fakes["google"].script(faults.http_error(429, retry_delay="3s", retry_after="20"))
    assert (await raises(provider.complete(req()))).retry_after == 3.0


async def test_per_day_quota_is_rate_limited_but_never_retried_on_the_same_link(provider, fakes):
    fakes["google"].script(faults.http_error(429, "per_day", retry_delay="20s"))
    err = await raises(provider.complete(req()))
    assert err.kind is ErrorKind.RATE_LIMITED
    assert not err.retryable and err.falls_through


async def test_per_minute_quota_is_retried(provider, fakes):
    fakes["google"].script(faults.http_error(429, retry_delay="2s"))
    assert (await raises(provider.complete(req()))).retryable


async def test_x_should_retry_header_is_honoured(provider, fakes):
    fakes["google"].script(faults.http_error(500, should_retry="false"))
    err = await raises(provider.complete(req()))
    assert err.kind is ErrorKind.SERVER_ERROR and not err.retryable


def test_array_wrapped_error_body_is_read_like_a_plain_one():
    p = GoogleProvider("http://127.0.0.1:9", SecretStr(KEY))
    body = json.dumps([{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED",
                                  "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                               "retryDelay": "4s"}]}}]).encode()
    err = p.error_from_response(429, {}, body, MODEL)
    assert (err.kind, err.message, err.retry_after) == (ErrorKind.RATE_LIMITED, "quota", 4.0)


def test_api_key_in_an_error_message_is_redacted():
    p = GoogleProvider("http://127.0.0.1:9", SecretStr(KEY))
    body = json.dumps({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                 "message": f"API key {KEY} not valid."}}).encode()
    assert KEY not in p.error_from_response(400, {}, body, MODEL).message


# -- blocked prompts and malformed replies ------------------------------------------------------------


async def test_blocked_prompt_raises_content_filtered(provider, fakes):
    fakes["google"].script(faults.reply(finish="blocked:PROHIBITED_CONTENT"))
    err = await raises(provider.complete(req()))
    assert err.kind is ErrorKind.CONTENT_FILTERED and "PROHIBITED_CONTENT" in err.message
    assert not err.retryable and err.falls_through


async def test_blocked_prompt_in_a_stream_reports_usage_then_raises_content_filtered(provider, fakes):
    fakes["google"].script(faults.reply(finish="blocked"))
    events, err = await stream_until_error(provider, req("three words here"))
    assert err.kind is ErrorKind.CONTENT_FILTERED and "SAFETY" in err.message
    assert events == [UsageReport(Usage(input_tokens=3), model=MODEL, raw_id=events[0].raw_id)]


async def test_non_json_reply_is_server_error_with_excerpt(provider, fakes):
    fakes["google"].script(faults.malformed())
    err = await raises(provider.complete(req()))
    assert err.kind is ErrorKind.SERVER_ERROR and "502 Bad Gateway" in err.message


async def test_non_json_stream_frame_is_server_error_with_excerpt(provider, fakes):
    fakes["google"].script(faults.malformed(after_chunks=1))
    events, err = await stream_until_error(provider, req())
    assert err.kind is ErrorKind.SERVER_ERROR and "not json at all" in err.message
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello"]


# -- transport failures -------------------------------------------------------------------------------


async def test_connection_refused_is_connection():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = make(f"http://127.0.0.1:{port}")
    try:
        err = await raises(p.complete(req()))
    finally:
        await p.aclose()
    assert err.kind is ErrorKind.CONNECTION and err.retryable


@pytest.mark.parametrize("streaming", [False, True])
async def test_disconnect_is_connection(provider, fakes, streaming):
    fakes["google"].script(faults.disconnect())
    err = await raises(collect(provider, req()) if streaming else provider.complete(req()))
    assert err.kind is ErrorKind.CONNECTION


async def test_reply_cut_in_half_is_connection(provider, fakes):
    fakes["google"].script(faults.cut())
    assert (await raises(provider.complete(req()))).kind is ErrorKind.CONNECTION


async def test_stream_cut_before_its_last_chunk_fails_after_the_deltas_it_got(provider, fakes):
    fakes["google"].script(faults.cut(after_chunks=2))
    events, err = await stream_until_error(provider, req())
    assert err.kind in (ErrorKind.CONNECTION, ErrorKind.SERVER_ERROR)
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", " from"]
    assert not any(isinstance(e, Finished) for e in events)


@pytest.mark.parametrize(("fault", "kind"), [
    (faults.stream_error(after_chunks=2, code="RESOURCE_EXHAUSTED"), ErrorKind.RATE_LIMITED),
    (faults.stream_error(after_chunks=2, code="UNAVAILABLE"), ErrorKind.OVERLOADED),
    (faults.stream_error(after_chunks=2, code="INTERNAL"), ErrorKind.SERVER_ERROR),
    (faults.stream_error(after_chunks=2), ErrorKind.SERVER_ERROR),
    (faults.stream_error(after_chunks=2, code="DEADLINE_EXCEEDED"), ErrorKind.TIMEOUT),
    (faults.stream_error(after_chunks=2, code="context_length_exceeded"), ErrorKind.CONTEXT_LENGTH_EXCEEDED),
    (faults.stream_error(after_chunks=2, status=503), ErrorKind.OVERLOADED),
], ids=lambda v: v.code or str(v.status) if isinstance(v, faults.Fault) else str(v))
async def test_in_band_stream_error_maps_to_kind_after_the_deltas_before_it(provider, fakes, fault, kind):
    fakes["google"].script(fault)
    events, err = await stream_until_error(provider, req())
    assert err.kind is kind
    assert err.status is None  # the HTTP status was 200
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hello", " from"]


async def test_in_band_per_day_quota_error_is_not_retried(provider, fakes):
    fakes["google"].script(faults.stream_error(after_chunks=0, code="per_day", retry_delay="9s"))
    _, err = await stream_until_error(provider, req())
    assert err.kind is ErrorKind.RATE_LIMITED and not err.retryable and err.retry_after == 9.0


async def test_stalled_stream_is_timeout(fakes):
    p = make(fakes.url("google"), idle=0.3)
    fakes["google"].script(faults.reply(text="one two three", seconds=1.0))
    try:
        events, err = await stream_until_error(p, req())
    finally:
        await p.aclose()
    assert err.kind is ErrorKind.TIMEOUT
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["one"]


async def test_hanging_call_can_be_cancelled_and_the_adapter_still_works(provider, fakes):
    fakes["google"].script(faults.hang(1.5))  # short: the fake's handler outlives the cancel
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(provider.complete(req()), 0.5)
    assert (await provider.complete(req())).finish_reason == "stop"
    connector = provider.session.connector
    assert connector is not None and not connector._acquired  # nothing left checked out


# -- stream shapes the fake does not send: a raw server ----------------------------------------------


@dataclass
class Raw:
    url: str = ""
    status: int = 200
    pieces: list[bytes] = field(default_factory=list)
    content_type: str = "text/event-stream"


@pytest.fixture
async def raw() -> AsyncIterator[Raw]:
    """A server that answers every POST with `status` and the byte `pieces` set by the test."""
    state = Raw()

    async def handler(request: web.Request) -> web.StreamResponse:
        await request.read()
        resp = web.StreamResponse(status=state.status, headers={"content-type": state.content_type})
        await resp.prepare(request)
        for piece in state.pieces:
            await resp.write(piece)
            await asyncio.sleep(0)
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    state.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield state
    await runner.cleanup()


@pytest.fixture
async def raw_provider(raw) -> AsyncIterator[GoogleProvider]:
    p = make(raw.url)
    yield p
    await p.aclose()


def chunk(text: str | None = None, finish: str | None = None, usage: dict | None = None, **extra) -> dict:
    cand: dict = {"index": 0}
    if text is not None:
        cand["content"] = {"role": "model", "parts": [{"text": text}]}
    if finish:
        cand["finishReason"] = finish
    body = {"candidates": [cand], "modelVersion": "gemini-2.5-flash-001", "responseId": "r1", **extra}
    if usage:
        body["usageMetadata"] = usage
    return body


def sse(*payloads: dict) -> list[bytes]:
    return [b"data: " + json.dumps(p).encode() + b"\r\n\r\n" for p in payloads]


PRETTY_ERROR = json.dumps({"error": {"code": 503, "message": "The model is overloaded. {braces} \"q\"",
                                     "status": "UNAVAILABLE"}}, indent=2).encode()


async def test_bare_json_error_lines_outside_sse_raise_their_kind(raw, raw_provider):
    raw.pieces = [*sse(chunk("Hel"), chunk("lo")), PRETTY_ERROR[:20], PRETTY_ERROR[20:] + b"\n"]
    events, err = await stream_until_error(raw_provider, req())
    assert err.kind is ErrorKind.OVERLOADED and "{braces}" in err.message
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo"]


async def test_array_wrapped_bare_json_error_raises_its_kind(raw, raw_provider):
    body = json.dumps([{"error": {"code": 429, "message": "quota", "status": "RESOURCE_EXHAUSTED"}}], indent=1)
    raw.pieces = [body.encode()]
    err = await raises(collect(raw_provider, req()))
    assert err.kind is ErrorKind.RATE_LIMITED


async def test_in_band_error_naming_only_a_status_maps_through_it(raw, raw_provider):
    raw.pieces = sse({"error": {"message": "slow down", "status": "RESOURCE_EXHAUSTED"}})
    assert (await raises(collect(raw_provider, req()))).kind is ErrorKind.RATE_LIMITED


async def test_eof_without_any_finish_reason_is_server_error(raw, raw_provider):
    raw.pieces = sse(chunk("Hel"), chunk("lo", usage={"promptTokenCount": 4, "candidatesTokenCount": 2}))
    events, err = await stream_until_error(raw_provider, req())
    assert err.kind is ErrorKind.SERVER_ERROR and "finishReason" in err.message
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Hel", "lo"]
    assert [e for e in events if isinstance(e, UsageReport)][-1].usage == Usage(4, 2)


async def test_finish_reason_on_several_chunks_reads_to_eof_and_keeps_the_last_usage(raw, raw_provider):
    raw.pieces = sse(chunk("Hel", finish="STOP", usage={"promptTokenCount": 4, "totalTokenCount": 4}),
                     chunk("lo", finish="STOP", usage={"promptTokenCount": 4, "candidatesTokenCount": 2,
                                                       "thoughtsTokenCount": 5, "toolUsePromptTokenCount": 3}))
    events = await collect(raw_provider, req())
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello"
    reports = [e for e in events if isinstance(e, UsageReport)]
    assert reports[-1] == UsageReport(Usage(input_tokens=7, output_tokens=7, reasoning_tokens=5),
                                      model="gemini-2.5-flash-001", raw_id="r1")
    assert events[-1] == Finished("stop")


async def test_stream_lf_framing_and_sse_comments_are_read_too(raw, raw_provider):
    raw.pieces = [b": keep-alive\n\n", b"data: " + json.dumps(chunk("ok", finish="STOP")).encode() + b"\n\n"]
    events = await collect(raw_provider, req())
    assert events == [TextDelta("ok"), Finished("stop")]


async def test_stream_thought_parts_are_reasoning_not_text_and_a_function_call_finishes_with_tool_calls(
        raw, raw_provider):
    parts = [{"text": "thinking...", "thought": True}, {"text": "Calling."},
             {"functionCall": {"name": "f", "args": {}}}]
    raw.pieces = sse({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}]})
    events = await collect(raw_provider, req())
    call_id = call_id_of(None, 0, "f")
    assert events == [ReasoningDelta("thinking..."), TextDelta("Calling."), ToolCallStart(0, call_id, "f"),
                      ToolCallDelta(0, "{}"), ToolCallEnd(0), Finished("tool_calls")]


async def test_complete_leaves_thought_parts_out(raw, raw_provider):
    raw.content_type = "application/json"
    raw.pieces = [json.dumps({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "**Plan**", "thought": True}, {"text": "Answer", "thoughtSignature": "c2ln"}]},
        "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": 2, "candidatesTokenCount": 1,
                                                    "thoughtsTokenCount": 9}}).encode()]
    resp = await raw_provider.complete(req())
    assert (resp.text, resp.finish_reason, resp.model, resp.raw_id) == ("Answer", "stop", MODEL, None)
    assert resp.usage == Usage(input_tokens=2, output_tokens=10, reasoning_tokens=9)


async def test_filtered_candidate_without_content_is_content_filter_not_an_error(raw, raw_provider):
    raw.content_type = "application/json"
    raw.pieces = [json.dumps({"candidates": [{"finishReason": "SAFETY", "index": 0}]}).encode()]
    resp = await raw_provider.complete(req())
    assert (resp.text, resp.finish_reason) == ("", "content_filter")


@pytest.mark.parametrize("body", [
    {"usageMetadata": {"promptTokenCount": 2}},
    {"candidates": []},
    {"candidates": [{"content": {"parts": "text"}}]},
    {"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": 3}]},
    {"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"}], "usageMetadata": []},
], ids=["no-candidates", "empty-candidates", "parts-not-list", "finish-not-string", "usage-not-object"])
async def test_reply_in_the_wrong_shape_is_server_error(raw, raw_provider, body):
    raw.content_type = "application/json"
    raw.pieces = [json.dumps(body).encode()]
    err = await raises(raw_provider.complete(req()))
    assert err.kind is ErrorKind.SERVER_ERROR and "unexpected" in err.message


async def test_stream_frame_that_is_json_but_not_an_object_is_server_error(raw, raw_provider):
    raw.pieces = [b"data: [1, 2]\r\n\r\n"]
    assert (await raises(collect(raw_provider, req()))).kind is ErrorKind.SERVER_ERROR


# -- the stream decoder (a parser of its own, so a property test) ------------------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet=st.sampled_from('ab{}[]"\\:, \u00e9\u2028')),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


@given(
    items=st.lists(st.tuples(st.booleans(), st.dictionaries(st.text(max_size=4), _json_values, max_size=3)),
                   min_size=1, max_size=4),
    eol=st.sampled_from([b"\n", b"\r\n", b"\r"]),
    cuts=st.lists(st.integers(min_value=0, max_value=2000), max_size=8),
)
def test_stream_decoder_yields_every_event_and_bare_json_whole_across_any_split(items, eol, cuts):
    stream, expected = b"", []
    for bare, obj in items:
        expected.append(obj)
        if bare:
            lines = json.dumps(obj, indent=2, ensure_ascii=False).encode().split(b"\n")
            stream += b"".join(line + eol for line in lines)
        else:
            stream += b"data: " + json.dumps(obj, ensure_ascii=False).encode() + eol + eol
    decoder, out, start = StreamDecoder(), [], 0
    for cut in [*sorted({min(c, len(stream)) for c in cuts}), len(stream)]:
        out += decoder.feed(stream[start:cut])
        start = cut
    out += decoder.close()
    assert [json.loads(p) for p in out] == expected


# -- function calls: one answer, read whole or streamed ------------------------------------------------

CALLS = [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2lnMQ=="},
         {"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}},
         {"functionCall": {"id": "given-id", "name": "get_time", "args": {}}}]


async def test_the_same_answer_read_whole_or_streamed_gives_the_same_call_ids(raw, raw_provider):
    raw.content_type = "application/json"
    raw.pieces = [json.dumps({"candidates": [{"content": {"role": "model", "parts": [
        {"text": "Checking."}, *CALLS]}, "finishReason": "STOP"}], "responseId": "resp-7"}).encode()]
    whole = await raw_provider.complete(req())
    raw.content_type = "text/event-stream"
    raw.pieces = sse(chunk("Checking."), {"candidates": [{"content": {"role": "model", "parts": CALLS[:1]}}],
                                          "responseId": "resp-7"},
                     {"candidates": [{"content": {"role": "model", "parts": CALLS[1:]}, "finishReason": "STOP"}],
                      "responseId": "resp-7"})
    events = await collect(raw_provider, req())
    starts = [e for e in events if isinstance(e, ToolCallStart)]
    assert [(s.index, s.id, s.name, s.signature) for s in starts] == [
        (i, c.id, c.name, c.signature) for i, c in enumerate(whole.tool_calls)]
    assert [e.arguments for e in events if isinstance(e, ToolCallDelta)] == [c.arguments for c in whole.tool_calls]
    assert [e.index for e in events if isinstance(e, ToolCallEnd)] == [0, 1, 2]
    first, second, given = whole.tool_calls
    assert (first.name, first.arguments, first.signature) == ("get_weather", '{"city": "Paris"}', "c2lnMQ==")
    assert first.id == call_id_of("resp-7", 0, "get_weather") != second.id == call_id_of("resp-7", 1, "get_weather")
    assert given.id == "given-id"
    assert (whole.finish_reason, events[-1]) == ("tool_calls", Finished("tool_calls"))


async def test_a_function_call_without_a_name_is_a_malformed_reply(raw, raw_provider):
    raw.content_type = "application/json"
    raw.pieces = [json.dumps({"candidates": [{"content": {"parts": [{"functionCall": {"args": {}}}]},
                                              "finishReason": "STOP"}]}).encode()]
    err = await raises(raw_provider.complete(req()))
    assert err.kind is ErrorKind.SERVER_ERROR and "functionCall" in err.message
