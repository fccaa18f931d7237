"""More stop sequences than a provider takes is an honest failure that falls through, never a silent cut."""

from __future__ import annotations

import pytest

from llmrelay.providers.google import GoogleProvider
from llmrelay.providers.openai import OpenAIProvider
from llmrelay.types import ChatRequest, ErrorKind, Message, ProviderError

STOPS = ("a", "b", "c", "d", "e", "f")


@pytest.mark.parametrize(("provider", "takes"), [(OpenAIProvider("http://127.0.0.1:9/v1"), 4),
                                                  (GoogleProvider("http://127.0.0.1:9"), 5)])
async def test_more_stop_sequences_than_the_provider_takes_fails_before_sending(provider, takes):
    fits = ChatRequest("gpt-4o" if takes == 4 else "gemini-2.0-flash", (Message("user", "hi"),), stop=STOPS[:takes])
    over = ChatRequest(fits.model, fits.messages, stop=STOPS[: takes + 1])
    with pytest.raises(ProviderError) as err:
        await provider.complete(over)  # fails before any connection (port 9 would refuse it)
    assert (err.value.kind, err.value.retryable, err.value.falls_through) == (ErrorKind.BAD_REQUEST, False, True)
    assert f"at most {takes} stop sequences" in err.value.message
    with pytest.raises(ProviderError) as err:
        await provider.complete(fits)  # within the limit: it gets as far as the network
    assert err.value.kind == ErrorKind.CONNECTION
    await provider.aclose()
