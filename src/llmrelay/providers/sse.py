"""Incremental parsers for the two streaming framings providers use: SSE and NDJSON.

Both take bytes exactly as they arrive off the socket (a frame may straddle reads, a UTF-8
character may straddle reads, a CR may arrive in one read and its LF in the next) and give
back complete events as soon as they are complete; nothing waits for the end of the stream.

SSE follows the WHATWG event-stream rules the official SDKs implement: lines end in LF, CRLF
or CR; an empty line ends an event; a line starting with ':' is a comment; `field: value`
drops one space after the colon; several `data` lines join with LF; unknown fields are
ignored; bytes are decoded only after a line is complete.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SSEEvent:
    event: str
    data: str
    id: str | None = None


class LineSplitter:
    """Splits a byte stream into lines on LF, CRLF or CR, across arbitrary chunk borders."""

    __slots__ = ("_after_cr", "_buf")

    def __init__(self) -> None:
        self._buf = b""
        self._after_cr = False  # the last chunk ended in CR: an LF starting the next one is its pair

    def feed(self, chunk: bytes) -> list[bytes]:
        if not chunk:
            return []
        if self._after_cr and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._after_cr = chunk[-1:] == b"\r"
        buf = self._buf + chunk if self._buf else chunk
        lines = _LINE_END.split(buf)
        self._buf = lines.pop()
        return lines

    def flush(self) -> bytes:
        rest, self._buf = self._buf, b""
        return rest


class SSEDecoder:
    """Feed it bytes; it returns the events completed by them."""

    __slots__ = ("_data", "_event", "_id", "_lines")

    def __init__(self) -> None:
        self._lines = LineSplitter()
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        events: list[SSEEvent] = []
        for line in self._lines.feed(chunk):
            ev = self._line(line)
            if ev is not None:
                events.append(ev)
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: an event that lacked only its final blank line is still delivered."""
        events = []
        rest = self._lines.flush()
        if rest:
            ev = self._line(rest)
            if ev is not None:
                events.append(ev)
        ev = self._line(b"")
        if ev is not None:
            events.append(ev)
        return events

    def _line(self, line: bytes) -> SSEEvent | None:
        if not line:
            if not self._data and self._event is None:
                return None
            ev = SSEEvent(self._event or "message", "\n".join(self._data), self._id)
            self._event, self._data = None, []
            return ev
        if line[:1] == b":":
            return None
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            self._id = value.decode("utf-8", "replace")
        return None


class NDJSONDecoder:
    """Newline-delimited JSON (Ollama's native stream): feed bytes, get complete non-empty lines."""

    __slots__ = ("_lines",)

    def __init__(self) -> None:
        self._lines = LineSplitter()

    def feed(self, chunk: bytes) -> list[str]:
        return [ln.decode("utf-8", "replace") for ln in self._lines.feed(chunk) if ln.strip()]

    def close(self) -> list[str]:
        rest = self._lines.flush()
        return [rest.decode("utf-8", "replace")] if rest.strip() else []
