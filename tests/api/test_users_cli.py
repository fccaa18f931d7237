"""`llmrelay users …` and `llmrelay keys …`, run through the CLI's entry point (in-process, for speed;
tests/api/test_server_process.py runs them as processes against a live server)."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid

import pytest

from llmrelay.cli import main
from llmrelay.config import load_settings
from llmrelay.db.models import ApiKey, User
from llmrelay.db.users import active_keys, hash_key
from llmrelay.ledger import Ledger


@pytest.fixture
def llmrelay(capsys, monkeypatch):
    """Run `llmrelay ARGS…`; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["llmrelay", *args])
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def in_ledger(fn):
    async def go():
        ledger = Ledger(load_settings(env_file=None))
        await ledger.start()
        try:
            async with ledger.sessions() as s, s.begin():
                return await fn(s)
        finally:
            await ledger.aclose()

    return asyncio.run(go())


def test_users_are_added_with_their_limits_and_listed(llmrelay):
    code, out, _ = llmrelay("users", "add", "alice", "--rpm", "60")
    assert code == 0 and "alice added" in out and "llmrelay keys create --user alice" in out
    assert llmrelay("users", "add", "root", "--admin", "--tpm", "0")[0] == 0
    code, out, _ = llmrelay("users", "list", "--json")
    users = {u["name"]: u for u in json.loads(out)}
    assert set(users) == {"alice", "root"}
    assert (users["alice"]["admin"], users["alice"]["rpmLimit"], users["alice"]["tpmLimit"]) == (False, 60, None)
    assert (users["root"]["admin"], users["root"]["tpmLimit"], users["root"]["liveKeys"]) == (True, 0, 0)
    code, out, _ = llmrelay("users", "list")
    assert code == 0 and "alice" in out and "unlimited" in out


@pytest.mark.parametrize(("args", "message"), [
    (("users", "add", "alice"), "a user named 'alice' already exists"),
    (("users", "add", "   "), "a user name is 1 to 100 characters"),
    (("keys", "create", "--user", "nobody"), "no user named 'nobody'"),
    (("keys", "list", "--user", "nobody"), "no user named 'nobody'"),
    (("keys", "revoke", "lr_zzzzzzzz"), "no live key starts with 'lr_zzzzzzzz'"),
    (("keys", "revoke", "lr_"), "give at least the first 6 characters"),
])
def test_mistakes_are_one_line_and_exit_2(llmrelay, args, message):
    assert llmrelay("users", "add", "alice")[0] == 0
    code, _, err = llmrelay(*args)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("llmrelay: error: ") and message in err, err


def test_a_new_key_is_the_last_line_printed_and_only_its_hash_is_kept(llmrelay):
    llmrelay("users", "add", "alice", "--rpm", "60")
    code, out, _ = llmrelay("keys", "create", "--user", "alice", "--name", "laptop")
    assert code == 0
    key = out.strip().splitlines()[-1]
    assert key.startswith("lr_") and len(key) > 40 and key[:11] in out.strip().splitlines()[0]

    principals = in_ledger(active_keys)  # what the server's key cache loads
    who = principals[hash_key(key)]
    assert (who.name, who.is_admin, who.rpm_limit) == ("alice", False, 60)
    stored = in_ledger(lambda s: s.get(ApiKey, uuid.UUID(who.key_id)))
    assert stored.key_hash == hash_key(key) and stored.prefix == key[:11] and stored.name == "laptop"

    code, listed, _ = llmrelay("keys", "list", "--json")
    assert json.loads(listed) == [{"prefix": key[:11], "user": "alice", "label": "laptop",
                                   "created": stored.created_at.isoformat(), "lastUsed": None, "revoked": None}]
    _, table, _ = llmrelay("keys", "list")
    assert key[:11] in table and "laptop" in table
    assert key not in listed + table


def test_revoking_by_prefix_marks_the_key_and_takes_it_out_of_the_live_set(llmrelay):
    llmrelay("users", "add", "alice")
    key = llmrelay("keys", "create", "--user", "alice")[1].strip().splitlines()[-1]
    other = llmrelay("keys", "create", "--user", "alice")[1].strip().splitlines()[-1]
    code, out, _ = llmrelay("keys", "revoke", key[:11])
    assert code == 0 and f"revoked {key[:11]}" in out and "within 2 s" in out
    live = in_ledger(active_keys)
    assert hash_key(key) not in live and hash_key(other) in live
    rows = {r["prefix"]: r for r in json.loads(llmrelay("keys", "list", "--json")[1])}
    assert rows[key[:11]]["revoked"] is not None and rows[other[:11]]["revoked"] is None
    assert llmrelay("users", "list", "--json")[1].count('"liveKeys": 1') == 1
    code, _, err = llmrelay("keys", "revoke", key[:11])  # already revoked: nothing live matches
    assert code == 2 and "no live key" in err


def test_an_ambiguous_prefix_revokes_nothing(llmrelay):
    llmrelay("users", "add", "alice")

    async def two_similar_keys(s):
        user = (await s.execute(User.__table__.select().where(User.name == "alice"))).first()
        for n in ("01", "02"):
            s.add(ApiKey(id=uuid.uuid4(), user_id=user.id, prefix=f"lr_abcdef{n}", key_hash=hash_key(n)))

    in_ledger(two_similar_keys)
    code, _, err = llmrelay("keys", "revoke", "lr_abcdef")
    assert code == 2 and "2 keys start with 'lr_abcdef'" in err
    assert len(in_ledger(active_keys)) == 2
    assert llmrelay("keys", "revoke", "lr_abcdef02")[0] == 0
    assert set(in_ledger(active_keys)) == {hash_key("01")}


async def test_keys_remember_when_they_were_last_used(app, client, keys):
    from sqlalchemy import select

    from llmrelay.db.models import ApiKey

    assert (await client.get("/api/ai/agents", headers=keys.auth("alice"))).status_code == 200
    await app.state.keys.aclose()  # written with the next reload, or at shutdown at the latest
    async with app.state.relay.ledger.sessions() as s:
        used = [k.last_used_at for k in (await s.execute(select(ApiKey))).scalars()]
    assert sum(u is not None for u in used) == 1
