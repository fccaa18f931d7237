"""Run fake providers as real HTTP servers on 127.0.0.1, in a background thread.

    with FakeServers() as fakes:                 # all five, each on its own free port
        os.environ.update(fakes.env())           # *_BASE_URL and *_API_KEY pointing at them
        fakes["anthropic"].script(faults.overloaded())
        ...
        fakes.refuse("openai", seconds=2)        # connection refused for 2 s

The servers live in their own thread and event loop, so synchronous clients (the official
SDKs) and any number of asyncio loops can use them alike.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from ..providers.registry import provider_class
from .server import FakeProvider

FAKE_CLASSES: dict[str, str] = {
    "anthropic": "llmrelay.testing.anthropic:FakeAnthropic",
    "openai": "llmrelay.testing.openai:FakeOpenAI",
    "google": "llmrelay.testing.google:FakeGoogle",
    "openrouter": "llmrelay.testing.openrouter:FakeOpenRouter",
    "ollama": "llmrelay.testing.ollama:FakeOllama",
}


def fake_class(name: str) -> type[FakeProvider]:
    import importlib

    module, _, attr = FAKE_CLASSES[name].partition(":")
    return getattr(importlib.import_module(module), attr)


class FakeServers:
    """Several fake providers, each on its own port (consecutive from `base_port` if given)."""

    def __init__(self, providers: Iterable[str] = tuple(FAKE_CLASSES), *, host: str = "127.0.0.1",
                 base_port: int = 0, extra: Mapping[str, FakeProvider] | None = None, **fake_kwargs: Any) -> None:
        """`extra`: fakes of providers outside the built-in five (a plugin's), by provider name."""
        self.host = host
        self.fakes: dict[str, FakeProvider] = {n: fake_class(n)(**fake_kwargs) for n in providers}
        self.fakes.update(extra or {})
        self._base_port = base_port
        self.ports: dict[str, int] = {}
        self._runners: dict[str, web.AppRunner] = {}
        self._sites: dict[str, web.TCPSite] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Future] = set()
        self._reopening: dict[str, asyncio.Future] = {}
        """Refused fakes, by name: the task that listens again when the refusal is over."""

    def __getitem__(self, name: str) -> FakeProvider:
        return self.fakes[name]

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FakeServers:
        ready = threading.Event()
        error: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_all())
            except BaseException as exc:  # reported to the caller of start()
                error.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_all())
            loop.close()

        self._thread = threading.Thread(target=run, name="llmrelay-fakes", daemon=True)
        self._thread.start()
        ready.wait(30)
        if error:
            raise error[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._loop = self._thread = None

    def __enter__(self) -> FakeServers:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _start_all(self) -> None:
        for i, (name, fake) in enumerate(self.fakes.items()):
            runner = web.AppRunner(fake.app(), access_log=None, handle_signals=False)
            await runner.setup()
            port = self._base_port + i if self._base_port else 0
            site = web.TCPSite(runner, self.host, port, reuse_address=True)
            await site.start()
            self.ports[name] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            self._runners[name], self._sites[name] = runner, site
            fake.on_refuse = lambda seconds, n=name: self._spawn(self._refuse(n, seconds))

    async def _stop_all(self) -> None:
        for runner in self._runners.values():
            await runner.cleanup()

    # -- where they are -------------------------------------------------------------------------

    def url(self, name: str) -> str:
        """The base URL as the matching `*_BASE_URL` setting expects it."""
        return f"http://{self.host}:{self.ports[name]}{self.fakes[name].base_path}"

    def env(self) -> dict[str, str]:
        """Environment variables that point llmrelay at these fakes, keys included."""
        env: dict[str, str] = {}
        for name, fake in self.fakes.items():
            cls = provider_class(name)
            env[cls.base_url_var()] = self.url(name)
            if cls.key_required:
                env[cls.key_var()] = fake.api_key or fake.default_key or f"fake-{name}-key"
        return env

    # -- faults that are not per request --------------------------------------------------------

    def refuse(self, name: str, seconds: float) -> None:
        """Stop listening on `name`'s port for `seconds`: connections are refused meanwhile."""
        assert self._loop is not None, "not started"
        asyncio.run_coroutine_threadsafe(self._refuse(name, seconds), self._loop).result(10)

    async def _refuse(self, name: str, seconds: float) -> None:
        site, runner = self._sites[name], self._runners[name]
        await site.stop()
        server = runner.server
        if server is not None:  # pooled keep-alive connections go too, as when a process dies
            for handler in list(server.connections):
                handler.force_close()
                if handler.transport is not None:
                    handler.transport.abort()

        async def reopen() -> None:
            await asyncio.sleep(seconds)
            await self._listen(name)

        task = self._reopening[name] = asyncio.ensure_future(reopen())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def listen(self, name: str) -> None:
        """End a `refuse` of `name` now (rather than when its seconds are up)."""
        assert self._loop is not None, "not started"
        asyncio.run_coroutine_threadsafe(self._listen(name), self._loop).result(10)

    async def _listen(self, name: str) -> None:
        pending = self._reopening.pop(name, None)
        if pending is not None and pending is not asyncio.current_task():
            pending.cancel()
        if pending is None and name in self._sites:  # listening already
            return
        new = web.TCPSite(self._runners[name], self.host, self.ports[name], reuse_address=True)
        await new.start()
        self._sites[name] = new

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def reset(self) -> None:
        for fake in self.fakes.values():
            fake.reset()
