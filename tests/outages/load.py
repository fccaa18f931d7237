"""Steady traffic against a running `llmrelay serve`: `clients` concurrent clients, each asking again as soon as
it has its answer (after `pause`), in their own thread and event loop, until `stop()`.

Two kinds of request take turns, so both ways an answer ends are covered:
  /v1/chat/completions, whole: attempts = 2 when `x-llmrelay-fallback` is true (the chain has two links and no
      retries: the first failed or was skipped, the second served), else 1;
  /v1/chat/completions, streamed: the same headers; answered only once `data: [DONE]` has arrived.
Every answer carries its ledger request id in `x-request-id` (the tests check each request's rows against its
attempts, which checks this count too).  Not /api/ai/agents: it stores the conversation in the database, so it
cannot answer while the database is away."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import httpx

AGENT = "outage-agent"
AGENTS_TOML = f"""
[[agents]]
id = "{AGENT}"
name = "Outage"
supported_providers = [
  {{ provider = "anthropic", model = "claude-3-5-haiku-20241022", priority = 1 }},
  {{ provider = "google", model = "gemini-2.5-flash", priority = 2 }},
]
"""


@dataclass(slots=True)
class Answer:
    kind: str
    status: int  # 0: no HTTP answer (the connection broke)
    request_id: str | None
    attempts: int
    answered: bool  # a 200 whose body (or whole stream, through [DONE]) arrived
    began: float  # time.monotonic()
    ended: float


class Load:
    def __init__(self, url: str, key: str, clients: int = 20, pause: float = 0.02) -> None:
        self.url, self.key, self.clients, self.pause = url, key, clients, pause
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="load", daemon=True)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> list[Answer]:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(60)
        return self.answers

    def since(self, t: float) -> list[Answer]:
        return [a for a in list(self.answers) if a.began >= t]

    async def _main(self) -> None:
        limits = httpx.Limits(max_connections=self.clients, max_keepalive_connections=self.clients)
        async with httpx.AsyncClient(base_url=self.url, limits=limits, timeout=60,
                                     headers={"authorization": f"Bearer {self.key}"}) as client:
            await asyncio.gather(*(self._client(client, i) for i in range(self.clients)))

    async def _client(self, client: httpx.AsyncClient, me: int) -> None:
        n = me
        while not self._stop.is_set():
            kind = ("whole", "stream")[n % 2]
            n += 1
            began = time.monotonic()
            try:
                status, rid, attempts, answered = await getattr(self, "_" + kind)(client, f"client {me} asks {n}")
            except httpx.TransportError:
                status, rid, attempts, answered = 0, None, 0, False
            self.answers.append(Answer(kind, status, rid, attempts, answered, began, time.monotonic()))
            await asyncio.sleep(self.pause)

    @staticmethod
    def _v1_attempts(r: httpx.Response) -> int:
        return 2 if r.headers.get("x-llmrelay-fallback") == "true" else 1

    async def _whole(self, client: httpx.AsyncClient, text: str) -> tuple[int, str | None, int, bool]:
        r = await client.post("/v1/chat/completions", json={
            "model": f"agent:{AGENT}", "messages": [{"role": "user", "content": text}], "max_tokens": 20})
        return r.status_code, r.headers.get("x-request-id"), self._v1_attempts(r), r.status_code == 200

    async def _stream(self, client: httpx.AsyncClient, text: str) -> tuple[int, str | None, int, bool]:
        async with client.stream("POST", "/v1/chat/completions", json={
                "model": f"agent:{AGENT}", "messages": [{"role": "user", "content": text}], "max_tokens": 20,
                "stream": True}) as r:
            done = False
            async for line in r.aiter_lines():
                done = done or line == "data: [DONE]"
            return r.status_code, r.headers.get("x-request-id"), self._v1_attempts(r), r.status_code == 200 and done
