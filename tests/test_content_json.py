"""The parts' one JSON form (`content.part_to_json` / `part_from_json`) keeps every field, a prompt-cache
breakpoint (`cache`) included, and says what is wrong with a part it cannot read."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmrelay.content import Image, Reasoning, Text, ToolCall, ToolResult, part_from_json, part_to_json

caches = st.sampled_from([None, "5m", "1h"])
maybe = st.none() | st.text(min_size=1, max_size=6)
parts = st.one_of(
    st.builds(Text, st.text(max_size=12), caches),
    st.builds(lambda cache, detail: Image(url="https://example.com/a.png", detail=detail, cache=cache), caches,
              st.sampled_from([None, "low"])),
    st.builds(lambda raw, cache: Image(data=base64.b64encode(raw).decode(), media_type="image/png", cache=cache),
              st.binary(min_size=1, max_size=12), caches),
    st.builds(ToolCall, st.text(min_size=1, max_size=6), st.text(min_size=1, max_size=6), st.just('{"a": 1}'), maybe,
              caches),
    st.builds(ToolResult, st.text(min_size=1, max_size=6), st.text(max_size=6), st.booleans(), maybe, caches),
    st.builds(Reasoning, st.text(max_size=6), maybe, maybe, maybe),
)


@given(parts)
def test_a_part_comes_back_from_its_json_as_it_was(part):
    data = part_to_json(part)
    assert ("cache" in data) == (getattr(part, "cache", None) is not None)
    assert part_from_json(data) == part


def test_plain_text_stays_as_small_as_before():
    assert part_to_json(Text("hi")) == {"type": "text", "text": "hi"}


@pytest.mark.parametrize("cache", ["10m", 5, ""])
def test_a_breakpoint_of_another_lifetime_is_refused(cache):
    with pytest.raises(ValueError, match="cache must be one of 5m, 1h"):
        part_from_json({"type": "text", "text": "hi", "cache": cache})
