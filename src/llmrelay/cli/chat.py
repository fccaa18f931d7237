"""`llmrelay chat`: ask an agent from the terminal, streaming, or as one JSON object."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape

from ..config import load_settings
from ..relay import ChatResult, Relay, StreamDone, StreamFailed
from ..routing.fallback import AttemptEvent
from ..types import AllLinksFailed, Attempt, TextDelta
from .app import app, err_console, fail


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


@app.command()
def chat(
    message: str = typer.Argument(..., help="What to ask. '-' reads it from standard input."),
    agent: str = typer.Option(..., "--agent", "-a", help="Agent id (see `llmrelay agents`)."),
    provider: str | None = typer.Option(None, "--provider", "-p", help="Try this provider first."),
    model: str | None = typer.Option(None, "--model", "-m", help="Try this model first."),
    history: Path | None = typer.Option(None, "--history", help="JSON file: earlier turns [{role, content}]."),
    max_tokens: int | None = typer.Option(None, "--max-tokens", min=1, help="Cap on the answer's tokens."),
    temperature: float | None = typer.Option(None, "--temperature", min=0.0, max=2.0, help="0 to 2."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object instead of streaming."),
) -> None:
    """Ask an agent.  The answer streams to stdout; a summary line goes to stderr.

    Exit code 0 on an answer, 1 when every link of the chain failed, 2 on bad usage."""
    if message == "-":
        message = sys.stdin.read()
    turns = read_history(history) if history is not None else []
    settings = load_settings()
    kwargs = dict(preferred_provider=provider, preferred_model=model, max_tokens=max_tokens,
                  temperature=temperature)
    code = asyncio.run(_json(settings, agent, message, turns, kwargs) if as_json
                       else _stream(settings, agent, message, turns, kwargs))
    raise typer.Exit(code)


async def _json(settings: Any, agent: str, message: str, turns: list, kwargs: dict) -> int:
    async with Relay(settings) as relay:
        try:
            result = await relay.chat(agent, message, turns, **kwargs)
        except AllLinksFailed as exc:
            print(json.dumps({"error": str(exc), "attemptedProviders": [a.to_dict() for a in exc.attempts]}))
            return 1
    d = result.to_dict()
    print(json.dumps({k: d[k] for k in ("response", "model", "provider", "usedProvider", "fallbackUsed",
                                        "attemptedProviders", "tokensUsed", "costUsd", "generationTime",
                                        "requestId")}))
    return 0


async def _stream(settings: Any, agent: str, message: str, turns: list, kwargs: dict) -> int:
    out = sys.stdout
    wrote = False
    async with Relay(settings) as relay:
        async for event in relay.stream(agent, message, turns, **kwargs):
            if isinstance(event, TextDelta):
                out.write(event.text)
                out.flush()
                wrote = True
            elif isinstance(event, AttemptEvent):
                if event.attempt.status != "success":
                    _attempt_line(event.attempt, wrote)
            elif isinstance(event, StreamDone):
                if wrote:
                    out.write("\n")
                err_console.print(_summary(event.result), style="dim")
                return 0
            elif isinstance(event, StreamFailed):
                if wrote:
                    out.write("\n")
                err_console.print(f"[red]llmrelay: no answer:[/] {escape(_failure_headline(event))}")
                return 1
    return 1


def _attempt_line(a: Attempt, mid_answer: bool) -> None:
    what = "skipped" if a.status == "skipped" else f"failed ({a.error_kind.value if a.error_kind else '?'})"
    prefix = "\n" if mid_answer else ""
    err_console.print(f"{prefix}[yellow]↪ {escape(a.provider)}/{escape(a.model)} {what}:[/] "
                      f"{escape(a.error_message or '')}", style="dim")


def _failure_headline(event: StreamFailed) -> str:
    if event.result.response:
        return f"the stream broke after {len(event.result.response)} characters: {event.error}"
    return str(event.error)


def _summary(r: ChatResult) -> str:
    u = r.usage
    fallback = "fallback used" if r.fallback_used else "no fallback"
    cost = f"${r.cost_usd.normalize():f}" if r.cost_usd is not None else "cost unknown (unpriced model)"
    return (f"— {r.used_provider} · {r.model} · {u.input_tokens} prompt + {u.output_tokens} completion = "
            f"{u.total_tokens} tokens · {cost} · {r.generation_time_ms} ms · {fallback}")
