"""Users and their API keys.  A key is shown once, when it is made; the database keeps only its
SHA-256 (keys are 190 random bits: a fast hash is enough, no key stretching needed) and a short
prefix that lets people tell their keys apart and revoke one."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ..types import InvalidRequest, Principal
from .audit import cli_actor, record
from .models import ApiKey, User
from .types import utcnow

KEY_PREFIX = "lr_"
PREFIX_LEN = 11  # "lr_" and 8 characters: enough to tell keys apart, far too little to guess one


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def create_user(session: AsyncSession, name: str, *, is_admin: bool = False, rpm_limit: int | None = None,
                      tpm_limit: int | None = None) -> User:
    name = name.strip()
    if not name or len(name) > 100:
        raise InvalidRequest("a user name is 1 to 100 characters", "name")
    user = User(id=uuid.uuid4().hex, name=name, is_admin=is_admin, rpm_limit=rpm_limit, tpm_limit=tpm_limit,
                created_at=utcnow())
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:
        raise InvalidRequest(f"a user named {name!r} already exists", "name") from None
    return user


async def user_by_name(session: AsyncSession, name: str) -> User | None:
    return (await session.execute(select(User).where(User.name == name))).scalar_one_or_none()


async def principal_of(session: AsyncSession, who: str) -> Principal | None:
    """The enabled user whose id or name is `who`, as a principal (no key), with their own limits."""
    rows = (await session.execute(select(User).where(or_(User.id == who, User.name == who),
                                                     User.disabled.is_(False)))).scalars().all()
    user = next((u for u in rows if u.id == who), rows[0] if rows else None)
    return Principal(user.id, user.name, user.is_admin, "", user.rpm_limit, user.tpm_limit) if user else None


async def user_names(session: AsyncSession) -> dict[str, str]:
    """Every user's id and name, ordered by name."""
    rows = (await session.execute(select(User.id, User.name).order_by(User.name))).all()
    return {row.id: row.name for row in rows}


async def user_exists(session: AsyncSession, user_id: str) -> bool:
    return (await session.execute(select(User.id).where(User.id == user_id))).scalar_one_or_none() is not None


async def count_users(session: AsyncSession) -> int:
    return (await session.execute(select(func.count()).select_from(User))).scalar_one()


async def create_key(session: AsyncSession, user: User, name: str | None = None) -> tuple[str, ApiKey]:
    """A new key for `user`: (the key itself, shown this once; its row)."""
    key = new_key()
    row = ApiKey(id=uuid.uuid4(), user_id=user.id, prefix=key[:PREFIX_LEN], key_hash=hash_key(key), name=name,
                 created_at=utcnow())
    session.add(row)
    await session.flush()
    return key, row


async def list_keys(session: AsyncSession) -> list[tuple[ApiKey, User]]:
    rows = await session.execute(select(ApiKey, User).join(User, User.id == ApiKey.user_id)
                                 .order_by(User.name, ApiKey.created_at))
    return [(k, u) for k, u in rows.all()]


async def revoke_key(session: AsyncSession, prefix: str) -> ApiKey:
    """Revoke the one live key starting with `prefix` (at least 6 characters)."""
    prefix = prefix.strip()
    if len(prefix) < 6:
        raise InvalidRequest("give at least the first 6 characters of the key", "prefix")
    rows = (await session.execute(select(ApiKey).where(ApiKey.revoked_at.is_(None)))).scalars().all()
    matches = [k for k in rows if k.prefix.startswith(prefix) or prefix.startswith(k.prefix)]
    if prefix.startswith(KEY_PREFIX) and len(prefix) > PREFIX_LEN:  # the whole key: match it exactly
        matches = [k for k in matches if k.key_hash == hash_key(prefix)]
    if not matches:
        raise InvalidRequest(f"no live key starts with {prefix[:PREFIX_LEN]!r}", "prefix")
    if len(matches) > 1:
        raise InvalidRequest(f"{len(matches)} keys start with {prefix!r}: give more of it", "prefix")
    matches[0].revoked_at = utcnow()
    return matches[0]


async def active_keys(session: AsyncSession) -> dict[str, Principal]:
    """key hash -> principal, for every live key of every enabled user."""
    rows = await session.execute(select(ApiKey, User).join(User, User.id == ApiKey.user_id)
                                 .where(ApiKey.revoked_at.is_(None), User.disabled.is_(False)))
    return {k.key_hash: Principal(u.id, u.name, u.is_admin, str(k.id), u.rpm_limit, u.tpm_limit)
            for k, u in rows.all()}


async def bootstrap_admin(session: AsyncSession) -> str | None:
    """On an empty users table: an `admin` user and its key (returned, to be printed once)."""
    if await count_users(session):
        return None
    admin = await create_user(session, "admin", is_admin=True)
    key, row = await create_key(session, admin, "bootstrap")
    actor = f"{cli_actor()} (first start)"
    await record(session, actor, "user.add", admin.name, {"admin": True})
    await record(session, actor, "key.create", row.prefix, {"user": admin.name, "label": row.name})
    return key
