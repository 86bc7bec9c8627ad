"""Waking workers early: NOTIFY when work is committed, LISTEN in every worker.

NOTIFY only wakes workers early; they also poll, which keeps them correct if a
notification is lost. Jobs to confirm (``WORK``) and webhooks to send (``DELIVERIES``)
have a channel each, so that neither loop is woken for the other's work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import make_url

WORK = "icehook_work"


DELIVERIES = "icehook_deliveries"


PING_SECONDS = 5.0  # a listening connection is checked this often


def notify(channel: str) -> sa.FunctionElement[Any]:
    """The SQL that wakes every process listening on ``channel`` when its transaction
    commits.

    PostgreSQL sends a transaction's notifications at its commit, and folds identical ones
    into one: a transaction that stores many callbacks wakes each worker once.
    """
    return sa.func.pg_notify(channel, "")


class Waker:
    """What a loop sleeps on: set by NOTIFY on ``channel`` (``listen``), or by ``wake`` in
    this process. Without ``listening`` (behind a transaction pooler, which cannot carry a
    LISTEN: its session is not the client's), ``listen`` does nothing and the loops rely on
    polling and this process's own wake-ups."""

    def __init__(self, channel: str, *, listening: bool = True) -> None:
        self.channel = channel
        self.listening = listening
        self.event = asyncio.Event()

    def wake(self) -> None:
        self.event.set()

    async def listen(
        self, database_url: str, stop: Callable[[], bool], statement_seconds: float
    ) -> None:
        """Set ``event`` on every NOTIFY until ``stop()``; reconnects after errors.

        The connection is idle between notifications, so nothing would notice if its peer
        vanished: it is asked ``SELECT 1`` every ``PING_SECONDS`` and replaced when it does
        not answer (each wait within ``statement_seconds``). Meanwhile the loops still poll.
        """
        if not self.listening:
            return
        dsn = make_url(database_url).set(drivername="postgresql").render_as_string(False)
        while not stop():
            try:
                conn = await asyncpg.connect(
                    dsn, timeout=statement_seconds, command_timeout=statement_seconds
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                await asyncio.sleep(1)
                continue
            try:
                await conn.add_listener(self.channel, lambda *_: self.event.set())
                self.event.set()  # what was notified while it was not listening
                next_ping = asyncio.get_running_loop().time() + PING_SECONDS
                while not stop() and not conn.is_closed():
                    await asyncio.sleep(0.5)
                    if asyncio.get_running_loop().time() >= next_ping:
                        await conn.fetchval("SELECT 1")
                        next_ping = asyncio.get_running_loop().time() + PING_SECONDS
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                pass  # TimeoutError is an OSError: a new connection, after a pause
            finally:
                with contextlib.suppress(Exception):  # on failure, asyncpg aborts it
                    await conn.close(timeout=1)
            if not stop():
                await asyncio.sleep(1)

    async def wait(self, seconds: float) -> None:
        """Until woken or ``seconds`` pass."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self.event.wait()
        self.event.clear()
