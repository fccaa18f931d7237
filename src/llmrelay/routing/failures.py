"""Why a chain gave no answer, as one message every door shows (the API's 502, `llmrelay chat`'s last line)."""

from __future__ import annotations

from collections.abc import Collection

from ..errors import ErrorKind
from ..types import AllLinksFailed, Attempt, ProviderError


def all_failed(attempts: list[Attempt], fatal: ProviderError | None,
               unfit: list[tuple[str, str]], absent: Collection[str] = ()) -> AllLinksFailed:
    if fatal is not None:
        return AllLinksFailed(f"the request was rejected: {fatal}", attempts, fatal)
    if unfit and all(a.status == "skipped" for a in attempts):
        reasons = "; ".join(reason for _, reason in unfit)
        return AllLinksFailed(f"no link of the chain can take this request: {reasons}", attempts,
                              unsupported=unfit[0][0])
    refused = _refused(attempts, {reason for _, reason in unfit} | set(absent))
    if refused is not None:
        return AllLinksFailed("no link of the chain took this request: " + _why_each_link(attempts, counted=False),
                              attempts, refused=refused)
    return AllLinksFailed(_why_each_link(attempts), attempts)


def _refused(attempts: list[Attempt], cannot: set[str]) -> ErrorKind | None:
    """What every called link said was wrong with the request itself, when each of them did and every other
    link was skipped as unable to take it or unusable here (`cannot`: those skip reasons); None when a
    provider's trouble of the moment (an open circuit, the deadline, an error of its own) had a part."""
    called = [a for a in attempts if a.status != "skipped"]
    if not called or any(a.error_kind is None or a.error_kind.provider_fault for a in called) or any(
            a.status == "skipped" and a.error_message not in cannot for a in attempts):
        return None
    kinds = {a.error_kind for a in called}
    return kinds.pop() if len(kinds) == 1 else ErrorKind.BAD_REQUEST  # type: ignore[return-value]


def _why_each_link(attempts: list[Attempt], counted: bool = True) -> str:
    """Why no link answered, each link named once: its last error, and how many attempts it took (a link's
    retries that failed alike are not repeated).  Links that failed the same way (the same local Ollama down
    under two models) share one entry."""
    links: dict[tuple[str, str], list[Attempt]] = {}
    for a in attempts:
        links.setdefault((a.provider, a.model), []).append(a)
    ways: dict[tuple[str, str], list[str]] = {}  # (kind, message) -> the links that ended so
    for (provider, model), tries in links.items():
        last, calls = tries[-1], sum(t.status != "skipped" for t in tries)
        kind = "skipped" if last.status == "skipped" else (last.error_kind.value if last.error_kind else last.status)
        name = f"{provider}/{model}" + (f" ({calls} attempts)" if calls > 1 else "")
        ways.setdefault((kind, last.error_message or ""), []).append(name)
    parts = [f"{', '.join(names)}: {kind}" + (f": {message}" if message else "")
             for (kind, message), names in ways.items()]
    said = "; ".join(parts)
    return f"all {len(links)} link{'s' if len(links) != 1 else ''} failed: {said}" if counted else said
