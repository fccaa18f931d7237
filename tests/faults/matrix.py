"""The fault matrix's cells: which provider, which fault, plain or streaming, and how to read what the
client and the ledger saw into one short line (`Seen.cell`), the line the README table shows.

A request goes to `/v1/chat/completions` with a two-link chain: the provider under test, then
`SECOND[provider]` (a different provider, which always answers).  The primary's fake is scripted with
one fault; everything else answers normally.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import orjson

from llmrelay.testing import FakeServers, faults

PROVIDERS = ("anthropic", "openai", "google", "openrouter", "ollama")
MODES = ("plain", "stream")
MODEL = {
    "anthropic": "claude-3-5-haiku-20241022",
    "openai": "gpt-4o",
    "google": "gemini-2.0-flash",
    "openrouter": "meta-llama/llama-3.1-70b-instruct",
    "ollama": "mistral",
}
SECOND = {"anthropic": "openai", "openai": "google", "google": "anthropic", "openrouter": "openai",
          "ollama": "anthropic"}
"""The fallback link of each provider's chain: always another provider."""
SAID = "Hi there"
REFUSE_SECONDS = 30.0
"""Longer than any cell takes on a loaded machine: the cell ends the refusal itself (`FakeServers.listen`)."""
CUT_AFTER = 2
"""Text deltas a fault lets out before it strikes, in the "after text" faults."""

Arm = Callable[[FakeServers, str], None]


def _script(fault: Callable[[], faults.Fault]) -> Arm:
    return lambda fakes, name: fakes[name].script(fault())


def _refuse(fakes: FakeServers, name: str) -> None:
    fakes.refuse(name, REFUSE_SECONDS)


FAULTS: dict[str, tuple[str, Arm]] = {
    # id: (the row's label in the table, how to arm it on the primary's fake)
    "rate-limited": ("429 with Retry-After", _script(lambda: faults.http_error(429, retry_after="1"))),
    "overloaded": ("overloaded (Anthropic 529, others 503)", _script(faults.overloaded)),
    "server-error": ("500", _script(lambda: faults.http_error(500))),
    "refused": ("connection refused", _refuse),
    "hang": ("hang past the first-token timeout", _script(lambda: faults.hang(2.0))),
    "slow-first-byte": ("slow first byte (under the timeout)", _script(lambda: faults.slow_first_byte(0.2))),
    "malformed": ("malformed JSON (body or stream frame)", _script(lambda: faults.malformed(after_chunks=0))),
    "empty": ("200 with empty content", _script(lambda: faults.reply(text=""))),
    "cut-before-text": ("connection cut before any text", _script(lambda: faults.cut(after_chunks=0))),
    "cut-after-text": ("connection cut after some text", _script(lambda: faults.cut(after_chunks=CUT_AFTER))),
    "error-event-before-text": ("error event before any text",
                                _script(lambda: faults.stream_error(after_chunks=0))),
    "error-event-after-text": ("error event after some text",
                               _script(lambda: faults.stream_error(after_chunks=CUT_AFTER))),
    "auth": ("401", _script(lambda: faults.http_error(401))),
    "context-length": ("400 context length",
                       _script(lambda: faults.http_error(400, code="context_length_exceeded"))),
    "bad-request": ("400 bad request", _script(lambda: faults.http_error(400))),
}


def cell_id(provider: str, fault: str, mode: str) -> str:
    return f"{provider}-{fault}-{mode}"


CELLS = [(p, f, m) for f in FAULTS for p in PROVIDERS for m in MODES]


def full_text(provider: str) -> str:
    """What the fake answers `SAID` with when nothing is scripted."""
    return f"Hello from fake {provider} ({MODEL[provider]}). You said: {SAID}"


def first_words(provider: str, n: int) -> str:
    return " ".join(full_text(provider).split(" ")[:n])


def ask(provider: str, stream: bool) -> dict:
    return {"model": f"{provider}/{MODEL[provider]}", "messages": [{"role": "user", "content": SAID}],
            "models": [f"{SECOND[provider]}/{MODEL[SECOND[provider]]}"], "stream": stream}


@dataclass(frozen=True)
class Seen:
    """What one request came to.  `route`: answers (the first link served), falls back (the second did),
    ends (an error, no answer), ends mid-stream (an error frame after text).  `text` names whose text the
    client got (`text_label`); `ending` is how the body ended; `rows` the ledger's rows, in order."""

    route: str
    status: int
    text: str
    ending: str
    rows: tuple[str, ...]

    def cell(self) -> str:
        """The table's line: route · status · text + ending · rows (a plain answer's ending goes
        without saying, an error body has no text)."""
        if self.text == "no text":
            body = self.ending
        elif self.ending == "completion":
            body = self.text
        else:
            body = f"{self.text} + {self.ending}"
        return f"{self.route} · {self.status} · {body} · {', '.join(self.rows)}"


def text_label(text: str | None, provider: str) -> str:
    """Whose text `text` is, exactly: anything lost, duplicated or mixed shows as `mixed: …`."""
    if text is None:
        return "no text"
    if text == "":
        return "empty text"
    if text == full_text(provider):
        return "link 1's text"
    if text == full_text(SECOND[provider]):
        return "link 2's text"
    if text == first_words(provider, CUT_AFTER):
        return f"link 1's first {CUT_AFTER} words"
    return f"mixed: {text!r}"


def row_label(status: str, error_kind: str | None) -> str:
    return f"{status}({error_kind})" if error_kind else status


def read_plain(status: int, body: bytes) -> tuple[str | None, str]:
    """(the answer's text, how the body ended) of a non-streaming reply."""
    data = orjson.loads(body)
    if status == 200:
        assert data["object"] == "chat.completion", data
        return data["choices"][0]["message"]["content"], "completion"
    err = data["error"]
    assert set(err) == {"message", "type", "param", "code"}, data
    return None, f"error `{err['code']}`"


def read_stream(status: int, body: bytes) -> tuple[str | None, str]:
    """(the text the deltas carried, how the stream ended) of a streaming reply: `[DONE]`, an error frame
    (after which nothing may come), or an ordinary error body when it failed before starting."""
    if status != 200:
        return read_plain(status, body)
    text, ending = "", "no [DONE]"
    blocks = body.decode().strip().split("\n\n")
    for i, block in enumerate(blocks):
        assert block.startswith("data: "), block
        data = block.removeprefix("data: ")
        if data == "[DONE]":
            assert i == len(blocks) - 1, "frames after [DONE]"
            ending = "[DONE]"
            continue
        frame = orjson.loads(data)
        if "error" in frame:
            assert i == len(blocks) - 1, "frames after the error frame"
            assert set(frame["error"]) == {"message", "type", "param", "code"}, frame
            ending = f"error frame `{frame['error']['code']}`"
            continue
        for choice in frame["choices"]:
            text += choice["delta"].get("content") or ""
    return text, ending


def route(status: int, ending: str, fallback_header: str | None) -> str:
    if status != 200:
        return "ends"
    if ending.startswith("error frame"):
        return "ends mid-stream"
    return "falls back" if fallback_header == "true" else "answers"
