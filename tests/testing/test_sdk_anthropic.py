"""The official `anthropic` SDK against the fake Anthropic server: if the SDK accepts what the
fake sends (and raises its own typed errors for the fake's errors), the fake speaks the real
format.  The SDK sends `Authorization: Bearer` and its own `anthropic-version`; the fake must
accept both."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from email.message import Message

import anthropic
import pytest

from llmrelay.testing import FakeServers, faults

MODEL = "claude-haiku-4-5"
HELLO = [{"role": "user", "content": "hello there"}]


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["anthropic"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


@pytest.fixture
def client(fakes):
    with anthropic.Anthropic(api_key="sk-ant-api03-sdk-test", base_url=fakes.url("anthropic"),
                             max_retries=0) as c:
        yield c


def post(url: str, body: dict, headers: dict[str, str]) -> tuple[int, Message, bytes]:
    """A bare POST, for what the SDK would never send (or to see the raw bytes)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", **headers})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


# -- answers ---------------------------------------------------------------------------------------


def test_plain_call(client, fakes):
    msg = client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, system="Be nice.")
    assert msg.type == "message" and msg.role == "assistant" and msg.id.startswith("msg_")
    assert msg.model == MODEL
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].text == f"Hello from fake anthropic ({MODEL}). You said: hello there"
    assert (msg.stop_reason, msg.stop_sequence) == ("end_turn", None)
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (4, 9)
    seen = fakes["anthropic"].requests[-1]
    assert seen.headers["authorization"] == "<present>"  # the SDK's Bearer form was accepted
    assert seen.headers["anthropic-version"] == anthropic._constants.ANTHROPIC_API_VERSION


def test_native_usage_excludes_cached_tokens_from_input_tokens(client, fakes):
    fakes["anthropic"].script(faults.reply(text="ok", usage={"input": 100, "cached_input": 60,
                                                             "cache_write": 25, "output": 40,
                                                             "reasoning": 30}))
    usage = client.messages.create(model=MODEL, max_tokens=100, messages=HELLO).usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (15, 60, 25)
    assert usage.output_tokens == 40
    assert usage.output_tokens_details is not None and usage.output_tokens_details.thinking_tokens == 30
    assert usage.cache_creation is not None and usage.cache_creation.ephemeral_5m_input_tokens == 25


def test_streaming_call_reassembles_text_and_usage(client, fakes):
    fakes["anthropic"].script(faults.reply(usage={"input": 50, "cached_input": 20, "output": 7}))
    with client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == f"Hello from fake anthropic ({MODEL}). You said: hello there"
    assert final.content[0].text == text
    assert final.stop_reason == "end_turn"
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens, final.usage.output_tokens) == (
        30, 20, 7)


def test_raw_stream_events_come_in_the_documented_order(client):
    events = list(client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, stream=True))
    types = [e.type for e in events]
    assert types[:2] == ["message_start", "content_block_start"]  # the SDK drops the ping
    assert set(types[2:-3]) == {"content_block_delta"}
    assert types[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    start, delta = events[0], events[-2]
    assert start.message.usage.output_tokens == 1 and start.message.stop_reason is None
    assert delta.delta.stop_reason == "end_turn" and delta.usage.output_tokens == 9


def test_wire_event_names_equal_data_type_and_ping_follows_message_start(fakes):
    status, headers, raw = post(fakes.url("anthropic") + "/v1/messages",
                                {"model": MODEL, "max_tokens": 50, "messages": HELLO, "stream": True},
                                {"x-api-key": "k", "anthropic-version": "2023-06-01"})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    frames = [f for f in raw.decode().split("\n\n") if f]
    pairs = []
    for frame in frames:
        event_line, data_line = frame.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        pairs.append((event_line[7:], json.loads(data_line[6:])["type"]))
    assert all(name == kind for name, kind in pairs)
    assert [n for n, _ in pairs[:3]] == ["message_start", "ping", "content_block_start"]
    assert pairs[-1][0] == "message_stop"


async def test_async_client_streams(fakes):
    async with anthropic.AsyncAnthropic(api_key="k", base_url=fakes.url("anthropic"), max_retries=0) as c:
        stream_manager = c.messages.stream(model=MODEL, max_tokens=100, messages=HELLO)
        async with stream_manager as stream:
            text = "".join([t async for t in stream.text_stream])
    assert text.endswith("You said: hello there")


def test_stop_sequence_is_honoured(client):
    msg = client.messages.create(model=MODEL, max_tokens=100, messages=HELLO, stop_sequences=["You said"])
    assert (msg.stop_reason, msg.stop_sequence) == ("stop_sequence", "You said")
    assert msg.content[0].text == f"Hello from fake anthropic ({MODEL}). "


def test_models_list_and_retrieve(client):
    models = list(client.models.list(limit=2))  # auto-pages through has_more/last_id
    assert len(models) == 4 and all(m.type == "model" and m.id.startswith("claude-") for m in models)
    first_page = client.models.list(limit=2)
    assert first_page.has_more is True and first_page.last_id == models[1].id
    info = client.models.retrieve(models[0].id)
    assert info.id == models[0].id and info.display_name


# -- errors ----------------------------------------------------------------------------------------


def test_429_raises_rate_limit_error_with_its_headers(client, fakes):
    fakes["anthropic"].script(faults.http_error(429, retry_after="12"))
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    err = info.value
    assert err.status_code == 429 and err.type == "rate_limit_error"
    assert err.response.headers["retry-after"] == "12"
    assert err.request_id and err.request_id.startswith("req_")
    assert err.body["request_id"] == err.request_id


def test_529_raises_overloaded_error_with_should_retry(client, fakes):
    fakes["anthropic"].script(faults.overloaded())
    with pytest.raises(anthropic.OverloadedError) as info:
        client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert info.value.type == "overloaded_error"
    assert info.value.response.headers["x-should-retry"] == "true"


def test_404_raises_not_found_error(client, fakes):
    fakes["anthropic"].script(faults.http_error(404))
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="claude-nope", max_tokens=100, messages=HELLO)
    assert info.value.type == "not_found_error" and "claude-nope" in (info.value.api_message or "")


def test_400_context_length_raises_bad_request_with_the_real_message(client, fakes):
    fakes["anthropic"].script(faults.http_error(400, "context_length"))
    with pytest.raises(anthropic.BadRequestError) as info:
        client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
    assert info.value.type == "invalid_request_error"
    assert info.value.api_message == "prompt is too long: 208656 tokens > 200000 maximum"


@pytest.mark.parametrize(("status", "exc"), [(402, anthropic.PaymentRequiredError),
                                             (403, anthropic.PermissionDeniedError),
                                             (500, anthropic.InternalServerError)])
def test_other_statuses_raise_the_sdks_typed_errors(client, fakes, status, exc):
    fakes["anthropic"].script(faults.http_error(status))
    with pytest.raises(exc):
        client.messages.create(model=MODEL, max_tokens=100, messages=HELLO)


def test_wrong_key_raises_authentication_error():
    with FakeServers(["anthropic"], api_key="right-key") as guarded:
        wrong = anthropic.Anthropic(api_key="wrong-key", base_url=guarded.url("anthropic"), max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as info:
            wrong.messages.create(model=MODEL, max_tokens=100, messages=HELLO)
        assert info.value.type == "authentication_error"
        right = anthropic.Anthropic(api_key="right-key", base_url=guarded.url("anthropic"), max_retries=0)
        assert right.messages.create(model=MODEL, max_tokens=100, messages=HELLO).content
        wrong.close()
        right.close()


def test_mid_stream_error_raises_after_the_text_so_far(client, fakes):
    fakes["anthropic"].script(faults.stream_error(2, code="overloaded_error"))
    pieces = []
    with pytest.raises(anthropic.APIStatusError) as info, \
            client.messages.stream(model=MODEL, max_tokens=100, messages=HELLO) as stream:
        for text in stream.text_stream:  # the error comes mid-iteration
            pieces.append(text)
    assert pieces == ["Hello", " from"]
    assert info.value.type == "overloaded_error"
    assert info.value.body["error"]["message"] == "Overloaded"


# -- requests the real API rejects ----------------------------------------------------------------


@pytest.mark.parametrize(("body", "headers", "message"), [
    ({"model": MODEL, "messages": HELLO}, {"anthropic-version": "2023-06-01"}, "max_tokens: Field required"),
    ({"model": MODEL, "max_tokens": 5, "messages": HELLO}, {}, "anthropic-version: header is required"),
    ({"model": MODEL, "max_tokens": 5, "messages": HELLO, "temperature": 1.5},
     {"anthropic-version": "2023-06-01"}, "temperature: range: 0..1"),
    ({"model": MODEL, "max_tokens": 5, "messages": [{"role": "system", "content": "x"}, *HELLO]},
     {"anthropic-version": "2023-06-01"}, 'Unexpected role "system"'),
    ({"model": MODEL, "max_tokens": 5, "messages": [*HELLO, {"role": "assistant", "content": "Hi "}]},
     {"anthropic-version": "2023-06-01"}, "final assistant content cannot end with trailing whitespace"),
])
def test_invalid_requests_get_the_real_400(fakes, body, headers, message):
    status, resp_headers, raw = post(fakes.url("anthropic") + "/v1/messages", body, {"x-api-key": "k", **headers})
    assert status == 400
    payload = json.loads(raw)
    assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
    assert message in payload["error"]["message"]
    assert resp_headers["request-id"] == payload["request_id"]


def test_missing_key_is_401_authentication_error(fakes):
    status, _, raw = post(fakes.url("anthropic") + "/v1/messages",
                          {"model": MODEL, "max_tokens": 5, "messages": HELLO}, {"anthropic-version": "2023-06-01"})
    assert status == 401
    assert json.loads(raw)["error"] == {"type": "authentication_error", "message": "x-api-key header is required"}
