"""The official `ollama` SDK (native API) and the `openai` SDK (Ollama's /v1) against the fake
Ollama: if an SDK rejects what the fake sends, the fake is wrong.  A few raw-HTTP checks pin
down wire details an SDK hides (NDJSON framing, omitted fields, stream defaulting to true)."""

from __future__ import annotations

import json
import re
from datetime import datetime

import httpx
import ollama
import openai
import pytest

from llmrelay.testing import FakeServers, faults

DEFAULT_MODELS = ["mistral:latest", "llama3.2:latest", "llama3.1:latest", "qwen2.5:latest"]
HI = [{"role": "user", "content": "hello world"}]
ANSWER = "Hello from fake ollama (llama3.2). You said: hello world"


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["ollama"]) as servers:
        yield servers


@pytest.fixture(scope="module")
def cloud():
    """An Ollama that wants a key, like Ollama cloud."""
    with FakeServers(["ollama"], api_key="right") as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes, cloud):
    fakes.reset()
    cloud.reset()
    yield
    fakes["ollama"].models = None


@pytest.fixture
def client(fakes):
    c = ollama.Client(host=fakes.url("ollama"))
    yield c
    c.close()


@pytest.fixture
def oai(fakes):
    c = openai.OpenAI(base_url=fakes.url("ollama") + "/v1", api_key="ollama", max_retries=0)
    yield c
    c.close()


def script(fakes, *fs):
    fakes["ollama"].script(*fs)


# -- native API with the ollama SDK -------------------------------------------------------------


def test_chat_plain(client, fakes):
    resp = client.chat(model="llama3.2", messages=HI)
    assert resp.message.role == "assistant"
    assert resp.message.content == ANSWER
    assert (resp.model, resp.done, resp.done_reason) == ("llama3.2", True, "stop")
    assert (resp.prompt_eval_count, resp.eval_count) == (2, 9)
    assert resp.total_duration and resp.eval_duration and resp.prompt_eval_duration
    assert fakes["ollama"].requests[-1].body["stream"] is False


def test_chat_stream_reassembles_text_with_metrics_only_on_the_done_line(client):
    parts = list(client.chat(model="llama3.2", messages=HI, stream=True))
    assert "".join(p.message.content for p in parts) == ANSWER
    assert [p.done for p in parts] == [False] * (len(parts) - 1) + [True]
    assert all(p.eval_count is None and p.done_reason is None for p in parts[:-1])
    assert (parts[-1].done_reason, parts[-1].prompt_eval_count, parts[-1].eval_count) == ("stop", 2, 9)
    assert parts[-1].message.content == ""


async def test_async_client_plain_and_stream(fakes):
    client = ollama.AsyncClient(host=fakes.url("ollama"))
    resp = await client.chat(model="llama3.2", messages=HI)
    assert resp.message.content == ANSWER
    text = ""
    async for part in await client.chat(model="llama3.2", messages=HI, stream=True):
        text += part.message.content
    assert text == ANSWER


def test_options_num_predict_truncates_with_done_reason_length(client):
    resp = client.chat(model="llama3.2", messages=HI, options={"num_predict": 3, "temperature": 0.1})
    assert (resp.message.content, resp.done_reason, resp.eval_count) == ("Hello from fake", "length", 3)


def test_system_message_and_history_are_read(client):
    resp = client.chat(model="llama3.2", messages=[{"role": "system", "content": "Be terse."},
                                                   {"role": "user", "content": "one"},
                                                   {"role": "assistant", "content": "two"},
                                                   {"role": "user", "content": "three four"}])
    assert resp.prompt_eval_count == 6  # the fake counts words of the system prompt and every turn
    assert resp.message.content.endswith("You said: three four")


def test_tool_call_arguments_are_an_object_and_done_reason_stays_stop(client, fakes):
    script(fakes, faults.reply(text="", finish="tool_calls"), faults.reply(text="", finish="tool_calls"))
    resp = client.chat(model="llama3.2", messages=HI)
    call = resp.message.tool_calls[0].function
    assert (call.name, dict(call.arguments), resp.done_reason) == ("get_weather", {"city": "Paris"}, "stop")
    parts = list(client.chat(model="llama3.2", messages=HI, stream=True))
    assert any(p.message.tool_calls for p in parts[:-1])
    assert parts[-1].done_reason == "stop"


def test_list_shows_the_default_models_with_details(client):
    models = client.list().models
    assert [m.model for m in models] == DEFAULT_MODELS
    assert isinstance(models[0].modified_at, datetime)
    assert models[1].details.parameter_size == "3.2B"
    assert models[1].details.format == "gguf"
    assert len(models[0].digest) == 64


def test_list_shows_configured_models_and_a_bare_name_matches_latest(client, fakes):
    fakes["ollama"].models = {"mistral", "phi3:mini"}
    assert [m.model for m in client.list().models] == ["mistral:latest", "phi3:mini"]
    assert client.chat(model="mistral", messages=HI).model == "mistral"
    assert client.chat(model="mistral:latest", messages=HI).model == "mistral:latest"
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama3.2", messages=HI)
    assert info.value.status_code == 404
    assert info.value.error == 'model "llama3.2" not found, try pulling it first'


def test_404_is_response_error_with_status_code(client, fakes):
    script(fakes, faults.http_error(404))
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama3.2", messages=HI)
    assert info.value.status_code == 404
    assert "not found, try pulling it first" in info.value.error


def test_429_usage_limit_is_response_error_with_status_code(client, fakes):
    script(fakes, faults.http_error(429, "usage_limit", retry_after="30"))
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama3.2", messages=HI)
    assert info.value.status_code == 429
    assert "usage limit" in info.value.error


def test_context_overflow_hint_is_a_400_with_ollamas_text(client, fakes):
    script(fakes, faults.http_error(400, "context_length_exceeded"))
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama3.2", messages=HI, stream=True).__next__()
    assert info.value.status_code == 400
    assert "exceeds the available context size" in info.value.error


def test_overloaded_is_503_server_busy(client, fakes):
    script(fakes, faults.overloaded())
    with pytest.raises(ollama.ResponseError) as info:
        client.chat(model="llama3.2", messages=HI)
    assert info.value.status_code == 503
    assert info.value.error == "server busy, please try again.  maximum pending requests exceeded"


def test_cloud_key_required_wrong_or_missing_key_is_401(cloud):
    url = cloud.url("ollama")
    for headers in ({"Authorization": "Bearer wrong"}, None):
        with ollama.Client(host=url, headers=headers) as c, pytest.raises(ollama.ResponseError) as info:
            c.chat(model="llama3.2", messages=HI)
        assert info.value.status_code == 401
        assert info.value.error == "unauthorized"
    with ollama.Client(host=url, headers={"Authorization": "Bearer right"}) as c:
        assert c.chat(model="llama3.2", messages=HI).message.content == ANSWER


def test_mid_stream_error_raises_response_error_after_the_parts_before_it(client, fakes):
    script(fakes, faults.stream_error(after_chunks=2))
    parts = []
    with pytest.raises(ollama.ResponseError) as info:
        for p in client.chat(model="llama3.2", messages=HI, stream=True):
            parts.append(p)
    assert "".join(p.message.content for p in parts) == "Hello from"
    assert info.value.error == "an error was encountered while running the model"


# -- native wire details (raw HTTP) -------------------------------------------------------------


def post_raw(fakes, body: dict) -> httpx.Response:
    return httpx.post(fakes.url("ollama") + "/api/chat", json=body, timeout=10)


def test_stream_defaults_to_true_when_the_field_is_absent(fakes):
    resp = post_raw(fakes, {"model": "llama3.2", "messages": HI})
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    lines = resp.text.splitlines()
    assert resp.text.endswith("\n") and len(lines) == 10
    first, last = json.loads(lines[0]), json.loads(lines[-1])
    assert first == {"model": "llama3.2", "created_at": first["created_at"],
                     "message": {"role": "assistant", "content": "Hello"}, "done": False}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", first["created_at"])
    assert last["done"] is True and last["message"]["content"] == ""
    assert post_raw(fakes, {"model": "llama3.2", "messages": HI, "stream": None}).text.count("\n") == 10


def test_zero_metrics_are_omitted_from_the_final_line(fakes):
    script(fakes, faults.reply(usage={"input": 0, "output": 0}))
    last = json.loads(post_raw(fakes, {"model": "llama3.2", "messages": HI}).text.splitlines()[-1])
    assert "prompt_eval_count" not in last and "eval_count" not in last
    assert "prompt_eval_duration" not in last and "eval_duration" not in last
    assert last["load_duration"] > 0


def test_a_request_without_messages_is_a_load_request(fakes):
    resp = post_raw(fakes, {"model": "llama3.2", "messages": []})
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert (body["done"], body["done_reason"], body["message"]) == (
        True, "load", {"role": "assistant", "content": ""})


@pytest.mark.parametrize(("body", "message"), [
    ({"messages": HI}, "model is required"),
    ({"model": "llama3.2", "messages": HI, "stream": "yes"},
     "json: cannot unmarshal into Go struct field ChatRequest.stream of type bool"),
])
def test_invalid_bodies_are_400_with_a_plain_string_error(fakes, body, message):
    resp = post_raw(fakes, body)
    assert resp.status_code == 400
    assert resp.json() == {"error": message}


def test_version_endpoint(fakes):
    assert re.fullmatch(r"\d+\.\d+\.\d+", httpx.get(fakes.url("ollama") + "/api/version").json()["version"])


# -- OpenAI-compatible /v1 with the openai SDK --------------------------------------------------


def test_v1_chat_plain(oai, fakes):
    resp = oai.chat.completions.create(model="llama3.2", messages=HI)
    assert resp.choices[0].message.content == ANSWER
    assert resp.choices[0].finish_reason == "stop"
    assert re.fullmatch(r"chatcmpl-\w{8}", resp.id)
    assert (resp.system_fingerprint, resp.model, resp.object) == ("fp_ollama", "llama3.2", "chat.completion")
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens, resp.usage.total_tokens) == (2, 9, 11)
    assert resp.usage.prompt_tokens_details is None and resp.usage.completion_tokens_details is None
    assert fakes["ollama"].requests[-1].path == "/v1/chat/completions"


def test_v1_reads_max_tokens_but_not_max_completion_tokens(oai):
    assert oai.chat.completions.create(model="llama3.2", messages=HI, max_tokens=3).choices[0].finish_reason \
        == "length"
    resp = oai.chat.completions.create(model="llama3.2", messages=HI, max_completion_tokens=3)
    assert (resp.choices[0].finish_reason, resp.usage.completion_tokens) == ("stop", 9)


def test_v1_stream_with_include_usage(oai):
    chunks = list(oai.chat.completions.create(model="llama3.2", messages=HI, stream=True,
                                              stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert len({c.id for c in chunks}) == 1
    assert [c.choices[0].finish_reason for c in chunks[:-1]][-1] == "stop"
    usage_chunk = chunks[-1]
    assert usage_chunk.choices == []
    assert (usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens) == (2, 9)
    assert all(c.usage is None for c in chunks[:-1])


def test_v1_stream_chunks_omit_the_usage_key_and_end_with_done(fakes):
    body = {"model": "llama3.2", "messages": HI, "stream": True, "stream_options": {"include_usage": True}}
    resp = httpx.post(fakes.url("ollama") + "/v1/chat/completions", json=body, timeout=10)
    assert resp.headers["content-type"].startswith("text/event-stream")
    frames = [f.removeprefix("data: ") for f in resp.text.split("\n\n") if f]
    assert frames[-1] == "[DONE]"
    chunks = [json.loads(f) for f in frames[:-1]]
    assert all("usage" not in c for c in chunks[:-1])
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Hello"}  # no role-only chunk
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {
        "prompt_tokens": 2, "completion_tokens": 9, "total_tokens": 11}


def test_v1_stream_without_include_usage_has_no_usage_chunk(oai):
    chunks = list(oai.chat.completions.create(model="llama3.2", messages=HI, stream=True))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None and c.choices for c in chunks)


def test_v1_tool_call_arguments_are_a_json_string(oai, fakes):
    script(fakes, faults.reply(text="", finish="tool_calls"))
    resp = oai.chat.completions.create(model="llama3.2", messages=HI)
    call = resp.choices[0].message.tool_calls[0]
    assert resp.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})


def test_v1_models_list(oai):
    models = oai.models.list().data
    assert [m.id for m in models] == DEFAULT_MODELS
    assert {m.owned_by for m in models} == {"library"}


def test_v1_404_is_not_found_error_with_ollama_error_type(oai, fakes):
    script(fakes, faults.http_error(404))
    with pytest.raises(openai.NotFoundError) as info:
        oai.chat.completions.create(model="llama3.2", messages=HI)
    assert info.value.body == {"message": 'model "llama3.2" not found, try pulling it first',
                               "type": "not_found_error", "param": None, "code": None}


def test_v1_429_is_rate_limit_error_without_retry(oai, fakes):
    script(fakes, faults.http_error(429, retry_after="1"))
    with pytest.raises(openai.RateLimitError) as info:
        oai.chat.completions.create(model="llama3.2", messages=HI)
    assert info.value.body["type"] == "api_error"
    assert len(fakes["ollama"].requests) == 1


def test_v1_400_context_overflow_is_invalid_request_error(oai, fakes):
    script(fakes, faults.http_error(400, "context_length_exceeded"))
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="llama3.2", messages=HI)
    assert info.value.body["type"] == "invalid_request_error"
    assert "exceeds the available context size" in info.value.body["message"]


def test_v1_empty_messages_is_400(oai):
    with pytest.raises(openai.BadRequestError) as info:
        oai.chat.completions.create(model="llama3.2", messages=[])
    assert info.value.body["message"] == "[] is too short - 'messages'"


def test_v1_wrong_key_is_authentication_error(cloud):
    url = cloud.url("ollama") + "/v1"
    with openai.OpenAI(base_url=url, api_key="wrong", max_retries=0) as c, \
            pytest.raises(openai.AuthenticationError) as info:
        c.chat.completions.create(model="llama3.2", messages=HI)
    assert info.value.body["type"] == "api_error"
    with openai.OpenAI(base_url=url, api_key="right", max_retries=0) as c:
        assert c.chat.completions.create(model="llama3.2", messages=HI).choices[0].message.content == ANSWER


def test_v1_mid_stream_error_raises_api_error(oai, fakes):
    script(fakes, faults.stream_error(after_chunks=2))
    text = ""
    with pytest.raises(openai.APIError) as info:
        for c in oai.chat.completions.create(model="llama3.2", messages=HI, stream=True):
            text += c.choices[0].delta.content or ""
    assert text == "Hello from"
    assert info.value.message == "an error was encountered while running the model"


def test_a_fault_is_shared_by_both_apis(client, oai, fakes):
    script(fakes, faults.http_error(500))
    with pytest.raises(openai.InternalServerError):
        oai.chat.completions.create(model="llama3.2", messages=HI)
    assert client.chat(model="llama3.2", messages=HI).message.content == ANSWER
    assert [r.path for r in fakes["ollama"].requests] == ["/v1/chat/completions", "/api/chat"]
