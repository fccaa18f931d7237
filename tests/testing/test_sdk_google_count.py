"""The fake Gemini's `countTokens`: python-genai's `models.count_tokens` (the `contents` form) gets the
count a generateContent answer reports as its prompt; the REST `generateContentRequest` form counts the
system instruction and tools too; what the API refuses is refused."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from google import genai
from google.genai import errors, types

from llmrelay.testing import FakeServers

MODEL = "gemini-2.5-flash"
KEY = "AIzaSyTEST-sdk-google-key-0000000000000"
CONTENTS = [{"role": "user", "parts": [{"text": "hello there, fake Gemini"}]}]


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["google"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()
    fakes["google"].models = None


@pytest.fixture
def client(fakes):
    with genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fakes.url("google"))) as c:
        yield c


def count(fakes, body: dict, model: str = MODEL) -> tuple[int, dict]:
    req = urllib.request.Request(f"{fakes.url('google')}/v1beta/models/{model}:countTokens",
                                 data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", "x-goog-api-key": KEY})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_sdks_count_is_what_an_answer_reports_as_its_prompt(client):
    counted = client.models.count_tokens(model=MODEL, contents="hello there, fake Gemini")
    answered = client.models.generate_content(model=MODEL, contents="hello there, fake Gemini")
    assert counted.total_tokens == answered.usage_metadata.prompt_token_count == 4


def test_a_generate_content_request_counts_its_system_instruction_and_tools(fakes):
    status, body = count(fakes, {"generateContentRequest": {
        "model": f"models/{MODEL}", "contents": CONTENTS, "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "tools": [{"functionDeclarations": [{"name": "lookup", "parameters": {"type": "OBJECT"}}]}]}})
    assert status == 200
    assert body == {"totalTokens": 4 + 2 + 10, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 16}]}


@pytest.mark.parametrize(("body", "message"), [
    ({"contents": CONTENTS, "generateContentRequest": {"model": f"models/{MODEL}", "contents": CONTENTS}},
     "mutually exclusive"),
    ({"generateContentRequest": {"model": "models/gemini-2.0-flash", "contents": CONTENTS}},
     f"must be the model of the request, models/{MODEL}"),
    ({"contents": CONTENTS, "systemInstruction": {"parts": [{"text": "x"}]}}, 'Unknown name "systemInstruction"'),
    ({"generateContentRequest": {"model": f"models/{MODEL}", "contents": CONTENTS, "frobnicate": 1}},
     'Unknown name "frobnicate"'),
    ({"contents": []}, "contents is not specified"),
])
def test_what_the_api_refuses_is_a_400_invalid_argument(fakes, body, message):
    status, answer = count(fakes, body)
    assert status == 400 and answer["error"]["status"] == "INVALID_ARGUMENT" and message in answer["error"]["message"]


def test_a_model_the_fake_does_not_have_is_not_found(client, fakes):
    fakes["google"].models = {"gemini-2.0-flash"}
    with pytest.raises(errors.ClientError) as err:
        client.models.count_tokens(model=MODEL, contents="hello")
    assert err.value.code == 404
