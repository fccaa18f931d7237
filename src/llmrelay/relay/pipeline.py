"""What a request on its way (`Run`, `embed`) needs of the service that runs it: the `Relay`
(`relay.service`) provides it.  A protocol, so that the pieces below the service never import it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol

from ..agents import Agent
from ..ledger.charges import Charge
from ..providers.base import Provider
from ..routing.budgets import Budgets
from ..routing.fallback import FallbackExecutor
from ..routing.guards import Guard, OpenStreams
from ..routing.targets import Targets
from ..types import (
    Attempt,
    AttemptEvent,
    ChatRequest,
    Message,
    Outcome,
    OutputEvent,
    Principal,
    RequestContext,
    RequestOptions,
    Target,
)

if TYPE_CHECKING:
    from ..ledger import Ledger


RelayEvent = AttemptEvent | OutputEvent | Outcome
"""What iterating a `Run` yields: attempts as they end, the answer as it comes, then one `Outcome`."""


class Pipeline(Protocol):
    agents: Mapping[str, Agent]
    providers: Mapping[str, Provider]
    targets: Targets
    guard: Guard
    executor: FallbackExecutor
    ledger: Ledger | None
    budgets: Budgets | None
    streams: OpenStreams

    @property
    def started(self) -> bool: ...

    async def start(self) -> None: ...

    def agent(self, agent_id: str) -> Agent: ...

    def request(self, target: Target, turns: Sequence[Message], options: RequestOptions) -> ChatRequest: ...

    def observer(self, ctx: RequestContext, attempts: list[Attempt],
                 charges: list[Charge]) -> Callable[[Attempt], None]: ...

    async def spend(self, who: Principal | None, attempts: list[Attempt]) -> None: ...

    async def spend_shielded(self, who: Principal | None, attempts: list[Attempt]) -> None: ...
