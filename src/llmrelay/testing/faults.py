"""Scriptable faults for the fake providers.

A fake provider keeps a queue of `Fault`s.  Each incoming chat request takes the first fault
that matches its model (a fault with `model=None` matches any), uses it once (or `times`
times), and misbehaves accordingly; with no fault queued it answers normally.

Fault types:

==================  ==========================================================================
``http_error``      answer `status` with the provider's own error body; `code` picks the
                    provider-specific error type/code/status (e.g. ``insufficient_quota``,
                    ``context_length_exceeded``, ``API_KEY_INVALID``), `message` its text;
                    `retry_after` / `retry_after_ms` / `retry_delay` / `should_retry` add the
                    provider's retry hints
``overloaded``      the provider's own "overloaded" reply (Anthropic 529, others 503)
``hang``            read the request, then answer nothing for `seconds`
``slow_first_byte`` wait `seconds` before the status line, then answer normally
``cut``             streaming: send `after_chunks` text deltas, then drop the connection without
                    the terminal frame; non-streaming: send half of the body, then drop it
``stream_error``    streaming: send `after_chunks` text deltas, then the provider's in-band error
                    frame (`code` selects which error), then end the stream
``malformed``       answer 200 with a body (or a stream frame) that is not the promised JSON
``disconnect``      close the connection as soon as the request is read
``reply``           answer normally, with this `text`, `usage` and native `finish` reason
                    (and `seconds` between stream chunks); `tool_calls` (a list of
                    ``{"name", "arguments", "id"?}``) makes the answer call exactly those tools
==================  ==========================================================================

Connection refused is not a queued fault: `FakeServers.refuse(name, seconds)` (or
``POST /_fake/refuse``) closes the provider's listening socket for that long.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

FAULT_TYPES = frozenset({"http_error", "overloaded", "hang", "slow_first_byte", "cut", "stream_error",
                         "malformed", "disconnect", "reply"})
USAGE_KEYS = frozenset({"input", "output", "cached_input", "reasoning", "cache_write"})


@dataclass(slots=True)
class Fault:
    type: str
    status: int | None = None
    code: str | None = None
    message: str | None = None
    retry_after: str | None = None
    retry_after_ms: str | None = None
    retry_delay: str | None = None
    should_retry: str | None = None
    seconds: float = 0.0
    after_chunks: int = 1
    text: str | None = None
    usage: dict[str, int] | None = None
    finish: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    model: str | None = None
    times: int = 1

    def __post_init__(self) -> None:
        if self.type not in FAULT_TYPES:
            raise ValueError(f"unknown fault type {self.type!r} (known: {', '.join(sorted(FAULT_TYPES))})")
        if self.type == "http_error" and not (self.status and 400 <= self.status <= 599):
            raise ValueError("http_error needs a status between 400 and 599")
        if self.usage and not set(self.usage) <= USAGE_KEYS:
            raise ValueError(f"usage keys are {', '.join(sorted(USAGE_KEYS))}")
        if self.times < 1 or self.after_chunks < 0 or self.seconds < 0:
            raise ValueError("times must be >= 1, after_chunks and seconds >= 0")
        for c in self.tool_calls or ():
            if not isinstance(c, dict) or not isinstance(c.get("name"), str) or not isinstance(
                    c.get("arguments", {}), dict):
                raise ValueError('tool_calls are {"name": str, "arguments": object, "id"?: str}')

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Fault:
        names = {f.name for f in fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def http_error(status: int, code: str | None = None, message: str | None = None, **kw: Any) -> Fault:
    return Fault("http_error", status=status, code=code, message=message, **kw)


def overloaded(**kw: Any) -> Fault:
    return Fault("overloaded", **kw)


def hang(seconds: float = 3600.0, **kw: Any) -> Fault:
    return Fault("hang", seconds=seconds, **kw)


def slow_first_byte(seconds: float, **kw: Any) -> Fault:
    return Fault("slow_first_byte", seconds=seconds, **kw)


def cut(after_chunks: int = 1, **kw: Any) -> Fault:
    return Fault("cut", after_chunks=after_chunks, **kw)


def stream_error(after_chunks: int = 1, code: str | None = None, message: str | None = None,
                 **kw: Any) -> Fault:
    return Fault("stream_error", after_chunks=after_chunks, code=code, message=message, **kw)


def malformed(**kw: Any) -> Fault:
    return Fault("malformed", **kw)


def disconnect(**kw: Any) -> Fault:
    return Fault("disconnect", **kw)


def reply(text: str | None = None, usage: dict[str, int] | None = None, finish: str | None = None,
          tool_calls: list[dict[str, Any]] | None = None, **kw: Any) -> Fault:
    return Fault("reply", text=text, usage=usage, finish=finish, tool_calls=tool_calls, **kw)
