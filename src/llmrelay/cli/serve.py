"""`llmrelay serve`: the HTTP service."""

from __future__ import annotations

import typer

from ..config import load_settings
from .app import app, fail


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", "--host", metavar="HOST",
                             help="Address to listen on (0.0.0.0: every interface)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, metavar="PORT",
                             help="Port to listen on (0: any free port)."),
    workers: int = typer.Option(1, "--workers", min=1, max=512, metavar="N", help="Worker processes sharing the port."),
) -> None:
    """Run the HTTP service: migrate the database, create the admin key on first start, serve.

    Stops on SIGTERM or Ctrl-C: in-flight requests get LLMRELAY_SHUTDOWN_GRACE seconds to finish,
    and every ledger row is written before the process exits."""
    from ..api.server import ServeError
    from ..api.server import serve as run

    settings = load_settings()
    try:
        run(settings, host=host, port=port, workers=workers, say=lambda line: print(line, flush=True))
    except ServeError as exc:
        raise fail(str(exc), 1) from None
