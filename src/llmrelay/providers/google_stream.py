"""Gemini's stream framing: SSE `data:` events, and JSON written outside SSE (how errors arrive).

The shared SSE decoder (providers/sse.py) drops lines that are not SSE fields; Gemini may write an error
as bare, pretty-printed JSON after the 200, so its adapter reads the stream with this decoder instead.
"""

from __future__ import annotations

from .sse import LineSplitter


class StreamDecoder:
    """Gemini's stream as JSON texts: `data:` events, and bare JSON outside SSE framing.

    SSE lines are read as in providers/sse.py (LF, CRLF or CR; an empty line ends an event;
    comments and other fields carry nothing here).  Any other non-empty line starts or continues
    a bare JSON text, delivered once its brackets balance outside strings — how python-genai
    reads an error the server writes without `data:` (pretty-printed, often over many lines).
    """

    __slots__ = ("_data", "_depth", "_escaped", "_in_string", "_lines", "_raw")

    def __init__(self) -> None:
        self._lines = LineSplitter()
        self._data: list[str] = []
        self._raw: list[str] = []
        self._depth = 0
        self._in_string = self._escaped = False

    def feed(self, chunk: bytes) -> list[str]:
        out: list[str] = []
        for line in self._lines.feed(chunk):
            self._line(line, out)
        return out

    def close(self) -> list[str]:
        """End of stream: a pending event is delivered, so is unbalanced bare text (as is)."""
        out: list[str] = []
        rest = self._lines.flush()
        if rest:
            self._line(rest, out)
        self._line(b"", out)
        if self._raw:
            out.append("\n".join(self._raw))
            self._raw, self._depth, self._in_string, self._escaped = [], 0, False, False
        return out

    def _line(self, line: bytes, out: list[str]) -> None:
        if not line:
            if self._data:
                out.append("\n".join(self._data))
                self._data = []
            return
        name, _, value = line.partition(b":")
        if not self._raw and (name in (b"data", b"event", b"id", b"retry") or not name):
            if name == b"data":
                self._data.append((value[1:] if value[:1] == b" " else value).decode("utf-8", "replace"))
            return
        self._bare(line.decode("utf-8", "replace"), out)

    def _bare(self, text: str, out: list[str]) -> None:
        for c in text:
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif c == "\\":
                    self._escaped = True
                elif c == '"':
                    self._in_string = False
            elif c == '"':
                self._in_string = True
            elif c in "{[":
                self._depth += 1
            elif c in "}]":
                self._depth -= 1
        self._raw.append(text)
        if self._depth <= 0:
            out.append("\n".join(self._raw))
            self._raw, self._depth, self._in_string, self._escaped = [], 0, False, False
