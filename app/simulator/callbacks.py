"""Completion callbacks, delivered the way ICE delivers them, with optional faults.

ICE's rules (docs/ice.md, Callbacks): an HTTP POST of a JSON envelope to the job's
``NotifyAddress``; only HTTP 200 within 3 seconds counts as delivered (the body is ignored);
after a failure ICE waits 1 second and tries again, at most twice more, then drops the
message. With an AuthKey, each attempt carries ``X-ICE-TIMESTAMP`` and ``X-ICE-SIGNATURE``
(md5 of url|timestamp|key).

On top of that, the faults a receiver must survive, read from the settings current when the
callback falls due: dropped callbacks, copies (``callback_copies`` independent deliveries of one
body, and one more for a duplicate) and a random delay before each delivery's first attempt,
which also reorders callbacks.

Every attempt, and every callback dropped or not sendable, is written to a bounded log that
``GET /_sim/callbacks`` shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from app.simulator.settings import SimulatorSettings
from app.simulator.state import Batch, Clock, Job, ice_time, iso_time, parse_json_object

logger = logging.getLogger(__name__)

ATTEMPTS = 3  # the first try and ICE's two retries
RETRY_PAUSE_SECONDS = 1.0
ANSWER_TIMEOUT_SECONDS = 3.0
# After a 200 the body is read (and ignored) so the connection can be reused, but never for long.
DRAIN_SECONDS = 1.0
# Concurrency bounds: thousands of due callbacks must not open thousands of sockets, and one
# slow receiver may fill only its own share, so it never holds up callbacks to anybody else.
MAX_IN_FLIGHT = 512
MAX_IN_FLIGHT_PER_RECEIVER = 64
LOG_LIMIT = 100_000
MNS_PREFIX = "ice-callback"
# ICE's own User-Agent is undocumented; this one lets a receiver's logs tell simulated calls.
USER_AGENT = "icehook-ice-simulator"


@dataclass(frozen=True)
class Callback:
    """One event to deliver; its body is fixed, identical on every attempt and duplicate."""

    job_id: str
    event_type: str
    status: str  # the Status it reports
    url: str  # the NotifyAddress, as submitted
    body: bytes


@dataclass(frozen=True)
class Attempt:
    """One line of the callback log."""

    seq: int
    job_id: str
    event_type: str
    status_sent: str
    attempt: int  # 1..3; 0 when nothing was sent (dropped, or no HTTP address)
    delivery: int  # 1, then 2, 3... for the further copies of the same body
    url: str
    response_status: int | None
    error: str | None
    at: float
    duration_ms: float | None

    def public(self) -> dict[str, object]:
        return {
            "seq": self.seq,
            "job_id": self.job_id,
            "event_type": self.event_type,
            "status_sent": self.status_sent,
            "attempt": self.attempt,
            "delivery": self.delivery,
            "url": self.url,
            "response_status": self.response_status,
            "error": self.error,
            "at": iso_time(self.at),
            "duration_ms": self.duration_ms,
        }


class CallbackLog:
    """The last ``limit`` attempts, oldest first."""

    def __init__(self, limit: int = LOG_LIMIT) -> None:
        self._entries: deque[Attempt] = deque(maxlen=limit)
        self._seq = 0

    def record(
        self,
        callback: Callback,
        *,
        attempt: int,
        delivery: int,
        at: float,
        response_status: int | None = None,
        error: str | None = None,
        duration_ms: float | None = None,
    ) -> None:
        self._seq += 1
        self._entries.append(
            Attempt(
                seq=self._seq,
                job_id=callback.job_id,
                event_type=callback.event_type,
                status_sent=callback.status,
                attempt=attempt,
                delivery=delivery,
                url=callback.url,
                response_status=response_status,
                error=error,
                at=at,
                duration_ms=duration_ms,
            )
        )

    def entries(self, job_id: str | None = None, since: datetime | None = None) -> list[Attempt]:
        """Entries for ``job_id`` (when given) made at or after ``since`` (when given)."""
        return [
            entry
            for entry in self._entries
            if (job_id is None or entry.job_id == job_id)
            # Compared as the datetime that "at" shows, so passing a shown "at" back as
            # "since" finds that very entry (a float would differ below the microsecond).
            and (since is None or datetime.fromtimestamp(entry.at, UTC) >= since)
        ]


def notify_address(user_data: str | None) -> str | None:
    """The NotifyAddress in a UserData string, if it has one."""
    data = parse_json_object(user_data) if user_data else None
    address = data.get("NotifyAddress") if data else None
    return address if isinstance(address, str) and address.strip() else None


def _envelope(event_type: str, user_id: int, event_time: float, body: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "EventType": event_type,
            "UserId": user_id,
            "EventTime": ice_time(event_time),
            "MessageBody": body,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    ).encode()


def job_callback(job: Job, user_id: int, failure_word: str = "Failed") -> Callback | None:
    """The ProduceMediaComplete event of a job (or sub-job), if it has a NotifyAddress.
    ``failure_word`` is the Status a failed job's callback says (``Failed`` or ``Fail``)."""
    url = notify_address(job.user_data)
    if url is None:
        return None
    body: dict[str, object] = {
        # "Failed" as GetMediaProducingJob says it, or "Fail" as one account saw it (docs/ice.md,
        # Callbacks: unconfirmed): the callback_failure_status setting.
        "Status": failure_word if job.final_status == "Failed" else job.final_status,
        "JobId": job.job_id,
        "MediaId": job.media_id,
        "ProjectId": job.project_id,
        "ErrorCode": job.code,
        "ErrorMessage": job.message,
    }
    if job.final_status == "Success":
        body["MediaURL"] = job.media_url  # documented as present on success only
    if job.user_data is not None:
        body["UserData"] = job.user_data  # the string as submitted, not an object
    return Callback(
        job_id=job.job_id,
        event_type="ProduceMediaComplete",
        status=job.final_status,
        url=url,
        body=_envelope("ProduceMediaComplete", user_id, job.done_at, body),
    )


def batch_callback(batch: Batch, user_id: int) -> Callback | None:
    """The BatchProduceMediaComplete event of a batch, if it has a NotifyAddress."""
    url = notify_address(batch.user_data)
    if url is None:
        return None
    body: dict[str, object] = {"Status": batch.final_status, "JobId": batch.job_id}
    if batch.user_data is not None:
        body["UserData"] = batch.user_data
    return Callback(
        job_id=batch.job_id,
        event_type="BatchProduceMediaComplete",
        status=batch.final_status,
        url=url,
        body=_envelope("BatchProduceMediaComplete", user_id, batch.done_at, body),
    )


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # e.g. an unclosed "[" or a port out of range
        return False


class _ReceiverSlots:
    """A semaphore per receiver (scheme, host and port), dropped when nobody uses it."""

    def __init__(self, per_receiver: int) -> None:
        self._per_receiver = per_receiver
        self._slots: dict[str, tuple[asyncio.Semaphore, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, url: str) -> AsyncIterator[None]:
        parts = urlsplit(url)
        receiver = f"{parts.scheme}://{parts.netloc}"
        semaphore, users = self._slots.get(receiver, (asyncio.Semaphore(self._per_receiver), 0))
        self._slots[receiver] = (semaphore, users + 1)
        try:
            async with semaphore:
                yield
        finally:
            semaphore, users = self._slots[receiver]
            if users == 1:
                del self._slots[receiver]
            else:
                self._slots[receiver] = (semaphore, users - 1)


class CallbackDispatcher:
    """Sends callbacks when they fall due; owns their timers and delivery tasks.

    ``schedule`` may be called before ``start``; such callbacks are armed when it starts.
    """

    def __init__(
        self,
        *,
        settings: Callable[[], SimulatorSettings],
        log: CallbackLog,
        clock: Clock,
        rng: random.Random,
        max_in_flight: int = MAX_IN_FLIGHT,
        max_in_flight_per_receiver: int = MAX_IN_FLIGHT_PER_RECEIVER,
    ) -> None:
        self._settings = settings
        self._log = log
        self._clock = clock
        self._rng = rng
        self._max_in_flight = max_in_flight
        self._max_in_flight_per_receiver = max_in_flight_per_receiver
        # Made in start(), inside the loop that serves the app.
        self._in_flight: asyncio.Semaphore | None = None
        self._receivers: _ReceiverSlots | None = None
        self._client: httpx.AsyncClient | None = None
        self._pending: list[tuple[float, Callback]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    def schedule(self, due: float, callback: Callback) -> None:
        """Send ``callback`` at wall-clock time ``due`` (or now, if that has passed)."""
        if self._client is None:
            self._pending.append((due, callback))
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, due - self._clock())
        # asyncio's own timer heap does the waiting: no task per waiting callback.
        holder: list[asyncio.TimerHandle] = []

        def fire() -> None:
            self._timers.discard(holder[0])
            self._fire(callback)

        holder.append(loop.call_later(delay, fire))
        self._timers.add(holder[0])

    def start(self, client: httpx.AsyncClient) -> None:
        self._client = client
        self._in_flight = asyncio.Semaphore(self._max_in_flight)
        self._receivers = _ReceiverSlots(self._max_in_flight_per_receiver)
        pending, self._pending = self._pending, []
        for due, callback in pending:
            self.schedule(due, callback)

    async def aclose(self) -> None:
        """Cancel every timer and delivery; callbacks not yet delivered are lost, as in ICE."""
        self._client = None
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def in_flight(self) -> int:
        """Deliveries started and not finished (waiting, sending or between attempts)."""
        return len(self._tasks)

    def _fire(self, callback: Callback) -> None:
        now = self._clock()
        if not _is_http_url(callback.url):
            why = (
                "NotifyAddress is an MNS queue; the simulator delivers HTTP callbacks only"
                if callback.url.startswith(MNS_PREFIX)
                else "NotifyAddress is not an http(s) URL; nothing was sent"
            )
            self._log.record(callback, attempt=0, delivery=1, at=now, error=why)
            return
        # The settings current now, not those of when the job was submitted.
        settings = self._settings()
        if self._rng.random() < settings.callback_drop_rate:
            self._log.record(
                callback, attempt=0, delivery=1, at=now, error="dropped by fault injection"
            )
            return
        duplicate = self._rng.random() < settings.callback_duplicate_rate
        deliveries = settings.callback_copies + (1 if duplicate else 0)
        for delivery in range(1, deliveries + 1):
            delay = self._rng.uniform(0.0, settings.callback_delay_seconds)
            task = asyncio.create_task(
                self._deliver(callback, delivery, delay),
                name=f"ice-callback-{callback.job_id}-{delivery}",
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, callback: Callback, delivery: int, delay: float) -> None:
        try:
            if delay > 0:
                await asyncio.sleep(delay)
            for attempt in range(1, ATTEMPTS + 1):
                if await self._attempt(callback, delivery, attempt):
                    return
                if attempt < ATTEMPTS:
                    await asyncio.sleep(RETRY_PAUSE_SECONDS)
        except Exception:
            # A bug must not vanish silently in a task nobody awaits.
            logger.exception("callback delivery for job %s failed", callback.job_id)

    async def _attempt(self, callback: Callback, delivery: int, attempt: int) -> bool:
        """One POST; True when the receiver answered 200 in time."""
        client, receivers, in_flight = self._client, self._receivers, self._in_flight
        if client is None or receivers is None or in_flight is None:  # shutting down
            return True
        # Receiver first, then the global slot: a task waiting for a busy receiver must not
        # sit on a global slot that a callback to somebody else could use.
        async with receivers.hold(callback.url), in_flight:
            headers = {"content-type": "application/json", "user-agent": USER_AGENT}
            settings = self._settings()
            auth_key = settings.callback_auth_key
            at = self._clock()
            if auth_key and settings.callback_signing == "signed":
                # Re-signed on every attempt, with the key configured at that moment.
                timestamp = str(int(at))
                headers["x-ice-timestamp"] = timestamp
                headers["x-ice-signature"] = ice_signature(callback.url, timestamp, auth_key)
            started = time.perf_counter()
            response: httpx.Response | None = None
            error: str | None = None
            try:
                request = client.build_request(
                    "POST", callback.url, content=callback.body, headers=headers
                )
                async with asyncio.timeout(ANSWER_TIMEOUT_SECONDS):
                    response = await client.send(request, stream=True)
            except TimeoutError:
                error = f"no answer within {ANSWER_TIMEOUT_SECONDS:g} s"
            # AttributeError: anyio asks a connection the receiver has just dropped for its
            # peer, and uvloop no longer has its socket (uvloop#560). A failed attempt too.
            except (httpx.HTTPError, httpx.InvalidURL, AttributeError) as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            status = None if response is None else response.status_code
            if response is not None:
                if status != 200:
                    error = f"answered HTTP {status}, not 200"
                await _drain(response)
        self._log.record(
            callback,
            attempt=attempt,
            delivery=delivery,
            at=at,
            response_status=status,
            error=error,
            duration_ms=duration_ms,
        )
        return error is None


def ice_signature(url: str, timestamp: str, auth_key: str) -> str:
    """``X-ICE-SIGNATURE`` as ICE documents it: md5 hex of ``url|timestamp|AuthKey``
    (docs/ice.md, Callback authentication). Written here rather than taken from icehook's
    verifier, so that a wrong assumption in the verifier can show in a test."""
    signed = f"{url}|{timestamp}|{auth_key}".encode()
    return hashlib.md5(signed, usedforsecurity=False).hexdigest()


async def _drain(response: httpx.Response) -> None:
    """Read and ignore the body (ICE ignores it), so the connection can serve the next one."""
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in response.aiter_raw():
                pass
    except (TimeoutError, httpx.HTTPError):
        pass
    finally:
        await response.aclose()
