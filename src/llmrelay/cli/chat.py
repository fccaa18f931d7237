"""`llmrelay chat`: ask an agent from the terminal, streaming, or as one JSON object.

A codec around `Relay.run`, like every ingress: it runs as a named user (`--user`, default the
`admin` user `llmrelay serve` creates; without one, as the local user), so that user's saved
configs and rate limits hold here too.  Rate-limit counters are shared with the server and other
CLI runs only through Redis (`LLMRELAY_REDIS_URL`); without it they live in this one process.

`--image PATH` (repeatable) sends images along with the message, inline.  An answer that calls
tools prints each call (name and arguments) after its text; the CLI runs no tool.
"""

from __future__ import annotations

import asyncio
import base64
import json
import mimetypes
import sys
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from ..config import load_settings
from ..content import Image, Part, Text, ToolCall
from ..relay import Relay
from ..types import (
    AllLinksFailed,
    Attempt,
    AttemptEvent,
    BudgetExceeded,
    InvalidRequest,
    Outcome,
    Principal,
    RateLimited,
    TextDelta,
)
from .app import app, err_console, fail

DEFAULT_USER = "admin"
NO_ANSWER = 1
INTERRUPTED = 130  # as a shell reports a command that SIGINT stopped


def read_history(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise fail(f"--history {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"--history {path}: cannot read: {exc}") from None
    except ValueError as exc:
        raise fail(f"--history {path}: not valid JSON: {exc}") from None
    if not isinstance(data, list):
        raise fail(f"--history {path}: expected a JSON array of {{\"role\", \"content\"}} objects")
    return data


_MAGIC = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"GIF87a", "image/gif"),
          (b"GIF89a", "image/gif"))
MAX_IMAGE_BYTES = 20 * 1024 * 1024
"""The largest image any provider takes inline (OpenAI's limit; Anthropic's is 5 MB)."""


def read_image(path: Path) -> Image:
    """An image file as an inline image part: its media type from its first bytes, else its name."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise fail(f"--image {path}: no such file") from None
    except OSError as exc:
        raise fail(f"--image {path}: cannot read: {exc}") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise fail(f"--image {path}: {len(data)} bytes, over the {MAX_IMAGE_BYTES // (1024 * 1024)} MB limit")
    media = next((t for magic, t in _MAGIC if data.startswith(magic)), None)
    if media is None and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        media = "image/webp"
    media = media or mimetypes.guess_type(path.name)[0]
    if media is None or not media.startswith("image/"):
        raise fail(f"--image {path}: not an image (PNG, JPEG, GIF or WebP)")
    return Image(data=base64.b64encode(data).decode("ascii"), media_type=media)


@app.command()
def chat(
    message: str = typer.Argument(..., metavar="MESSAGE", help="What to ask. '-' reads it from standard input."),
    agent: str = typer.Option(..., "--agent", "-a", metavar="ID", help="Agent id (see `llmrelay agents`)."),
    provider: str | None = typer.Option(None, "--provider", "-p", metavar="PROVIDER", help="Try this provider first."),
    model: str | None = typer.Option(None, "--model", "-m", metavar="MODEL", help="Try this model first."),
    history: Path | None = typer.Option(None, "--history", metavar="FILE",
                                        help="JSON file: earlier turns [{role, content}]."),
    image: list[Path] | None = typer.Option(None, "--image", "-i", metavar="FILE",
                                            help="An image to send with the message "
                                            "(PNG, JPEG, GIF, WebP); repeat for more."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1, metavar="N", help="Cap on the answer's tokens."),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0, max=2.0, metavar="T", help="0 to 2."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object instead of streaming."),
    user: str | None = typer.Option(None, "--user", "-u", metavar="USER",
                                    help="Ask as this user (name or id): their saved "
                                    f"configs and rate limits apply.  Default: {DEFAULT_USER!r} if it exists."),
) -> None:
    """Ask an agent.  The answer streams to stdout; a summary line goes to stderr.

    Exit code 0 on an answer, 1 when every link of the chain failed or a rate limit refused the
    request, 2 on bad usage, 130 when Ctrl-C cancelled it (what it used is still recorded)."""
    if message == "-":
        message = sys.stdin.read()
    turns = read_history(history) if history is not None else []
    images = [read_image(p) for p in image or ()]
    asked: str | list[Part] = [*([Text(message)] if message.strip() else []), *images] if images else message
    settings = load_settings()
    kwargs = dict(preferred_provider=provider, preferred_model=model, max_tokens=max_tokens,
                  temperature=temperature)
    try:
        code = asyncio.run(_ask(settings, user, agent, asked, turns, kwargs, as_json))
    except KeyboardInterrupt:  # the request was cancelled, its attempts recorded and their tokens charged
        raise fail("interrupted: the request was cancelled", INTERRUPTED) from None
    raise typer.Exit(code)


async def _ask(settings: Any, user: str | None, agent: str, message: str | list[Part], turns: list, kwargs: dict,
               as_json: bool) -> int:
    async with Relay(settings) as relay:
        who = await _principal(relay, user)
        try:
            return await (_json if as_json else _stream)(relay, who, agent, message, turns, kwargs)
        except (RateLimited, BudgetExceeded) as exc:
            name = who.name if who is not None else "local"
            err_console.print(f"[red]llmrelay: refused:[/] {escape(str(exc))} (user {escape(name)})")
            return NO_ANSWER


async def _principal(relay: Relay, user: str | None) -> Any:
    """The named user; by default `admin` when it exists, else the local caller (None)."""
    assert relay.ledger is not None
    found = await relay.ledger.principal(user or DEFAULT_USER)
    if found is None and user is not None:
        raise InvalidRequest(f"--user: no user {user!r} (see `llmrelay users list`)", "user")
    return found


async def _json(relay: Relay, who: Principal | None, agent: str, message: str | list[Part], turns: list,
                kwargs: dict) -> int:
    try:
        outcome = await relay.chat(agent, message, turns, user=who, **kwargs)
    except AllLinksFailed as exc:
        print(json.dumps({"error": failure_summary(exc), "attemptedProviders": [a.to_dict() for a in exc.attempts]}))
        return NO_ANSWER
    d = outcome.to_dict()
    print(json.dumps({k: d[k] for k in ("response", "model", "provider", "usedProvider", "fallbackUsed",
                                        "budgetDowngraded", "attemptedProviders", "tokensUsed", "costUsd",
                                        "generationTime", "requestId", "toolCalls", "reasoning",
                                        "structuredOutput") if k in d}))
    return 0


async def _stream(relay: Relay, who: Principal | None, agent: str, message: str | list[Part], turns: list,
                  kwargs: dict) -> int:
    out = sys.stdout
    wrote = False
    said: dict[tuple[str, str], str | None] = {}  # each link's last error message, said once
    async for event in relay.stream(agent, message, turns, user=who, **kwargs):
        if isinstance(event, TextDelta):
            out.write(event.text)
            out.flush()
            wrote = True
        elif isinstance(event, AttemptEvent):
            if event.attempt.status != "success":
                _attempt_line(event.attempt, wrote, said)
        elif isinstance(event, Outcome):
            if wrote:
                out.write("\n")
            if event.error is None:
                _print_calls(event.response.tool_calls if event.response is not None else ())
                err_console.print(_summary(event), style="dim")
                return 0
            err_console.print(f"[red]llmrelay: no answer:[/] {escape(_failure_headline(event))}")
            return NO_ANSWER
    return NO_ANSWER


def _print_calls(calls: tuple[ToolCall, ...]) -> None:
    """The answer's tool calls, one a line: `tool call: <name> <arguments JSON>`."""
    for c in calls:
        print(f"tool call: {c.name} {c.arguments}")


def _attempt_line(a: Attempt, mid_answer: bool, said: dict[tuple[str, str], str | None]) -> None:
    """One line per attempt that did not answer; a retry that failed as the one before says so in brief."""
    link = (a.provider, a.model)
    again = link in said and said[link] == a.error_message
    said[link] = a.error_message
    what = "skipped" if a.status == "skipped" else f"failed ({_kind(a)})"
    prefix = "\n" if mid_answer else ""
    if again:
        err_console.print(f"{prefix}[yellow]↪ {escape(a.provider)}/{escape(a.model)} {what} again[/]", style="dim")
        return
    err_console.print(f"{prefix}[yellow]↪ {escape(a.provider)}/{escape(a.model)} {what}:[/] "
                      f"{escape(a.error_message or '')}", style="dim")


def _kind(a: Attempt) -> str:
    return "skipped" if a.status == "skipped" else (a.error_kind.value if a.error_kind else a.status)


def failure_summary(error: BaseException) -> str:
    """Why no link answered (`AllLinksFailed` names each link once, with its attempts)."""
    return str(error)


def _failure_headline(outcome: Outcome) -> str:
    if outcome.text:
        return f"the stream broke after {len(outcome.text)} characters: {outcome.error}"
    return failure_summary(outcome.error) if outcome.error is not None else "no answer"


def _summary(o: Outcome) -> str:
    u, resp = o.usage, o.response
    assert resp is not None
    fallback = "fallback used" if o.fallback_used else "no fallback"
    cost = f"${o.cost_usd.normalize():f}" if o.cost_usd is not None else "cost unknown (unpriced model)"
    return (f"— {resp.provider} · {resp.model} · {u.input_tokens} prompt + {u.output_tokens} completion = "
            f"{u.total_tokens} tokens · {cost} · {o.generation_time_ms} ms · {fallback}")
