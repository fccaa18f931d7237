"""openai_wire both ways: what the OpenAI adapter sends reads back, through the OpenAI-compatible
ingress's reader, as the conversation it came from (modulo the documented normalisations), and an
answer rendered for a client reads back as the answer."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.content import Image, Message, OutputFormat, Reasoning, Text, Tool, ToolCall, ToolChoice, ToolResult
from llmrelay.providers.openai_tools import (
    output_from_wire,
    output_to_wire,
    tool_choice_from_wire,
    tool_choice_to_wire,
    tools_from_wire,
    tools_to_wire,
)
from llmrelay.providers.openai_wire import (
    MAX_ID,
    SIGNATURE_MARK,
    WireError,
    answer_from_wire,
    answer_to_wire,
    messages_from_wire,
    messages_to_wire,
    short_id,
)

# -- strategies: conversations as llmrelay holds them ---------------------------------------------------

texts = st.text(min_size=1, max_size=30)
ids = st.one_of(st.from_regex(r"[A-Za-z0-9_\-]{1,40}", fullmatch=True),  # and longer ones, as other providers make
                st.from_regex(r"toolu_[A-Za-z0-9]{35,60}", fullmatch=True)).filter(lambda s: SIGNATURE_MARK not in s)
names = st.from_regex(r"[A-Za-z0-9_\-]{1,30}", fullmatch=True)
arguments = st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8), st.booleans()),
                            max_size=3).map(json.dumps)
details = st.sampled_from([None, "auto", "low", "high"])
images = st.one_of(
    st.builds(lambda path, d: Image(url="https://img.example/" + path, detail=d),
              st.from_regex(r"[a-z0-9/]{1,20}\.png", fullmatch=True), details),
    st.builds(lambda raw, kind, d: Image(data=base64.b64encode(raw).decode(), media_type=kind, detail=d),
              st.binary(min_size=1, max_size=40), st.sampled_from(["image/png", "image/jpeg", "image/webp"]), details),
)
speakers = st.one_of(st.none(), names)  # OpenAI's `name` of a message: who spoke
user_text = st.builds(lambda t, who: Message("user", t, who), texts, speakers)
user_parts = st.builds(lambda ps, who: Message("user", ps, who), st.lists(
    st.one_of(texts.map(Text), images), min_size=1, max_size=4).filter(lambda ps: any(type(p) is Image for p in ps)),
    speakers)
assistant_text = st.builds(
    lambda thought, text, who: Message("assistant", [*([Reasoning(thought, provider="x")] if thought else []),
                                                     Text(text)], who),
    st.one_of(st.none(), texts), texts, speakers)


@st.composite
def tool_exchange(draw) -> list[Message]:
    """An assistant turn that calls tools (maybe after some text and thinking), then the user turn of
    their results (names, error flags and signatures included: the wire has no place for them)."""
    calls = draw(st.lists(st.builds(ToolCall, ids, names, arguments, st.one_of(st.none(), texts)), min_size=1,
                          max_size=3, unique_by=lambda c: c.id))
    lead = draw(st.one_of(st.none(), texts))
    results = [ToolResult(c.id, draw(texts), draw(st.booleans()), draw(st.one_of(st.none(), st.just(c.name))))
               for c in calls]
    return [Message("assistant", [*([Text(lead)] if lead else []), *calls]), Message("user", results)]


conversations = st.lists(st.one_of(user_text.map(lambda m: [m]), user_parts.map(lambda m: [m]),
                                   assistant_text.map(lambda m: [m]), tool_exchange()),
                         min_size=1, max_size=6).map(lambda blocks: [m for b in blocks for m in b])


def normal(turns: list[Message]) -> list[Message]:
    """What a conversation reads back as: reasoning is not sent (OpenAI's chat API has no place for
    it), nor a call's signature, a result's name or error flag; an id over 40 characters becomes its
    digest (the same in the call and its result); an assistant's text comes before its calls."""
    out = []
    for m in turns:
        if m.role == "assistant":
            text = m.text
            calls = [ToolCall(short_id(p.id), p.name, p.arguments) for p in m.parts if type(p) is ToolCall]
            parts = [*([Text(text)] if text else []), *calls]
        else:
            parts = [ToolResult(short_id(p.call_id), p.content) if type(p) is ToolResult else p for p in m.parts]
        if parts:
            out.append(Message(m.role, parts, m.name))
    return out


@given(system=st.one_of(st.none(), texts), turns=conversations)
@settings(max_examples=300)
def test_messages_read_back_as_the_conversation_they_were_written_from(system, turns):
    wire = messages_to_wire(system, turns)
    assert all(len(c["id"]) <= MAX_ID for m in wire for c in m.get("tool_calls", ()))
    assert json.loads(json.dumps(wire)) == wire  # plain JSON
    back_system, back = messages_from_wire(wire)
    assert back_system == ([system] if system else [])
    assert back == normal(turns)


@given(text=st.text(max_size=30), calls=st.lists(st.builds(ToolCall, ids, names, arguments,
                                                           st.one_of(st.none(), texts)),
                                                 max_size=3, unique_by=lambda c: c.id),
       thoughts=st.lists(texts, max_size=2))
@settings(max_examples=300)
def test_an_answer_sent_to_a_client_comes_back_in_its_history_with_signatures(text, calls, thoughts):
    message = answer_to_wire(text, calls, [Reasoning(t) for t in thoughts])
    assert (message["content"] is None) == (not text and bool(calls))
    _, turns = messages_from_wire([message])
    joined = "".join(thoughts)
    assert turns == [Message("assistant", [*([Reasoning(joined)] if joined else []), *([Text(text)] if text else []),
                                           *calls])]


@given(text=st.text(max_size=30), calls=st.lists(st.builds(ToolCall, ids, names, arguments), max_size=3),
       thought=st.text(max_size=20))
def test_an_answer_read_from_a_provider_is_the_answer_it_wrote(text, calls, thought):
    message = answer_to_wire(text, calls, [Reasoning(thought)])
    assert answer_from_wire(message) == (text, tuple(calls), (Reasoning(thought),) if thought else ())


# -- the rest of the request ------------------------------------------------------------------------------


@given(st.lists(st.builds(Tool, names, st.text(max_size=20),
                          st.just({"type": "object", "properties": {"x": {"type": "integer"}}}),
                          st.one_of(st.none(), st.booleans())), max_size=4, unique_by=lambda t: t.name))
def test_tools_read_back(tools):
    assert tools_from_wire(tools_to_wire(tools)) == tuple(tools)


@pytest.mark.parametrize("choice", [ToolChoice("auto"), ToolChoice("none"), ToolChoice("required"),
                                    ToolChoice("tool", "lookup")])
def test_tool_choice_reads_back(choice):
    assert tool_choice_from_wire(tool_choice_to_wire(choice)) == choice


@pytest.mark.parametrize("output", [OutputFormat("json_object"),
                                    OutputFormat("json_schema", {"type": "object", "properties": {}}, "answer"),
                                    OutputFormat("json_schema", {"type": "object"}, "answer", "What to say", True)])
def test_output_format_reads_back(output):
    assert output_from_wire(output_to_wire(output)) == output


def test_a_long_id_is_the_same_digest_in_the_call_and_its_result():
    long_id = "toolu_" + "x" * 60
    wire = messages_to_wire(None, [Message("assistant", [ToolCall(long_id, "f")]),
                                   Message("user", [ToolResult(long_id, "42"), Text("and now?")])])
    assert wire[0]["tool_calls"][0]["id"] == wire[1]["tool_call_id"] == short_id(long_id)
    assert len(short_id(long_id)) == MAX_ID
    assert [m["role"] for m in wire] == ["assistant", "tool", "user"]  # results first, right after the call


def test_merged_turns_keep_speakers_apart():
    wire = messages_to_wire(None, [Message("user", "a", "ann"), Message("user", "b", "ann"),
                                   Message("user", "c", "bob"), Message("user", "d")], merge_turns=True)
    assert wire == [{"role": "user", "content": "a\n\nb", "name": "ann"},
                    {"role": "user", "content": "c", "name": "bob"}, {"role": "user", "content": "d"}]


def test_merged_turns_join_only_plain_text_of_one_role():
    wire = messages_to_wire("sys", [Message("user", "a"), Message("user", "b"),
                                    Message("assistant", [ToolCall("c1", "f")]),
                                    Message("user", [ToolResult("c1", "1")]), Message("user", "c")], merge_turns=True)
    assert wire == [{"role": "system", "content": "sys"}, {"role": "user", "content": "a\n\nb"},
                    {"role": "assistant", "content": None, "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                    {"role": "tool", "tool_call_id": "c1", "content": "1"}, {"role": "user", "content": "c"}]


@pytest.mark.parametrize(("messages", "param"), [
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}], "messages[0].content[0].image_url"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}]}],
     "messages[0].content[0].image_url.url"),
    ([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}], "messages[0].content[0]"),
    ([{"role": "tool", "content": "1"}], "messages[0].tool_call_id"),
    ([{"role": "assistant", "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f",
                                                                                       "arguments": {}}}]}],
     "messages[0].tool_calls[0].function.arguments"),
    ([{"role": "function", "name": "f", "content": "1"}], "messages[0].role"),
    ([{"role": "user", "content": "hi", "audio": {"id": "x"}}], "messages[0].audio"),
    ([{"role": "user", "content": "hi", "name": 7}], "messages[0].name"),
    ([{"role": "assistant", "content": "hi", "name": ""}], "messages[0].name"),
])
def test_what_cannot_be_read_names_its_param(messages, param):
    with pytest.raises(WireError) as info:
        messages_from_wire(messages)
    assert info.value.param == param


@pytest.mark.parametrize(("read", "value", "param"), [
    (tools_from_wire, [{"type": "function", "function": {"name": "has space"}}], "tools[0].function.name"),
    (tools_from_wire, [{"type": "custom", "custom": {"name": "f"}}], "tools[0].type"),
    (tools_from_wire, [{"type": "function", "function": {"name": "f", "parameters": {"type": "array"}}}],
     "tools[0].function.parameters"),
    (tool_choice_from_wire, "sometimes", "tool_choice"),
    (output_from_wire, {"type": "json_schema", "json_schema": {"schema": {}}}, "response_format.json_schema.name"),
    (output_from_wire, {"type": "xml"}, "response_format.type"),
])
def test_bad_tools_choice_and_format_name_their_param(read, value, param):
    with pytest.raises(WireError) as info:
        read(value)
    assert info.value.param == param


def test_a_repeated_tools_list_is_read_once_and_written_once():
    """Agents send the same tools with every turn: the second time they are the same objects, and the
    same wire list goes out (tools_from_wire / tools_to_wire keep them)."""
    from llmrelay.providers.openai_tools import tools_from_wire, tools_to_wire

    items = [{"type": "function", "function": {"name": "memo_probe", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}}}}]
    first, again = tools_from_wire(items), tools_from_wire([dict(i) for i in items])
    assert first is again and first[0].parameters == items[0]["function"]["parameters"]
    assert tools_to_wire(first) is tools_to_wire(again)
    other = tools_from_wire([{"type": "function", "function": {"name": "memo_probe_2"}}])
    assert other is not first and tools_to_wire(other)[0]["function"]["name"] == "memo_probe_2"
