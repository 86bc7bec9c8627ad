"""ICE's callbacks: kept at once, confirmed against ICE later.

``accept_callback`` (the HTTP edge) stores the raw body and headers, whatever they say, and
answers only after the commit; it never calls ICE. Callbacks that arrive together are
stored together (``Intake``: one transaction, so one disk flush, for all of them).

A callback is a hint: ``process`` (a worker step) leases the jobs that have pending
callbacks, asks ICE once per job for all of that job's callbacks, applies ICE's answer,
and judges each callback:

- ``applied``: confirming it moved the job forward;
- ``duplicate``: the job already had the status it reports;
- ``stale``: the job is already past the status it reports;
- ``rejected``: ICE contradicts it, or its token or signature is wrong (never applied);
- ``unmatched``: a valid token, but a JobId that is not that token's job;
- ``unrecognized``: a Status icehook does not know (ICE's answer is applied all the same);
- ``ignored`` / ``malformed``: an EventType icehook does not act on / not ICE's envelope.

When a job is already at or past what every pending callback reports, no ICE call is
made at all: this is what makes duplicates cheap. Late copies for a single job that the
intake has already seen final (a final job never changes) are judged as they arrive, and
are never pending at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.dialects.postgresql import BYTEA, JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from app import db, metrics, ratelimit, reconcile
from app.errors import SignatureError, log_failure
from app.jobs import RANK, status_from_ice
from app.lifecycle import Watch
from app.logs import REQUEST_ID
from app.models import TERMINAL_STATUSES, CallbackOutcome, EventSource, JobKind, JobStatus, jobs
from app.models import callbacks as callbacks_table
from app.queue import WORK, Waker, claim_jobs, notify, release
from app.signing import verify_callback
from app.submission import callback_url, token_hash

if TYPE_CHECKING:
    from app.main import Runtime

logger = logging.getLogger(__name__)

KNOWN_EVENTS = frozenset({"ProduceMediaComplete", "BatchProduceMediaComplete"})
KEPT_OF_REFUSED = 256  # bytes of a refused callback's body kept for the audit
SUMMARISED_HEADERS = ("content-type", "user-agent", "x-forwarded-for")  # of a refused one
UNSTORED_HEADERS = frozenset({"authorization", "cookie"})
# A callback's token in a body (ICE repeats UserData, whose NotifyAddress holds it), as it
# is, URL-encoded, or with JSON-escaped slashes.
_TOKEN_IN_BODY = re.compile(
    rb"((?:/|\\/|%2F)callbacks(?:/|\\/|%2F)ice(?:/|\\/|%2F))[A-Za-z0-9_-]+", re.IGNORECASE
)
MAX_BATCH = 256  # callbacks stored in one transaction
FINAL_JOBS_KEPT = 10_000  # final single jobs the intake remembers, to judge their late callbacks


@dataclass(frozen=True)
class Reply:
    """How a received callback is answered."""

    status_code: int
    outcome: CallbackOutcome
    detail: str


UNKNOWN_TOKEN = Reply(401, CallbackOutcome.REJECTED, "unknown callback token")


@dataclass(frozen=True)
class Received:
    """One callback as it arrived (its body without the callback token), and its reply if
    its token is known."""

    token_hash: bytes
    body: bytes
    size: int  # of the body as it arrived
    headers: dict[str, str]
    peer: str | None
    request_id: str | None  # the id logs.RequestIds gave its request
    event_type: str | None  # these three from the envelope, when there is one
    ice_job_id: str | None
    ice_status: str | None
    reply: Reply
    keep_if_refused: bool  # whether its sender may still have a refused callback kept

    def row(self) -> dict[str, Any]:
        """Its ``callbacks`` row (``INCOMING``), if its token is known."""
        reply = self.reply
        pending = reply.outcome == CallbackOutcome.PENDING
        refused = reply.status_code == 401
        return {
            "token_hash": self.token_hash,
            "body": self.body[:KEPT_OF_REFUSED] if refused else self.body,
            "headers": self.summary() if refused else json.dumps(self.headers),
            "summary": self.summary(),
            "keep": self.keep_if_refused,
            "peer": self.peer,
            "request_id": self.request_id,
            "event_type": self.event_type,
            "ice_job_id": self.ice_job_id,
            "ice_status": self.ice_status,
            "outcome": reply.outcome.value,
            "detail": None if pending else reply.detail,
            # The same delivery stored twice is one row; a judged callback is never deduplicated.
            "dedup_key": hashlib.sha256(self.token_hash + self.body).digest() if pending else None,
        }

    def summary(self) -> str:
        """What is kept of a refused callback's headers: its size and a few short headers."""
        headers = self.headers
        kept = {name: headers[name][:200] for name in SUMMARISED_HEADERS if name in headers}
        return json.dumps({"body_bytes": self.size, **kept})


# The columns ``Received.row`` fills, with the types they are sent as.
INCOMING = db.RowsParameter(
    "incoming",
    {
        "token_hash": BYTEA(),
        "body": BYTEA(),
        "headers": sa.Text(),  # JSON text, made jsonb in the statement
        "summary": sa.Text(),  # the headers kept if the token turns out unknown
        "keep": sa.Boolean(),  # whether a refused callback is kept
        "peer": sa.Text(),
        "request_id": sa.Text(),
        "event_type": sa.Text(),
        "ice_job_id": sa.Text(),
        "ice_status": sa.Text(),
        "outcome": sa.Text(),
        "detail": sa.Text(),
        "dedup_key": BYTEA(),
    },
)


def _store_statement() -> sa.Select[
    tuple[bytes, uuid.UUID | None, str | None, str | None, str | None, bool]
]:
    """One statement, so one round trip and one transaction, for a batch of callbacks.

    It finds each callback's job by its token, stores every callback (a pending one unless
    it is a duplicate; a refused one only if ``keep``), and wakes the workers if it stored a
    new pending one; it returns each callback's token hash, job id (NULL: the token is
    unknown) and that job's kind, status and ICE JobId. A callback with an unknown token is
    stored as ``UNKNOWN_TOKEN`` says (its body's first ``KEPT_OF_REFUSED`` bytes and the
    header ``summary``), whatever ``Received.row`` said.
    """
    incoming = INCOMING.table
    matched = (
        sa.select(
            incoming,
            jobs.c.id.label("job_id"),
            jobs.c.kind.label("job_kind"),
            jobs.c.status.label("job_status"),
            jobs.c.ice_job_id.label("job_ice_job_id"),
        )
        .select_from(incoming.outerjoin(jobs, jobs.c.callback_token_hash == incoming.c.token_hash))
        .cte("matched")
    )
    known = matched.c.job_id.is_not(None)
    pending = sa.and_(known, matched.c.outcome == CallbackOutcome.PENDING.value)
    accepted = sa.and_(known, matched.c.outcome != CallbackOutcome.REJECTED.value)
    stored_columns = [c for c in INCOMING.columns if c not in ("summary", "keep")]
    stored = (
        pg_insert(callbacks_table)
        .from_select(
            [*stored_columns, "job_id", "processed_at"],
            sa.select(
                matched.c.token_hash,
                sa.case(
                    (known, matched.c.body),
                    else_=sa.func.substring(matched.c.body, 1, KEPT_OF_REFUSED),
                ),
                sa.cast(sa.case((known, matched.c.headers), else_=matched.c.summary), JSONB),
                matched.c.peer,
                matched.c.request_id,
                matched.c.event_type,
                matched.c.ice_job_id,
                matched.c.ice_status,
                sa.case((known, matched.c.outcome), else_=UNKNOWN_TOKEN.outcome.value),
                sa.case((known, matched.c.detail), else_=UNKNOWN_TOKEN.detail),
                sa.case((known, matched.c.dedup_key)),
                matched.c.job_id,
                sa.case((pending, sa.null()), else_=sa.func.now()),
            ).where(sa.or_(accepted, matched.c.keep)),
        )
        .on_conflict_do_nothing(index_elements=[callbacks_table.c.dedup_key])
        .returning(callbacks_table.c.outcome)
        .cte("stored")
    )
    woken = (
        sa.select(notify(WORK).label("notified"))
        .where(sa.exists().where(stored.c.outcome == CallbackOutcome.PENDING.value))
        .cte("woken")
    )
    return sa.select(
        matched.c.token_hash,
        matched.c.job_id,
        matched.c.job_kind,
        matched.c.job_status,
        matched.c.job_ice_job_id,
        sa.exists(sa.select(woken)).label("woken"),
    )


STORE = _store_statement()


async def accept_callback(
    rt: Runtime, token: str, body: bytes, headers: Mapping[str, str], peer: str | None
) -> Reply:
    """Store one callback durably, then say how to answer it (200 only after the commit).

    A refused callback (unknown token, bad signature) is kept only while its sender is
    within ``refused_allowance``; whether its token is unknown is learnt as it is stored, so a
    token of the sender's allowance is taken for every callback and given back for those
    that were not refused.
    """
    envelope = _envelope(body)
    hashed, fields = token_hash(token), _envelope_fields(envelope)
    reply = _judge(rt, token, envelope, headers)
    if reply.outcome == CallbackOutcome.PENDING:
        reply = rt.intake.judge_late(hashed, fields) or reply
    allowance = rt.intake.refused_kept
    received = Received(
        token_hash=hashed,
        body=without_token(body, token),
        size=len(body),
        headers={k: _text(v) for k, v in headers.items() if k.lower() not in UNSTORED_HEADERS},
        peer=peer,
        request_id=REQUEST_ID.get(),
        **fields,
        reply=reply,
        keep_if_refused=allowance.take(peer),
    )
    job_id = await rt.intake.store(received)
    answer = received.reply if job_id is not None else UNKNOWN_TOKEN
    if answer.status_code != 401:
        if received.keep_if_refused:
            allowance.give_back(peer)
    elif not received.keep_if_refused:
        metrics.CALLBACKS_UNRECORDED.inc()
    return answer


def refused_allowance() -> ratelimit.SenderBuckets:
    """How many refused callbacks (unknown token, bad signature) are kept: per sender, a
    burst of 20 and then one every 10 s; for all senders together, 100 and then one a
    second. Beyond that they are answered all the same, counted
    (``icehook_callbacks_unrecorded_total``) and not stored: a flood costs the database at
    most about a kilobyte a second, however many addresses it comes from."""
    return ratelimit.SenderBuckets(burst=20, rate=0.1, shared_burst=100, shared_rate=1.0)


def without_token(body: bytes, token: str) -> bytes:
    """``body`` with the callback token of its path, and anything shaped like one in a
    callback URL, replaced: a stored callback holds no credential."""
    if len(token) >= 16:  # icehook's own are 43 characters; a short one may be any text
        body = body.replace(token.encode(), b"<token>")
    return _TOKEN_IN_BODY.sub(rb"\1<token>", body)


class Intake:
    """Stores received callbacks in group commits (``db.GroupCommit``), all of a batch with
    one statement (``STORE``).

    The writer keeps one connection of the pool for itself (taking a connection from the
    pool costs more CPU than the statement). A connection lost between writes is replaced
    and the statement tried once more on the new one; a write that fails any other way
    (the database too slow to answer within ``timeout``, or refusing) gives its connection
    up, and its callbacks are answered 503 so that ICE sends them again. A callback waits
    at most ``timeout`` for its write; ``watch`` sees a write that runs longer.

    It also remembers the single jobs it saw final (up to ``FINAL_JOBS_KEPT``, the most
    recently seen), so that ``judge_late`` can judge their later callbacks at once: a final
    job never changes, so no worker and no ICE call could judge them differently.
    """

    def __init__(self, engine: AsyncEngine, waker: Waker, timeout: float, watch: Watch) -> None:
        self.engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self.waker = waker
        self.timeout = timeout
        self.refused_kept = refused_allowance()
        self._commits = db.GroupCommit(self._insert, MAX_BATCH, watch)
        self._conn: AsyncConnection | None = None
        self._final: dict[bytes, dict[str, Any]] = {}  # token hash -> kind, status, ice_job_id

    async def close(self) -> None:
        """Return the writer's connection (after the last request was answered)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await conn.close()

    def judge_late(self, token_hash: bytes, fields: Mapping[str, str | None]) -> Reply | None:
        """The reply to a callback (its ``_envelope_fields``) of a job already seen final;
        None if its job was not seen final."""
        job = self._final.get(token_hash)
        if job is None:
            return None
        statuses = {job["ice_job_id"]: job["status"]}
        outcome, detail = _outcome(job, fields, statuses, statuses, set())
        return Reply(200, outcome, detail)

    async def store(self, received: Received) -> uuid.UUID | None:
        """Commit ``received``; returns the id of its token's job (None: unknown token).
        ``TimeoutError`` when it could not be committed in time."""
        # Twice the timeout: a write may be tried a second time, on a new connection.
        return await self._commits.submit(received, within=2 * self.timeout)

    async def _insert(self, batch: Sequence[Received]) -> list[uuid.UUID | None]:
        """Store ``batch``; returns the job id of each one's token (None: unknown)."""
        parameters = INCOMING.bind([received.row() for received in batch])
        try:
            rows = await self._execute(parameters)
        except DBAPIError as exc:
            if not exc.connection_invalidated:
                raise
            rows = await self._execute(parameters)  # once more, on a new connection
        if any(row.woken for row in rows):
            self.waker.wake()
        self._remember_final(rows)
        owners = {row.token_hash: row.job_id for row in rows}
        return [owners.get(received.token_hash) for received in batch]

    def _remember_final(self, rows: Iterable[sa.Row[Any]]) -> None:
        for row in rows:
            if row.job_kind == JobKind.JOB and row.job_status in TERMINAL_STATUSES:
                self._final.pop(row.token_hash, None)  # re-inserted: the most recent last
                self._final[row.token_hash] = {
                    "kind": JobKind.JOB,
                    "status": JobStatus(row.job_status),
                    "ice_job_id": row.job_ice_job_id,
                }
        while len(self._final) > FINAL_JOBS_KEPT:
            del self._final[next(iter(self._final))]

    async def _execute(self, parameters: dict[str, list[Any]]) -> Sequence[sa.Row[Any]]:
        if self._conn is None:
            self._conn = await self.engine.connect()  # autocommit: the statement commits
        try:
            return (await self._conn.execute(STORE, parameters)).all()
        except Exception:
            await self.close()  # whatever went wrong, the next write starts afresh
            raise


def _judge(
    rt: Runtime, token: str, envelope: dict[str, Any] | None, headers: Mapping[str, str]
) -> Reply:
    """The reply to a callback whose token is known."""
    if rt.settings.callback_auth_keys:
        try:
            verify_callback(
                url=callback_url(rt.settings, token),
                timestamp=headers.get("x-ice-timestamp"),
                signature=headers.get("x-ice-signature"),
                auth_keys=rt.settings.callback_auth_keys,
                now=time.time(),
            )
        except SignatureError as exc:
            return Reply(401, CallbackOutcome.REJECTED, str(exc))
    if envelope is None:
        return Reply(400, CallbackOutcome.MALFORMED, "not ICE's JSON callback envelope")
    if envelope["EventType"] not in KNOWN_EVENTS:
        return Reply(200, CallbackOutcome.IGNORED, f"EventType {envelope['EventType']!r}")
    return Reply(200, CallbackOutcome.PENDING, "")


def _envelope(body: bytes) -> dict[str, Any] | None:
    try:
        envelope = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than Python goes
        return None
    if (
        not isinstance(envelope, dict)
        or not isinstance(envelope.get("EventType"), str)
        or not isinstance(envelope.get("MessageBody"), dict)
    ):
        return None
    return envelope


def _envelope_fields(envelope: dict[str, Any] | None) -> dict[str, str | None]:
    envelope = envelope or {}
    message = envelope.get("MessageBody") or {}
    return {
        "event_type": _short(envelope.get("EventType")),
        "ice_job_id": _short(message.get("JobId")),
        "ice_status": _short(message.get("Status")),
    }


def _short(value: object) -> str | None:
    return _text(value[:200]) if isinstance(value, str) else None


def _text(value: str) -> str:
    """``value`` as PostgreSQL text can hold it: no NUL, no lone surrogate (from JSON escapes)."""
    return value.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


# -- processing ---------------------------------------------------------------------------


VERDICTS = db.RowsParameter(
    "verdicts", {"id": sa.BigInteger(), "outcome": sa.Text(), "detail": sa.Text()}
)
RECORD_VERDICTS = (
    sa.update(callbacks_table)
    .where(callbacks_table.c.id == VERDICTS.table.c.id)
    .values(
        outcome=VERDICTS.table.c.outcome,
        detail=VERDICTS.table.c.detail,
        processed_at=sa.func.now(),
    )
)
JUDGED_BY = ("id", "job_id", "event_type", "ice_job_id", "ice_status")  # of a callback
Judged = Mapping[Any, Any]  # a job or a callback, as judging reads it (a row, or a dict)


@dataclass(frozen=True)
class Work:
    """A leased job with its pending callbacks, and its statuses by ICE JobId (a batch's
    include its sub-jobs')."""

    job: RowMapping
    pending: Sequence[RowMapping]
    statuses: Mapping[str | None, JobStatus]

    def needs_ice(self) -> bool:
        if self.job["status"] in TERMINAL_STATUSES:
            return False  # nothing can change any more (a finished batch's sub-jobs are final)
        for callback in self.pending:
            if not _matches(self.job, callback):
                continue
            claim, known = _claim(self.job, callback), self.statuses.get(callback["ice_job_id"])
            if claim is None or known is None or RANK[claim] > RANK[known]:
                return True
        return False


async def process(rt: Runtime, limit: int = 32) -> int:
    """Confirm the jobs that have pending callbacks; returns how many jobs were handled.

    Callbacks that need no ICE call (the job is already at or past what they report) are
    judged at once, in the transaction that leased their jobs; the jobs that need ICE are
    then confirmed all at once (``reconcile.confirm_all``: ICE asked about each, the answers
    applied in one transaction), so each is worked on as soon as it is leased.
    """
    pending_jobs = sa.select(callbacks_table.c.job_id).where(
        callbacks_table.c.outcome == CallbackOutcome.PENDING
    )
    async with rt.sessionmaker.begin() as session:
        ids = await claim_jobs(
            session,
            jobs.c.id.in_(pending_jobs),
            limit=limit,
            lease_seconds=reconcile.lease_seconds(rt),
        )
        if not ids:
            return 0
        leased = await _load(session, ids)
        settled: list[Work] = []
        to_confirm: list[Work] = []
        for work in leased:
            (to_confirm if work.needs_ice() else settled).append(work)
        if settled:
            await _record_outcomes(session, [(work, work.statuses) for work in settled])
            await session.execute(release(*(work.job["id"] for work in settled)))

    by_id = {work.job["id"]: work for work in to_confirm}

    async def judge(
        session: AsyncSession, applied: Sequence[tuple[RowMapping, RowMapping]]
    ) -> None:
        """Judge each job's callbacks by its statuses after ICE was asked."""
        statuses: dict[uuid.UUID, Mapping[str | None, JobStatus]] = {
            after["id"]: {after["ice_job_id"]: JobStatus(after["status"])}
            for _, after in applied
            if after["kind"] == JobKind.JOB
        }
        batches = [after["id"] for _, after in applied if after["kind"] == JobKind.BATCH]
        if batches:  # a batch's sub-jobs may have moved too
            for work in await _load(session, batches, pending=False):
                statuses[work.job["id"]] = work.statuses
        await _record_outcomes(
            session, [(by_id[after["id"]], statuses[after["id"]]) for _, after in applied]
        )

    if to_confirm:
        try:
            await reconcile.confirm_all(
                rt, [work.job for work in to_confirm], EventSource.CALLBACK, after_apply=judge
            )
        except Exception:  # the leases expire and another pass tries again
            log_failure(logger, "processing callbacks of %d jobs failed", len(to_confirm))
    return len(ids)


async def _load(
    session: AsyncSession, ids: Sequence[uuid.UUID], *, pending: bool = True
) -> list[Work]:
    """The jobs ``ids`` with their statuses and (if ``pending``) their pending callbacks."""
    rows = (
        await session.execute(
            sa.select(jobs).where(sa.or_(jobs.c.id.in_(ids), jobs.c.batch_id.in_(ids)))
        )
    ).mappings()
    by_id = {}
    statuses: dict[uuid.UUID, dict[str | None, JobStatus]] = {job_id: {} for job_id in ids}
    for row in rows:
        owner = row["id"] if row["id"] in statuses else row["batch_id"]
        statuses[owner][row["ice_job_id"]] = JobStatus(row["status"])
        if owner == row["id"]:
            by_id[owner] = row
    callbacks: dict[uuid.UUID, list[RowMapping]] = {job_id: [] for job_id in ids}
    if pending:
        for callback in (
            await session.execute(
                sa.select(*(callbacks_table.c[name] for name in JUDGED_BY))
                .where(
                    callbacks_table.c.job_id.in_(ids),
                    callbacks_table.c.outcome == CallbackOutcome.PENDING,
                )
                .order_by(callbacks_table.c.id)
            )
        ).mappings():
            callbacks[callback["job_id"]].append(callback)
    return [Work(by_id[job_id], callbacks[job_id], statuses[job_id]) for job_id in ids]


def _claim(job: Judged, callback: Judged) -> JobStatus | None:
    kind = JobKind.BATCH if callback["event_type"] == "BatchProduceMediaComplete" else JobKind.JOB
    return status_from_ice(kind, callback["ice_status"])


def _matches(job: Judged, callback: Judged) -> bool:
    """A single job's token only speaks for that job (unless ICE's id is not yet known);
    a batch's token also for its sub-jobs, which may not be known yet."""
    if job["kind"] == JobKind.BATCH or job["ice_job_id"] is None:
        return True
    return bool(callback["ice_job_id"] == job["ice_job_id"])


async def _record_outcomes(
    session: AsyncSession, judged: Iterable[tuple[Work, Mapping[str | None, JobStatus]]]
) -> None:
    """Judge the pending callbacks of each work, given its statuses after ICE was asked."""
    outcomes = []
    for work, after in judged:
        credited: set[str | None] = set()
        for callback in work.pending:
            outcome, detail = _outcome(work.job, callback, work.statuses, after, credited)
            if outcome == CallbackOutcome.UNRECOGNIZED:
                logger.warning("callback %s of job %s %s", callback["id"], work.job["id"], detail)
            outcomes.append({"id": callback["id"], "outcome": outcome.value, "detail": detail})
            metrics.CALLBACKS_JUDGED.labels(outcome.value).inc()
    if outcomes:
        await session.execute(RECORD_VERDICTS, VERDICTS.bind(outcomes))


def _outcome(
    job: Judged,
    callback: Judged,
    before: Mapping[str | None, JobStatus],
    after: Mapping[str | None, JobStatus],
    credited: set[str | None],
) -> tuple[CallbackOutcome, str]:
    target = callback["ice_job_id"]
    if not _matches(job, callback) or target not in after:
        return CallbackOutcome.UNMATCHED, f"JobId {target!r} is not this token's job"
    claim, now = _claim(job, callback), after[target]
    if claim is None:
        return (
            CallbackOutcome.UNRECOGNIZED,
            f"reports Status {callback['ice_status']!r}, which icehook does not know; "
            f"ICE says {now}",
        )
    if claim == now and before.get(target) != now and target not in credited:
        credited.add(target)
        return CallbackOutcome.APPLIED, f"confirmed by ICE: {now}"
    if claim == now:
        return CallbackOutcome.DUPLICATE, f"already {now}"
    if RANK[claim] < RANK[now]:
        return CallbackOutcome.STALE, f"reports {claim}, job is already {now}"
    return CallbackOutcome.REJECTED, f"reports {claim}, but ICE says {now}"
