"""What budgets keep in memory: a process's lease of a budget, one request's ticket, a budget's standing."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..db.budgets import ZERO, BudgetSpec
from ..types import money


@dataclass(slots=True, eq=False)
class Lease:
    id: str | None
    spec: BudgetSpec
    start: datetime
    end: datetime
    granted: Decimal
    short: bool
    """The period had less left than was asked: what this lease lacks, no other lease would give."""
    seen: Decimal
    """What the period had spent and others held when the lease was taken."""
    taken: float
    committed: Decimal = ZERO
    inflight: int = 0
    used_at: float = 0.0
    retired: bool = False
    dirty: bool = False

    @property
    def left(self) -> Decimal:
        return self.granted - self.committed


@dataclass(slots=True)
class Ticket:
    """What `admit` decided for one request: the links to skip (index -> reason), whether that downgraded
    it, the leases holding its reservation (ids for the ledger rows) and what each holds."""

    skip: dict[int, str]
    downgraded: bool
    leases: tuple[str, ...]
    holds: list[tuple[Lease, Decimal]] = field(default_factory=list)
    settled: bool = False


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """A budget's current period: spent (ledger), reserved (leases), where that stands."""

    spec: BudgetSpec
    start: datetime
    end: datetime
    spent: Decimal
    reserved: Decimal

    @property
    def level(self) -> str:
        """Where what the ledger has stands: `ok`, `soft` (past the soft threshold), `hard` (at the limit).
        Money reserved for requests in flight, or set aside by a process for the next ones, is not spent."""
        if self.spent >= self.spec.limit_usd:
            return "hard"
        return "soft" if self.spent >= self.spec.soft_usd else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {**self.spec.to_dict(), "periodStart": self.start.isoformat(), "resetsAt": self.end.isoformat(),
                "spentUsd": money(self.spent), "reservedUsd": money(self.reserved), "level": self.level}


__all__ = ["BudgetStatus", "Lease", "Ticket"]
