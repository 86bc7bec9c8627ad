"""Console sessions: begun at sign-in, found by the hash of their token, ended at sign-out,
and removed once expired."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.access import Role
from app.store import tables

SESSION = tables.console_sessions


@dataclass(frozen=True)
class Found:
    role: Role
    key_fingerprint: str


async def begin(
    session: AsyncSession, token_hash: bytes, role: Role, key_fingerprint: str, lasts: timedelta
) -> None:
    await session.execute(
        sa.insert(SESSION).values(
            token_hash=token_hash,
            role=role,
            key_fingerprint=key_fingerprint,
            expires_at=sa.func.now() + lasts,
        )
    )


async def find(session: AsyncSession, token_hash: bytes) -> Found | None:
    """The unexpired session whose token hashes to ``token_hash``."""
    row = (
        await session.execute(
            sa.select(SESSION.c.role, SESSION.c.key_fingerprint).where(
                SESSION.c.token_hash == token_hash, SESSION.c.expires_at > sa.func.now()
            )
        )
    ).one_or_none()
    return None if row is None else Found(Role(row.role), row.key_fingerprint)


async def end(session: AsyncSession, token_hash: bytes) -> None:
    await session.execute(sa.delete(SESSION).where(SESSION.c.token_hash == token_hash))


async def remove_expired(session: AsyncSession) -> int:
    """Delete the sessions that have expired; how many."""
    expired = sa.delete(SESSION).where(SESSION.c.expires_at <= sa.func.now())
    return len((await session.execute(expired.returning(SESSION.c.expires_at))).all())
