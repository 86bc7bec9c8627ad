"""``icehook demo``: the whole product at work, in one process, on the embedded defaults.

The command (``cli.main``) prepares the database as every command does, binds three free
loopback ports and serves three apps in one event loop: the service (API and workers, as
``serve --simulate``), the ICE simulator, and a webhook receiver of the demo's own
(``Receiver``) that verifies every delivery with the ``standardwebhooks`` library. ``drive``
then plays a short story through the service's real HTTP API, with the generated API key:

1. a subscription to the receiver, for every job and batch event;
2. a job whose callback ICE drops: nothing arrives, so the sweeper asks ICE and finds it done;
3. a job that fails in ICE and one that succeeds, their callbacks sent twice: each change is
   applied once (copies arriving together are stored once, later ones judged duplicates);
4. a plain job and a batch of three projects.

The simulator's faults are switched between the steps (``PATCH /_sim/settings``). ICE decides a
job's outcome when it is submitted and a callback's drop or copies when it falls due, so each
step waits until the previous step's callbacks have gone out: the story is the same on every
run, however fast the machine.

It prints one line per change it sees (events, judged callbacks, dropped callbacks, verified
webhooks) and, on a terminal, a status line under them; then a table of the jobs. It succeeds
when every job is final and every event in every job's timeline reached the receiver, verified.

Only the demo's own ``Settings`` allow loopback subscribers and sweep after a few seconds;
nothing global changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections import Counter
from collections.abc import Iterable
from typing import TextIO

import httpx

from app.cli.demo.client import call, get
from app.cli.demo.receiver import Receiver
from app.cli.demo.setup import (
    BATCH_PROJECTS,
    FINAL_LOOK_SECONDS,
    OUTPUT_URL,
    POLL_SECONDS,
    SUBSCRIPTION_DESCRIPTION,
    SWEEP_AFTER_SECONDS,
    DemoError,
    Setup,
)
from app.cli.demo.story import Display, Tracked, Watch, short


async def _wait_ready(api: httpx.AsyncClient) -> None:
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if (await api.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(POLL_SECONDS)


async def _simulate(sim: httpx.AsyncClient, **changes: float) -> None:
    await call(sim, "PATCH", "/_sim/settings", changes)


async def _submit_job(watch: Watch, name: str, role: str, say: str) -> Tracked:
    resource = await call(
        watch.api,
        "POST",
        "/v1/jobs",
        {
            "ProjectId": name,
            "OutputMediaConfig": {"MediaURL": OUTPUT_URL.format(name=name)},
            "UserData": {"demo": name},
        },
    )
    watch.submitted += 1
    job = watch.track(resource, role)
    watch.show.line(f"submitted job {short(job.id)} ({name}): {say}")
    return job


async def _submit_batch(watch: Watch, projects: Iterable[str]) -> Tracked:
    ids = list(projects)
    resource = await call(
        watch.api,
        "POST",
        "/v1/batch-jobs",
        {
            "ProjectIds": ids,
            "OutputConfig": {"MediaURL": OUTPUT_URL.format(name="batch-{index}")},
            "UserData": {"demo": "batch"},
        },
    )
    watch.submitted += 1
    batch = watch.track(resource, f"{len(ids)} projects")
    watch.show.line(f"submitted batch {short(batch.id)} of {len(ids)} projects")
    return batch


async def _subscribe(watch: Watch, url: str) -> None:
    """Delete what an earlier demo left (one that was killed), then subscribe the receiver."""
    listed = await get(watch.api, "/v1/subscriptions")
    for old in listed.get("items", []):
        if old.get("description") == SUBSCRIPTION_DESCRIPTION:
            await call(watch.api, "DELETE", f"/v1/subscriptions/{old['id']}")
            watch.show.line(f"deleted subscription {short(old['id'])}, left by an earlier demo")
    created = await call(
        watch.api,
        "POST",
        "/v1/subscriptions",
        {"url": url, "event_types": ["job.*", "batch.*"], "description": SUBSCRIPTION_DESCRIPTION},
    )
    # The secret is the receiver's alone: it is never printed.
    watch.receiver.secret = str(created["secret"])
    watch.subscription_id = str(created["id"])
    watch.show.line(
        f"subscription {short(watch.subscription_id)} created: job.* and batch.* to the receiver"
    )


async def _unsubscribe(watch: Watch) -> None:
    """Delete the demo's subscription (its history stays), so that later runs, or a ``serve``
    on this database, never send webhooks to a receiver that is gone."""
    if watch.subscription_id is None:
        return
    with contextlib.suppress(DemoError, TimeoutError):
        async with asyncio.timeout(5):
            await call(watch.api, "DELETE", f"/v1/subscriptions/{watch.subscription_id}")


async def _play(watch: Watch, setup: Setup) -> None:
    """The story: each step's faults are on only while its callbacks fall due."""
    await _wait_ready(watch.api)
    await _subscribe(watch, setup.receiver_url)

    await _simulate(watch.sim, callback_drop_rate=1.0)
    lost = await _submit_job(
        watch,
        "demo-lost",
        "lost callback",
        f"ICE will drop its callback; the sweeper asks ICE after {SWEEP_AFTER_SECONDS:g} s",
    )
    await watch.until(lambda: bool(watch.called_back[lost.ice_job_id or ""]))

    await _simulate(watch.sim, callback_drop_rate=0.0, callback_duplicate_rate=1.0)
    await _simulate(watch.sim, failure_rate=1.0)
    failing = await _submit_job(
        watch, "demo-fails", "fails; callback x2", "it fails in ICE; its callback comes twice"
    )
    await _simulate(watch.sim, failure_rate=0.0)
    twice = await _submit_job(watch, "demo-twice", "callback x2", "its callback comes twice")
    await watch.until(
        lambda: all(watch.called_back[job.ice_job_id or ""] for job in (failing, twice))
    )

    await _simulate(watch.sim, callback_duplicate_rate=0.0)
    await _submit_job(watch, "demo-plain", "plain", "nothing goes wrong")
    await _submit_batch(watch, BATCH_PROJECTS)
    await watch.until(watch.complete)


def _summarise(watch: Watch) -> list[str]:
    """The table of jobs and the totals, as lines."""
    sub = watch.subscription_id
    header = (
        "job",
        "kind",
        "scenario",
        "status",
        "events",
        "callbacks (judged)",
        "final by",
        "webhooks",
    )
    rows = []
    outcomes: Counter[str] = Counter()
    reached: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    copies = 0
    for job in watch.jobs.values():
        judged = Counter(c["outcome"] for c in job.callbacks())
        outcomes += judged
        # Copies of one callback that arrive together are stored once (app/inbox.py), so ICE's
        # count of callbacks answered 200 can exceed icehook's rows.
        answered = sum(watch.answered[ice_job_id] for ice_job_id in watch.ice_job_ids(job))
        judged["identical copy"] = max(0, answered - judged.total())
        copies += judged["identical copy"]
        callbacks = ", ".join(f"{n} {outcome}" for outcome, n in judged.items() if n)
        callbacks = f"{answered}: {callbacks}" if answered else "0"
        if job.ice_job_id in watch.dropped:
            callbacks += " (dropped by ICE)"
        elif job.batch_id is not None:
            callbacks = "to its batch"
        final_by = next(
            (str(e["source"]) for e in job.events() if e["to_status"] == job.status), "-"
        )
        if job.final:
            reached[final_by] += 1
            statuses[job.status] += 1
        events = job.events()
        verified = sum(watch.delivered_and_verified(job, e) for e in events)
        rows.append(
            (
                short(job.id),
                job.kind,
                job.role,
                job.status,
                str(len(events)),
                callbacks,
                final_by if job.final else "-",
                f"{verified}/{len(events)} verified",
            )
        )
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    ]
    expected = watch.expected_events()
    verified_total = sum(watch.delivered_and_verified(job, e) for job, e in expected)
    requests = sum(watch.receiver.copies.values())
    lines += [
        "",
        f"jobs: {sum(statuses.values())} of {len(watch.jobs)} final"
        + (f" ({_counted(statuses)})" if statuses else "")
        + (f"; reached by {_counted(reached)}" if reached else ""),
        f"callbacks: {outcomes.total() + copies} received, {outcomes.total()} stored and judged"
        + (f" ({_counted(outcomes)})" if outcomes else "")
        + (
            f", {_plural(copies, 'identical copy', 'identical copies')} stored once"
            if copies
            else ""
        )
        + f"; {len(watch.dropped)} dropped by ICE",
        f"webhooks: {verified_total} of {len(expected)} events delivered and verified "
        f"({_plural(requests, 'request')} to the receiver)"
        + (f"; subscription {short(sub)}" if sub else ""),
    ]
    return lines


def _show_summary(watch: Watch, show: Display) -> None:
    show.close()
    show.plain()
    for line in _summarise(watch):
        show.plain(line)


def _plural(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


def _counted(counts: Counter[str]) -> str:
    return ", ".join(f"{n} {what}" for what, n in counts.most_common())


async def drive(
    setup: Setup, receiver: Receiver, *, time_limit: float, out: TextIO = sys.stdout
) -> int:
    """Play the story through the API until it is complete or ``time_limit`` seconds pass;
    print the summary; 0 when complete, else 1 with one line on stderr saying what is missing."""
    show = Display(out)
    show.plain(
        "icehook demo: the service, the ICE simulator and a webhook receiver, "
        f"on the {setup.database}"
    )
    show.plain(f"  API       {setup.api_url}  (API key for this run: {setup.api_key})")
    show.plain(
        f"  ICE       {setup.simulator_url}  "
        "(the simulator; GET /_sim/callbacks shows what it sent)"
    )
    show.plain(f"  receiver  {setup.receiver_url}  (verifies every webhook with standardwebhooks)")
    show.plain(f"  try: curl -s {setup.api_url}/v1/jobs -H 'Authorization: Bearer {setup.api_key}'")
    show.plain()
    headers = {"Authorization": f"Bearer {setup.api_key}"}
    async with (
        httpx.AsyncClient(
            base_url=setup.api_url, headers=headers, timeout=10, trust_env=False
        ) as api,
        httpx.AsyncClient(base_url=setup.simulator_url, timeout=10, trust_env=False) as sim,
    ):
        watch = Watch(api, sim, receiver, show)
        problem: str | None = None
        try:
            try:
                async with asyncio.timeout(time_limit):
                    await _play(watch, setup)
            except TimeoutError:
                problem = f"not done within {time_limit:g} s"
                with contextlib.suppress(DemoError, TimeoutError):
                    async with asyncio.timeout(FINAL_LOOK_SECONDS):
                        await watch.look()
            except DemoError as exc:
                problem = str(exc)
            except asyncio.CancelledError:  # SIGINT or SIGTERM: show how far it got
                _show_summary(watch, show)
                raise
            _show_summary(watch, show)
        finally:
            show.close()
            await _unsubscribe(watch)
    missing = watch.missing()
    if problem is None and not missing:
        show.plain(
            f"\nicehook demo: done in {show.elapsed():.1f} s: every job final, "
            "every event delivered and verified"
        )
        return 0
    print(f"icehook demo: {'; '.join([*filter(None, [problem]), *missing])}", file=sys.stderr)
    return 1
