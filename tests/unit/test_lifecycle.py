"""Stopping in bounded time (app/flows/lifecycle.py) and telling a wedged part
(app/core/health.py)."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from app.core.health import Health, Watch
from app.flows import lifecycle
from app.flows.lifecycle import Shutdown


def test_a_watch_reports_a_step_that_runs_too_long_and_progress_resets_it() -> None:
    now = [100.0]
    watch = Watch("intake", 5.0, clock=lambda: now[0])
    assert watch.stalled() is None, "idle is not wedged"
    with watch.busy():
        now[0] += 5.0
        assert watch.stalled() is None
        now[0] += 0.5
        assert watch.stalled() == "intake: one step has run for 6 s (at most 5)"
        watch.progress()
        assert watch.stalled() is None
    now[0] += 100
    assert watch.stalled() is None


def test_health_lists_every_stalled_watch() -> None:
    health = Health()
    quick, slow = health.watch("quick", 1000.0), health.watch("slow", 0.0)
    with quick.busy(), slow.busy():
        time.sleep(0.01)
        assert [p.split(":")[0] for p in health.problems()] == ["slow"]
    assert health.problems() == []


async def test_finish_waits_for_the_task_until_the_deadline_then_cancels_it() -> None:
    shutdown = Shutdown(0.3)
    shutdown.begin()
    done = asyncio.create_task(asyncio.sleep(0.05))
    await shutdown.finish(done, "quick work")
    assert done.done()
    assert not done.cancelled()
    stuck = asyncio.create_task(asyncio.sleep(60))
    started = time.monotonic()
    await shutdown.finish(stuck, "stuck work")
    assert stuck.cancelled()
    assert time.monotonic() - started < 1


async def test_a_second_signal_cancels_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    monkeypatch.setattr(lifecycle, "FORCED_EXIT_SECONDS", 0.1)
    shutdown = Shutdown(60)
    shutdown.signal()
    assert shutdown.begun.is_set()
    assert not shutdown.forced.is_set()
    stuck = asyncio.create_task(asyncio.sleep(60))
    asyncio.get_running_loop().call_later(0.1, shutdown.signal)
    started = time.monotonic()
    await shutdown.finish(stuck, "stuck work")
    assert stuck.cancelled()
    assert time.monotonic() - started < 1
    await asyncio.sleep(0.3)
    assert exits == [lifecycle.EXIT_FORCED], "and the process ends even if something hangs"
