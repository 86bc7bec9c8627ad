"""The engine: connections to PostgreSQL on which nothing waits without a deadline, and
which of the database's errors mean "not now".
"""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from app.core.errors import ConfigError

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_SECONDS = 5.0
POOLED = "icehook_pooled"  # the execution option that marks an engine behind a pooler


# TCP keepalive on database connections: a peer that vanished is noticed within about
# KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_COUNT seconds of silence, and data left
# unacknowledged for USER_TIMEOUT_MS ends the connection.
KEEPALIVE_IDLE, KEEPALIVE_INTERVAL, KEEPALIVE_COUNT = 10, 5, 3


USER_TIMEOUT_MS = 20_000


def async_url(url: str) -> str:
    """The SQLAlchemy URL for asyncpg, from a plain ``postgresql://`` URL."""
    return make_url(url).set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def create_engine(
    url: str,
    *,
    timeout: float | None = DEFAULT_TIMEOUT_SECONDS,
    pooled: bool = False,
    **kwargs: Any,
) -> AsyncEngine:
    """An engine on which nothing waits longer than ``timeout`` seconds: a statement (asyncpg's
    client-side ``command_timeout``, so a connection that stops answering still ends), a new
    connection, a pooled connection to come free. A statement that times out ends its
    connection, and the pool's other connections are replaced too (they most likely went
    through the same broken path). ``timeout=None``: statements may run as long as they
    take (migrations), connecting still gives up after a minute.

    ``pooled``: ``url`` is a pooler in transaction mode, which hands each transaction to
    any of its server connections, so no prepared statement may be relied on after its
    own transaction: asyncpg's statement cache and SQLAlchemy's are off, and the
    statements SQLAlchemy must prepare get names no other client can take.
    """
    bounds: dict[str, Any] = {"timeout": timeout or 60.0}
    if pooled:
        bounds |= {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unique_statement_name,
        }
        kwargs["execution_options"] = {POOLED: True} | kwargs.get("execution_options", {})
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


def autocommitting(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for single statements that commit themselves, without BEGIN and COMMIT
    round trips; callers still call ``commit()``, which then costs nothing. Behind a
    transaction pooler it is ``engine`` itself, and ``commit()`` commits: a statement that
    SQLAlchemy prepares must be executed in one transaction with it, or the pooler may send
    the execution to a server connection that never saw the statement."""
    if engine.get_execution_options().get(POOLED):
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _unique_statement_name() -> str:
    return f"__icehook_{uuid.uuid4().hex}__"


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def check_connection(url: str, *, pooled: bool = False) -> None:
    """Connect once, so a wrong URL stops the program with one clear line."""
    shown = make_url(url).render_as_string(hide_password=True)
    engine = create_engine(url, timeout=10, pooled=pooled)
    try:
        async with engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
    except (TimeoutError, SQLAlchemyError, OSError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        raise ConfigError("ICEHOOK_DATABASE_URL", f"cannot connect to {shown}: {reason}") from None
    finally:
        await engine.dispose()


# SQLSTATEs (or their classes) that say "not now": the same request may work later.
# 08 connection exception, 53 insufficient resources, 57 operator intervention (a cancelled
# or timed-out statement, an administrator's shutdown), 25006 read-only transaction (a
# standby, or a primary made read-only), 40001 / 40P01 serialization failure and deadlock.
RETRY_LATER_SQLSTATES = ("08", "53", "57", "25006", "40001", "40P01")


def unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` means the database cannot do this now: it could not be reached, the
    connection was lost, a statement ran out of time, or the database refuses writes."""
    if isinstance(exc, sa_exc.DBAPIError):
        sqlstate = str(getattr(exc.orig, "sqlstate", None) or "")
        return (
            exc.connection_invalidated
            or isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)
            or sqlstate.startswith(RETRY_LATER_SQLSTATES)
        )
    # No pooled connection came free, the network failed, or a statement's client-side
    # deadline passed (TimeoutError is an OSError).
    return isinstance(exc, sa_exc.TimeoutError | OSError)
