"""The fake Anthropic's prompt cache: `cache_control` read and checked as the real API does, and caching
simulated, so that a client (and llmrelay's ledger) sees cache writes and reads as it would on Anthropic.

Checked, a 400 `invalid_request_error` each (the messages marked "illustrative" are ours where the real
text is not known; the rest are the API's own):

- a `cache_control` other than null or `{"type": "ephemeral", "ttl"?: "5m" | "1h"}`, on a tool, a system
  block, a content block or a block inside a tool result's content (illustrative);
- one on a thinking or redacted_thinking block, which take none (illustrative);
- more than `MAX_BREAKPOINTS`: "A maximum of 4 blocks with cache_control may be provided. Found N.";
- a breakpoint of 1h after one of 5m, in the order tools, system, messages ("…: a ttl='1h' cache_control
  block must not come after a ttl='5m' cache_control block. …").

The top-level `cache_control` (automatic caching) marks the last block of the messages that can carry one
(unless it has its own) and counts against the four (illustrative).

The simulation: the request is walked in Anthropic's order (tools, system, then each message's blocks),
each block weighing what the fake counts for it in the input (`TOOL_TOKENS` a tool, `IMAGE_TOKENS` an
image, a token a word of text or tool-result content, nothing for a tool_use or thinking block), and a
running digest of the blocks (their `cache_control` left out) names every prefix, per model.  A request
reads the longest prefix that ends at one of its breakpoints, or at most `LOOKBACK` blocks before one,
and that an earlier request wrote and whose lifetime has not run out (reading renews it, as on
Anthropic); it writes the prefix up to each of its breakpoints beyond that.  So the first request with a
breakpoint reports the prefix up to its last breakpoint as `cache_creation_input_tokens` (split by
lifetime in `cache_creation`), and the same request again reports it as `cache_read_input_tokens`; both
are capped by the request's input tokens.  Unlike Anthropic there is no minimum length (1,024 tokens and
more there): every marked prefix is cached.  Counting (`count_tokens`) checks, never caches; a fault that
scripts cache figures wins over the simulation.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from .anthropic_checks import Refused
from .server import count_tokens
from .tools import IMAGE_TOKENS, TOOL_TOKENS

MAX_BREAKPOINTS = 4
LOOKBACK = 20
"""How many blocks before a breakpoint a cache hit is looked for (Anthropic's figure)."""
LIFETIMES = {"5m": 300.0, "1h": 3600.0}
_TTL_ORDER = ("{where}.cache_control.ttl: a ttl='1h' cache_control block must not come after a ttl='5m' "
              "cache_control block. Note that blocks are processed in the following order: `tools`, `system`, "
              "`messages`.")
_UNCACHEABLE = ("thinking", "redacted_thinking")


@dataclass(frozen=True, slots=True)
class CachePlan:
    """A request's prompt as the cache sees it."""

    keys: tuple[str, ...]
    """The digest of each prefix (the model, and every block up to and including the i-th)."""
    weights: tuple[int, ...]
    """The input tokens of each prefix."""
    marks: tuple[tuple[int, str], ...]
    """(the index of the block, its lifetime) of each breakpoint, in order."""


def read_plan(body: dict[str, Any]) -> CachePlan | None:
    """The request's breakpoints, checked (`Refused` with the API's 400), and its prefixes; None when it
    has no breakpoint."""
    blocks: list[tuple[str, Any, int]] = []  # (where, the block, its weight)
    marks: list[tuple[int, str, str]] = []  # (block index, lifetime, where)

    def add(where: str, block: Any, weight: int, *inner: tuple[str, Any]) -> None:
        for place, carrier in (*inner, (where, block)):
            ttl = _ttl(carrier.get("cache_control") if isinstance(carrier, dict) else None, place)
            if ttl is not None:
                marks.append((len(blocks), ttl, place))
        blocks.append((where, block, weight))

    for i, tool in enumerate(body.get("tools") or ()):
        add(f"tools.{i}", tool, TOOL_TOKENS)
    system = body.get("system")
    for j, block in enumerate(system if isinstance(system, list) else [system] if system else []):
        add(f"system.{j}", block, count_tokens(block if isinstance(block, str) else str(block.get("text", ""))))
    last = None  # (index, block) of the last block of the messages that can carry a breakpoint
    for i, m in enumerate(body["messages"]):
        content = m["content"]
        for j, block in enumerate(content if isinstance(content, list) else [content]):
            where = f"messages.{i}.content" + (f".{j}" if isinstance(content, list) else "")
            kind = block.get("type") if isinstance(block, dict) else "text"
            if kind in _UNCACHEABLE:
                if block.get("cache_control") is not None:
                    raise Refused(f"{where}.{kind}.cache_control: Extra inputs are not permitted")
                add(where, block, 0)
                continue
            inner = block.get("content") if kind == "tool_result" else None
            inner_blocks = [(f"{where}.content.{k}", b) for k, b in enumerate(inner if isinstance(inner, list) else ())]
            last = (len(blocks), block)
            add(where, block, _weight(block), *inner_blocks)
    auto = _ttl(body.get("cache_control"), "cache_control")
    if auto is not None and last is not None and not (isinstance(last[1], dict) and last[1].get("cache_control")):
        marks.append((last[0], auto, "cache_control"))
    if not marks:
        return None
    if len(marks) > MAX_BREAKPOINTS:
        raise Refused(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {len(marks)}.")
    for (_, before, _), (_, ttl, where) in itertools.pairwise(marks):
        if before == "5m" and ttl == "1h":
            raise Refused(_TTL_ORDER.format(where=where))
    return _plan(body["model"], blocks, sorted((index, ttl) for index, ttl, _ in marks))


def _ttl(value: Any, where: str) -> str | None:
    if value is None:
        return None
    where += ".cache_control"
    if not isinstance(value, dict):
        raise Refused(f"{where}: Input should be a valid dictionary or object to extract fields from")
    if value.get("type") != "ephemeral":
        raise Refused(f"{where}.type: Input should be 'ephemeral'")
    extra = next((k for k in value if k not in ("type", "ttl")), None)
    if extra is not None:
        raise Refused(f"{where}.{extra}: Extra inputs are not permitted")
    ttl = value.get("ttl", "5m")
    if ttl not in LIFETIMES:
        raise Refused(f"{where}.ttl: Input should be '5m' or '1h'")
    return ttl


def _weight(block: Any) -> int:
    if isinstance(block, str):
        return count_tokens(block)
    kind = block.get("type")
    if kind == "text":
        return count_tokens(str(block.get("text", "")))
    if kind == "image":
        return IMAGE_TOKENS
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, list):
            return sum(IMAGE_TOKENS if isinstance(b, dict) and b.get("type") == "image" else _weight(b)
                       for b in content)
        return count_tokens(content) if isinstance(content, str) else 0
    return 0


def _plan(model: str, blocks: list[tuple[str, Any, int]], marks: list[tuple[int, str]]) -> CachePlan:
    digest = hashlib.sha256(model.encode())
    keys, weights, total = [], [], 0
    for _, block, weight in blocks:
        digest.update(json.dumps(_unmarked(block), sort_keys=True).encode())
        keys.append(digest.copy().hexdigest())
        total += weight
        weights.append(total)
    return CachePlan(tuple(keys), tuple(weights), tuple(marks))


def _unmarked(block: Any) -> Any:
    """The block as the cache keys it: without any `cache_control` (marking a block changes no prefix)."""
    if not isinstance(block, dict):
        return block
    out = {k: v for k, v in block.items() if k != "cache_control"}
    if isinstance(out.get("content"), list):
        out["content"] = [_unmarked(b) for b in out["content"]]
    return out


class PromptCache:
    """The prefixes one fake has cached: digest -> (lifetime, monotonic time it runs out)."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def use(self, plan: CachePlan, input_tokens: int) -> tuple[int, int, int]:
        """(tokens read, tokens written, of which for an hour), within `input_tokens`; the cache updated."""
        now = time.monotonic()
        with self._lock:
            hit = max((self._hit(plan, index, now) for index, _ in plan.marks), default=-1)
            if hit >= 0:
                ttl = self._entries[plan.keys[hit]][0]
                self._entries[plan.keys[hit]] = (ttl, now + LIFETIMES[ttl])
            read = plan.weights[hit] if hit >= 0 else 0
            written = {"5m": 0, "1h": 0}
            done, start = hit, read
            for index, ttl in plan.marks:
                if index <= done:  # cached already, or a second mark on one block
                    continue
                written[ttl] += plan.weights[index] - start
                done, start = index, plan.weights[index]
                self._entries[plan.keys[index]] = (ttl, now + LIFETIMES[ttl])
        read = min(read, input_tokens)
        total = min(written["5m"] + written["1h"], input_tokens - read)
        return read, total, min(written["1h"], total)

    def _hit(self, plan: CachePlan, index: int, now: float) -> int:
        """The last block, at or up to `LOOKBACK` blocks before `index`, whose prefix is cached (-1: none)."""
        for i in range(index, max(-1, index - LOOKBACK - 1), -1):
            entry = self._entries.get(plan.keys[i])
            if entry is not None and entry[1] > now:
                return i
        return -1


__all__ = ["LIFETIMES", "LOOKBACK", "MAX_BREAKPOINTS", "CachePlan", "PromptCache", "read_plan"]
