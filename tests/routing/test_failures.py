"""Why a chain gave no answer: a 502 that blames the providers, or the request's own refusal (a 400) when
every link that was called refused the request itself and the others could not be used for it."""

from __future__ import annotations

import pytest

from llmrelay.errors import ErrorKind
from llmrelay.routing.failures import all_failed
from llmrelay.types import Attempt

NO_KEY = "no API key (set ANTHROPIC_API_KEY)"
NO_SEED = "anthropic cannot take 'seed'"


def failed(provider: str, kind: ErrorKind, position: int = 1) -> Attempt:
    return Attempt(position, provider, "m", "failed", error_kind=kind, error_message=f"{provider} said {kind}")


def skipped(provider: str, why: str, position: int = 1) -> Attempt:
    return Attempt(position, provider, "m", "skipped", error_message=why)


TOO_LONG, FILTERED, BAD, DOWN = (ErrorKind.CONTEXT_LENGTH_EXCEEDED, ErrorKind.CONTENT_FILTERED,
                                  ErrorKind.BAD_REQUEST, ErrorKind.SERVER_ERROR)


@pytest.mark.parametrize(("attempts", "refused"), [
    ([failed("openai", TOO_LONG), failed("google", TOO_LONG, 2)], TOO_LONG),
    ([failed("openai", FILTERED)], FILTERED),
    ([failed("openai", TOO_LONG), failed("google", BAD, 2)], BAD),  # refused for different reasons
    ([skipped("anthropic", NO_KEY), failed("openai", TOO_LONG, 2)], TOO_LONG),  # a link without a key: unusable
    ([skipped("anthropic", NO_SEED), failed("openai", TOO_LONG, 2)], TOO_LONG),  # a link that cannot take it
    ([failed("openai", TOO_LONG), failed("google", DOWN, 2)], None),  # a provider's own trouble had a part
    ([skipped("anthropic", "circuit open after 3 consecutive failures; next probe in 9.0 s"),
      failed("openai", TOO_LONG, 2)], None),  # the open circuit is a trouble of the moment
    ([skipped("anthropic", NO_KEY)], None),  # nothing was called
])
def test_a_chain_is_refused_only_when_each_called_link_refused_the_request_itself(attempts, refused):
    unfit = [("seed", NO_SEED)] if any(a.error_message == NO_SEED for a in attempts) else []
    error = all_failed(attempts, None, unfit, {NO_KEY})
    assert error.refused is refused
    if refused is None:
        assert str(error).startswith("all ")
    else:
        assert str(error).startswith("no link of the chain took this request: ")
        assert all(f"{a.provider}/m" in str(error) for a in attempts if a.status == "failed")
