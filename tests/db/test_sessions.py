"""Console sessions against PostgreSQL: found while unexpired, ended at sign-out, and
removed by the housekeeping once expired."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.access import Role
from app.store import sessions


async def test_a_session_is_found_until_it_ends_or_expires(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    live, ended, expired = (hashlib.sha256(n.encode()).digest() for n in ("a", "b", "c"))
    async with sessionmaker.begin() as db:
        await sessions.begin(db, live, Role.READ, "f1", timedelta(hours=1))
        await sessions.begin(db, ended, Role.ADMIN, "f2", timedelta(hours=1))
        await sessions.begin(db, expired, Role.ADMIN, "f2", timedelta(seconds=-1))
        await sessions.end(db, ended)
    async with sessionmaker() as db:
        assert await sessions.find(db, live) == sessions.Found(Role.READ, "f1")
        assert await sessions.find(db, ended) is None
        assert await sessions.find(db, expired) is None
    async with sessionmaker.begin() as db:
        assert await sessions.remove_expired(db) == 1
        assert await sessions.remove_expired(db) == 0
    async with sessionmaker() as db:
        assert await sessions.find(db, live) is not None
