"""`llmrelay fake-providers`: run the protocol-faithful fakes, to test your chains against."""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import typer

from ..testing.runner import FAKE_CLASSES, FakeServers
from .app import app, console, fail


@app.command("fake-providers")
def fake_providers(
    port: int = typer.Option(9100, "--port", min=0, max=65530, metavar="PORT",
                             help="First port: the providers take consecutive ports from here (0: any free)."),
    host: str = typer.Option("127.0.0.1", "--host", metavar="HOST", help="Interface to listen on."),
    provider: list[str] = typer.Option(None, "--provider", metavar="PROVIDER",
                                       help="Only these providers (repeatable)."),
    env_file: Path | None = typer.Option(None, "--env-file", metavar="FILE",
                                         help="Also write the variables to this file."),
) -> None:
    """Run fake Anthropic, OpenAI, Gemini, OpenRouter and Ollama servers until Ctrl-C.

    Prints the variables that point llmrelay at them.  Script failures with
    POST http://HOST:PORT/_fake/faults (see the README)."""
    names = provider or list(FAKE_CLASSES)
    unknown = [n for n in names if n not in FAKE_CLASSES]
    if unknown:
        raise fail(f"--provider: unknown provider {unknown[0]!r} (known: {', '.join(FAKE_CLASSES)})")
    try:
        servers = FakeServers(names, host=host, base_port=port).start()
    except OSError as exc:
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}", 1) from None
    lines = [f"export {k}={v}" for k, v in servers.env().items()]
    console.print("[bold]fake providers listening[/] (Ctrl-C to stop):")
    for name in names:
        console.print(f"  {name:<11} {servers.url(name)}   faults: http://{host}:{servers.ports[name]}/_fake/faults")
    console.print("\n# point llmrelay at them:")
    for line in lines:
        print(line, flush=True)
    if env_file is not None:
        env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        servers.stop()
