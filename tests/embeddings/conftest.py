"""`llmrelay serve` as a real process with the five fakes upstream, for clients of `/v1/embeddings` (the
openai SDK, LangChain's `OpenAIEmbeddings`).  One server for the package; each test names its own serving
link or agent, and scripts faults only for models no other test uses."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from llmrelay.testing import FakeServers
from tests.servers import Server

AGENTS = """
[[agents]]
id = "small-vectors"
name = "1536-dimensional vectors, OpenAI then OpenRouter"
kind = "embedding"
supported_providers = [
  { provider = "openai", model = "text-embedding-3-large", priority = 1 },
  { provider = "openrouter", model = "openai/text-embedding-3-small", priority = 2 },
]
dimensions = 1536
"""


@dataclass
class Served:
    server: Server
    key: str
    fakes: FakeServers
    home: Path

    @property
    def v1(self) -> str:
        return self.server.url + "/v1"


@pytest.fixture(scope="package")
def served(tmp_path_factory) -> Iterator[Served]:
    work = tmp_path_factory.mktemp("embeddings")
    (work / "agents.toml").write_text(AGENTS)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("LLMRELAY_", "PROMETHEUS_")) and not k.endswith(("_API_KEY", "_BASE_URL"))}
    with FakeServers() as fakes:
        env = {**base, **fakes.env(), "LLMRELAY_HOME": str(work / "home"), "LLMRELAY_MAX_RETRIES": "0",
               "LLMRELAY_AGENTS_FILE": str(work / "agents.toml"), "LLMRELAY_RATE_RPM": "0",
               "LLMRELAY_RATE_TPM": "0"}
        server = Server(env, work)
        try:
            key = server.stdout.split("admin api key: ")[1].split()[0]
            yield Served(server, key, fakes, work / "home")
        finally:
            server.stop()
