"""The Responses API's items, both ways, as properties: an answer's output items sent back as input (what
clients do in a tool loop) read back into the same assistant turn; no input makes the reader fail with
anything but a `WireError` naming the place; a stored conversation reads back as it was kept."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmrelay.api.responses_items import answer_items, check_tool_outputs, read_input
from llmrelay.content import Image, Message, Reasoning, Text, ToolCall, ToolResult
from llmrelay.db.responses import Conversation
from llmrelay.providers.openai_wire import WireError
from llmrelay.types import ChatResponse, Usage

ids = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=24)
names = st.from_regex(r"[A-Za-z0-9_.\-]{1,20}", fullmatch=True)
args = st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5), max_size=3).map(json.dumps)
calls = st.builds(ToolCall, ids, names, args, st.none() | st.text(min_size=1, max_size=30).filter(
    lambda s: "__thought__" not in s))
thoughts = st.builds(Reasoning, st.text(max_size=40), st.none() | st.text(min_size=1, max_size=20),
                     st.none() | st.text(min_size=1, max_size=20),
                     st.sampled_from(["anthropic", "google", "ollama", "openai", "openrouter"]))


@given(text=st.text(max_size=60), tool_calls=st.lists(calls, max_size=3, unique_by=lambda c: c.id),
       reasoning=st.lists(thoughts, max_size=2))
def test_an_answers_items_read_back_into_its_assistant_turn(text, tool_calls, reasoning):
    resp = ChatResponse(text, "m", "p", Usage(), "stop", tool_calls=tuple(tool_calls), reasoning=tuple(reasoning))
    items = json.loads(json.dumps(answer_items(resp, "resp_abc")))  # as a client sends them back
    system, turns = read_input(items)
    expected = (*reasoning, *((Text(text),) if text else ()), *tool_calls)
    assert system == [] and turns == ([Message("assistant", expected)] if expected else [])


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3), max_leaves=12)
item_like = st.fixed_dictionaries({"type": st.sampled_from(["message", "function_call", "function_call_output",
                                                            "reasoning", "item_reference", "x"])},
                                  optional={"role": st.sampled_from(["user", "assistant", "system", "x"]),
                                            "content": json_values, "call_id": json_values, "name": json_values,
                                            "arguments": json_values, "output": json_values,
                                            "summary": json_values, "encrypted_content": json_values})


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(item_like | json_values, max_size=4) | json_values)
def test_any_input_is_read_or_refused_naming_the_place(value):
    try:
        _, turns = read_input(value)
    except WireError as exc:
        assert exc.param is not None and exc.param.startswith("input")
    else:
        assert all(m.role in ("user", "assistant") and m.parts for m in turns)


def test_tool_outputs_must_answer_the_calls_just_before_them():
    call = ToolCall("c1", "f")
    check_tool_outputs([Message("user", "hi"), Message("assistant", [call]), Message("user", [ToolResult("c1", "x")])])
    for turns, says in (([Message("assistant", [call])], "No tool output found for function call c1."),
                        ([Message("assistant", [call]), Message("user", "hi")], "No tool output found"),
                        ([Message("user", [ToolResult("c2", "x")])], "No tool call found for function call output "
                                                                      "with call_id c2.")):
        try:
            check_tool_outputs(turns)
        except WireError as exc:
            assert says in exc.detail and exc.param == "input"
        else:
            raise AssertionError(f"{turns} passed")


parts = st.one_of(st.builds(Text, st.text(max_size=20)), calls, thoughts,
                  st.builds(ToolResult, ids, st.text(max_size=20), st.booleans()),
                  st.builds(Image, url=st.just("https://example.com/a.png")))


@given(system=st.lists(st.text(max_size=20), max_size=2),
       turns=st.lists(st.builds(Message, st.sampled_from(["user", "assistant"]), st.lists(parts, min_size=1,
                                                                                          max_size=3)), max_size=4),
       instructions=st.none() | st.text(min_size=1, max_size=20))
def test_a_stored_conversation_reads_back_without_its_instructions(system, turns, instructions):
    kept = Conversation(tuple(system), tuple(turns))
    stored = json.loads(json.dumps(kept.to_json(instructions)))
    assert Conversation.of(stored) == kept
    marked = [t for t in stored if t.get("instructions")]
    assert marked == ([{"role": "system", "instructions": True, "parts": [{"type": "text", "text": instructions}]}]
                      if instructions else [])
