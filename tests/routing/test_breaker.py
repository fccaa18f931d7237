from llmrelay.routing.breaker import CircuitBreaker
from llmrelay.routing.policy import Policy


class Clock:
    def __init__(self):
        self.t = 1000.0

    def __call__(self):
        return self.t


def test_opens_after_threshold_consecutive_failures_then_half_opens_after_cooldown():
    clock = Clock()
    b = CircuitBreaker(threshold=3, cooldown=30, clock=clock)
    for _ in range(2):
        assert b.acquire("openai", "gpt-4o") is None
        b.failure("openai", "gpt-4o")
    assert b.state("openai", "gpt-4o") == "closed"
    assert b.acquire("openai", "gpt-4o") is None
    b.failure("openai", "gpt-4o")
    assert b.state("openai", "gpt-4o") == "open"
    reason = b.acquire("openai", "gpt-4o")
    assert reason is not None and "circuit open after 3 consecutive failures" in reason
    assert b.acquire("openai", "gpt-4o-mini") is None  # per provider+model
    clock.t += 30
    assert b.state("openai", "gpt-4o") == "half_open"
    assert b.acquire("openai", "gpt-4o") is None  # the one probe
    assert "probe" in b.acquire("openai", "gpt-4o")  # everyone else waits
    b.success("openai", "gpt-4o")
    assert b.state("openai", "gpt-4o") == "closed"
    assert b.acquire("openai", "gpt-4o") is None


def test_failed_probe_reopens_for_a_full_cooldown():
    clock = Clock()
    b = CircuitBreaker(threshold=1, cooldown=10, clock=clock)
    b.failure("google", "g")
    clock.t += 10
    assert b.acquire("google", "g") is None
    b.failure("google", "g")
    assert b.state("google", "g") == "open"
    clock.t += 9.9
    assert b.state("google", "g") == "open"
    clock.t += 0.1
    assert b.state("google", "g") == "half_open"


def test_a_success_resets_the_failure_count():
    b = CircuitBreaker(threshold=2, cooldown=10, clock=Clock())
    b.failure("a", "m")
    b.success("a", "m")
    b.failure("a", "m")
    assert b.state("a", "m") == "closed"


def test_released_probe_lets_the_next_request_probe():
    clock = Clock()
    b = CircuitBreaker(threshold=1, cooldown=1, clock=clock)
    b.failure("a", "m")
    clock.t += 1
    assert b.acquire("a", "m") is None
    b.release("a", "m")
    assert b.acquire("a", "m") is None


def test_backoff_doubles_to_the_cap_with_negative_jitter_and_honours_hints():
    import random

    p = Policy(backoff_initial=0.5, backoff_max=8, retry_after_cap=60)
    rng = random.Random(1)
    for retry, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0)]:
        d = p.retry_delay(retry, None, rng)
        assert base * 0.75 <= d <= base
    assert p.retry_delay(1, 2.5) == 2.5
    assert p.retry_delay(1, 61) is None  # "not soon": give the link up
    assert 0.375 <= p.retry_delay(1, 0) <= 0.5  # a zero hint is no hint
