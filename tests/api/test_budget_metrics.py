"""/metrics carries each budget's current period: spent (from the ledger), reserved, soft threshold, limit."""

from __future__ import annotations

import re
from decimal import Decimal

from llmrelay.db.budgets import BudgetSpec


async def test_metrics_export_each_budgets_spent_and_limit(app, client, keys):
    relay = app.state.relay
    alice = await relay.principal("alice")
    spec = await relay.budgets.store.put(BudgetSpec("", alice.user_id, None, Decimal("2.50"), soft_percent=40))
    relay.budgets.changed(spec, spec.scope)
    r = await client.post("/v1/chat/completions", headers=keys.auth("alice"),
                          json={"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "Hello"}]})
    assert r.status_code == 200, r.text
    await relay.ledger.recorder.flush()
    text = (await client.get("/metrics")).text
    labels = f'budget="user:{alice.user_id}",period="month"'

    def value(name: str) -> float:
        found = re.search(rf"^llmrelay_budget_{name}_usd\{{{re.escape(labels)}\}} (\S+)$", text, re.M)
        assert found, text[-1500:]
        return float(found.group(1))

    assert value("limit") == 2.5 and value("soft") == 1.0
    assert value("spent") == float(r.headers["x-llmrelay-cost-usd"]) > 0
    assert value("reserved") > 0  # the lease this process took holds the rest of its share
