"""Gemini's wire shapes (providers/google_wire.py) as pure functions: the contents round trip (a
hypothesis property), the request body for tools, choice, output, sampling and thinking, and what is
refused before sending."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrelay.content import Image, Message, OutputFormat, Reasoning, Text, Tool, ToolCall, ToolChoice, ToolResult
from llmrelay.providers.google_wire import (
    DUMMY_SIGNATURE,
    WireError,
    call_id,
    contents_from_wire,
    contents_to_wire,
    read_parts,
    request_body,
)
from llmrelay.types import ChatRequest, Sampling

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 24).decode()
WEATHER = Tool("get_weather", "Weather in a city", {"type": "object", "properties": {"city": {"type": "string"}},
                                                    "required": ["city"]})


def body(model: str = "gemini-2.5-flash", **kw) -> dict:
    messages = kw.pop("messages", (Message("user", "hi"),))
    return request_body(ChatRequest(model=model, messages=tuple(messages), **kw), model)


# -- the round trip ------------------------------------------------------------------------------------

_text = st.text(min_size=1, max_size=12).filter(str.strip).map(Text)
_ids = st.text(alphabet="abcdefghij0123456789_", min_size=1, max_size=10)
_names = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2), max_leaves=5)
_arguments = st.dictionaries(st.text(max_size=5), _json, max_size=3).map(
    lambda d: json.dumps(d, ensure_ascii=False))
_signature = st.none() | st.binary(min_size=1, max_size=12).map(lambda b: base64.b64encode(b).decode())
_image = st.one_of(
    st.builds(Image, data=st.binary(min_size=1, max_size=16).map(lambda b: base64.b64encode(b).decode()),
              media_type=st.sampled_from(["image/png", "image/jpeg", "image/webp"])),
    st.builds(Image, url=st.from_regex(r"https://img\.example/[a-z]{1,8}\.(png|jpg)", fullmatch=True)))
_call = st.builds(ToolCall, _ids, _names, _arguments, _signature)
_result = st.builds(ToolResult, _ids, st.text(max_size=12), st.booleans(), _names)
_user = st.lists(st.one_of(_text, _image, _result), min_size=1, max_size=4)
_model = st.lists(st.one_of(_text, _call), min_size=1, max_size=4)


@st.composite
def conversations(draw) -> list[Message]:
    """Turns that alternate (so nothing merges), with no blank text and no reasoning: the contents a
    conversation and its wire form both describe exactly."""
    first_user = draw(st.booleans())
    n = draw(st.integers(1, 6))
    return [Message("user", draw(_user)) if (i % 2 == 0) == first_user else Message("assistant", draw(_model))
            for i in range(n)]


@given(turns=conversations(), sign=st.booleans())
def test_contents_round_trip(turns, sign):
    wire = contents_to_wire(turns, sign_calls=sign)
    assert contents_from_wire(json.loads(json.dumps(wire))) == turns
    assert [c["role"] for c in wire] == ["model" if m.role == "assistant" else "user" for m in turns]


# -- turns out -----------------------------------------------------------------------------------------


def test_same_role_turns_merge_and_text_across_the_seam_joins_with_a_blank_line():
    turns = [Message("user", "a"), Message("user", [Text("b"), Image(data=PNG, media_type="image/png")]),
             Message("user", [Text("  ")]), Message("user", "c"), Message("assistant", [Reasoning("hmm")])]
    assert contents_to_wire(turns) == [{"role": "user", "parts": [
        {"text": "a\n\nb"}, {"inlineData": {"mimeType": "image/png", "data": PNG}}, {"text": "c"}]}]


def test_a_result_takes_its_function_name_from_the_call_with_its_id():
    turns = [Message("user", "weather?"),
             Message("assistant", [ToolCall("c1", "get_weather", '{"city":"Paris"}'), ToolCall("c2", "clock")]),
             Message("user", [ToolResult("c2", "noon"), ToolResult("c1", "sunny", is_error=True)])]
    wire = contents_to_wire(turns)
    assert wire[1]["parts"] == [{"functionCall": {"id": "c1", "name": "get_weather", "args": {"city": "Paris"}}},
                                {"functionCall": {"id": "c2", "name": "clock", "args": {}}}]
    assert wire[2]["parts"] == [
        {"functionResponse": {"id": "c2", "name": "clock", "response": {"result": "noon"}}},
        {"functionResponse": {"id": "c1", "name": "get_weather", "response": {"error": "sunny"}}}]


def test_a_result_whose_call_is_unknown_and_unnamed_is_refused():
    with pytest.raises(WireError, match="names no function") as info:
        contents_to_wire([Message("user", [ToolResult("nope", "x")])])
    assert info.value.falls_through


@pytest.mark.parametrize("arguments", ["[1]", "not json", '"text"'])
def test_call_arguments_that_are_not_a_json_object_are_refused(arguments):
    with pytest.raises(WireError, match="not a JSON object"):
        contents_to_wire([Message("assistant", [ToolCall("c", "f", arguments)])])


def test_images_by_url_guess_their_type_and_inline_ones_without_a_type_are_sniffed():
    parts = contents_to_wire([Message("user", [Image(url="https://x.example/cat.JPG?s=1"),
                                               Image(url="https://x.example/photo"), Image(data=PNG)])])[0]["parts"]
    assert parts == [{"fileData": {"fileUri": "https://x.example/cat.JPG?s=1", "mimeType": "image/jpeg"}},
                     {"fileData": {"fileUri": "https://x.example/photo"}},
                     {"inlineData": {"mimeType": "image/png", "data": PNG}}]
    with pytest.raises(WireError, match="no media type"):
        contents_to_wire([Message("user", [Image(data=base64.b64encode(b"plain text").decode())])])


def test_gemini_3_unsigned_calls_of_the_current_exchange_get_the_placeholder_on_the_first_call_only():
    turns = [Message("user", "old question"), Message("assistant", [ToolCall("a", "f")]),
             Message("user", [ToolResult("a", "1")]), Message("assistant", "done"),
             Message("user", "new question"),
             Message("assistant", [Text("let me see"), ToolCall("b", "f"), ToolCall("c", "g")]),
             Message("user", [ToolResult("b", "2"), ToolResult("c", "3")]),
             Message("assistant", [ToolCall("d", "f", signature="c2ln")])]
    wire = contents_to_wire(turns, sign_calls=True)
    assert "thoughtSignature" not in wire[1]["parts"][0]  # an earlier exchange: not checked, not touched
    assert [p.get("thoughtSignature") for p in wire[5]["parts"]] == [None, DUMMY_SIGNATURE, None]
    assert wire[7]["parts"][0]["thoughtSignature"] == "c2ln"
    assert contents_to_wire(turns)[5]["parts"][1].get("thoughtSignature") is None


# -- the request body ----------------------------------------------------------------------------------


def test_tools_and_each_tool_choice():
    no_params = Tool("now", "", {"type": "object", "properties": {}})
    sent = body(tools=(WEATHER, no_params))
    assert sent["tools"] == [{"functionDeclarations": [
        {"name": "get_weather", "description": "Weather in a city",
         "parameters": {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}},
        {"name": "now"}]}]
    assert "toolConfig" not in sent
    modes = {mode: body(tools=(WEATHER,), tool_choice=ToolChoice(mode, "get_weather" if mode == "tool" else None))
             ["toolConfig"]["functionCallingConfig"] for mode in ("auto", "required", "tool", "none")}
    assert modes == {"auto": {"mode": "AUTO"}, "required": {"mode": "ANY"}, "none": {"mode": "NONE"},
                     "tool": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}}


@pytest.mark.parametrize("name", ["9lives", "has space", "x" * 65, "café"])
def test_a_function_name_outside_geminis_rule_is_refused(name):
    with pytest.raises(WireError, match="function names") as info:
        body(tools=(Tool(name),))
    assert info.value.falls_through


def test_a_schema_gemini_cannot_take_is_refused_naming_tool_keyword_and_path():
    lookup = Tool("lookup", "", {"type": "object", "properties": {"q": {"not": {"type": "string"}}}})
    with pytest.raises(WireError) as info:
        body(tools=(WEATHER, lookup))
    assert str(info.value) == ("tools[1] 'lookup': parameters.properties.q: Gemini cannot take the JSON Schema "
                               "keyword 'not'")
    with pytest.raises(WireError, match=r"response_format 'out': schema: .* 'additionalProperties'"):
        body(output=OutputFormat("json_schema", {"type": "object", "additionalProperties": {"type": "integer"}},
                                 "out"))


def test_structured_output_sampling_and_thinking_in_generation_config():
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}
    sent = body(output=OutputFormat("json_schema", schema), max_tokens=50,
                sampling=Sampling(top_p=0.9, top_k=20, seed=7, presence_penalty=0.5, frequency_penalty=-0.5,
                                  reasoning_effort="medium"))
    assert sent["generationConfig"] == {
        "maxOutputTokens": 50, "topP": 0.9, "topK": 20, "seed": 7, "presencePenalty": 0.5, "frequencyPenalty": -0.5,
        "thinkingConfig": {"thinkingBudget": 8192, "includeThoughts": True},
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"a": {"type": "STRING"}, "b": {"type": "INTEGER"}},
                           "propertyOrdering": ["a", "b"]}}
    assert body(output=OutputFormat("json_object"))["generationConfig"] == {"responseMimeType": "application/json"}
    assert [body(sampling=Sampling(reasoning_effort=e))["generationConfig"]["thinkingConfig"]["thinkingBudget"]
            for e in ("low", "medium", "high")] == [1024, 8192, 24576]
    with pytest.raises(WireError, match="reasoning_effort"):
        body(sampling=Sampling(reasoning_effort="extreme"))


def test_tools_with_json_output_are_refused_before_gemini_3_unless_calling_is_off():
    output = OutputFormat("json_object")
    with pytest.raises(WireError, match="cannot take tools and a JSON response format") as info:
        body(tools=(WEATHER,), output=output)
    assert info.value.falls_through
    assert body(tools=(WEATHER,), output=output, tool_choice=ToolChoice("none"))["toolConfig"]
    assert body("gemini-3-pro-preview", tools=(WEATHER,), output=output)["tools"]


def test_nothing_to_send_is_refused_as_fatal():
    with pytest.raises(WireError) as info:
        body(messages=(Message("user", " "), Message("assistant", [Reasoning("x")])))
    assert not info.value.falls_through


# -- the answer -----------------------------------------------------------------------------------------


def test_answer_parts_split_into_text_thoughts_and_calls_with_stable_ids():
    parts = [{"text": "plan", "thought": True}, {"text": "Sure. "}, {"text": "Calling."},
             {"functionCall": {"name": "f", "args": {"x": "é"}}, "thoughtSignature": "c2ln"},
             {"functionCall": {"id": "given", "name": "g"}}]
    read = read_parts(parts, "resp1", first_call=2)
    assert (read.text, read.thoughts) == (["Sure. ", "Calling."], ["plan"])
    assert read.calls == [ToolCall(call_id("resp1", 2, "f"), "f", '{"x": "é"}', "c2ln"), ToolCall("given", "g", "{}")]
    assert call_id("resp1", 2, "f") == call_id("resp1", 2, "f") != call_id("resp2", 2, "f")
    assert call_id("r", 0, "f").startswith("call_") and len(call_id("r", 0, "f")) == 29
    for bad in ({"functionCall": {"args": {}}}, {"functionCall": {"name": "f", "args": [1]}}):
        with pytest.raises(ValueError):
            read_parts([bad], "r")
