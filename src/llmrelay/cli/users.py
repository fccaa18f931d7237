"""`llmrelay users …` and `llmrelay keys …`: who may call the HTTP service, and with which keys.

A key is printed once, when it is made; the database keeps only its hash and a short prefix
(`lr_` and 8 characters) to tell keys apart and revoke one.  A running server notices a new or
revoked key at once on PostgreSQL (its change notifications), else within LLMRELAY_KEY_REFRESH seconds,
in every worker and replica.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime
from typing import Any

import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy import select

from ..config import load_settings
from ..db.audit import cli_actor, record
from ..db.models import ApiKey, User
from ..db.users import PREFIX_LEN, create_key, create_user, list_keys, revoke_key, user_by_name
from ..ledger import Ledger
from ..types import InvalidRequest
from .app import app, console, show, with_ledger

users_app = typer.Typer(help="Users of the HTTP service.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys: made, listed and revoked (a key is shown once, when made).",
                       no_args_is_help=True)
app.add_typer(users_app, name="users")
app.add_typer(keys_app, name="keys")


def _when(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def _short(t: datetime | None) -> str:
    return t.strftime("%Y-%m-%d %H:%M") if t is not None else "—"


def _limit(v: int | None, admin: bool = False) -> str:
    """A user's own limit; without one, the server's default (for an admin: none, see routing/guards.py)."""
    if v is None:
        return "unlimited (admin)" if admin else "default"
    return "unlimited" if v == 0 else f"{v:,}"


async def _user(session: Any, name: str) -> User:
    user = await user_by_name(session, name)
    if user is None:
        raise InvalidRequest(f"no user named {name!r} (see `llmrelay users list`)", "user")
    return user


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., metavar="NAME", help="A unique name, 1 to 100 characters."),
    admin: bool = typer.Option(False, "--admin", help="May read every user's usage and configs."),
    rpm: int | None = typer.Option(None, "--rpm", min=0, metavar="N",
                                   help="Requests per minute (0: unlimited). Default: LLMRELAY_RATE_RPM; "
                                        "for an admin, unlimited."),
    tpm: int | None = typer.Option(None, "--tpm", min=0, metavar="N",
                                   help="Tokens per minute (0: unlimited). Default: LLMRELAY_RATE_TPM; "
                                        "for an admin, unlimited."),
) -> None:
    """Add a user (then give them a key: llmrelay keys create --user NAME)."""

    async def go(ledger: Ledger) -> User:
        async with ledger.sessions() as s, s.begin():
            made = await create_user(s, name, is_admin=admin, rpm_limit=rpm, tpm_limit=tpm)
            await record(s, cli_actor(), "user.add", made.name,
                         {"id": made.id, "admin": made.is_admin, "rpmLimit": rpm, "tpmLimit": tpm})
            return made

    user = asyncio.run(with_ledger(go))
    role = "admin" if user.is_admin else "user"
    console.print(f"{role} {escape(user.name)} added (id {user.id}; requests/min "
                  f"{_limit(user.rpm_limit, user.is_admin)}, tokens/min {_limit(user.tpm_limit, user.is_admin)}); "
                  f"make a key: llmrelay keys create --user "
                  f"{escape(user.name)}")


def _limit_value(text: str | None, option: str) -> tuple[bool, int | None]:
    """(given, value) of a `--rpm`/`--tpm` of `users limits`: a count (0: unlimited) or `default`."""
    if text is None:
        return False, None
    if text.strip().lower() == "default":
        return True, None
    if text.strip().isdigit():
        return True, int(text)
    raise typer.BadParameter(f"{text!r} is neither a whole number (0: unlimited) nor 'default'", param_hint=option)


@users_app.command("limits")
def users_limits(
    name: str = typer.Argument(..., metavar="NAME", help="The user."),
    rpm: str | None = typer.Option(None, "--rpm", metavar="N|default",
                                   help="Requests per minute (0: unlimited; default: the server's)."),
    tpm: str | None = typer.Option(None, "--tpm", metavar="N|default",
                                   help="Tokens per minute (0: unlimited; default: the server's)."),
) -> None:
    """Change a user's own rate limits.  Running servers apply them within LLMRELAY_KEY_REFRESH seconds (at
    once on PostgreSQL)."""
    set_rpm, rpm_value = _limit_value(rpm, "--rpm")
    set_tpm, tpm_value = _limit_value(tpm, "--tpm")
    if not (set_rpm or set_tpm):
        raise typer.BadParameter("give --rpm, --tpm or both", param_hint="--rpm")

    async def go(ledger: Ledger) -> User:
        async with ledger.sessions() as s, s.begin():
            user = await _user(s, name)
            changed: dict[str, int | None] = {}
            if set_rpm:
                user.rpm_limit = changed["rpmLimit"] = rpm_value
            if set_tpm:
                user.tpm_limit = changed["tpmLimit"] = tpm_value
            await record(s, cli_actor(), "user.limits", user.name, changed)
            return user

    user = asyncio.run(with_ledger(go))
    console.print(f"{escape(user.name)}: requests/min {_limit(user.rpm_limit, user.is_admin)}, tokens/min "
                  f"{_limit(user.tpm_limit, user.is_admin)}")


@users_app.command("list")
def users_list(as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table.")) -> None:
    """The users, their limits and how many live keys each has."""

    async def go(ledger: Ledger) -> tuple[list[User], Counter[str]]:
        async with ledger.sessions() as s:
            users = (await s.execute(select(User).order_by(User.name))).scalars().all()
            live = Counter(u.id for k, u in await list_keys(s) if k.revoked_at is None)
        return list(users), live

    users, live = asyncio.run(with_ledger(go))
    rows = [{"name": u.name, "id": u.id, "admin": u.is_admin, "disabled": u.disabled, "rpmLimit": u.rpm_limit,
             "tpmLimit": u.tpm_limit, "liveKeys": live[u.id], "created": _when(u.created_at)} for u in users]
    if as_json:
        print(json.dumps(rows))
        return
    title = "Users (limits: default = the server's LLMRELAY_RATE_RPM / _TPM; admins: unlimited)"
    table = Table(title=title, title_justify="left")
    for col in ("name", "admin", "requests/min", "tokens/min", "live keys", "created (UTC)", "id"):
        table.add_column(col, no_wrap=True)
    for u in users:
        table.add_row(escape(u.name) + (" (disabled)" if u.disabled else ""), "yes" if u.is_admin else "",
                      _limit(u.rpm_limit, u.is_admin), _limit(u.tpm_limit, u.is_admin), str(live[u.id]),
                      _short(u.created_at), u.id)
    show(table)


@keys_app.command("create")
def keys_create(
    user: str = typer.Option(..., "--user", metavar="NAME", help="Whose key: a user name."),
    label: str | None = typer.Option(None, "--name", metavar="LABEL",
                                     help="A label to recognise the key by (e.g. 'ci')."),
) -> None:
    """Make a key for a user.  The key itself is the last line printed, and is never shown again."""
    if label is not None and not 1 <= len(label.strip()) <= 100:
        raise InvalidRequest("--name: a label is 1 to 100 characters", "name")

    async def go(ledger: Ledger) -> tuple[str, str]:
        async with ledger.sessions() as s, s.begin():
            owner = await _user(s, user)
            key, row = await create_key(s, owner, label.strip() if label else None)
            await record(s, cli_actor(), "key.create", row.prefix, {"user": owner.name, "label": row.name})
            return key, row.prefix

    key, prefix = asyncio.run(with_ledger(go))
    console.print(f"new key {prefix}… for {escape(user)}{f' ({escape(label)})' if label else ''}; "
                  f"it is shown only now (the database keeps its hash):")
    print(key, flush=True)


@keys_app.command("list")
def keys_list(
    user: str | None = typer.Option(None, "--user", metavar="NAME", help="Only this user's keys."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Every key by its prefix: whose, label, created, last used, revoked.  Never the key itself."""

    async def go(ledger: Ledger) -> list[tuple[ApiKey, User]]:
        async with ledger.sessions() as s:
            if user is not None:
                await _user(s, user)
            return [(k, u) for k, u in await list_keys(s) if user in (None, u.name)]

    keys = asyncio.run(with_ledger(go))
    if as_json:
        print(json.dumps([{"prefix": k.prefix, "user": u.name, "label": k.name, "created": _when(k.created_at),
                           "lastUsed": _when(k.last_used_at), "revoked": _when(k.revoked_at)} for k, u in keys]))
        return
    table = Table(title="API keys (revoke one: llmrelay keys revoke PREFIX)", title_justify="left")
    for col in ("prefix", "user", "label", "created (UTC)", "last used", "revoked"):
        table.add_column(col, no_wrap=col != "label", overflow="fold")
    for k, u in keys:
        table.add_row(k.prefix, escape(u.name), escape(k.name or ""), _short(k.created_at), _short(k.last_used_at),
                      _short(k.revoked_at) if k.revoked_at else "")
    show(table)


@keys_app.command("revoke")
def keys_revoke(prefix: str = typer.Argument(..., metavar="PREFIX", help=f"The key's prefix as `keys list` shows it "
                                                       f"({PREFIX_LEN} characters; at least 6), or the key.")) -> None:
    """Revoke a key.  Running servers refuse it at once on PostgreSQL, within LLMRELAY_KEY_REFRESH seconds on SQLite."""
    settings = load_settings()

    async def go(ledger: Ledger) -> tuple[str, str, str | None]:
        async with ledger.sessions() as s, s.begin():
            key = await revoke_key(s, prefix)
            owner = await s.get(User, key.user_id)
            await record(s, cli_actor(), "key.revoke", key.prefix,
                         {"user": owner.name if owner else key.user_id, "label": key.name})
            return key.prefix, owner.name if owner else key.user_id, key.name

    found, owner, label = asyncio.run(with_ledger(go))
    when = "at once" if settings.db_url.startswith("postgresql") else f"within {settings.key_refresh:g} s"
    console.print(f"revoked {found}… ({escape(owner)}{f', {escape(label)}' if label else ''}); running servers "
                  f"refuse it {when}")
