"""`llmrelay serve` as a real process with the five fakes upstream, for clients of `/v1/embeddings` (the
openai SDK, LangChain's `OpenAIEmbeddings`).  One server for the package; each test names its own serving
link or agent, and scripts faults only for models no other test uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.servers import Served, serving

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


@pytest.fixture(scope="package")
def served(tmp_path_factory) -> Iterator[Served]:
    with serving(tmp_path_factory.mktemp("embeddings"), AGENTS) as it:
        yield it
