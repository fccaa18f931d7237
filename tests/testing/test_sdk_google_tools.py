"""The official `google-genai` SDK doing function calling, structured output and Gemini 3 thought
signatures against the fake Gemini: the SDK reads the fake's function calls, sends its own history
back and the fake takes it, so the fake speaks the real format.  Raw requests check the 400s the real
API gives for what the SDK would refuse to send."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pydantic
import pytest
from google import genai
from google.genai import errors, types

from llmrelay.testing import FakeServers

MODEL = "gemini-2.5-flash"
GEMINI_3 = "gemini-3-pro-preview"
KEY = "AIzaSyTEST-sdk-google-key-0000000000000"
WEATHER = types.FunctionDeclaration(
    name="get_weather", description="The weather in a city",
    parameters=types.Schema(type=types.Type.OBJECT, required=["city"],
                            properties={"city": types.Schema(type=types.Type.STRING)}))
TOOLS = [types.Tool(function_declarations=[WEATHER])]


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["google"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()


@pytest.fixture
def client(fakes):
    with genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fakes.url("google"),
                                                                  api_version="v1beta")) as c:
        yield c


def config(**kw) -> types.GenerateContentConfig:
    return types.GenerateContentConfig(
        tools=kw.pop("tools", TOOLS),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True), **kw)


def post(fakes, body: dict, model: str = MODEL) -> tuple[int, dict]:
    url = fakes.url("google") + f"/v1beta/models/{model}:generateContent"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"content-type": "application/json", "x-goog-api-key": KEY})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_function_call_round_trip_through_the_sdk(client, fakes):
    question = types.Content(role="user", parts=[types.Part.from_text(text="Use get_weather for Paris")])
    resp = client.models.generate_content(model=MODEL, contents=[question], config=config())
    [call] = resp.function_calls
    assert (call.name, call.args, call.id) == ("get_weather", {"city": "example"}, None)  # Gemini gives no id
    assert resp.candidates[0].finish_reason == types.FinishReason.STOP
    result = types.Part.from_function_response(name="get_weather", response={"result": "sunny"})
    resp = client.models.generate_content(
        model=MODEL, config=config(),
        contents=[question, resp.candidates[0].content, types.Content(role="user", parts=[result])])
    assert resp.text.endswith("The tools said: sunny")
    assert resp.function_calls is None
    sent = fakes["google"].requests[-1].body
    assert sent["contents"][2]["parts"][0]["functionResponse"] == {"name": "get_weather",
                                                                   "response": {"result": "sunny"}}


def test_automatic_function_calling_runs_the_whole_loop_against_the_fake(client, fakes):
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"drizzle in {city}"

    resp = client.models.generate_content(model=MODEL, contents="Use get_weather please",
                                          config=types.GenerateContentConfig(tools=[get_weather]))
    assert resp.text.endswith("The tools said: drizzle in example")
    assert len(fakes["google"].requests) == 2


def test_forced_function_calling_with_allowed_names(client):
    clock = types.FunctionDeclaration(name="get_time", parameters=types.Schema(
        type=types.Type.OBJECT, properties={"zone": types.Schema(type=types.Type.STRING, enum=["UTC", "CET"])}))
    resp = client.models.generate_content(model=MODEL, contents="hello", config=config(
        tools=[types.Tool(function_declarations=[WEATHER, clock])],
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_time"]))))
    assert [(c.name, c.args) for c in resp.function_calls] == [("get_time", {"zone": "UTC"})]


@pytest.mark.parametrize("streaming", [False, True])
def test_gemini_3_signs_its_call_the_sdk_keeps_it_and_an_unsigned_history_is_refused(client, streaming):
    question = types.Content(role="user", parts=[types.Part.from_text(text="get_weather?")])
    if streaming:
        chunks = list(client.models.generate_content_stream(model=GEMINI_3, contents=[question], config=config()))
        parts = [p for c in chunks if c.candidates and c.candidates[0].content
                 for p in c.candidates[0].content.parts or [] if p.function_call]
        turn = types.Content(role="model", parts=parts)
    else:
        resp = client.models.generate_content(model=GEMINI_3, contents=[question], config=config())
        turn = resp.candidates[0].content
    call = next(p for p in turn.parts if p.function_call)
    assert isinstance(call.thought_signature, bytes) and call.thought_signature
    answer = types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather",
                                                                                 response={"result": "ok"})])
    assert client.models.generate_content(model=GEMINI_3, contents=[question, turn, answer], config=config()).text
    call.thought_signature = None
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=GEMINI_3, contents=[question, turn, answer], config=config())
    assert (info.value.code, info.value.status) == (400, "INVALID_ARGUMENT")
    assert "Function call is missing a thought_signature in functionCall parts" in info.value.message


class Forecast(pydantic.BaseModel):
    city: str
    days: int
    rain: bool | None = None


def test_structured_output_parses_into_the_sdks_model(client, fakes):
    resp = client.models.generate_content(model=MODEL, contents="forecast", config=types.GenerateContentConfig(
        response_mime_type="application/json", response_schema=Forecast))
    assert resp.parsed == Forecast(city="example", days=1)
    assert fakes["google"].requests[-1].body["generationConfig"]["responseSchema"]["type"] == "OBJECT"


def test_function_calling_with_json_output_is_refused_before_gemini_3(client):
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=MODEL, contents="hi", config=config(
            response_mime_type="application/json"))
    assert info.value.message == "Function calling with a response mime type: 'application/json' is unsupported"
    assert client.models.generate_content(model=GEMINI_3, contents="hi", config=config(
        response_mime_type="application/json")).text


# -- the real 400s for what the SDK would not send -------------------------------------------------------

HELLO = [{"role": "user", "parts": [{"text": "get_weather?"}]}]


def with_parameters(parameters: dict) -> dict:
    return {"contents": HELLO, "tools": [{"functionDeclarations": [{"name": "get_weather", "parameters": parameters}]}]}


@pytest.mark.parametrize(("body", "message"), [
    (with_parameters({"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": False}),
     "Invalid JSON payload received. Unknown name \"additionalProperties\" at "
     "'tools[0].function_declarations[0].parameters': Cannot find field."),
    (with_parameters({"type": "object", "properties": {"a": {"type": "string"}, "tags": {
        "type": "array", "items": {"type": "string", "$ref": "#/$defs/T"}}}}),
     "Invalid JSON payload received. Unknown name \"$ref\" at "
     "'tools[0].function_declarations[0].parameters.properties[1].value.items': Cannot find field."),
    (with_parameters({"type": "object", "properties": {"n": {"type": "integer", "enum": [1, 2]}}}),
     "Invalid value at 'tools[0].function_declarations[0].parameters.properties[0].value.enum[0]' (TYPE_STRING), 1"),
    (with_parameters({"type": "object", "properties": {"n": {"type": "integer", "enum": ["1"]}}}),
     "* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties[n].enum: only allowed for "
     "STRING type\n"),
    (with_parameters({"type": "object", "properties": {"u": {"type": "string", "format": "uri"}}}),
     "* GenerateContentRequest.tools[0].function_declarations[0].parameters.properties[u].format: only 'enum' and "
     "'date-time' are supported for STRING type\n"),
    (with_parameters({"type": "obj"}), "Invalid value at 'tools[0].function_declarations[0].parameters.type' "
     "(type.googleapis.com/google.ai.generativelanguage.v1beta.Type), \"obj\""),
    ({"contents": HELLO, "generationConfig": {"responseMimeType": "application/json", "responseSchema": {
        "type": "object", "properties": {"x": {"const": "a"}}}}},
     "Invalid JSON payload received. Unknown name \"const\" at "
     "'generation_config.response_schema.properties[0].value': Cannot find field."),
    ({"contents": HELLO, "tools": [{"functionDeclarations": [{"name": "9lives"}]}]},
     "* GenerateContentRequest.tools[0].function_declarations[0].name: Invalid function name."),
    ({"contents": [*HELLO, {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
     "Please ensure that function response turn comes immediately after a function call turn."),
    ({"contents": [*HELLO, {"role": "model", "parts": [{"functionCall": {"name": "f"}},
                                                       {"functionCall": {"name": "g"}}]},
                   {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
     "Please ensure that the number of function response parts is equal to the number of function call parts of "
     "the function call turn."),
    ({"contents": [*HELLO, {"role": "model", "parts": [{"functionCall": {"name": "f"}}]},
                   {"role": "user", "parts": [{"functionResponse": {"name": "g", "response": {}}}]}]},
     "Please ensure that the name of each function response part matches a function call"),
    ({"contents": [*HELLO, {"role": "model", "parts": [{"functionCall": {"name": "f"}}]},
                   {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": "done"}}]}]},
     "Invalid value at 'contents[2].parts[0].function_response.response' "
     "(type.googleapis.com/google.protobuf.Struct), \"done\""),
    ({"contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "not base64!"}}]}]},
     "Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES), Base64 decoding failed"),
    ({"contents": [{"role": "function", "parts": [{"text": "x"}]}]}, "Please use a valid role: user, model."),
    ({"contents": HELLO, "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}}},
     "Invalid value at 'tool_config.function_calling_config.mode'"),
], ids=["additionalProperties", "$ref", "int-enum-value", "enum-on-integer", "string-format", "bad-type", "const",
        "function-name", "orphan-response", "response-count", "response-name", "response-not-object",
        "inline-data-not-base64", "role", "mode"])
def test_bodies_the_real_api_rejects_get_its_400(fakes, body, message):
    status, payload = post(fakes, body)
    err = payload["error"]
    assert (status, err["code"], err["status"]) == (400, 400, "INVALID_ARGUMENT")
    assert err["message"].startswith(message)


def test_an_unknown_schema_field_comes_with_a_bad_request_field_violation(fakes):
    _, payload = post(fakes, with_parameters({"type": "object", "additionalProperties": False}))
    [detail] = payload["error"]["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert detail["fieldViolations"] == [{"field": "tools[0].function_declarations[0].parameters",
                                          "description": payload["error"]["message"]}]


def test_a_gemini_3_call_of_an_earlier_exchange_needs_no_signature_and_the_placeholder_passes(fakes):
    earlier = [*HELLO, {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
               {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {}}}]},
               {"role": "model", "parts": [{"text": "done"}]}, {"role": "user", "parts": [{"text": "thanks"}]}]
    assert post(fakes, {"contents": earlier}, GEMINI_3)[0] == 200
    placeholder = "context_engineering_is_the_way_to_go"
    current = [*HELLO, {"role": "model", "parts": [
        {"functionCall": {"name": "get_weather", "args": {}}, "thoughtSignature": placeholder},
        {"functionCall": {"name": "get_weather", "args": {}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {}}}] * 2}]
    assert post(fakes, {"contents": current}, GEMINI_3)[0] == 200
    current[1]["parts"][0].pop("thoughtSignature")
    assert post(fakes, {"contents": current}, GEMINI_3)[0] == 400
    assert post(fakes, {"contents": current}, MODEL)[0] == 200  # before Gemini 3 a signature is optional
