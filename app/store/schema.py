"""The schema's revision: Alembic's configuration, migrating, and what the database is at."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.ext.asyncio import AsyncEngine

# Taken by migrations/env.py: serialises the `alembic upgrade` of several starting processes.
MIGRATION_LOCK_SQL = sa.text("SELECT pg_advisory_xact_lock(30358540)")


def _migrations_dir() -> Path:
    """Installed wheels carry migrations inside the package; a source checkout beside it."""
    package = Path(__file__).parent.parent
    for candidate in (package / "migrations", package.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise RuntimeError("the migrations directory is missing from this installation")


def alembic_config(url: str | None = None, *, pooled: bool = False) -> Config:
    """Alembic's configuration, for ``url`` (``pooled``: behind a transaction pooler)."""
    config = Config()
    config.set_main_option("script_location", str(_migrations_dir()))
    if url is not None:
        config.attributes["database_url"] = url
        config.attributes["pooled"] = pooled
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def is_known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this installation's migrations."""
    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:  # alembic's "no such revision"
        return False


async def current_revision(engine: AsyncEngine) -> str | None:
    return (await database_state(engine))[0]


async def database_state(engine: AsyncEngine) -> tuple[str | None, bool]:
    """The schema's revision, and whether the database refuses writes (a standby, or
    ``default_transaction_read_only``)."""
    async with engine.connect() as conn:
        revision = await conn.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )
        read_only = await conn.scalar(sa.text("SHOW transaction_read_only"))
    return revision, read_only == "on"


def upgrade(url: str, revision: str = "head", *, pooled: bool = False) -> None:
    """``alembic upgrade``; safe to run from several processes at once (an advisory lock
    held for the migration's one transaction, so also behind a transaction pooler)."""
    command.upgrade(alembic_config(url, pooled=pooled), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


async def upgrade_async(url: str) -> None:
    """``upgrade`` from async code (Alembic's env.py runs its own event loop)."""
    await asyncio.to_thread(upgrade, url)
