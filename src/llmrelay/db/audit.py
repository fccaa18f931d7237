"""The audit log (`audit_log`): one row per admin action, written in the transaction of the change.

    record(session_or_conn, actor, action, target, details, source)   inside the change's transaction
    recent(session_or_conn, limit, action=None)                         newest first

`actor` is a user id (the API) or `cli:<os user>` (`cli_actor()`, the command line); `target` names what
was acted on (a user name, a key's prefix, a budget's scope, `provider/model`, a provider); `details` are
the new values.  Nothing secret is kept: a key is named only by its prefix, a URL loses its query, fragment
and user:password (`safe_url`), every string passes `redaction.redact`, and money is a plain decimal string.
A store that opens its own transaction takes an `Action` to record in it (`BudgetStore.put` / `delete`).
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, get_args
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy import insert, select

from ..redaction import redact, without_credentials
from .models import AuditEntry
from .types import utcnow

ActionName = Literal["user.add", "user.limits", "key.create", "key.revoke", "budget.set", "budget.clear", "price.set",
                     "price.sync"]
ACTIONS: tuple[str, ...] = get_args(ActionName)
SOURCES = ("cli", "api")
MAX_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Action:
    """An action to record, for a store that writes it in a transaction of its own."""

    actor: str
    action: str
    target: str
    details: dict[str, Any] = field(default_factory=dict)
    source: str = "cli"


def cli_actor() -> str:
    """`cli:<the OS user running the command>`; `cli:unknown` when the system cannot say who that is
    (no USER/LOGNAME and no password-database entry, as in some containers)."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError, ImportError):
        name = ""
    return f"cli:{name[:150] or 'unknown'}"


def safe_url(url: str | None) -> str | None:
    """`url` as an audit row may keep it: scheme, host and port, and `/…` for a path.  No path, query, fragment or
    credentials: webhook tokens ride in any of them (Slack and Discord put theirs in the path)."""
    if url is None:
        return None
    parts = urlsplit(without_credentials(url))
    return urlunsplit((parts.scheme, parts.netloc, "/…" if parts.path not in ("", "/") else parts.path, "", ""))


def _clean(value: Any) -> Any:
    """`value` as JSON keeps it, with every string redacted and every Decimal a plain decimal string."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def record(session_or_conn: Any, actor: str, action: str, target: str, details: dict[str, Any] | None = None,
                 source: str = "cli") -> None:
    """Add one row, in the transaction `session_or_conn` (an AsyncSession or AsyncConnection) is in."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r} (known: {', '.join(ACTIONS)})")
    if source not in SOURCES:
        raise ValueError(f"unknown audit source {source!r}")
    await session_or_conn.execute(insert(AuditEntry).values(
        at=utcnow(), actor=actor[:200], action=action, target=redact(target)[:300], details=_clean(details or {}),
        source=source))


async def record_action(session_or_conn: Any, entry: Action) -> None:
    await record(session_or_conn, entry.actor, entry.action, entry.target, entry.details, entry.source)


def to_dict(row: AuditEntry) -> dict[str, Any]:
    return {"id": row.id, "at": row.at.isoformat(), "actor": row.actor, "action": row.action, "target": row.target,
            "details": row.details, "source": row.source}


async def recent(session_or_conn: Any, limit: int = 50, action: str | None = None) -> list[dict[str, Any]]:
    """The newest `limit` rows (of one `action` when given), newest first."""
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
    if action is not None:
        query = query.where(AuditEntry.action == action)
    rows = (await session_or_conn.execute(query.limit(max(1, min(limit, MAX_LIMIT))))).all()
    return [to_dict(row[0] if isinstance(row[0], AuditEntry) else AuditEntry(**row._mapping)) for row in rows]
