"""The stream decoders against the WHATWG rules, and against every way TCP may split a stream."""

from hypothesis import given
from hypothesis import strategies as st

from llmrelay.providers.sse import NDJSONDecoder, SSEDecoder, SSEEvent


def decode(chunks):
    d = SSEDecoder()
    out = []
    for c in chunks:
        out.extend(d.feed(c))
    return out + d.close()


def test_events_names_comments_multiline_data_and_ids():
    raw = (b": OPENROUTER PROCESSING\n\nevent: message_start\ndata: {\"a\":1}\n\n"
           b"data: line1\ndata: line2\nid: 7\nretry: 100\nunknown: x\n\ndata:nospace\n\n")
    assert decode([raw]) == [
        SSEEvent("message_start", '{"a":1}'),
        SSEEvent("message", "line1\nline2", "7"),
        SSEEvent("message", "nospace", "7"),
    ]


def test_crlf_and_bare_cr_line_endings():
    assert decode([b"data: a\r\n\r\ndata: b\r\rdata: c\n\n"]) == [
        SSEEvent("message", "a"), SSEEvent("message", "b"), SSEEvent("message", "c")]


def test_cr_and_lf_split_across_reads_is_one_line_ending():
    assert decode([b"data: a\r", b"\n\r", b"\ndata: b\r\n", b"\r\n"]) == [
        SSEEvent("message", "a"), SSEEvent("message", "b")]


def test_event_without_final_blank_line_is_delivered_at_eof():
    assert decode([b"data: last"]) == [SSEEvent("message", "last")]


def test_multibyte_character_split_between_reads():
    raw = "data: héllo wörld ✓\n\n".encode()
    cut = raw.index("✓".encode()) + 1
    assert decode([raw[:cut], raw[cut:]]) == [SSEEvent("message", "héllo wörld ✓")]


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"), max_size=30)
_event = st.tuples(st.sampled_from([None, "message_start", "ping", "error"]), st.lists(_text, min_size=1, max_size=3))
_eol = st.sampled_from([b"\n", b"\r\n", b"\r"])


@given(events=st.lists(_event, max_size=8), eol=_eol, comments=st.booleans(), data=st.data())
def test_any_split_of_a_stream_gives_the_same_events(events, eol, comments, data):
    raw = b""
    for name, lines in events:
        if comments:
            raw += b": keep-alive" + eol
        if name:
            raw += b"event: " + name.encode() + eol
        for line in lines:
            raw += b"data: " + line.encode() + eol
        raw += eol
    expected = [SSEEvent(name or "message", "\n".join(lines)) for name, lines in events]
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=10)))
    pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)]
    assert decode(pieces) == expected


@given(lines=st.lists(st.dictionaries(st.text(max_size=5), st.integers(), max_size=3), max_size=6), data=st.data())
def test_ndjson_any_split_gives_the_same_lines(lines, data):
    import json

    raw = b"".join(json.dumps(x).encode() + b"\n" for x in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), max_size=8)))
    d = NDJSONDecoder()
    out = []
    for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True):
        out.extend(d.feed(raw[a:b]))
    out.extend(d.close())
    assert [json.loads(x) for x in out] == lines
