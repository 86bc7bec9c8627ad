"""``icehook demo``: the whole product at work, in one process, on the embedded defaults.

The command (``app/cli.py``) prepares the database as every command does, binds three free
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
import dataclasses
import ipaddress
import logging
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import httpx
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from app.api import new_api_key
from app.errors import IcehookError
from app.models import TERMINAL_STATUSES
from app.settings import Settings
from app.simulator import SimulatorSettings
from app.simulator.settings import new_access_key

DEFAULT_TIMEOUT_SECONDS = 90.0
# Short, so that the sweeper's work shows within the demo; the service's default is 60 s.
SWEEP_AFTER_SECONDS = 3.0
# Every simulated job runs this long, less than the sweep interval: a job whose callback
# arrives is finished by the callback, and only the one whose callback is dropped is swept.
JOB_SECONDS = 2.0
# The receiver answers at once; should an attempt still fail, the next comes soon.
RETRY_SCHEDULE = (1.0, 2.0, 5.0, 10.0)
RECEIVER_PATH = "/hook"
RECEIVER_NET = ipaddress.ip_network("127.0.0.1/32")
SUBSCRIPTION_DESCRIPTION = "icehook demo receiver"
POLL_SECONDS = 0.25
FINAL_LOOK_SECONDS = 10.0  # the last look at the timelines, after the time limit
OUTPUT_URL = "https://bucket.oss-cn-shanghai.aliyuncs.com/icehook-demo/{name}.mp4"
BATCH_PROJECTS = ("demo-batch-1", "demo-batch-2", "demo-batch-3")
PLANNED = 5  # submissions: four jobs and one batch
NOISY_LOGGERS = ("app", "uvicorn", "alembic")


class DemoError(IcehookError):
    """The service or the simulator answered the demo in a way it cannot go on from."""


# -- setting up ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Setup:
    """Where the demo's three servers listen and the keys generated for this run."""

    api_url: str
    simulator_url: str
    receiver_url: str
    database: str  # what the database is, for people: never a URL (it may hold a password)
    api_key: str = field(repr=False)
    access_key_id: str
    access_key_secret: str = field(repr=False)
    callback_auth_key: str = field(repr=False)


def make_setup(*, api_url: str, simulator_url: str, receiver_url: str, database: str) -> Setup:
    """The demo's addresses, with a fresh API key, AccessKey pair and callback AuthKey."""
    access_key_id, access_key_secret = new_access_key("demo")
    return Setup(
        api_url=api_url,
        simulator_url=simulator_url,
        receiver_url=receiver_url + RECEIVER_PATH,
        database=database,
        api_key=new_api_key(),
        access_key_id=access_key_id,
        access_key_secret=access_key_secret,
        # ICE's console allows 1-32 letters and digits for a callback AuthKey.
        callback_auth_key=secrets.token_hex(16),
    )


def describe_database(settings: Settings) -> str:
    if settings.database_url is None:
        return f"embedded PostgreSQL under {settings.data_dir}"
    return "PostgreSQL at ICEHOOK_DATABASE_URL"


def service_settings(settings: Settings, setup: Setup) -> Settings:
    """The configured settings, made the demo's own: its simulator as ICE, its key, its
    address for ICE's callbacks, loopback subscribers allowed and a short sweep interval."""
    return dataclasses.replace(
        settings,
        public_url=setup.api_url,
        api_keys=(setup.api_key,),
        ice_endpoint=setup.simulator_url,
        access_key_id=setup.access_key_id,
        access_key_secret=setup.access_key_secret,
        security_token=None,
        callback_auth_keys=(setup.callback_auth_key,),
        sweep_after_seconds=SWEEP_AFTER_SECONDS,
        delivery_retry_schedule=RETRY_SCHEDULE,
        allowed_webhook_nets=(*settings.allowed_webhook_nets, RECEIVER_NET),
    )


def simulator_settings(setup: Setup) -> SimulatorSettings:
    """The simulator faultless at first; ``drive`` switches faults on and off as it goes."""
    return SimulatorSettings(
        access_keys={setup.access_key_id: setup.access_key_secret},
        job_seconds=JOB_SECONDS,
        callback_auth_key=setup.callback_auth_key,
    )


def quiet_logs() -> None:
    """Leave the terminal to the demo's own lines: the service logs warnings and errors only."""
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


# -- the receiver ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Arrival:
    """One webhook request the receiver got."""

    webhook_id: str
    event_type: str
    job_id: str
    verified: bool
    error: str | None


class Receiver:
    """The demo's subscriber: verifies each request with the subscription's secret, answers
    200 when it passes and 401 when not, and remembers every ``webhook-id`` it saw."""

    def __init__(self) -> None:
        self.secret: str | None = None  # known once the subscription exists
        self.arrivals: dict[str, Arrival] = {}  # by webhook-id; a verified copy wins
        self.copies: Counter[str] = Counter()  # requests per webhook-id
        self.unshown: list[tuple[Arrival, int]] = []  # each request and its copy number

    def verified(self, webhook_id: str) -> Arrival | None:
        arrival = self.arrivals.get(webhook_id)
        return arrival if arrival is not None and arrival.verified else None

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        webhook_id = headers.get("webhook-id", "")
        error: str | None = None
        payload: Any = None
        if self.secret is None:
            error = "no subscription yet"
        else:
            try:
                payload = Webhook(self.secret).verify(body, headers)
            except (WebhookVerificationError, ValueError) as exc:
                error = f"verification failed: {exc}"
        data = payload.get("data") if isinstance(payload, dict) else None
        arrival = Arrival(
            webhook_id=webhook_id,
            event_type=str(payload.get("type", "?")) if isinstance(payload, dict) else "?",
            job_id=str(data.get("id", "?")) if isinstance(data, dict) else "?",
            verified=error is None,
            error=error,
        )
        self.copies[webhook_id] += 1
        if webhook_id not in self.arrivals or arrival.verified:
            self.arrivals[webhook_id] = arrival
        self.unshown.append((arrival, self.copies[webhook_id]))
        if error is not None:
            return PlainTextResponse(error, status_code=401)
        return PlainTextResponse("verified")


def create_receiver_app(receiver: Receiver) -> Starlette:
    return Starlette(routes=[Route(RECEIVER_PATH, receiver.handle, methods=["POST"])])


# -- showing what happens --------------------------------------------------------------------


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


# -- following the jobs ---------------------------------------------------------------------


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
            missing.append(f"jobs not final: {_listed(open_jobs)}")
        unknown = [
            short(j.id)
            for j in self.jobs.values()
            if j.kind == "batch" and j.final and not j.sub_jobs_known
        ]
        if unknown:
            missing.append(f"sub-jobs not seen of batch {_listed(unknown)}")
        unread = [short(j.id) for j in self.jobs.values() if "events" not in j.timeline]
        if unread:
            missing.append(f"timelines not read: {_listed(unread)}")
        absent = [
            f"{_event_type(job, event)} of {short(job.id)}"
            for job, event in self.expected_events()
            if not self.delivered_and_verified(job, event)
        ]
        if absent:
            missing.append(f"events not delivered and verified: {_listed(absent)}")
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
        wanted = _event_type(job, event)
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
            and arrival.event_type == _event_type(job, event)
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
        job.timeline = await _get(self.api, f"/v1/jobs/{job.id}")
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
        resource = await _get(self.api, f"/v1/batch-jobs/{batch.id}")
        for sub in resource.get("sub_jobs", []):
            if sub["id"] not in self.jobs:
                job = self.track(sub, f"{sub.get('project_id')} of batch {short(batch.id)}")
                self.show.line(f"batch {short(batch.id)} has sub-job {short(job.id)}")
        # The batch is final, so ICE has listed every sub-job and icehook recorded them.
        batch.sub_jobs_known = True

    async def _look_at_simulator(self) -> None:
        log = await _get(self.sim, "/_sim/callbacks")
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


def _event_type(job: Tracked, event: Mapping[str, Any]) -> str:
    return f"{job.kind}.{event['to_status']}"


def _listed(items: list[str], most: int = 4) -> str:
    shown = ", ".join(items[:most])
    return shown if len(items) <= most else f"{shown} and {len(items) - most} more"


# -- talking to the service and the simulator --------------------------------------------------


async def _get(client: httpx.AsyncClient, path: str) -> dict[str, Any]:
    return await _call(client, "GET", path)


async def _call(
    client: httpx.AsyncClient, method: str, path: str, body: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """One request; ``DemoError`` with a clear line for any failure."""
    try:
        response = await client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        raise DemoError(f"{method} {client.base_url}{path} failed: {exc!r}") from None
    if response.status_code == 204:
        return {}
    if not response.is_success:
        raise DemoError(
            f"{method} {client.base_url}{path} answered {response.status_code}: "
            f"{response.text[:300]}"
        )
    answer = response.json()
    return answer if isinstance(answer, dict) else {"items": answer}


async def _wait_ready(api: httpx.AsyncClient) -> None:
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if (await api.get("/readyz")).status_code == 200:
                return
        await asyncio.sleep(POLL_SECONDS)


async def _simulate(sim: httpx.AsyncClient, **changes: float) -> None:
    await _call(sim, "PATCH", "/_sim/settings", changes)


async def _submit_job(watch: Watch, name: str, role: str, say: str) -> Tracked:
    resource = await _call(
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
    resource = await _call(
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
    listed = await _get(watch.api, "/v1/subscriptions")
    for old in listed.get("items", []):
        if old.get("description") == SUBSCRIPTION_DESCRIPTION:
            await _call(watch.api, "DELETE", f"/v1/subscriptions/{old['id']}")
            watch.show.line(f"deleted subscription {short(old['id'])}, left by an earlier demo")
    created = await _call(
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
            await _call(watch.api, "DELETE", f"/v1/subscriptions/{watch.subscription_id}")


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


# -- the summary ----------------------------------------------------------------------------


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


# -- the whole run -----------------------------------------------------------------------------


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
