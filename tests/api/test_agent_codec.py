"""The agents API's body codec without HTTP: any turn llmrelay can hold goes through the JSON the API
takes and comes back equal (a property, with hypothesis), a stored turn likewise, and tool calls and
results must pair up the way every provider insists."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from llmrelay.api.agent_codec import AskAgent, Turn, check_tool_turns
from llmrelay.content import Image, Message, Reasoning, Text, ToolCall, ToolResult, parts_to_json
from llmrelay.db.conversations import StoredTurn, message_of
from llmrelay.db.models import ConversationMessage
from llmrelay.types import InvalidRequest

texts = st.text(max_size=40)
ids = st.from_regex(r"[A-Za-z0-9_\-]{1,60}", fullmatch=True)
names = st.from_regex(r"[A-Za-z0-9_.\-]{1,40}", fullmatch=True)
arguments = st.dictionaries(st.text(max_size=8), st.one_of(st.integers(), st.text(max_size=8), st.none()),
                            max_size=3).map(json.dumps)
optional = st.one_of(st.none(), st.text(min_size=1, max_size=20))
images = st.one_of(
    st.builds(lambda path, detail: Image(url="https://img.example/" + path, detail=detail),
              st.from_regex(r"[a-z0-9/]{1,20}\.png", fullmatch=True), st.sampled_from([None, "auto", "low", "high"])),
    st.builds(lambda raw, kind: Image(data=base64.b64encode(raw).decode(), media_type=kind),
              st.binary(min_size=1, max_size=60),
              st.sampled_from(["image/png", "image/jpeg", "image/gif", "image/webp"])),
)
user_part = st.one_of(texts.map(Text), images,
                      st.builds(ToolResult, ids, texts, st.booleans(), st.one_of(st.none(), names)))
assistant_part = st.one_of(texts.map(Text), st.builds(ToolCall, ids, names, arguments, optional),
                           st.builds(Reasoning, texts, optional, optional, st.one_of(st.none(), st.just("anthropic"))))
turns = st.one_of(st.lists(user_part, min_size=1, max_size=5).map(lambda ps: Message("user", ps)),
                  st.lists(assistant_part, min_size=1, max_size=5).map(lambda ps: Message("assistant", ps)),
                  texts.map(lambda t: Message("user", t)))


@given(st.lists(turns, min_size=1, max_size=6))
@settings(max_examples=300, deadline=None)
def test_every_turn_survives_the_apis_json_and_the_store(history):
    body = [{"role": m.role, "content": parts_to_json(m.parts)} for m in history]
    read = TypeAdapter(list[Turn]).validate_python(body)
    assert [t.message() for t in read] == history
    for m in history:
        stored = StoredTurn.of(m)
        row = ConversationMessage(role=stored.role, content=stored.content, parts=stored.parts)
        # a turn of text only is stored as its text: several text parts come back as one
        assert message_of(row) == (Message(m.role, m.text) if m.plain else m)
        assert stored.content == m.text and (stored.parts is None) == m.plain


@given(st.lists(user_part, min_size=1, max_size=5))
@settings(max_examples=100, deadline=None)
def test_a_message_of_parts_is_the_user_turn_it_says(parts):
    body = AskAgent.model_validate({"agentId": "a", "message": parts_to_json(parts)})
    if all(type(p) is Text and not p.text.strip() for p in parts):
        with pytest.raises(InvalidRequest):
            body.user_message()
    else:
        assert body.user_message() == Message("user", parts)


def test_a_user_turn_cannot_hold_an_assistants_parts_nor_the_reverse():
    for role, part in (("user", {"type": "toolCall", "id": "c", "name": "f"}),
                       ("assistant", {"type": "toolResult", "callId": "c", "content": "x"}),
                       ("system", {"type": "image", "url": "https://x/y.png"})):
        with pytest.raises(ValidationError) as err:
            Turn.model_validate({"role": role, "content": [part]})
        assert f"a {role} turn holds" in str(err.value)


CALL = ToolCall("c1", "get_weather", '{"city": "Oslo"}')


@pytest.mark.parametrize(("turns", "bad"), [
    ([Message("user", "Hi")], None),
    ([Message("user", "Oslo?"), Message("assistant", [CALL]), Message("user", [ToolResult("c1", "-3")])], None),
    ([Message("user", [ToolResult("c1", "-3")])], 0),
    ([Message("assistant", [CALL]), Message("user", "never mind")], 1),
    ([Message("assistant", [CALL, ToolCall("c2", "f")]), Message("user", [ToolResult("c1", "-3")])], 1),
    ([Message("assistant", [CALL]), Message("assistant", "and?"), Message("user", [ToolResult("c1", "x")])], 1),
    ([Message("assistant", [CALL]), Message("user", [ToolResult("c1", "-3")]),
      Message("user", [ToolResult("c1", "-3")])], 2),
])
def test_tool_results_answer_the_calls_just_before_them(turns, bad):
    if bad is None:
        check_tool_turns(turns, str)
    else:
        with pytest.raises(InvalidRequest) as err:
            check_tool_turns(turns, lambda i: f"turn {i}")
        assert err.value.field == f"turn {bad}"


async def test_a_part_whose_type_is_not_a_string_is_a_422_naming_it(client, keys):
    """Found by schemathesis: `{"type": []}` once raised TypeError (a 500)."""
    r = await client.post("/api/ai/agents", headers=keys.auth("alice"), json={
        "agentId": "general-agent", "message": "Hi",
        "conversationHistory": [{"role": "user", "content": [{"type": []}]}]})
    assert r.status_code == 422 and "type must be one of" in r.json()["detail"]
