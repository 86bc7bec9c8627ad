"""Alembic environment: async (asyncpg), one transaction, serialised by an advisory lock."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

import app.models  # noqa: F401  (registers the tables on the metadata)
from app import db
from app.settings import Settings

config = context.config
target_metadata = db.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    # Run as `alembic ...` by a developer: the same configuration as icehook itself.
    return db.resolve_database_url(Settings.from_env(os.environ))


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        connection.execute(db.MIGRATION_LOCK_SQL)
        context.run_migrations()


async def _run_async() -> None:
    engine = db.create_engine(_database_url(), timeout=None)  # a migration may take long
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
asyncio.run(_run_async())
