"""Alembic environment: async (asyncpg), one transaction, serialised by an advisory lock."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection

from app.settings import Settings
from app.store import embedded, engine, schema, tables

config = context.config
target_metadata = tables.metadata


def _database() -> tuple[str, bool]:
    """The database URL, and whether it is a transaction pooler."""
    url = config.attributes.get("database_url")
    if url:
        return str(url), bool(config.attributes.get("pooled"))
    # Run as `alembic ...` by a developer: the same configuration as icehook itself.
    settings = Settings.from_env(os.environ)
    url = embedded.resolve_database_url(settings.database_url, settings.data_dir)
    return url, settings.database_pooler == "transaction"


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        connection.execute(schema.MIGRATION_LOCK_SQL)
        context.run_migrations()


async def _run_async() -> None:
    url, pooled = _database()
    migrating = engine.create_engine(url, timeout=None, pooled=pooled)  # may take long
    try:
        async with migrating.connect() as connection:
            await connection.run_sync(_run)
    finally:
        await migrating.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run against a database")
asyncio.run(_run_async())
