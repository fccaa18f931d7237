"""`GET /v1/models` as Anthropic answers it, for the anthropic SDK (it sends `anthropic-version`).

The path is shared with OpenAI's list, which the openai SDK reads; the route answers in the shape the
caller's SDK reads: Anthropic's `{"data": [ModelInfo…], "has_more", "first_id", "last_id"}`, paged by
`limit` (1–1000, default 20), `after_id` and `before_id` as Anthropic pages it, each model with
`type: "model"`, `id`, `display_name` (an agent's name; a model's id) and `created_at`, and, where the
catalog knows them, `max_input_tokens` (its context window) and `max_tokens` (its longest answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ..catalog import facts
from .errors import Problem

DEFAULT_LIMIT, MAX_LIMIT = 20, 1000


def wants_anthropic(headers: Mapping[str, str]) -> bool:
    """The anthropic SDK (and Anthropic's own clients) send `anthropic-version` with every request."""
    return "anthropic-version" in headers


def model_info(model_id: str, created: int, display_name: str | None = None) -> dict[str, Any]:
    """One model as Anthropic's ModelInfo; `model_id` is llmrelay's (`agent:<id>` or `<provider>/<model>`)."""
    info: dict[str, Any] = {"type": "model", "id": model_id, "display_name": display_name or model_id,
                            "created_at": datetime.fromtimestamp(created, UTC).isoformat().replace("+00:00", "Z")}
    provider, _, model = model_id.partition("/")
    known = facts(provider, model) if model else None
    if known is not None:
        if known.context_window:
            info["max_input_tokens"] = known.context_window
        if known.max_output_tokens:
            info["max_tokens"] = known.max_output_tokens
    return info


def page(items: list[dict[str, Any]], query: Mapping[str, str]) -> dict[str, Any]:
    """The page `limit`, `after_id` and `before_id` ask for (Anthropic's cursor paging)."""
    raw = query.get("limit")
    try:
        limit = DEFAULT_LIMIT if raw is None else int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise Problem(400, f"limit: must be a whole number from 1 to {MAX_LIMIT}", field="limit",
                      code="invalid_value")
    after, before = query.get("after_id"), query.get("before_id")
    if after is not None and before is not None:
        raise Problem(400, "after_id and before_id cannot be given together", field="before_id",
                      code="invalid_value")
    ids = [item["id"] for item in items]
    for name, cursor in (("after_id", after), ("before_id", before)):
        if cursor is not None and cursor not in ids:
            raise Problem(400, f"{name}: no model {cursor!r} in the list", field=name, code="invalid_value")
    if before is not None:  # the `limit` models just before it
        end = ids.index(before)
        start = max(end - limit, 0)
        more = start > 0
    else:  # the `limit` models from the first, or just after `after_id`
        start = 0 if after is None else ids.index(after) + 1
        end = min(start + limit, len(items))
        more = end < len(items)
    data = items[start:end]
    return {"data": data, "has_more": more, "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None}
