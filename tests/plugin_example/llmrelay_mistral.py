"""A third-party provider adapter, shipped the way a package outside llmrelay would ship it.

Mistral's chat API speaks OpenAI's wire format, so the adapter is a declaration: its name, where
it lives and what its model ids look like.  Its key and base URL are then read from
MISTRAL_API_KEY and MISTRAL_BASE_URL, and `llmrelay serve` finds it through the entry point
in `llmrelay_mistral-0.1.dist-info/entry_points.txt` (group `llmrelay.providers`).
"""

from __future__ import annotations

import re
from typing import ClassVar

from llmrelay.providers.openai import OpenAIProvider


class MistralProvider(OpenAIProvider):
    name: ClassVar[str] = "mistral"
    default_base_url: ClassVar[str] = "https://api.mistral.ai/v1"
    model_pattern: ClassVar[re.Pattern[str] | None] = re.compile(
        r"^(mistral|ministral|codestral|pixtral|open-mistral|magistral)-[a-z0-9.\-]{1,60}$")
    probe_model: ClassVar[str] = "mistral-small-latest"
    max_tokens_field: ClassVar[str] = "max_tokens"
