"""Batching: many rows as one statement, and many writes in one commit.

A statement written for many rows takes one array per column and reads them back as a table
with PostgreSQL's ``unnest`` (``columns`` makes the arrays), so one bound value per column
serves any number of rows, where ``executemany`` would bind and send every row on its own.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from app.core.health import Watch
from app.store.engine import unavailable


def columns(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """``rows`` (dicts with the same keys) as one list per key, for ``unnest``."""
    return {name: [row[name] for row in rows] for name in rows[0]} if rows else {}


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
    if it fails because the database cannot write now (``engine.unavailable``),
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
        # Each waiting submit's deadline, in the order they end (``within`` is the same for
        # every submit of one caller), and one timer for the first: a timer per item costs
        # more than its write (python -m bench.intake_cost, bench/results/restructure.md).
        self._deadlines: collections.deque[tuple[float, asyncio.Future[Result]]] = (
            collections.deque()
        )
        self._timer: asyncio.TimerHandle | None = None

    async def submit(self, item: Item, within: float | None = None) -> Result:
        """The result of writing ``item``; ``TimeoutError`` if it is not written within
        ``within`` seconds (then it is not written later either, unless its batch had
        already begun)."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[Result] = loop.create_future()
        self._queue.append((item, done))
        if within is not None:
            self._expire_at(loop, loop.time() + within, done)
        if self._writer is None or self._writer.done():
            # In a context of its own: the writer serves every caller's items, not only those
            # of the one that started it (its request id, its trace).
            self._writer = asyncio.create_task(self._write_queued(), context=contextvars.Context())
        return await done  # cancelled (its caller gone) or expired: the writer skips it

    def _expire_at(
        self, loop: asyncio.AbstractEventLoop, when: float, done: asyncio.Future[Result]
    ) -> None:
        if self._deadlines and when < self._deadlines[-1][0]:
            # Out of order (another ``within``): this one's deadline is kept by its own timer.
            loop.call_at(when, self._expire, done)
            return
        self._deadlines.append((when, done))
        if self._timer is None:
            self._timer = loop.call_at(when, self._expire_due)

    @staticmethod
    def _expire(done: asyncio.Future[Result]) -> None:
        if not done.done():
            done.set_exception(TimeoutError())

    def _expire_due(self) -> None:
        """Fail every submit whose time is up; forget those answered; wait for the next."""
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        deadlines = self._deadlines
        while deadlines and (deadlines[0][0] <= now or deadlines[0][1].done()):
            self._expire(deadlines.popleft()[1])
        if deadlines:
            when = deadlines[0][0]
            self._timer = loop.call_at(when, self._expire_due)

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
            if len(batch) > 1 and not unavailable(exc):
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
        deadlines = self._deadlines
        while deadlines and deadlines[0][1].done():  # answered: no deadline to keep
            deadlines.popleft()
