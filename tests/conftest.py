"""Test fixtures: a real PostgreSQL, a schema built by Alembic, one fresh database per test.

The server is ``ICEHOOK_TEST_DATABASE_URL`` when set, otherwise an embedded server started
once for the run. Alembic migrates a template database once; each test gets its own copy
(``CREATE DATABASE ... TEMPLATE``), so tests never see each other's rows.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.core.access import ApiKey, Role
from app.settings import Settings
from app.store import embedded, schema
from app.store.engine import create_engine, create_sessionmaker
from tests.helpers import pooler
from tests.helpers.processes import clean_environment


def with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """asyncpg wants a plain postgresql:// DSN."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A URL of a database on the test server, used to create and drop others."""
    url = os.environ.get("ICEHOOK_TEST_DATABASE_URL")
    if url:
        return url
    return embedded.start_embedded(tmp_path_factory.mktemp("embedded"))


@pytest.fixture(scope="session")
def served_url(server_url: str) -> Iterator[str]:
    """The URL icehook is given for the test server's databases: the server itself, or with
    ``ICEHOOK_TEST_POOLER=pgbouncer`` a PgBouncer in transaction mode in front of it."""
    if not pooler.POOLED:
        yield server_url
        return
    with pooler.pgbouncer(server_url) as url:
        yield url


async def _admin(server_url: str, *statements: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
async def template_name(server_url: str) -> AsyncIterator[str]:
    name = f"icehook_template_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    await schema.upgrade_async(with_database(server_url, name))
    yield name
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def empty_database_url(server_url: str) -> AsyncIterator[str]:
    """A new database without any schema."""
    name = f"icehook_test_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    yield with_database(server_url, name)
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def database_url(server_url: str, served_url: str, template_name: str) -> AsyncIterator[str]:
    """A new database with the schema at head, private to this test (as icehook reaches
    it: through the pooler, when there is one)."""
    name = f"icehook_test_{uuid.uuid4().hex[:12]}"
    await _admin(server_url, f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"')
    yield with_database(served_url, name)
    await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pooled=pooler.POOLED)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        Settings(),
        database_url=database_url,
        data_dir=tmp_path / "data",
        api_keys=(ApiKey(Role.ADMIN, "test-key"),),
        access_key_id="test-ak",
        access_key_secret="test-secret",
        database_pooler=pooler.DATABASE_POOLER,
    )


@pytest.fixture
def clean_env() -> dict[str, str]:
    return clean_environment()


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """What icehook's logging writes, configured as ``icehook`` does, then put back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)
