"""Every provider x every fault x plain/streaming through `/v1/chat/completions`, with a two-link chain
(the provider under test, then another): whether the request falls back, what the client gets (status,
whose text, how the body ends), and the ledger's rows, one per attempt.

`expected` says what each cell must come to, by the policy of `ErrorKind` (errors.py) and the routing
rules of the README: a provider's failure falls back; a request the provider rejects as invalid ends at
once (the second link is recorded as skipped); context length falls through; a stream falls back
transparently until its first text went out, and after that ends with an error frame, the text sent kept.
Every cell records what it saw (for `render_table.py`, which writes the README's table) and checks it
against `expected`; test_readme_table.py checks the README against `expected` too.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import asdict

import pytest
from sqlalchemy import select

from llmrelay.db.models import AIModelUsage

from .matrix import (
    CELLS,
    CUT_AFTER,
    FAULTS,
    SECOND,
    Seen,
    ask,
    cell_id,
    read_plain,
    read_stream,
    route,
    row_label,
    text_label,
)

FALLS_BACK = {  # fault -> the error kind the first link fails with, then the second link serves
    "rate-limited": "rate_limited", "overloaded": "overloaded", "server-error": "server_error",
    "refused": "connection", "hang": "timeout", "malformed": "server_error",
    "cut-before-text": "connection", "auth": "auth", "context-length": "context_length_exceeded",
    "empty": "server_error",  # a 200 with nothing in it, while another link could still answer
}
BREAKS_AFTER_TEXT = {"cut-after-text": "connection", "error-event-after-text": "server_error"}
"""Stream faults that strike after text went out: the stream ends with an error frame."""
KIND_OVERRIDES: dict[tuple[str, str, str], str] = {
    # Anthropic's in-band stream error is most often `overloaded_error`, the fake's default
    ("anthropic", "error-event-before-text", "stream"): "overloaded",
    ("anthropic", "error-event-after-text", "stream"): "overloaded",
}
"""(provider, fault, mode) -> the error kind, where a provider's failure maps to another kind."""
XFAIL: dict[tuple[str, str, str], str] = {}
"""(provider, fault, mode) -> the llmrelay bug that cell shows (left for the owner to fix)."""


def expected(provider: str, fault: str, mode: str) -> Seen:
    stream = mode == "stream"
    done = "[DONE]" if stream else "completion"
    kind = KIND_OVERRIDES.get((provider, fault, mode))
    if fault == "bad-request":
        return Seen("ends", 400, "no text", "error `provider_rejected`", ("failed(bad_request)", "skipped"))
    if stream and fault in BREAKS_AFTER_TEXT:
        kind = kind or BREAKS_AFTER_TEXT[fault]
        return Seen("ends mid-stream", 200, f"link 1's first {CUT_AFTER} words",
                    f"error frame `{kind}`", (f"failed({kind})",))
    if fault == "cut-after-text":  # a plain request's cut drops the body halfway, wherever the text is
        fault = "cut-before-text"
    if fault == "error-event-before-text" and stream:
        return Seen("falls back", 200, "link 2's text", done, (f"failed({kind or 'server_error'})", "fallback"))
    if fault in FALLS_BACK:
        return Seen("falls back", 200, "link 2's text", done, (f"failed({kind or FALLS_BACK[fault]})", "fallback"))
    # slow first byte, and the stream-only error events on a plain request: an answer
    return Seen("answers", 200, "link 1's text", done, ("success",))


async def observe(app, client, key: str, provider: str, stream: bool) -> Seen:
    r = await client.post("/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                          json=ask(provider, stream))
    text, ending = (read_stream if stream else read_plain)(r.status_code, r.content)
    await app.state.relay.ledger.recorder.flush()
    async with app.state.relay.ledger.sessions() as s:
        stmt = (select(AIModelUsage).where(AIModelUsage.request_id == r.headers["x-request-id"])
                .order_by(AIModelUsage.attempt))
        rows = list((await s.execute(stmt)).scalars().all())
    links = [provider, SECOND[provider]]
    assert [x.provider for x in rows] == links[: len(rows)], "a row per link, in the chain's order"
    if r.status_code == 200:
        served = SECOND[provider] if r.headers["x-llmrelay-fallback"] == "true" else provider
        assert r.headers["x-llmrelay-provider"] == served
    return Seen(route(r.status_code, ending, r.headers.get("x-llmrelay-fallback")), r.status_code,
                text_label(text, provider), ending, tuple(row_label(x.status, x.error_kind) for x in rows))


async def wait_listening(port: int, within: float = 5.0) -> None:
    """After a `refuse`, wait until the fake listens again, so the next cell finds it up."""
    until = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            assert time.monotonic() < until, f"port {port} still refused after {within} s"
            await asyncio.sleep(0.05)


def _param(provider: str, fault: str, mode: str):
    why = XFAIL.get((provider, fault, mode))
    marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
    return pytest.param(provider, fault, mode, id=cell_id(provider, fault, mode), marks=marks)


@pytest.mark.parametrize(("provider", "fault", "mode"), [_param(*c) for c in CELLS])
async def test_fault_cell(app, client, key, fakes, matrix_record, provider, fault, mode):
    FAULTS[fault][1](fakes, provider)
    try:
        seen = await observe(app, client, key, provider, mode == "stream")
    finally:
        if fault == "refused":
            fakes.listen(provider)
            await wait_listening(fakes.ports[provider])
    matrix_record[cell_id(provider, fault, mode)] = asdict(seen)
    assert seen == expected(provider, fault, mode)
