"""`llmrelay serve`: get the database ready once, then run the app under uvicorn.

The parent process does everything that must happen exactly once, before any worker starts:
it binds the listening socket (a port in use is one clear error, and nothing else changes),
migrates the database, and on an empty users table creates the admin user and hands back its
key, to be printed once.  Then uvicorn serves `create_app()` — in this process, or with
`workers > 1` in that many spawned processes sharing the socket, each building its own app
(`llmrelay.api.app:app_factory`) and writing its Prometheus samples to one fresh
PROMETHEUS_MULTIPROC_DIR so that /metrics adds them up.

Shutdown (SIGTERM or SIGINT): uvicorn stops accepting, lets in-flight requests finish for up to
`settings.shutdown_grace` seconds, cancels what is left, then runs the app's lifespan shutdown,
which writes out every queued ledger row.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from ..config import Settings
from ..db.engine import display_url, make_engine, sessions
from ..db.migrate import current, ensure_schema
from ..db.users import bootstrap_admin
from ..routing.guards import describe_limits
from ..types import InvalidRequest

STARTUP_FAILURE = 3  # what a uvicorn worker exits with when the app could not start
FACTORY = "llmrelay.api.app:app_factory"


class ServeError(Exception):
    """The service could not start; the message is one line for the operator."""


@dataclass(frozen=True, slots=True)
class Prepared:
    revision: str | None
    admin_key: str | None
    """The bootstrap admin's key, when this start created it (shown once, never stored)."""


def prepare_database(settings: Settings) -> Prepared:
    """Migrate the database; on an empty users table create `admin` and return its key."""

    async def go() -> Prepared:
        engine = make_engine(settings.db_url)
        try:
            await ensure_schema(engine)
            try:
                async with sessions(engine)() as s, s.begin():
                    key = await bootstrap_admin(s)
            except InvalidRequest:  # another process created the admin a moment ago
                key = None
            return Prepared(await current(engine), key)
        finally:
            await engine.dispose()

    return asyncio.run(go())


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (port 0: any free port), or ServeError naming the address."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason = "the address is already in use (is another server running there?)"
        raise ServeError(f"cannot listen on {_hostport(host, port)}: {reason}") from None
    sock.set_inheritable(True)
    return sock


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def logging_config(level: str) -> dict[str, Any]:
    """stderr logging at LLMRELAY_LOG_LEVEL.  Access lines (`llmrelay.access`, INFO) are already
    JSON, so they are written as they are; uvicorn's own access log stays off."""
    lvl = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
            "json": {"format": "%(message)s"},
        },
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
            "access": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"},
        },
        "loggers": {
            "llmrelay": {"handlers": ["stderr"], "level": lvl, "propagate": False},
            "llmrelay.access": {"handlers": ["access"], "level": lvl, "propagate": False},
            "uvicorn": {"handlers": ["stderr"], "level": lvl, "propagate": False},
            "uvicorn.error": {"level": lvl},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
    }


@contextmanager
def _metrics_dir(workers: int) -> Iterator[None]:
    """With several workers: a fresh PROMETHEUS_MULTIPROC_DIR for this run, removed afterwards."""
    if workers <= 1:
        yield
        return
    before = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    path = tempfile.mkdtemp(prefix="llmrelay-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = before
        shutil.rmtree(path, ignore_errors=True)


@contextmanager
def _quiet_exit_signals() -> Iterator[None]:
    """A single-process uvicorn re-raises the signal that stopped it once it is done; with this
    handler in place that is a no-op, so a graceful SIGTERM/SIGINT shutdown exits with status 0."""
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def serve(settings: Settings, *, host: str = "127.0.0.1", port: int = 8000, workers: int = 1,
          say: Callable[[str], None] = print) -> None:
    """Run the service until SIGTERM/SIGINT.  Raises ServeError when it cannot start."""
    import uvicorn

    from ..agents import load_agents

    load_agents(settings.agents_file)  # a broken agents file stops us here, not in every worker
    sock = bind(host, port)
    try:
        try:
            prepared = prepare_database(settings)
        except (OSError, SQLAlchemyError) as exc:
            reason = (str(exc).strip().splitlines() or [""])[0][:300]
            raise ServeError(f"cannot prepare the database {display_url(settings.db_url)}: "
                             f"{type(exc).__name__}: {reason}") from None
        bound = sock.getsockname()[1]
        base = f"http://{_hostport(host, bound)}"
        if prepared.admin_key is not None:
            say(f"admin api key: {prepared.admin_key}")
            say("  (shown this once: only its hash is stored; more keys: llmrelay keys create --user NAME)")
        say(f"ledger: {display_url(settings.db_url)} at revision {prepared.revision}")
        say(describe_limits(settings.rate_rpm, settings.rate_tpm, shared=settings.redis_url is not None,
                            workers=workers))
        say(f"llmrelay listening on {base} with {workers} worker{'s' if workers > 1 else ''}; "
            f"API docs at {base}/docs (OpenAPI: {base}/openapi.json); Ctrl-C stops it")
        with _metrics_dir(workers):
            _run_uvicorn(uvicorn, settings, sock, workers)
    finally:
        sock.close()


def _run_uvicorn(uvicorn: Any, settings: Settings, sock: socket.socket, workers: int) -> None:
    """One worker: uvicorn in this process.  Several: uvicorn's supervisor, which spawns them, passes
    them the socket, forwards SIGTERM/SIGINT and waits for each to shut down gracefully."""
    # proxy_headers off: llmrelay does not trust X-Forwarded-For by default, and the middleware costs
    # a little on every request
    common = dict(loop="uvloop", http="httptools", lifespan="on", access_log=False, server_header=False,
                  proxy_headers=False,
                  log_config=logging_config(settings.log_level), log_level=settings.log_level,
                  timeout_graceful_shutdown=settings.shutdown_grace)
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        config = uvicorn.Config(FACTORY, factory=True, workers=workers, **common)
        supervisor = Multiprocess(config, sockets=[sock])
        supervisor.run()
        if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
            raise ServeError("a worker could not start the application (its error is in the log above)")
        return

    from .app import create_app

    server = uvicorn.Server(uvicorn.Config(create_app(settings, server=True), **common))
    try:
        with _quiet_exit_signals():
            server.run(sockets=[sock])
    except SystemExit as exc:  # uvicorn's way of saying the lifespan startup failed
        raise ServeError("the application could not start (its error is in the log above)") from exc
    if not server.started:
        raise ServeError("the application could not start (its error is in the log above)")


__all__ = ["Prepared", "ServeError", "bind", "logging_config", "prepare_database", "serve"]
