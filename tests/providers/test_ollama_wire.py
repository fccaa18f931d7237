"""Ollama's native shapes of llmrelay's vocabulary (`providers/ollama_wire.py`): the round trip as a
property, and the translations it cannot show by example."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmrelay.content import Image, Message, OutputFormat, Reasoning, Text, Tool, ToolCall, ToolResult
from llmrelay.providers.ollama_wire import (
    Unsendable,
    WireError,
    format_from_wire,
    format_to_wire,
    messages_from_wire,
    messages_to_wire,
    stable_call_id,
    think_to_wire,
    tools_from_wire,
    tools_to_wire,
)

texts = st.text(min_size=1, max_size=12)
names = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True)
json_values = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=6),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                       max_size=3),
                           max_leaves=6)
argument_objects = st.dictionaries(st.text(max_size=5), json_values, max_size=3)
images = st.binary(min_size=1, max_size=24).map(lambda b: Image(data=base64.b64encode(b).decode()))


@st.composite
def calls(draw, n_max: int = 3) -> list[ToolCall]:
    ids = draw(st.lists(st.from_regex(r"call_[a-z0-9]{1,10}", fullmatch=True), max_size=n_max, unique=True))
    return [ToolCall(i, draw(names), json.dumps(draw(argument_objects), ensure_ascii=False, separators=(",", ":")))
            for i in ids]


@st.composite
def assistant_turns(draw) -> Message:
    reasoning = draw(st.lists(texts.map(lambda t: Reasoning(t, provider="ollama")), max_size=1))
    text = draw(st.lists(texts.map(Text), max_size=1))
    made = draw(calls())
    parts = [*reasoning, *text, *made]
    return Message("assistant", parts or [Text(draw(texts))])


@st.composite
def user_turns(draw, answering: list[ToolCall]) -> Message:
    answered = draw(st.lists(st.sampled_from(answering), unique_by=lambda c: c.id)) if answering else []
    results = [ToolResult(c.id, draw(st.text(max_size=10)), name=draw(st.sampled_from([c.name, draw(names)])))
               for c in answered]
    parts = [*results, *draw(st.lists(texts.map(Text), max_size=1)), *draw(st.lists(images, max_size=2))]
    return Message("user", parts or [Text(draw(texts))])


@st.composite
def carried_whole(draw) -> tuple[str | None, list[Message]]:
    """A conversation Ollama carries without loss: turns alternate, a user turn is its tool results,
    then its text, then its images; an assistant turn its (Ollama's own) thinking, text, calls."""
    turns: list[Message] = []
    for i in range(draw(st.integers(0, 6))):
        if i % 2:
            turns.append(draw(assistant_turns()))
        else:
            previous = [p for p in turns[-1].parts if type(p) is ToolCall] if turns else []
            turns.append(draw(user_turns(previous)))
    return draw(st.none() | texts), turns


@given(carried_whole())
@settings(max_examples=300)
def test_a_conversation_ollama_carries_whole_comes_back_from_the_wire_unchanged(conversation):
    system, turns = conversation
    assert messages_from_wire(messages_to_wire(system, turns)) == (system, turns)


def any_part(role: str):
    foreign = st.builds(Reasoning, texts, st.none() | texts, st.none(), st.sampled_from(["anthropic", "google"]))
    return st.one_of(
        st.text(max_size=6).map(Text), images, foreign, texts.map(lambda t: Reasoning(t, provider="ollama")),
        calls(1).map(lambda c: c[0] if c else Text("")),
        st.builds(ToolResult, st.from_regex(r"call_[a-z0-9]{1,4}", fullmatch=True), st.text(max_size=6),
                  st.booleans(), st.none() | names))


conversations = st.lists(st.sampled_from(["user", "assistant"]).flatmap(
    lambda role: st.lists(any_part(role), max_size=4).map(lambda parts: Message(role, parts))), max_size=8)


@given(st.none() | st.text(max_size=6), conversations)
@settings(max_examples=300)
def test_what_is_sent_reads_back_to_the_same_wire_messages(system, turns):
    """Any conversation (merged turns, another provider's reasoning, errors flags, parts out of place):
    what goes on the wire reads back to a conversation that goes on the wire the same way."""
    wire = messages_to_wire(system, turns)
    assert messages_to_wire(*messages_from_wire(wire)) == wire


@given(st.lists(st.builds(Tool, names, st.text(max_size=8),
                          st.fixed_dictionaries({"type": st.just("object"),
                                                 "properties": st.dictionaries(names, st.just({"type": "string"}),
                                                                               max_size=2)})),
                max_size=3))
def test_tools_round_trip(tools):
    assert tools_from_wire(tools_to_wire(tools)) == tuple(tools)


def test_output_format_round_trip_keeps_what_format_can_say():
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    assert format_to_wire(OutputFormat("json_schema", schema, "x", "d", True)) == schema
    assert format_from_wire(schema) == OutputFormat("json_schema", schema)
    assert format_from_wire(format_to_wire(OutputFormat("json_object"))) == OutputFormat("json_object")
    assert format_from_wire("") is None and format_from_wire(None) is None
    with pytest.raises(WireError):
        format_from_wire("yaml")


def test_what_ollama_cannot_carry_is_dropped_and_said_so_in_the_docstring():
    turns = [Message("user", [Image(data="AAAA", media_type="image/png", detail="high")]),
             Message("assistant", [Reasoning("r", signature="s", provider="anthropic"),
                                   ToolCall("c1", "f", "{}", signature="sig")]),
             Message("user", [ToolResult("c1", "boom", is_error=True)])]
    assert messages_from_wire(messages_to_wire(None, turns)) == (None, [
        Message("user", [Image(data="AAAA")]), Message("assistant", [ToolCall("c1", "f", "{}")]),
        Message("user", [ToolResult("c1", "boom", name="f")])])


def test_plain_turns_of_one_role_are_joined_and_empty_ones_dropped():
    turns = [Message("user", "a"), Message("user", ""), Message("user", [Text("b"), Text("c")]),
             Message("assistant", "d"), Message("assistant", [ToolCall("1", "f", "")]), Message("assistant", "e")]
    assert messages_to_wire("s", turns) == [
        {"role": "system", "content": "s"}, {"role": "user", "content": "a\n\nbc"},
        {"role": "assistant", "content": "d"},
        {"role": "assistant", "content": "", "tool_calls": [{"id": "1", "function": {"name": "f", "arguments": {}}}]},
        {"role": "assistant", "content": "e"}]


def test_calls_and_results_without_ids_from_an_older_client_are_matched_by_name():
    wire = [{"role": "user", "content": "go"},
            {"role": "assistant", "content": "", "tool_calls": [
                {"function": {"name": "f", "arguments": {"x": 1}}}, {"function": {"name": "f", "arguments": {}}}]},
            {"role": "tool", "content": "one", "tool_name": "f"}, {"role": "tool", "content": "two", "tool_name": "f"}]
    _, turns = messages_from_wire(wire, model="m")
    first, second = stable_call_id("m", 1, 0, "f", '{"x":1}'), stable_call_id("m", 1, 1, "f", "{}")
    assert turns[1] == Message("assistant", [ToolCall(first, "f", '{"x":1}'), ToolCall(second, "f", "{}")])
    assert turns[2] == Message("user", [ToolResult(first, "one", name="f"), ToolResult(second, "two", name="f")])


@pytest.mark.parametrize("items", [[{"role": "function", "content": "x"}], [{"role": "user", "content": 3}],
                                   [{"role": "user", "content": "x", "images": "AAAA"}], ["hi"]])
def test_requests_of_another_shape_are_refused(items):
    with pytest.raises(WireError):
        messages_from_wire(items)


@pytest.mark.parametrize("turn", [Message("user", [Image(url="https://example.com/a.png")]),
                                  Message("assistant", [ToolCall("1", "f", "[1]")]),
                                  Message("assistant", [ToolCall("1", "f", "{oops")])])
def test_what_cannot_be_sent_is_unsendable(turn):
    with pytest.raises(Unsendable):
        messages_to_wire(None, [turn])


@pytest.mark.parametrize(("model", "effort", "think"), [
    ("qwen3", None, None), ("qwen3", "low", True), ("qwen3:32b", "high", True), ("deepseek-r1", "none", False),
    ("gpt-oss", "high", "high"), ("gpt-oss:120b-cloud", "medium", "medium"), ("gpt-oss:20b", "minimal", "low"),
    ("library/gpt-oss:20b", "low", "low"), ("gpt-oss-safeguard:20b", "low", "low"), ("my-gpt-oss-fork", "low", True),
])
def test_think_is_a_level_for_gpt_oss_only(model, effort, think):
    assert think_to_wire(model, effort) == think
