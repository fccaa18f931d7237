"""Prometheus metrics: HTTP requests, attempts by provider and outcome, latency, tokens, cost, budgets.

With several workers each process writes its own samples to PROMETHEUS_MULTIPROC_DIR (set by
`llmrelay serve` before the workers start) and /metrics merges them.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from ..types import Attempt, RequestContext

HTTP_REQUESTS = Counter("llmrelay_http_requests_total", "HTTP requests answered", ["method", "route", "status"])
HTTP_LATENCY = Histogram("llmrelay_http_request_duration_seconds", "Time to the end of the response", ["route"],
                         buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120))
ATTEMPTS = Counter("llmrelay_attempts_total", "Calls to providers (and skipped links) by outcome",
                   ["provider", "outcome"])
ATTEMPT_LATENCY = Histogram("llmrelay_attempt_duration_seconds", "Provider call latency", ["provider"],
                            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120))
TOKENS = Counter("llmrelay_tokens_total", "Tokens used", ["provider", "kind"])
COST = Counter("llmrelay_cost_usd_total", "Cost of priced calls in USD (the ledger has the exact figures)",
               ["provider"])
UNPRICED = Counter("llmrelay_unpriced_attempts_total", "Calls with tokens but no known price (cost unknown)",
                   ["provider"])


_children: dict[tuple, Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """`metric.labels(*labels)`, remembered: the lookup takes a lock and hashes every time."""
    key = (id(metric), *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def observe_http(method: str, route: str, status: int, seconds: float) -> None:
    _child(HTTP_REQUESTS, method, route, str(status)).inc()
    _child(HTTP_LATENCY, route).observe(seconds)


def observe_attempt(ctx: RequestContext, attempt: Attempt) -> None:
    """A Relay observer: every attempt becomes samples."""
    provider = attempt.provider
    _child(ATTEMPTS, provider, attempt.status).inc()
    if attempt.status != "skipped":
        _child(ATTEMPT_LATENCY, provider).observe(attempt.latency_ms / 1000)
    u = attempt.usage
    if u is not None:
        if u.input_tokens:
            _child(TOKENS, provider, "prompt").inc(u.input_tokens)
        if u.output_tokens:
            _child(TOKENS, provider, "completion").inc(u.output_tokens)


def observe_cost(provider: str, cost: Decimal | None) -> None:
    """A Recorder cost observer: called as each ledger row is built (so the counter follows the
    ledger a flush interval behind)."""
    if cost is None:
        _child(UNPRICED, provider).inc()
    elif cost:
        _child(COST, provider).inc(float(cost))


class _Budgets:
    """Each budget's current period as gauges, read when /metrics is scraped (from the ledger: the same
    figures in every worker)."""

    def __init__(self, statuses: list[Any]) -> None:
        self.statuses = statuses

    def collect(self) -> Any:
        families = {name: GaugeMetricFamily(f"llmrelay_budget_{name}_usd", doc, labels=["budget", "period"])
                    for name, doc in (("spent", "What the budget's current period has spent (the ledger)"),
                                      ("reserved", "Reserved for requests in flight or set aside by a process"),
                                      ("soft", "The budget's soft threshold"), ("limit", "The budget's hard limit"))}
        for s in self.statuses:
            labels = [s.spec.scope, s.spec.period]
            for name, value in (("spent", s.spent), ("reserved", s.reserved), ("soft", s.spec.soft_usd),
                                ("limit", s.spec.limit_usd)):
                families[name].add_metric(labels, float(value))
        yield from families.values()


def render_budgets(statuses: list[Any]) -> bytes:
    """The budget gauges (`routing.budgets.BudgetStatus`es) in the text format, to follow `render()`'s."""
    if not statuses:
        return b""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Budgets(statuses))  # type: ignore[arg-type]
    return generate_latest(registry)


def render_degraded(limits: bool, breaker: bool = False) -> bytes:
    """Whether this process's rate limits count, and its circuits are kept, on their own because Redis does not
    answer."""
    return (b"# HELP llmrelay_rate_limits_degraded 1 while Redis does not answer and this process counts rate limits "
            b"on its own\n# TYPE llmrelay_rate_limits_degraded gauge\nllmrelay_rate_limits_degraded "
            + (b"1.0" if limits else b"0.0") + b"\n"
            b"# HELP llmrelay_breaker_degraded 1 while Redis does not answer and this process keeps its circuits "
            b"on its own\n# TYPE llmrelay_breaker_degraded gauge\nllmrelay_breaker_degraded "
            + (b"1.0" if breaker else b"0.0") + b"\n")


def render() -> tuple[bytes, str]:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
