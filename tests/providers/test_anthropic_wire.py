"""Anthropic's wire shapes both ways, as pure functions: the round-trip property (what `messages_to_wire`
sends, `messages_from_wire` reads back as the conversation, up to the documented normalisations), the
invariants the API demands of what is sent, and the pieces one by one."""

from __future__ import annotations

import base64
import itertools
import json
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmrelay.content import (
    Image,
    Message,
    OutputFormat,
    Part,
    Reasoning,
    Text,
    Tool,
    ToolCall,
    ToolChoice,
    ToolResult,
)
from llmrelay.providers.anthropic_request import (
    check_breakpoints,
    native_schema,
    plan_output,
    tool_choice_to_wire,
    tool_to_wire,
)
from llmrelay.providers.anthropic_wire import (
    TOOL_ID,
    Unsendable,
    WireError,
    messages_from_wire,
    messages_to_wire,
    sniff_image,
    system_from_wire,
    wire_id,
)

IMAGES = {"image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff\xdb", "image/gif": b"GIF89a",
          "image/webp": b"RIFF\x10\0\0\0WEBPVP8 "}

# -- the conversations ---------------------------------------------------------------------------------

texts = st.one_of(st.sampled_from(["", " ", "\n\t", "hi", " padded  ", "two\n\nlines\n"]),
                  st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12))
ids = st.sampled_from(["toolu_01A", "call_9", "functions.get:0", "a b", "", "x" * 50, "ünï"])
caches = st.sampled_from([None, None, None, "5m", "1h"])
"""A prompt-cache breakpoint, now and then."""
json_values = st.recursive(st.none() | st.booleans() | st.integers(-9, 99) | st.text(max_size=5),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                                       max_size=3), max_leaves=6)
arguments = st.builds(lambda d, indent: json.dumps(d, indent=indent),
                      st.dictionaries(st.text(max_size=5), json_values, max_size=4), st.sampled_from([None, 2]))
images = st.one_of(
    st.builds(lambda kind, declared, detail, cache: Image(data=base64.b64encode(IMAGES[kind] + b"\0" * 9).decode(),
                                                          media_type=kind if declared else None, detail=detail,
                                                          cache=cache),
              st.sampled_from(sorted(IMAGES)), st.booleans(), st.sampled_from([None, "high"]), caches),
    st.builds(lambda path, cache: Image(url=f"https://example.com/{path}.png", cache=cache),
              st.text("abc", min_size=1, max_size=4), caches))
reasonings = st.builds(Reasoning, texts, st.sampled_from([None, "sig-1", "EqQBCkY"]), st.sampled_from([None, "enc"]),
                       st.sampled_from(["anthropic", None, "openai", "google"]))
user_parts = st.one_of(st.builds(Text, texts, caches), images,
                       st.builds(ToolResult, ids, texts, st.booleans(), st.sampled_from([None, "get_weather"]), caches))
assistant_parts = st.one_of(st.builds(Text, texts, caches), reasonings,
                            st.builds(ToolCall, ids, st.sampled_from(["get_weather", "lookup-2"]), arguments,
                                      st.sampled_from([None, "gemini-signature"]), caches))


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
        if m.plain and not any(p.cache for p in m.parts):
            content: str | list | None = m.text if m.text.strip() else None
        else:
            content = _sent(m.parts)
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
            last[-1] = replace(last[-1], text=last[-1].text.rstrip())
    return [Message(role, content) for role, content in turns]


def _sent(parts: tuple[Part, ...]) -> list[Part]:
    """The parts of a turn that are sent; the breakpoint of one that is not goes to the last part sent
    before it in the turn that can carry one (not reasoning), else to the next (a part that has its own
    keeps it)."""
    out: list[Part] = []
    stray = None
    for p in parts:
        q, ttl = _part(p), getattr(p, "cache", None)
        if q is None:
            carriers = [i for i, o in enumerate(out) if not isinstance(o, Reasoning)]
            if ttl and carriers:
                i = carriers[-1]
                out[i] = out[i] if out[i].cache else replace(out[i], cache=ttl)
            elif ttl:
                stray = stray or ttl
            continue
        if stray and not isinstance(q, Reasoning):
            q, stray = (q if q.cache else replace(q, cache=stray)), None
        out.append(q)
    return out


def _parts(content: str | list) -> list:
    return [Text(content)] if isinstance(content, str) else content


def _part(p: Part) -> Part | None:
    if isinstance(p, Text):
        return p if p.text.strip() else None
    if isinstance(p, Image):
        return Image(url=p.url, cache=p.cache) if p.url else Image(data=p.data, media_type=sniff_image(p.data or ""),
                                                                   cache=p.cache)
    if isinstance(p, ToolCall):
        return ToolCall(wire_id(p.id), p.name, json.dumps(json.loads(p.arguments), ensure_ascii=False),
                        cache=p.cache)
    if isinstance(p, ToolResult):
        return ToolResult(wire_id(p.call_id), p.content, p.is_error, cache=p.cache)
    if p.provider not in ("anthropic", None) or (p.provider is None and not (p.signature or p.redacted)):
        return None  # another provider's reasoning
    if p.redacted:
        return Reasoning(redacted=p.redacted, provider="anthropic")
    return Reasoning(p.text, p.signature, provider="anthropic") if p.signature else None


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.none(), texts), caches, conversations)
def test_from_wire_inverts_to_wire_up_to_the_documented_normalisations(system, system_cache, messages):
    system_out, turns = messages_to_wire(messages, system, system_cache)
    json.dumps(turns)  # plain JSON
    got_system, got = messages_from_wire(system_out or None, turns)
    sent = bool(system and system.strip())
    assert got_system == (system if sent else None)
    assert system_from_wire(system_out or None)[1] == (system_cache if sent else None)
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
            assert b.get("cache_control") in (None, {"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"})
            assert "cache_control" not in b or b["type"] not in ("thinking", "redacted_thinking")
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


# -- prompt-cache breakpoints ---------------------------------------------------------------------------

FIVE, HOUR = {"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"}


def test_breakpoints_go_on_their_own_blocks_and_mark_the_system_prompts_last_block():
    system, turns = messages_to_wire([Message("user", [Text("the long document", "1h"), Text("the question")]),
                                      Message("assistant", [Text("an answer ", "5m")]),
                                      Message("user", [Text("a plain question", "5m")])], "Be brief.", "1h")
    assert system == [{"type": "text", "text": "Be brief.", "cache_control": HOUR}]
    assert turns[0]["content"] == [{"type": "text", "text": "the long document", "cache_control": HOUR},
                                   {"type": "text", "text": "the question"}]
    assert turns[1]["content"] == [{"type": "text", "text": "an answer ", "cache_control": FIVE}]
    assert turns[2]["content"] == [{"type": "text", "text": "a plain question", "cache_control": FIVE}]
    assert messages_to_wire([Message("user", "hi")], "Be brief.") == ("Be brief.", [{"role": "user", "content": "hi"}])


def test_a_breakpoint_on_a_blank_text_moves_to_a_neighbouring_block_of_its_turn():
    signed = Reasoning("thought", "sig", provider="anthropic")
    _, turns = messages_to_wire([Message("user", [Text("q"), Text("  ", "1h")]),
                                 Message("assistant", [signed, Text("", "5m"), ToolCall("t1", "f", "{}")]),
                                 Message("user", [ToolResult("t1", "r")])])
    assert turns[0]["content"][0]["cache_control"] == HOUR and len(turns[0]["content"]) == 1
    thinking, call = turns[1]["content"]
    assert "cache_control" not in thinking and call["cache_control"] == FIVE


def test_cache_control_reads_back_into_the_parts_and_the_system_prompt():
    system, turns = messages_from_wire(
        [{"type": "text", "text": "A", "cache_control": HOUR}, {"type": "text", "text": "B", "cache_control": FIVE}],
        [{"role": "user", "content": [{"type": "text", "text": "q", "cache_control": {"type": "ephemeral",
                                                                                        "ttl": "5m"}}]},
         {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {},
                                            "cache_control": HOUR}]},
         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [
             {"type": "text", "text": "r1"}, {"type": "text", "text": "r2", "cache_control": FIVE}]}]}])
    assert system == "A\n\nB" and system_from_wire([{"type": "text", "text": "A", "cache_control": HOUR},
                                                    {"type": "text", "text": "B", "cache_control": FIVE}])[1] == "5m"
    assert turns == [Message("user", [Text("q", "5m")]), Message("assistant", [ToolCall("t", "f", "{}", cache="1h")]),
                     Message("user", [ToolResult("t", "r1r2", cache="5m")])]


@pytest.mark.parametrize(("control", "param"), [
    ({"type": "persistent"}, "messages.0.content.0.cache_control.type"),
    ({"type": "ephemeral", "ttl": "24h"}, "messages.0.content.0.cache_control.ttl"),
    ({"type": "ephemeral", "scope": "org"}, "messages.0.content.0.cache_control.scope"),
    ("ephemeral", "messages.0.content.0.cache_control"),
])
def test_a_cache_control_that_is_not_anthropics_shape_is_named(control, param):
    with pytest.raises(WireError) as info:
        messages_from_wire(None, [{"role": "user", "content": [
            {"type": "text", "text": "q", "cache_control": control}]}])
    assert info.value.param == param


def body_with(ttls: list[str]) -> dict:
    blocks = [{"type": "text", "text": f"b{i}", "cache_control": FIVE if t == "5m" else HOUR}
              for i, t in enumerate(ttls)]
    return {"tools": [tool_to_wire(Tool("f", cache="1h"))], "messages": [{"role": "user", "content": blocks}]}


def test_anthropics_breakpoint_rules_are_kept_before_sending():
    assert body_with([])["tools"][0]["cache_control"] == HOUR
    check_breakpoints(body_with(["1h", "5m", "5m"]))  # four, none longer after a shorter
    with pytest.raises(Unsendable) as too_many:
        check_breakpoints(body_with(["1h", "5m", "5m", "5m"]))
    assert too_many.value.falls_through and "at most 4 prompt-cache breakpoints" in str(too_many.value)
    assert "the request has 5" in str(too_many.value)
    with pytest.raises(Unsendable) as order:
        check_breakpoints(body_with(["5m", "1h"]))
    assert order.value.falls_through and "1h after one of 5m" in str(order.value)
