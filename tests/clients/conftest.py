"""Third-party clients (the openai SDK, LangChain, pydantic-ai, openai-agents) against `llmrelay serve` as a
real process, with the five fake providers upstream.  One server for the whole package of tests: each test
names its serving link in `model` (`<provider>/<model>`, or `agent:<id>` for a chain), so they do not
interfere; faults a test scripts are for models no other test uses."""

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
id = "claude-then-gemini"
name = "Claude, then Gemini"
system_prompt = "You help with the weather."
supported_providers = [
  { provider = "anthropic", model = "claude-3-5-haiku-20241022", priority = 1 },
  { provider = "google", model = "gemini-2.5-flash", priority = 2 },
]
"""


@dataclass
class Relay:
    server: Server
    key: str
    fakes: FakeServers
    home: Path

    @property
    def v1(self) -> str:
        return self.server.url + "/v1"


@pytest.fixture(scope="package")
def relay(tmp_path_factory) -> Iterator[Relay]:
    work = tmp_path_factory.mktemp("clients")
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
            yield Relay(server, key, fakes, work / "home")
        finally:
            server.stop()
