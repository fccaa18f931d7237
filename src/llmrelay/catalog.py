"""What llmrelay knows about models: context window, output limit, what each can take (tools, images,
JSON Schema output), which models make embeddings and of what dimension, which provider serves a bare
model name, and whether a model id is plausible for a provider (by the pattern its adapter declares).

Prices are not here: they live in the ledger's price table (with history).  A model that is
neither here nor in the price table is still usable when its id fits the provider's pattern
(providers add models faster than any table can follow); its limits are then unknown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from .providers.registry import provider_class

CostTier = Literal["free", "low", "medium", "high"]


@dataclass(frozen=True, slots=True)
class ModelFacts:
    provider: str
    model: str
    context_window: int | None
    max_output_tokens: int | None
    tools: bool | None = None
    """Takes tool definitions and calls tools (None: not known)."""
    vision: bool | None = None
    """Takes images."""
    json_schema: bool | None = None
    """Answers in JSON that fits a schema (natively, or as the adapter arranges it)."""
    dimensions: int | None = None
    """An embedding model: the length of its vectors (None: not an embedding model)."""
    shortens: bool = False
    """An embedding model that gives shorter vectors on request (`dimensions`: OpenAI's text-embedding-3,
    Gemini's `outputDimensionality`)."""

    @property
    def embeds(self) -> bool:
        return self.dimensions is not None

    def gives(self, dimensions: int) -> bool:
        """Whether this embedding model can give vectors of `dimensions`."""
        return self.dimensions == dimensions or (self.shortens and self.dimensions is not None
                                                 and 0 < dimensions < self.dimensions)

    def capabilities(self) -> dict[str, bool | None]:
        return {"tools": self.tools, "vision": self.vision, "json": self.json_schema}


_ALL = "tools vision json"


def _facts(provider: str, rows: list[tuple[str, int, int | None, str]]) -> dict[tuple[str, str], ModelFacts]:
    """Rows of (model, context window, max output, its capabilities among `tools vision json`)."""
    return {(provider, m): ModelFacts(provider, m, ctx, out, "tools" in caps, "vision" in caps, "json" in caps)
            for m, ctx, out, caps in rows}


def _embedding(provider: str, rows: list[tuple[str, int, int, bool]]) -> dict[tuple[str, str], ModelFacts]:
    """Rows of (model, context window, dimensions, whether it gives shorter vectors on request)."""
    return {(provider, m): ModelFacts(provider, m, ctx, None, False, False, False, dims, shortens)
            for m, ctx, dims, shortens in rows}


KNOWN_MODELS: dict[tuple[str, str], ModelFacts] = {
    **_facts("anthropic", [  # JSON Schema: native on the 4.5 models, by a forced tool before (providers/anthropic.py)
        ("claude-3-5-sonnet-20241022", 200_000, 8192, _ALL), ("claude-3-5-sonnet-latest", 200_000, 8192, _ALL),
        ("claude-3-5-haiku-20241022", 200_000, 8192, "tools json"), ("claude-3-5-haiku-latest", 200_000, 8192,
                                                                     "tools json"),
        ("claude-3-haiku-20240307", 200_000, 4096, _ALL), ("claude-3-7-sonnet-20250219", 200_000, 64_000, _ALL),
        ("claude-sonnet-4-20250514", 200_000, 64_000, _ALL), ("claude-sonnet-4-5", 200_000, 64_000, _ALL),
        ("claude-haiku-4-5", 200_000, 64_000, _ALL),
    ]),
    **_facts("openai", [
        ("gpt-4o", 128_000, 16_384, _ALL), ("gpt-4o-mini", 128_000, 16_384, _ALL), ("gpt-4", 8_192, 8_192, "tools"),
        ("gpt-4-turbo", 128_000, 4_096, "tools vision"), ("gpt-4.1", 1_047_576, 32_768, _ALL),
        ("gpt-4.1-mini", 1_047_576, 32_768, _ALL), ("o3-mini", 200_000, 100_000, "tools json"),
    ]),
    **_facts("google", [
        ("gemini-2.0-flash", 1_048_576, 8_192, _ALL), ("gemini-2.5-flash", 1_048_576, 65_536, _ALL),
        ("gemini-2.5-flash-lite", 1_048_576, 65_536, _ALL), ("gemini-2.5-pro", 1_048_576, 65_536, _ALL),
    ]),
    **_facts("openrouter", [
        ("meta-llama/llama-3.1-70b-instruct", 131_072, None, "tools json"), ("openai/gpt-4o", 128_000, 16_384, _ALL),
        ("openai/gpt-4o-mini", 128_000, 16_384, _ALL), ("anthropic/claude-3.5-sonnet", 200_000, 8_192, _ALL),
    ]),
    **_facts("ollama", [  # JSON Schema through `format`, which every model takes
        ("mistral", 32_768, None, "tools json"), ("llama3.2", 131_072, None, "tools json"),
        ("llama3.1", 131_072, None, "tools json"), ("qwen2.5", 32_768, None, "tools json"),
        ("llava", 4_096, None, "vision json"), ("llama3.2-vision", 131_072, None, "vision json"),
    ]),
    # embedding models: context window (tokens per input), dimensions, shorter vectors on request
    **_embedding("openai", [
        ("text-embedding-3-small", 8_191, 1536, True), ("text-embedding-3-large", 8_191, 3072, True),
        ("text-embedding-ada-002", 8_191, 1536, False)]),
    **_embedding("google", [("gemini-embedding-001", 2_048, 3072, True), ("text-embedding-004", 2_048, 768, True)]),
    **_embedding("openrouter", [("openai/text-embedding-3-small", 8_191, 1536, True)]),
    **_embedding("ollama", [  # at their full length only: whether each can shorten its vectors is not known here
        ("nomic-embed-text", 8_192, 768, False), ("mxbai-embed-large", 512, 1024, False),
        ("all-minilm", 512, 384, False)]),
}

ANY_MODEL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@\-]{0,200}$")
"""The model ids accepted for a provider whose adapter declares no pattern of its own."""

DEFAULT_MAX_OUTPUT = 1_000_000
"""The largest max_tokens accepted for a model whose limit is unknown."""


def facts(provider: str, model: str) -> ModelFacts | None:
    found = KNOWN_MODELS.get((provider, model))
    if found is None and provider == "ollama" and ":" in model:
        found = KNOWN_MODELS.get((provider, model.split(":", 1)[0]))
    return found


def embedding_facts(provider: str, model: str) -> ModelFacts | None:
    """The facts of an embedding model llmrelay knows; None for any other model."""
    f = facts(provider, model)
    return f if f is not None and f.dimensions is not None else None


def plausible(provider: str, model: str) -> bool:
    """Known, or shaped like this provider's model ids."""
    if facts(provider, model) is not None:
        return True
    try:
        pattern = provider_class(provider).model_pattern or ANY_MODEL_ID
    except KeyError:
        return False
    return bool(pattern.match(model))


def max_output(provider: str, model: str) -> int:
    f = facts(provider, model)
    if f is None:
        return DEFAULT_MAX_OUTPUT
    return f.max_output_tokens or f.context_window or DEFAULT_MAX_OUTPUT


def provider_for(model: str, priced: set[tuple[str, str]] = frozenset()) -> str | None:  # type: ignore[assignment]
    """The provider that serves a bare model name, from the known models and the price table."""
    for provider, name in [*KNOWN_MODELS, *sorted(priced)]:
        if name == model:
            return provider
    return None


def cost_tier(input_per_1m: Decimal | None, output_per_1m: Decimal | None) -> CostTier | None:
    """Free / low / medium / high from a model's price (USD per 1M tokens, input and output)."""
    if input_per_1m is None or output_per_1m is None:
        return None
    blended = (input_per_1m * 3 + output_per_1m) / 4  # a typical 3:1 prompt-to-answer mix
    if blended == 0:
        return "free"
    if blended < Decimal("1"):
        return "low"
    if blended < Decimal("8"):
        return "medium"
    return "high"
