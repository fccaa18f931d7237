"""Third-party clients (the openai SDK, LangChain, pydantic-ai, openai-agents) against `llmrelay serve` as a
real process, with the five fake providers upstream.  One server for the whole package of tests: each test
names its serving link in `model` (`<provider>/<model>`, or `agent:<id>` for a chain), so they do not
interfere; faults a test scripts are for models no other test uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import Served, serving

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


@pytest.fixture(scope="package")
def relay(tmp_path_factory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("clients"), AGENTS) as it:
        yield it
