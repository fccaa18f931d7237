"""Anthropic's wire shapes both ways, as pure functions: the round-trip property (what `messages_to_wire`
sends, `messages_from_wire` reads back as the conversation, up to the documented normalisations), the
invariants the API demands of what is sent, and the pieces one by one."""

from __future__ import annotations

import base64
import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmrelay.content import Image, Message, OutputFormat, Part, Reasoning, Text, ToolCall, ToolChoice, ToolResult
from llmrelay.providers.anthropic_request import native_schema, plan_output, tool_choice_to_wire
from llmrelay.providers.anthropic_wire import (
    TOOL_ID,
    Unsendable,
    WireError,
    messages_from_wire,
    messages_to_wire,
    sniff_image,
    wire_id,
)

IMAGES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff\xdb", "image/gif": b"GIF89a",
          "image/webp": b"RIFF\x10\0\0\0WEBPVP8 "}

# -- the conversations ---------------------------------------------------------------------------------

texts = st.one_of(st.sampled_from(["", " ", "\n\t", "hi", " padded  ", "two\n\nlines\n"]),
                  st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12))
ids = st.sampled_from(["toolu_01A", "call_9", "functions.get:0", "a b", "", "x" * 50, "ünï"])
json_values = st.recursive(st.none() | st.booleans() | st.integers(-9, 99) | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                       max_size=3), max_leaves=6)
arguments = st.builds(lambda d, indent: json.dumps(d, indent=indent),
                      st.dictionaries(st.text(max_size=5), json_values, max_size=4), st.sampled_from([None, 2]))
images = st.one_of(
    st.builds(lambda kind, declared, detail: Image(data=base64.b64encode(IMAGES[kind] + b"\0" * 9).decode(),
                                                   media_type=kind if declared else None, detail=detail),
              st.sampled_from(sorted(IMAGES)), st.booleans(), st.sampled_from([None, "high"])),
    st.builds(lambda path: Image(url=f"https://example.com/{path}.png"), st.text("abc", min_size=1, max_size=4)))
reasonings = st.builds(Reasoning, texts, st.sampled_from([None, "sig-1", "EqQBCkY"]), st.sampled_from([None, "enc"]),
                       st.sampled_from(["anthropic", None, "openai", "google"]))
user_parts = st.one_of(st.builds(Text, texts), images,
                       st.builds(ToolResult, ids, texts, st.booleans(), st.sampled_from([None, "get_weather"])))
assistant_parts = st.one_of(st.builds(Text, texts), reasonings,
                            st.builds(ToolCall, ids, st.sampled_from(["get_weather", "lookup-2"]), arguments,
                                      st.sampled_from([None, "gemini-signature"])))


def message(role: str, parts: st.SearchStrategy[Part]) -> st.SearchStrategy[Message]:
    return st.one_of(st.builds(lambda t: Message(role, t), texts),
                     st.builds(lambda ps: Message(role, ps), st.lists(parts, max_size=4)))


conversations = st.lists(st.one_of(message("user", user_parts), message("assistant", assistant_parts)), max_size=7)


# -- the documented normalisations, stated independently -------------------------------------------------

_FIRST = (ToolResult, Reasoning)


def normalised(messages: list[Message]) -> list[Message]:
    """What a conversation becomes on Anthropic's wire and back (the module docstring's list)."""
    turns: list[list] = []  # [role, str | list of parts]
    for m in messages:
        if m.plain:
            content: str | list | None = m.text if m.text.strip() else None
        else:
            content = [q for q in (_part(p) for p in m.parts) if q is not None]
            content.sort(key=lambda q: not isinstance(q, _FIRST))
        if not content:
            continue
        if turns and turns[-1][0] == m.role:
            before = turns[-1][1]
            if isinstance(before, str) and isinstance(content, str):
                turns[-1][1] = before + "\n\n" + content
            else:
                joined = [*_parts(before), *_parts(content)]
                joined.sort(key=lambda q: not isinstance(q, _FIRST))
                turns[-1][1] = joined
        else:
            turns.append([m.role, content])
    if turns and turns[-1][0] == "assistant":
        last = turns[-1][1]
        if isinstance(last, str):
            turns[-1][1] = last.rstrip()
        elif isinstance(last[-1], Text):
            last[-1] = Text(last[-1].text.rstrip())
    return [Message(role, content) for role, content in turns]


def _parts(content: str | list) -> list:
    return [Text(content)] if isinstance(content, str) else content


def _part(p: Part) -> Part | None:
    if isinstance(p, Text):
        return p if p.text.strip() else None
    if isinstance(p, Image):
        return Image(url=p.url) if p.url else Image(data=p.data, media_type=sniff_image(p.data or ""))
    if isinstance(p, ToolCall):
        return ToolCall(wire_id(p.id), p.name, json.dumps(json.loads(p.arguments), ensure_ascii=False))
    if isinstance(p, ToolResult):
        return ToolResult(wire_id(p.call_id), p.content, p.is_error)
    if p.provider not in ("anthropic", None) or (p.provider is None and not (p.signature or p.redacted)):
        return None  # another provider's reasoning
    if p.redacted:
        return Reasoning(redacted=p.redacted, provider="anthropic")
    return Reasoning(p.text, p.signature, provider="anthropic") if p.signature else None


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.none(), texts), conversations)
def test_from_wire_inverts_to_wire_up_to_the_documented_normalisations(system, messages):
    system_text, turns = messages_to_wire(messages, system)
    json.dumps(turns)  # plain JSON
    got_system, got = messages_from_wire(system_text or None, turns)
    assert got_system == (system if system and system.strip() else None)
    assert got == normalised(messages)


@settings(max_examples=300)
@given(conversations)
def test_what_is_sent_keeps_the_apis_rules(messages):
    _, turns = messages_to_wire(messages)
    roles = [t["role"] for t in turns]
    assert all(a != b for a, b in itertools.pairwise(roles))  # alternating
    for turn in turns:
        content = turn["content"]
        assert content and (not isinstance(content, str) or content.strip())
        blocks = content if isinstance(content, list) else []
        kinds = [b["type"] for b in blocks]
        first = {"user": "tool_result", "assistant": ("thinking", "redacted_thinking")}[turn["role"]]
        leading = [k in first for k in kinds]
        assert leading == sorted(leading, reverse=True)  # results / thinking before anything else
        for b in blocks:
            assert b["type"] != "text" or b["text"].strip()
            assert TOOL_ID.match(b.get("id", "ok")) and TOOL_ID.match(b.get("tool_use_id", "ok"))
            assert b["type"] != "thinking" or b["signature"]
    if turns and turns[-1]["role"] == "assistant":
        last = turns[-1]["content"]
        text = last if isinstance(last, str) else last[-1].get("text", "")
        assert text == text.rstrip()


# -- the pieces -------------------------------------------------------------------------------------------


def test_wire_ids_are_kept_when_legal_else_a_stable_legal_digest():
    assert wire_id("toolu_01-AbC") == "toolu_01-AbC"
    mapped = {i: wire_id(i) for i in ("functions.get:0", "functions.get:1", "", "a b")}
    assert all(TOOL_ID.match(m) for m in mapped.values())
    assert len(set(mapped.values())) == 4 and wire_id("functions.get:0") == mapped["functions.get:0"]


@pytest.mark.parametrize("arguments", ["[1]", "3", "{broken", '"s"'])
def test_arguments_that_are_not_an_object_are_unsendable(arguments):
    with pytest.raises(Unsendable) as info:
        messages_to_wire([Message("assistant", [ToolCall("t1", "f", arguments)])])
    assert info.value.falls_through


def test_an_empty_argument_text_is_an_empty_object():
    _, turns = messages_to_wire([Message("assistant", [ToolCall("t1", "f", "")])])
    assert turns[0]["content"][0]["input"] == {}


def test_merged_turns_put_results_before_text():
    _, turns = messages_to_wire([Message("user", "hello"), Message("user", [ToolResult("t1", "r")])])
    assert turns == [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "r"},
                                                  {"type": "text", "text": "hello"}]}]


def test_system_blocks_and_string_content_read_back():
    system, turns = messages_from_wire([{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
                                       [{"role": "user", "content": "hi"}])
    assert system == "A\n\nB" and turns == [Message("user", "hi")]


@pytest.mark.parametrize(("items", "param"), [
    ([{"role": "system", "content": "x"}], "messages.0.role"),
    ([{"role": "user", "content": [{"type": "document", "source": {}}]}], "messages.0.content.0.type"),
    ([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                    "content": [{"type": "image", "source": {}}]}]}], "messages.0.content.0.content.0"),
    ([{"role": "user", "content": [{"type": "image", "source": {"type": "base64", "media_type": "image/bmp",
                                                                "data": "AA=="}}]}],
     "messages.0.content.0.source.media_type"),
    ([{"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": [1]}]}],
     "messages.0.content.0.input"),
    ([{"role": "assistant", "content": [{"type": "thinking", "thinking": "x"}]}], "messages.0.content.0.signature"),
])
def test_from_wire_names_what_it_cannot_read(items, param):
    with pytest.raises(WireError) as info:
        messages_from_wire(None, items)
    assert info.value.param == param


@pytest.mark.parametrize(("data", "media_type"), [
    *((base64.b64encode(head + b"\0" * 9).decode(), kind) for kind, head in IMAGES.items()),
    (base64.b64encode(b"BM\0\0\0\0").decode(), None), ("!!!not base64", None)])
def test_sniffing_an_images_type_from_its_first_bytes(data, media_type):
    assert sniff_image(data) == media_type


def test_native_schema_closes_objects_or_declines():
    closed = native_schema({"type": "object", "properties": {"a": {"type": "array", "items": {
        "type": "object", "properties": {"b": {"type": "string"}}}}}})
    assert closed["additionalProperties"] is False
    assert closed["properties"]["a"]["items"]["additionalProperties"] is False
    for schema in ({"type": "object"}, {"type": "object", "properties": {"a": {}}, "additionalProperties": True},
                   {"type": "object", "properties": {"n": {"type": "integer", "maximum": 3}}},
                   {"type": "array", "minItems": 2}):
        assert native_schema(schema) is None


def test_output_plans():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert plan_output(OutputFormat("json_schema", schema), native_ok=True).mode == "native"
    assert plan_output(OutputFormat("json_schema", schema), native_ok=False).tool == "response"
    assert plan_output(OutputFormat("json_schema", {"type": "string"}, "s"), native_ok=True).wrapped
    with pytest.raises(Unsendable):
        plan_output(OutputFormat("json_object", name="no spaces allowed"), native_ok=False)


@pytest.mark.parametrize(("choice", "parallel", "wire"), [
    (None, None, None), (None, True, None), (ToolChoice("none"), False, {"type": "none"}),
    (ToolChoice("tool", "f"), False, {"type": "tool", "name": "f", "disable_parallel_tool_use": True})])
def test_tool_choice_to_wire(choice, parallel, wire):
    assert tool_choice_to_wire(choice, parallel) == wire
