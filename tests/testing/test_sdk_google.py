"""The official `google-genai` SDK against the fake Gemini server: if the SDK accepts what the
fake sends (and raises its own typed errors for the fake's errors), the fake speaks the real
format.  python-genai 3.x calls `/v1/...` unless `api_version="v1beta"` is set; the fake serves
both.  Raw requests check the framing the SDK would tolerate either way (CRLF terminators,
omitted zero usage fields, the JSON-array stream, `?key=`)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from email.message import Message

import pytest
from google import genai
from google.genai import errors, types

from llmrelay.testing import FakeServers, faults

MODEL = "gemini-2.5-flash"
KEY = "AIzaSyTEST-sdk-google-key-0000000000000"
RPC = "type.googleapis.com/google.rpc."


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["google"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


def make_client(url: str, key: str = KEY, **http) -> genai.Client:
    # No retry options: python-genai then makes exactly one attempt.
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=url, **http))


@pytest.fixture
def client(fakes):
    with make_client(fakes.url("google")) as c:
        yield c


def post(url: str, body: dict, headers: dict[str, str] | None = None) -> tuple[int, Message, bytes]:
    """A bare POST, for what the SDK would never send (or to see the raw bytes)."""
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


HELLO = {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}


# -- answers --------------------------------------------------------------------------------------


def test_generate_content_returns_text_usage_and_finish(client, fakes):
    resp = client.models.generate_content(
        model=MODEL, contents="hello there",
        config=types.GenerateContentConfig(system_instruction="Be terse.", max_output_tokens=100,
                                           temperature=0.5, stop_sequences=["END"]))
    assert resp.text == f"Hello from fake google ({MODEL}). You said: hello there"
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    assert resp.model_version == MODEL and resp.response_id
    usage = resp.usage_metadata
    assert (usage.prompt_token_count, usage.candidates_token_count, usage.total_token_count) == (4, 9, 13)
    assert usage.cached_content_token_count is None and usage.thoughts_token_count is None  # omitted
    sent = fakes["google"].requests[-1]
    assert sent.path == f"/v1/models/{MODEL}:generateContent"  # the SDK's default api_version
    assert sent.body["systemInstruction"]["parts"] == [{"text": "Be terse."}]
    assert sent.body["generationConfig"] == {"maxOutputTokens": 100, "temperature": 0.5,
                                             "stopSequences": ["END"]}


def test_v1beta_api_version_uses_the_v1beta_routes(fakes):
    with make_client(fakes.url("google"), api_version="v1beta") as c:
        assert c.models.generate_content(model=MODEL, contents="hi").text
    assert fakes["google"].requests[-1].path == f"/v1beta/models/{MODEL}:generateContent"


def test_stream_reassembles_text_and_ends_with_usage_and_finish(client, fakes):
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="hello there"))
    assert len(chunks) == 10
    assert "".join(c.text or "" for c in chunks) == f"Hello from fake google ({MODEL}). You said: hello there"
    assert [c.candidates[0].finish_reason for c in chunks[:-1]] == [None] * 9
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    counts = [c.usage_metadata.candidates_token_count for c in chunks]
    assert counts == [1, 2, 3, 4, 5, 6, 7, 8, 9, 9]  # cumulative, not deltas
    assert {c.model_version for c in chunks} == {MODEL} and len({c.response_id for c in chunks}) == 1
    assert fakes["google"].requests[-1].query == {"alt": "sse"}


async def test_async_stream_over_aiohttp_reassembles_text(fakes):
    async with make_client(fakes.url("google"), api_version="v1beta").aio as c:
        text = "".join([ch.text or "" async for ch in
                        await c.models.generate_content_stream(model=MODEL, contents="hello there")])
    assert text == f"Hello from fake google ({MODEL}). You said: hello there"


@pytest.mark.parametrize("streaming", [False, True])
def test_cached_and_thought_tokens_use_gemini_semantics(client, fakes, streaming):
    fakes["google"].script(faults.reply(usage={"input": 120, "cached_input": 100, "output": 50,
                                               "reasoning": 30}))
    if streaming:
        usage = list(client.models.generate_content_stream(model=MODEL, contents="hi"))[-1].usage_metadata
    else:
        usage = client.models.generate_content(model=MODEL, contents="hi").usage_metadata
    assert usage.prompt_token_count == 120  # includes the cached part
    assert usage.cached_content_token_count == 100
    assert usage.candidates_token_count == 20  # excludes thoughts
    assert usage.thoughts_token_count == 30
    assert usage.total_token_count == 170


def test_thought_summaries_are_parts_marked_thought(client, fakes):
    fakes["google"].script(faults.reply(text="The answer.", usage={"reasoning": 12}))
    resp = client.models.generate_content(
        model=MODEL, contents="hi",
        config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True)))
    parts = resp.candidates[0].content.parts
    assert [bool(p.thought) for p in parts] == [True, False]
    assert resp.text == "The answer."


def test_function_call_reply_is_a_function_call_part(client, fakes):
    fakes["google"].script(faults.reply(finish="tool_calls"))
    resp = client.models.generate_content(model=MODEL, contents="weather?")
    assert resp.function_calls[0].name == "get_weather"
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP


def test_native_finish_reason_is_sent_verbatim(client, fakes):
    fakes["google"].script(faults.reply(finish="RECITATION"))
    resp = client.models.generate_content(model=MODEL, contents="hi")
    assert resp.candidates[0].finish_reason == types.FinishReason.RECITATION


def test_blocked_prompt_has_prompt_feedback_and_no_candidates(client, fakes):
    fakes["google"].script(faults.reply(finish="blocked:PROHIBITED_CONTENT"))
    resp = client.models.generate_content(model=MODEL, contents="hi")
    assert resp.candidates is None
    assert resp.prompt_feedback.block_reason == types.BlockedReason.PROHIBITED_CONTENT
    assert resp.usage_metadata.prompt_token_count == 1


def test_list_models(client):
    names = [m.name for m in client.models.list()]
    assert f"models/{MODEL}" in names
    assert client.models.get(model=MODEL).output_token_limit == 65536


# -- typed errors ---------------------------------------------------------------------------------


def test_rate_limit_is_client_error_429_with_quota_failure_and_retry_info(client, fakes):
    fakes["google"].script(faults.http_error(429, retry_delay="58s"))
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=MODEL, contents="hi")
    err = info.value
    assert (err.code, err.status) == (429, "RESOURCE_EXHAUSTED")
    details = {d["@type"].removeprefix(RPC): d for d in err.details["error"]["details"]}
    assert details["RetryInfo"]["retryDelay"] == "58s"
    assert "PerMinute" in details["QuotaFailure"]["violations"][0]["quotaId"]
    assert "Help" in details


def test_per_day_quota_names_a_per_day_quota_id(client, fakes):
    fakes["google"].script(faults.http_error(429, "per_day"))
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=MODEL, contents="hi")
    violation = info.value.details["error"]["details"][0]["violations"][0]
    assert "PerDay" in violation["quotaId"]


def test_unknown_model_is_client_error_404():
    with (FakeServers(["google"], models={MODEL}) as servers, make_client(servers.url("google")) as c,
          pytest.raises(errors.ClientError) as info):
        c.models.generate_content(model="gemini-9-ultra", contents="hi")
    assert (info.value.code, info.value.status) == (404, "NOT_FOUND")
    assert "models/gemini-9-ultra is not found for API version v1" in info.value.message


def test_wrong_key_is_client_error_400_api_key_invalid_as_the_real_api_answers():
    with FakeServers(["google"], api_key="right-key") as servers:
        with make_client(servers.url("google"), key="wrong-key") as c, pytest.raises(errors.ClientError) as info:
            c.models.generate_content(model=MODEL, contents="hi")
        with make_client(servers.url("google"), key="right-key") as c:
            assert c.models.generate_content(model=MODEL, contents="hi").text
    err = info.value
    assert (err.code, err.status) == (400, "INVALID_ARGUMENT")
    assert err.message == "API key not valid. Please pass a valid API key."
    assert err.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_scripted_401_is_client_error_unauthenticated(client, fakes):
    fakes["google"].script(faults.http_error(401))
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=MODEL, contents="hi")
    assert (info.value.code, info.value.status) == (401, "UNAUTHENTICATED")


@pytest.mark.parametrize(("fault", "code", "status"), [
    (faults.overloaded(), 503, "UNAVAILABLE"),
    (faults.http_error(500), 500, "INTERNAL"),
    (faults.http_error(504), 504, "DEADLINE_EXCEEDED"),
])
def test_server_side_errors_are_server_errors(client, fakes, fault, code, status):
    fakes["google"].script(fault)
    with pytest.raises(errors.ServerError) as info:
        client.models.generate_content(model=MODEL, contents="hi")
    assert (info.value.code, info.value.status) == (code, status)


def test_mid_stream_error_raises_after_the_chunks_before_it(client, fakes):
    fakes["google"].script(faults.stream_error(after_chunks=2, code="RESOURCE_EXHAUSTED"))
    texts = []
    with pytest.raises(errors.ClientError) as info:
        for chunk in client.models.generate_content_stream(model=MODEL, contents="hi"):
            texts.append(chunk.text)
    assert texts == ["Hello", " from"]
    assert (info.value.code, info.value.status) == (429, "RESOURCE_EXHAUSTED")


def test_mid_stream_server_error_is_server_error(client, fakes):
    fakes["google"].script(faults.stream_error(after_chunks=1, code="UNAVAILABLE"))
    with pytest.raises(errors.ServerError) as info:
        list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    assert info.value.code == 503


# -- raw framing ----------------------------------------------------------------------------------


def test_sse_events_end_in_crlf_crlf_without_event_names_or_done(fakes):
    url = fakes.url("google") + f"/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    status, headers, raw = post(url, HELLO, {"x-goog-api-key": KEY})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    events = raw.split(b"\r\n\r\n")
    assert events[-1] == b"" and all(e.startswith(b"data: {") for e in events[:-1])
    assert b"event:" not in raw and b"[DONE]" not in raw
    last = json.loads(events[-2][6:])
    assert last["candidates"][0]["finishReason"] == "STOP"


def test_zero_usage_fields_are_omitted(fakes):
    fakes["google"].script(faults.reply(text="ok", usage={"input": 5, "output": 1}))
    url = fakes.url("google") + f"/v1beta/models/{MODEL}:generateContent"
    _, _, raw = post(url, HELLO, {"x-goog-api-key": KEY})
    meta = json.loads(raw)["usageMetadata"]
    assert {k for k in meta if k.endswith("Count")} == {"promptTokenCount", "candidatesTokenCount",
                                                         "totalTokenCount"}


def test_stream_without_alt_sse_is_one_json_array(fakes):
    url = fakes.url("google") + f"/v1beta/models/{MODEL}:streamGenerateContent"
    status, headers, raw = post(url, HELLO, {"x-goog-api-key": KEY})
    assert status == 200 and headers["content-type"].startswith("application/json")
    chunks = json.loads(raw)
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks).startswith("Hello from")
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"


def test_error_on_the_json_array_stream_is_array_wrapped(fakes):
    fakes["google"].script(faults.http_error(429))
    url = fakes.url("google") + f"/v1beta/models/{MODEL}:streamGenerateContent"
    status, _, raw = post(url, HELLO, {"x-goog-api-key": KEY})
    assert status == 429 and json.loads(raw)[0]["error"]["status"] == "RESOURCE_EXHAUSTED"


def test_key_in_the_query_string_is_accepted_and_no_key_is_403(fakes):
    url = fakes.url("google") + f"/v1beta/models/{MODEL}:generateContent"
    assert post(f"{url}?key={KEY}", HELLO)[0] == 200
    status, _, raw = post(url, HELLO)
    assert status == 403 and json.loads(raw)["error"]["status"] == "PERMISSION_DENIED"


@pytest.mark.parametrize(("body", "text"), [
    ({}, "contents is not specified"),
    ({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}, "valid role"),
    ({"contents": [{"role": "user", "parts": [{"text": ""}]}]}, "required oneof field 'data'"),
    ({**HELLO, "max_tokens": 5}, 'Unknown name "max_tokens"'),
    ({**HELLO, "generationConfig": {"temperature": 2.5}}, "temperature"),
    ({**HELLO, "generationConfig": {"stopSequences": list("abcdef")}}, "stop_sequences"),
])
def test_bodies_the_real_api_rejects_get_its_400(fakes, body, text):
    url = fakes.url("google") + f"/v1beta/models/{MODEL}:generateContent"
    status, _, raw = post(url, body, {"x-goog-api-key": KEY})
    err = json.loads(raw)["error"]
    assert (status, err["code"], err["status"]) == (400, 400, "INVALID_ARGUMENT")
    assert text in err["message"]


def test_snake_case_fields_are_accepted_like_camel_case(fakes):
    url = fakes.url("google") + f"/v1beta/models/{MODEL}:generateContent"
    body = {**HELLO, "system_instruction": {"parts": [{"text": "sys"}]},
            "generation_config": {"max_output_tokens": 2}}
    status, _, raw = post(url, body, {"x-goog-api-key": KEY})
    assert status == 200
    assert json.loads(raw)["candidates"][0]["finishReason"] == "MAX_TOKENS"
