"""What the demo shows: a line per change it sees, a status line, the jobs it tracks."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx

from app.cli.demo.client import get
from app.cli.demo.receiver import Arrival, Receiver
from app.cli.demo.setup import (
    PLANNED,
    POLL_SECONDS,
)
from app.core.statuses import TERMINAL_STATUSES


class Display:
    """Lines on stdout, each with the seconds since the start; on a terminal, a status line
    kept under them."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._tty = out.isatty()
        self._started = time.monotonic()
        self._status = ""

    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def line(self, text: str) -> None:
        self._clear()
        self._out.write(f"{self.elapsed():5.1f}s  {text}\n")
        self._draw()

    def plain(self, text: str = "") -> None:
        """A line without a time (the header, the summary)."""
        self._clear()
        self._out.write(text + "\n")
        self._draw()

    def status(self, text: str) -> None:
        if self._tty:
            self._clear()
            self._status = text
            self._draw()

    def close(self) -> None:
        self._clear()
        self._status = ""

    def _clear(self) -> None:
        if self._tty and self._status:
            self._out.write("\r\x1b[K")
        self._out.flush()

    def _draw(self) -> None:
        if self._tty and self._status:
            self._out.write(f"{self.elapsed():5.1f}s  ({self._status})")
        self._out.flush()


def short(identifier: str | None) -> str:
    return (identifier or "?").replace("-", "")[:8]


@dataclass
class Tracked:
    """A job (or batch, or a batch's sub-job) the demo follows, with its last timeline."""

    id: str
    kind: str
    role: str
    ice_job_id: str | None
    timeline: dict[str, Any] = field(default_factory=dict)
    sub_jobs_known: bool = False  # a batch: all of its sub-jobs are tracked
    shown_events: set[int] = field(default_factory=set)
    shown_callbacks: set[int] = field(default_factory=set)

    @property
    def status(self) -> str:
        return str(self.timeline.get("status", "submitting"))

    @property
    def final(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def events(self) -> list[dict[str, Any]]:
        return list(self.timeline.get("events", []))

    def callbacks(self) -> list[dict[str, Any]]:
        return list(self.timeline.get("callbacks", []))

    @property
    def batch_id(self) -> str | None:
        batch_id = self.timeline.get("batch_id")
        return None if batch_id is None else str(batch_id)

    def deliveries(self, subscription_id: str) -> list[dict[str, Any]]:
        return [
            d
            for d in self.timeline.get("deliveries", [])
            if d.get("subscription_id") == subscription_id
        ]


class Watch:
    """Looks at the service and the simulator and prints what changed since the last look."""

    def __init__(
        self, api: httpx.AsyncClient, sim: httpx.AsyncClient, receiver: Receiver, show: Display
    ) -> None:
        self.api = api
        self.sim = sim
        self.receiver = receiver
        self.show = show
        self.jobs: dict[str, Tracked] = {}
        self.subscription_id: str | None = None
        self.submitted = 0
        self.called_back: Counter[str] = Counter()  # ICE JobId -> callbacks ICE sent or dropped
        self.answered: Counter[str] = Counter()  # ICE JobId -> callbacks icehook answered 200
        self.dropped: set[str] = set()  # ICE JobIds whose callback ICE dropped
        self._sim_seen: set[int] = set()

    def track(self, resource: Mapping[str, Any], role: str) -> Tracked:
        job = Tracked(str(resource["id"]), str(resource["kind"]), role, resource.get("ice_job_id"))
        job.timeline = dict(resource)
        self.jobs[job.id] = job
        return job

    async def look(self) -> None:
        """One look at everything; prints each change once.

        Webhooks that had arrived before the look began are shown after the jobs' events:
        each was sent after its event was committed, so the look has seen that event.
        """
        arrived, self.receiver.unshown = self.receiver.unshown, []
        await self._look_at_simulator()
        for job in list(self.jobs.values()):
            if not self._settled(job):
                await self._look_at_job(job)
        for job in [j for j in self.jobs.values() if "events" not in j.timeline]:
            await self._look_at_job(job)  # a batch's sub-jobs, found just now
        for arrival, copy in arrived:
            self._show_arrival(arrival, copy)
        self.show.status(self.progress())

    async def until(self, done: Callable[[], bool]) -> None:
        """Look again and again until ``done()`` (the caller's time limit stops it)."""
        while True:
            await self.look()
            if done():
                return
            await asyncio.sleep(POLL_SECONDS)

    def complete(self) -> bool:
        return self.submitted == PLANNED and not self.missing()

    def progress(self) -> str:
        final = sum(job.final for job in self.jobs.values())
        expected = self.expected_events()
        verified = sum(self.delivered_and_verified(job, event) for job, event in expected)
        return (
            f"{final} of {len(self.jobs)} jobs final, "
            f"{verified} of {len(expected)} events delivered and verified"
        )

    def missing(self) -> list[str]:
        """What keeps the demo from being complete, one phrase each; empty when complete."""
        missing = []
        if self.submitted < PLANNED:
            missing.append(f"{PLANNED - self.submitted} of {PLANNED} submissions not made")
        open_jobs = [f"{short(j.id)} ({j.status})" for j in self.jobs.values() if not j.final]
        if open_jobs:
            missing.append(f"jobs not final: {listed(open_jobs)}")
        unknown = [
            short(j.id)
            for j in self.jobs.values()
            if j.kind == "batch" and j.final and not j.sub_jobs_known
        ]
        if unknown:
            missing.append(f"sub-jobs not seen of batch {listed(unknown)}")
        unread = [short(j.id) for j in self.jobs.values() if "events" not in j.timeline]
        if unread:
            missing.append(f"timelines not read: {listed(unread)}")
        absent = [
            f"{event_type_of(job, event)} of {short(job.id)}"
            for job, event in self.expected_events()
            if not self.delivered_and_verified(job, event)
        ]
        if absent:
            missing.append(f"events not delivered and verified: {listed(absent)}")
        return missing

    # -- checks --------------------------------------------------------------------------

    def expected_events(self) -> list[tuple[Tracked, dict[str, Any]]]:
        return [(job, event) for job in self.jobs.values() for event in job.events()]

    def ice_job_ids(self, job: Tracked) -> set[str]:
        """The ICE JobIds whose callbacks go to ``job``'s address: a batch's include its
        sub-jobs' (ICE sends theirs to the batch's NotifyAddress)."""
        ids = {job.ice_job_id} if job.ice_job_id else set()
        if job.kind == "batch":
            ids |= {
                j.ice_job_id for j in self.jobs.values() if j.batch_id == job.id and j.ice_job_id
            }
        elif job.batch_id is not None:
            ids.clear()
        return ids

    def _delivery(self, job: Tracked, event: Mapping[str, Any]) -> dict[str, Any] | None:
        """The event's delivery to the demo's subscription. A job reaches each status once,
        so its event type names the event."""
        if self.subscription_id is None:
            return None
        wanted = event_type_of(job, event)
        for delivery in job.deliveries(self.subscription_id):
            if delivery.get("event_type") == wanted:
                return delivery
        return None

    def delivered_and_verified(self, job: Tracked, event: Mapping[str, Any]) -> bool:
        delivery = self._delivery(job, event)
        if delivery is None or delivery.get("status") != "delivered":
            return False
        arrival = self.receiver.verified(str(delivery.get("event_id")))
        return (
            arrival is not None
            and arrival.event_type == event_type_of(job, event)
            and arrival.job_id == job.id
        )

    def _settled(self, job: Tracked) -> bool:
        """Nothing more can change that the demo waits for: no need to look again."""
        return (
            "events" in job.timeline  # its own timeline, not only a row in a list
            and job.final
            and (job.kind != "batch" or job.sub_jobs_known)
            and all(self.delivered_and_verified(job, event) for event in job.events())
        )

    # -- looking -------------------------------------------------------------------------

    async def _look_at_job(self, job: Tracked) -> None:
        job.timeline = await get(self.api, f"/v1/jobs/{job.id}")
        job.ice_job_id = job.timeline.get("ice_job_id") or job.ice_job_id
        for event in job.events():
            if event["id"] not in job.shown_events:
                job.shown_events.add(event["id"])
                note = " (the sweeper asked ICE)" if event["source"] == "sweep" else ""
                self.show.line(
                    f"{job.kind} {short(job.id)}  {event['from_status']} -> {event['to_status']}"
                    f"  by {event['source']}{note}"
                )
        for callback in job.callbacks():
            if callback["id"] not in job.shown_callbacks and callback["outcome"] != "pending":
                job.shown_callbacks.add(callback["id"])
                about = f"{job.kind} {short(job.id)}"
                if callback.get("ice_job_id") not in (None, job.ice_job_id):
                    about = f"{self._name_of(str(callback['ice_job_id']))} of {about}"
                self.show.line(
                    f"callback {callback.get('ice_status') or '?'} for {about} received, "
                    f"judged {callback['outcome']}"
                )
        if job.kind == "batch" and job.final and not job.sub_jobs_known:
            await self._look_at_sub_jobs(job)

    async def _look_at_sub_jobs(self, batch: Tracked) -> None:
        resource = await get(self.api, f"/v1/batch-jobs/{batch.id}")
        for sub in resource.get("sub_jobs", []):
            if sub["id"] not in self.jobs:
                job = self.track(sub, f"{sub.get('project_id')} of batch {short(batch.id)}")
                self.show.line(f"batch {short(batch.id)} has sub-job {short(job.id)}")
        # The batch is final, so ICE has listed every sub-job and icehook recorded them.
        batch.sub_jobs_known = True

    async def _look_at_simulator(self) -> None:
        log = await get(self.sim, "/_sim/callbacks")
        for entry in log.get("callbacks", []):
            if entry["seq"] in self._sim_seen:
                continue
            self._sim_seen.add(entry["seq"])
            ice_job_id = str(entry["job_id"])
            self.called_back[ice_job_id] += 1
            if entry["response_status"] == 200:
                self.answered[ice_job_id] += 1
                if entry["delivery"] > 1:
                    self.show.line(
                        f"ICE sent its callback for {self._name_of(ice_job_id)} again "
                        f"(copy {entry['delivery']}), icehook answered 200"
                    )
            if entry["attempt"] == 0:
                self.dropped.add(ice_job_id)
                self.show.line(
                    f"ICE dropped its callback for {self._name_of(ice_job_id)} "
                    f"({entry.get('error')})"
                )

    def _name_of(self, ice_job_id: str) -> str:
        for job in self.jobs.values():
            if job.ice_job_id == ice_job_id:
                return f"{job.kind} {short(job.id)}"
        return "a sub-job"  # of a batch not yet confirmed: icehook has no row for it yet

    def _show_arrival(self, arrival: Arrival, copy: int) -> None:
        again = f" (copy {copy})" if copy > 1 else ""
        judged = "verified" if arrival.verified else f"NOT verified: {arrival.error}"
        self.show.line(
            f"webhook {arrival.event_type} for {short(arrival.job_id)} reached the receiver"
            f"{again}, {judged}"
        )


def event_type_of(job: Tracked, event: Mapping[str, Any]) -> str:
    return f"{job.kind}.{event['to_status']}"


def listed(items: list[str], most: int = 4) -> str:
    shown = ", ".join(items[:most])
    return shown if len(items) <= most else f"{shown} and {len(items) - most} more"
