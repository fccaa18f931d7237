"""The fake Anthropic's prompt cache with the official `anthropic` SDK as the client: `cache_control`
accepted where Anthropic takes it and refused with Anthropic's 400 where it does not, and the caching
simulated (the first request writes the prefix up to its breakpoints, the next one with that prefix
reads it), so that the usage a client sees moves as it would on Anthropic.

The fake counts a word a token and a tool 10 tokens: the prompt below is 10 (the tool) + 10 (the system
prompt) + 7 (the question) = 27 input tokens."""

from __future__ import annotations

import anthropic
import pytest

from llmrelay.testing import FakeServers, faults

MODEL = "claude-haiku-4-5"
FIVE, HOUR = {"type": "ephemeral"}, {"type": "ephemeral", "ttl": "1h"}
TOOL = {"name": "lookup", "description": "Look a word up.", "input_schema": {"type": "object"}}
SYSTEM = "You are a careful assistant who answers in one line."
QUESTION = "What does the word serendipity mean, please?"


@pytest.fixture(scope="module")
def fakes():
    with FakeServers(["anthropic"]) as servers:
        yield servers


@pytest.fixture(autouse=True)
def _reset(fakes):
    fakes.reset()  # the cache too


@pytest.fixture
def client(fakes):
    with anthropic.Anthropic(api_key="sk-ant-api03-sdk-test", base_url=fakes.url("anthropic"),
                             max_retries=0) as c:
        yield c


def ask(client, tool_cc=FIVE, system_cc=FIVE, question_cc=FIVE, system=SYSTEM, model=MODEL, more=(), **kw):
    return client.messages.create(
        model=model, max_tokens=50, tools=[{**TOOL, "cache_control": tool_cc}],
        system=[{"type": "text", "text": system, "cache_control": system_cc}],
        messages=[{"role": "user", "content": [{"type": "text", "text": QUESTION, "cache_control": question_cc}]},
                  *more], **kw)


def cache(msg) -> tuple[int, int, int]:
    """(uncached input, written to the cache, read from it)."""
    u = msg.usage
    return u.input_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens


def test_the_first_request_writes_its_prefix_and_the_same_request_then_reads_it(client):
    first = ask(client)
    assert cache(first) == (0, 27, 0)
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == 27
    assert cache(ask(client)) == (0, 0, 27)


def test_only_the_prefix_up_to_the_last_breakpoint_is_cached(client):
    assert cache(ask(client, question_cc=None)) == (7, 20, 0)  # tools and system written, the question not
    assert cache(ask(client, question_cc=None)) == (7, 0, 20)


def test_a_changed_system_prompt_reads_only_the_tools_before_it(client):
    ask(client)
    assert cache(ask(client, system="You are a terse assistant.")) == (0, 12, 10)


def test_another_model_has_a_cache_of_its_own(client):
    ask(client)
    assert cache(ask(client, model="claude-sonnet-4-5")) == (0, 27, 0)


def test_a_growing_conversation_reads_what_the_previous_turn_wrote(client):
    ask(client)
    reply = {"role": "assistant", "content": "It means a happy accident."}
    follow = {"role": "user", "content": [{"type": "text", "text": "Give an example.", "cache_control": FIVE}]}
    # the new breakpoint is on the last turn; the previous one, 2 blocks back, is found and read
    assert cache(ask(client, question_cc=None, more=[reply, follow])) == (0, 8, 27)


def test_an_hour_long_breakpoint_is_written_apart(client):
    msg = ask(client, tool_cc=HOUR, system_cc=HOUR)
    assert msg.usage.cache_creation.ephemeral_1h_input_tokens == 20
    assert msg.usage.cache_creation.ephemeral_5m_input_tokens == 7


def test_automatic_caching_marks_the_last_block(client, fakes):
    msg = client.messages.create(model=MODEL, max_tokens=50, cache_control=FIVE, system=SYSTEM,
                                 messages=[{"role": "user", "content": QUESTION}])
    assert cache(msg) == (0, 17, 0)
    assert fakes["anthropic"].requests[-1].body["cache_control"] == FIVE


def test_a_stream_reports_the_cache_in_message_start_and_message_delta(client):
    ask(client)
    with client.messages.stream(model=MODEL, max_tokens=50, tools=[{**TOOL, "cache_control": FIVE}],
                                system=[{"type": "text", "text": SYSTEM, "cache_control": FIVE}],
                                messages=[{"role": "user", "content": [
                                    {"type": "text", "text": QUESTION, "cache_control": FIVE}]}]) as stream:
        start = next(e for e in stream if e.type == "message_start")
        final = stream.get_final_message()
    assert start.message.usage.cache_read_input_tokens == 27 and cache(final) == (0, 0, 27)


def test_counting_takes_cache_control_and_caches_nothing(client):
    counted = client.messages.count_tokens(model=MODEL, cache_control=FIVE, system=SYSTEM,
                                           messages=[{"role": "user", "content": QUESTION}])
    assert counted.input_tokens == 17
    msg = client.messages.create(model=MODEL, max_tokens=50, cache_control=FIVE, system=SYSTEM,
                                 messages=[{"role": "user", "content": QUESTION}])
    assert cache(msg) == (0, 17, 0)


def test_a_scripted_usage_wins_over_the_simulation(client, fakes):
    fakes["anthropic"].script(faults.reply("ok", usage={"input": 100, "cached_input": 60, "output": 1}))
    assert cache(ask(client)) == (40, 0, 60)


def refused(client, **kw) -> str:
    with pytest.raises(anthropic.BadRequestError) as err:
        client.messages.create(model=MODEL, max_tokens=50, **kw)
    assert err.value.body["error"]["type"] == "invalid_request_error"
    return err.value.body["error"]["message"]


def marked(*controls) -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": f"part {i}", "cache_control": c}
                                         for i, c in enumerate(controls)]}]


def test_more_than_four_breakpoints_are_refused_in_anthropics_words(client):
    assert refused(client, messages=marked(FIVE, FIVE, FIVE, FIVE, FIVE)) == (
        "A maximum of 4 blocks with cache_control may be provided. Found 5.")
    assert refused(client, messages=marked(FIVE, FIVE, FIVE, FIVE, None), cache_control=FIVE) == (
        "A maximum of 4 blocks with cache_control may be provided. Found 5.")  # automatic caching counts too
    client.messages.create(model=MODEL, max_tokens=50, messages=marked(FIVE, FIVE, FIVE, FIVE),
                           cache_control=FIVE)  # the last block has its own already: four


def test_an_hour_after_five_minutes_is_refused_in_anthropics_words(client):
    message = refused(client, system=[{"type": "text", "text": SYSTEM, "cache_control": FIVE}],
                      messages=marked(HOUR))
    assert message == ("messages.0.content.0.cache_control.ttl: a ttl='1h' cache_control block must not come after "
                       "a ttl='5m' cache_control block. Note that blocks are processed in the following order: "
                       "`tools`, `system`, `messages`.")


@pytest.mark.parametrize(("messages", "message"), [
    (marked({"type": "persistent"}), "messages.0.content.0.cache_control.type: Input should be 'ephemeral'"),
    (marked({"type": "ephemeral", "ttl": "2h"}),
     "messages.0.content.0.cache_control.ttl: Input should be '5m' or '1h'"),
    (marked({"type": "ephemeral", "scope": "x"}), "messages.0.content.0.cache_control.scope: Extra inputs are not "
                                                  "permitted"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": [
        {"type": "redacted_thinking", "data": "enc", "cache_control": FIVE}]}],
     "messages.1.content.0.redacted_thinking.cache_control: Extra inputs are not permitted"),
])
def test_a_cache_control_anthropic_would_refuse_is_refused(client, messages, message):
    assert refused(client, messages=messages) == message
