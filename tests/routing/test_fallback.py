"""The seed plan's checklist and the executor's rules, end to end: Relay -> real adapters ->
real HTTP -> the fake providers."""

import asyncio
import time

import pytest

from llmrelay.agents import Agent, load_agents
from llmrelay.testing import faults
from llmrelay.types import AllLinksFailed, AttemptEvent, ErrorKind, Outcome, TextDelta


def statuses(result):
    return [(a.provider, a.status, a.error_kind.value if a.error_kind else None) for a in result.attempts]


async def test_falls_back_when_the_primary_is_overloaded(fakes, make_relay):
    fakes["anthropic"].script(faults.overloaded())
    relay = make_relay()
    result = await relay.chat("general-agent", "Hello there")
    assert result.provider == "openai" and result.model == "gpt-4o"
    assert result.fallback_used is True
    assert result.text.startswith("Hello from fake openai")
    assert statuses(result) == [("anthropic", "failed", "overloaded"), ("openai", "success", None)]
    d = result.to_dict()
    assert d["usedProvider"] == "openai" and d["fallbackUsed"] is True
    assert d["attemptedProviders"][0]["errorKind"] == "overloaded"
    assert d["tokensUsed"]["total"] == d["tokensUsed"]["prompt"] + d["tokensUsed"]["completion"] > 0


async def test_primary_answers_without_fallback(fakes, make_relay):
    result = await make_relay().chat("general-agent", "Hi")
    assert result.provider == "anthropic" and result.fallback_used is False
    assert statuses(result) == [("anthropic", "success", None)]


async def test_missing_keys_degrade_gracefully(fakes, make_relay):
    relay = make_relay(without=("anthropic", "openai"))
    result = await relay.chat("general-agent", "Hi")
    assert result.provider == "google"
    assert [(a.provider, a.status, a.error_message) for a in result.attempts[:2]] == [
        ("anthropic", "skipped", "ANTHROPIC_API_KEY is not set"),
        ("openai", "skipped", "OPENAI_API_KEY is not set")]
    assert fakes["anthropic"].requests == [] and fakes["openai"].requests == []


async def test_history_arrives_intact_at_the_fallback_provider_in_its_own_format(fakes, make_relay):
    fakes["anthropic"].script(faults.http_error(401))
    history = [{"role": "user", "content": "My name is Ada."},
               {"role": "assistant", "content": "Nice to meet you, Ada."},
               {"role": "user", "content": "I like Python."},
               {"role": "user", "content": "And Rust."}]
    result = await make_relay().chat("web-dev-agent", "What is my name?", history)
    assert result.provider == "google"
    sent = fakes["google"].requests[-1].body
    agent = load_agents()["web-dev-agent"]
    assert sent["systemInstruction"]["parts"][0]["text"] == agent.system_prompt
    turns = [(c["role"], "".join(p["text"] for p in c["parts"])) for c in sent["contents"]]
    assert turns == [("user", "My name is Ada."), ("model", "Nice to meet you, Ada."),
                     ("user", "I like Python.\n\nAnd Rust.\n\nWhat is my name?")]
    first = fakes["anthropic"].requests[-1].body
    assert first["system"] == agent.system_prompt
    assert [m["role"] for m in first["messages"]] == ["user", "assistant", "user"]


async def test_an_unknown_model_falls_through_and_total_failure_explains_every_link(fakes, make_relay):
    fakes["openai"].models = {"gpt-4o"}
    relay = make_relay(without=("anthropic",))
    result = await relay.chat("general-agent", "Hi", preferred_provider="openai", preferred_model="gpt-nonexistent")
    assert statuses(result)[:2] == [("openai", "failed", "not_found"), ("anthropic", "skipped", None)]
    assert result.provider == "openai" and result.model == "gpt-4o"

    for name in ("google", "openrouter", "ollama"):
        fakes[name].script(faults.http_error(500, times=5))
    fakes["openai"].models = set()
    with pytest.raises(AllLinksFailed) as exc:
        await relay.chat("general-agent", "Hi")
    msg = str(exc.value)
    assert msg.startswith("all 5 links failed")
    for part in ("anthropic/claude-3-5-sonnet-20241022: skipped: ANTHROPIC_API_KEY is not set",
                 "openai/gpt-4o: not_found", "google/gemini-2.0-flash: server_error", "ollama/mistral: server_error"):
        assert part in msg
    assert [a.status for a in exc.value.attempts] == ["skipped", "failed", "failed", "failed", "failed"]


async def test_a_legacy_agent_still_works(fakes, make_relay):
    legacy = Agent(id="legacy", name="Legacy", system_prompt="Be brief.", provider="ollama", model="llama3.2")
    relay = make_relay(agents={"legacy": legacy})
    result = await relay.chat("legacy", "Hi")
    assert (result.provider, result.model) == ("ollama", "llama3.2")
    body = fakes["ollama"].requests[-1].body
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


async def test_retries_honour_retry_after_then_succeed_on_the_same_link(fakes, make_relay):
    fakes["anthropic"].script(faults.http_error(429, retry_after="0.6"))
    relay = make_relay(max_retries=2)
    t0 = time.monotonic()
    result = await relay.chat("general-agent", "Hi")
    elapsed = time.monotonic() - t0
    assert statuses(result) == [("anthropic", "failed", "rate_limited"), ("anthropic", "success", None)]
    assert result.fallback_used is False
    assert 0.6 <= elapsed < 3


async def test_a_retry_after_beyond_the_cap_moves_on_at_once(fakes, make_relay):
    fakes["anthropic"].script(faults.http_error(429, retry_after="120"))
    t0 = time.monotonic()
    result = await make_relay(max_retries=2, retry_after_cap=30).chat("general-agent", "Hi")
    assert time.monotonic() - t0 < 2
    assert statuses(result) == [("anthropic", "failed", "rate_limited"), ("openai", "success", None)]


async def test_retryable_errors_are_retried_with_backoff_and_auth_errors_are_not(fakes, make_relay):
    fakes["anthropic"].script(faults.http_error(500, times=2))
    fakes["openai"].script(faults.http_error(401))
    relay = make_relay(max_retries=1)
    relay.policy = relay.executor.policy = type(relay.policy)(max_retries=1, backoff_initial=0.05)
    result = await relay.chat("general-agent", "Hi")
    assert statuses(result) == [("anthropic", "failed", "server_error"), ("anthropic", "failed", "server_error"),
                                ("openai", "failed", "auth"), ("google", "success", None)]


async def test_circuit_opens_skips_then_half_opens_and_closes(fakes, make_relay):
    relay = make_relay(breaker_threshold=2, breaker_cooldown=0.5)
    fakes["anthropic"].script(faults.http_error(503, times=2))
    for _ in range(2):
        r = await relay.chat("general-agent", "Hi")
        assert r.provider == "openai"
    assert relay.breaker.state("anthropic", "claude-3-5-sonnet-20241022") == "open"
    before = len(fakes["anthropic"].requests)
    r = await relay.chat("general-agent", "Hi")
    assert r.attempts[0].status == "skipped" and "circuit open" in r.attempts[0].error_message
    assert len(fakes["anthropic"].requests) == before
    await asyncio.sleep(0.55)
    r = await relay.chat("general-agent", "Hi")  # the probe, which succeeds
    assert r.provider == "anthropic"
    assert relay.breaker.state("anthropic", "claude-3-5-sonnet-20241022") == "closed"


async def test_one_requests_own_retries_count_once_toward_opening_a_circuit(fakes, make_relay):
    """Three 529s in one request (its try and two retries) are one request that found the link overloaded: the
    circuit stays closed for everyone else; three requests that each fail open it."""
    relay = make_relay(breaker_threshold=3, breaker_cooldown=30, max_retries=2, retry_after_cap=0)
    relay.executor._sleep = lambda seconds: asyncio.sleep(0)  # no backoff waits in a test
    fakes["anthropic"].script(faults.overloaded(times=3))
    r = await relay.chat("general-agent", "Hi")
    assert [a.status for a in r.attempts] == ["failed", "failed", "failed", "success"] and r.provider == "openai"
    assert relay.breaker.state("anthropic", "claude-3-5-sonnet-20241022") == "closed"
    assert (await relay.chat("general-agent", "Hi")).provider == "anthropic"
    fakes["anthropic"].script(faults.overloaded(times=9))
    for _ in range(3):
        assert (await relay.chat("general-agent", "Hi")).provider == "openai"
    assert relay.breaker.state("anthropic", "claude-3-5-sonnet-20241022") == "open"


async def test_the_overall_deadline_bounds_the_whole_chain(fakes, make_relay):
    fakes["anthropic"].script(faults.hang(30))
    relay = make_relay(request_deadline=0.8, first_token_timeout=30)
    t0 = time.monotonic()
    with pytest.raises(AllLinksFailed) as exc:
        await relay.chat("general-agent", "Hi")
    assert time.monotonic() - t0 < 2
    attempts = exc.value.attempts
    assert attempts[0].error_kind is ErrorKind.TIMEOUT and "deadline" in attempts[0].error_message
    assert all(a.status == "skipped" and "deadline" in a.error_message for a in attempts[1:])


async def test_a_slow_first_byte_beyond_the_first_token_timeout_falls_through(fakes, make_relay):
    fakes["anthropic"].script(faults.slow_first_byte(3))
    result = await make_relay(first_token_timeout=0.4).chat("general-agent", "Hi")
    assert statuses(result) == [("anthropic", "failed", "timeout"), ("openai", "success", None)]
    assert "no reply within 0.4 s" in result.attempts[0].error_message


async def test_a_bad_request_is_fatal_and_the_rest_of_the_chain_is_not_tried(fakes, make_relay):
    fakes["anthropic"].script(faults.http_error(400, message="messages: invalid"))
    with pytest.raises(AllLinksFailed) as exc:
        await make_relay().chat("general-agent", "Hi")
    assert exc.value.fatal is not None and exc.value.fatal.kind is ErrorKind.BAD_REQUEST
    assert [a.status for a in exc.value.attempts] == ["failed", "skipped", "skipped", "skipped", "skipped"]
    assert "rejected the request itself" in exc.value.attempts[1].error_message
    assert fakes["openai"].requests == []


async def collect(relay, *args, **kw):
    events = [e async for e in relay.stream(*args, **kw)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    return events, text


async def test_stream_failing_before_its_first_text_falls_back_transparently(fakes, make_relay):
    fakes["anthropic"].script(faults.stream_error(after_chunks=0, code="overloaded_error"))
    events, text = await collect(make_relay(), "general-agent", "Hi")
    assert text.startswith("Hello from fake openai")
    done = events[-1]
    assert isinstance(done, Outcome) and done.error is None and done.fallback_used
    assert done.text == text
    kinds = [(e.attempt.provider, e.attempt.status) for e in events if isinstance(e, AttemptEvent)]
    assert kinds == [("anthropic", "failed"), ("openai", "success")]
    assert done.usage.output_tokens > 0


async def test_stream_failing_after_text_ends_with_an_error_and_keeps_the_text(fakes, make_relay):
    fakes["anthropic"].script(faults.stream_error(after_chunks=3, code="overloaded_error"))
    events, text = await collect(make_relay(), "general-agent", "Hi")
    assert text == "Hello from fake"
    last = events[-1]
    assert isinstance(last, Outcome) and last.error is not None
    assert last.error.kind is ErrorKind.OVERLOADED
    assert last.text == "Hello from fake" and last.provider == "anthropic"
    assert fakes["openai"].requests == []


async def test_a_stream_cut_after_text_is_reported_not_silently_truncated(fakes, make_relay):
    fakes["openai"].script(faults.cut(after_chunks=2))
    events, text = await collect(make_relay(), "code-review-agent", "Hi")
    assert isinstance(events[-1], Outcome) and events[-1].error is not None and text == "Hello from"
    assert events[-1].error.kind in (ErrorKind.CONNECTION, ErrorKind.SERVER_ERROR)


async def test_a_stream_stalling_mid_answer_times_out(fakes, make_relay):
    fakes["anthropic"].script(faults.reply(text="one two three four", seconds=1.0))
    events, text = await collect(make_relay(idle_timeout=0.3), "general-agent", "Hi")
    assert isinstance(events[-1], Outcome) and events[-1].error is not None
    assert events[-1].error.kind is ErrorKind.TIMEOUT
    assert text == "one"


async def test_a_refusal_before_any_text_falls_through_but_the_last_link_returns_it(fakes, make_relay):
    fakes["anthropic"].script(faults.reply(text="", finish="refusal"))
    result = await make_relay().chat("general-agent", "Hi")
    assert statuses(result)[:2] == [("anthropic", "failed", "content_filtered"), ("openai", "success", None)]
    legacy = Agent(id="one", name="One", provider="openai", model="gpt-4o")
    fakes["openai"].script(faults.reply(text="I can't help with that.", finish="content_filter"))
    result = await make_relay(agents={"one": legacy}).chat("one", "Hi")
    assert result.finish_reason == "content_filter" and result.text == "I can't help with that."


async def test_a_caller_that_stops_listening_cancels_the_call_and_the_observer_hears_of_it(fakes, make_relay):
    seen = []
    fakes["anthropic"].script(faults.reply(text="a b c d e f g h", seconds=0.2))
    relay = make_relay(observers=[lambda ctx, attempt: seen.append((ctx, attempt))])
    stream = relay.stream("general-agent", "Hi", user="u1")
    async for event in stream:
        if isinstance(event, TextDelta):
            break
    await stream.aclose()
    assert len(seen) == 1
    ctx, attempt = seen[0]
    assert ctx.user_id == "u1" and ctx.agent_id == "general-agent"
    assert attempt.status == "failed" and attempt.error_message.startswith("cancelled by the caller after")
    assert attempt.usage is not None and attempt.usage.input_tokens > 0  # from message_start


async def test_preferred_provider_goes_first(fakes, make_relay):
    result = await make_relay().chat("general-agent", "Hi", preferred_provider="ollama", preferred_model="mistral")
    assert result.provider == "ollama" and not result.fallback_used


async def test_each_attempt_says_whether_it_is_the_requests_first_on_its_provider_and_model(fakes, make_relay):
    """The ledger counts a provider's (model's) requests by these flags: a retry is on the same
    provider and model, a second model of the same provider is a first on that model only."""
    from llmrelay.agents import ProviderOption

    agent = Agent(id="two-models", name="Two models", supported_providers=(
        ProviderOption(provider="anthropic", model="claude-a", priority=1),
        ProviderOption(provider="anthropic", model="claude-b", priority=2),
        ProviderOption(provider="openai", model="gpt-4o", priority=3)))
    fakes["anthropic"].script(faults.http_error(529), faults.http_error(529), faults.http_error(529))
    result = await make_relay(agents={"two-models": agent}, max_retries=1).chat("two-models", "Hi")
    assert [(a.provider, a.model, a.status, a.first_on_provider, a.first_on_model) for a in result.attempts] == [
        ("anthropic", "claude-a", "failed", True, True), ("anthropic", "claude-a", "failed", False, False),
        ("anthropic", "claude-b", "failed", False, True), ("anthropic", "claude-b", "success", False, False)]
