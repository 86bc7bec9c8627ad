"""Migrations: upgrade, downgrade, upgrade again, and no drift between models and schema."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from app.store import schema
from app.store.engine import create_engine
from app.store.tables import metadata


def _drift(sync_conn: sa.Connection) -> list[object]:
    context = MigrationContext.configure(
        sync_conn, opts={"compare_type": True, "compare_server_default": True}
    )
    return list(compare_metadata(context, metadata))


async def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda c: sa.inspect(c).get_table_names())
    finally:
        await engine.dispose()
    return set(names)


async def test_upgrade_downgrade_upgrade_leaves_no_drift(empty_database_url: str) -> None:
    url = empty_database_url
    await schema.upgrade_async(url)
    assert {"jobs", "job_events", "callbacks", "outbox", "deliveries"} <= await _tables(url)

    await asyncio.to_thread(schema.downgrade, url, "base")
    assert await _tables(url) <= {"alembic_version"}

    await schema.upgrade_async(url)
    engine = create_engine(url)
    try:
        assert await schema.current_revision(engine) == schema.head_revision()
        async with engine.connect() as conn:
            assert await conn.run_sync(_drift) == []
    finally:
        await engine.dispose()


async def test_concurrent_migrate_processes_are_serialised(
    empty_database_url: str, clean_env: dict[str, str]
) -> None:
    env = {**clean_env, "ICEHOOK_DATABASE_URL": empty_database_url}
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-m", "app", "migrate", env=env, stderr=asyncio.subprocess.PIPE
        )
        for _ in range(3)
    ]
    for proc in procs:
        _, stderr = await proc.communicate()
        assert proc.returncode == 0, stderr.decode()
    engine = create_engine(empty_database_url)
    try:
        assert await schema.current_revision(engine) == schema.head_revision()
    finally:
        await engine.dispose()


def test_revisions_are_date_stamped_and_named_after_their_id() -> None:
    scripts = list(ScriptDirectory.from_config(schema.alembic_config()).walk_revisions())
    assert scripts
    for script in scripts:
        assert re.fullmatch(r"20\d{6}_\d{4}", script.revision), script.revision
        assert Path(script.path).name.startswith(f"{script.revision}_"), script.path
