"""GroupCommit (app/store/batching.py) without a database: its writer is a plain coroutine
here, so what is tested is the queueing, the deadlines and who is told what."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from app.store.batching import GroupCommit


class Writer:
    """Writes by echoing; holds every write while ``gate`` is clear."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.gate.set()
        self.batches: list[list[str]] = []

    async def write(self, items: Sequence[str]) -> list[str]:
        await self.gate.wait()
        self.batches.append(list(items))
        return [item.upper() for item in items]


async def test_items_that_arrive_together_are_written_together() -> None:
    writer = Writer()
    commits = GroupCommit(writer.write, max_batch=3)
    writer.gate.clear()
    first = asyncio.create_task(commits.submit("a", within=10))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(commits.submit(x, within=10)) for x in "bcde"]
    await asyncio.sleep(0)
    writer.gate.set()
    assert await asyncio.gather(first, *rest) == ["A", "B", "C", "D", "E"]
    assert writer.batches == [["a"], ["b", "c", "d"], ["e"]]
    assert not commits._deadlines  # answered ones are not kept


async def test_a_write_that_hangs_times_out_its_items_and_the_next_are_written() -> None:
    writer = Writer()
    commits = GroupCommit(writer.write, max_batch=10)
    writer.gate.clear()
    stuck = [asyncio.create_task(commits.submit(x, within=0.2)) for x in "ab"]
    async with asyncio.timeout(5):
        for task in stuck:
            with pytest.raises(TimeoutError):
                await task
        queued = asyncio.create_task(commits.submit("c", within=0.2))
        with pytest.raises(TimeoutError):  # it waits behind the hung write
            await queued
        writer.gate.set()
        assert await commits.submit("d", within=5) == "D"
    # "c" had not begun when its time was up: it is never written.
    assert writer.batches == [["a", "b"], ["d"]]


async def test_deadlines_of_different_lengths_each_hold() -> None:
    writer = Writer()
    commits = GroupCommit(writer.write, max_batch=10)
    writer.gate.clear()
    long = asyncio.create_task(commits.submit("long", within=30))
    short = asyncio.create_task(commits.submit("short", within=0.2))  # ends before "long"
    async with asyncio.timeout(5):
        with pytest.raises(TimeoutError):
            await short
    assert not long.done()
    writer.gate.set()
    assert await long == "LONG"


async def test_a_caller_that_goes_away_is_not_written_for() -> None:
    writer = Writer()
    commits = GroupCommit(writer.write, max_batch=10)
    writer.gate.clear()
    first = asyncio.create_task(commits.submit("first", within=10))
    await asyncio.sleep(0)
    gone = asyncio.create_task(commits.submit("gone", within=10))
    await asyncio.sleep(0)
    gone.cancel()
    writer.gate.set()
    assert await first == "FIRST"
    assert await commits.submit("after", within=10) == "AFTER"
    assert writer.batches == [["first"], ["after"]]
