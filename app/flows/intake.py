"""ICE's callbacks, kept at once: the intake.

``Intake.accept`` stores the raw body (without its callback token) and headers, whatever
they say, and says how to answer only after the commit; it never calls ICE (a worker judges
pending callbacks later: ``flows.judge``). Callbacks that arrive together are stored
together (``GroupCommit``: one statement, one transaction, one disk flush for all of them).

A refused callback (unknown token, bad signature) is kept only while its sender is within
``refused_allowance``, as a bounded summary (``store.callbacks``): a flood of them costs the
database a bounded number of bytes. Late copies for a single job the intake has already
seen final (a final job never changes) are judged as they arrive, and are never pending.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from opentelemetry.trace import Tracer
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.core.errors import SignatureError
from app.core.health import Watch
from app.core.judging import UNKNOWN_TOKEN, Reply, envelope_fields, envelope_of, outcome, reply_to
from app.core.parsing import postgres_text
from app.core.ratelimit import SenderBuckets
from app.core.statuses import TERMINAL_STATUSES, CallbackOutcome, JobKind, JobStatus
from app.core.tokens import callback_url, token_hash, without_token
from app.ice.signing import verify_callback
from app.store import callbacks
from app.store.batching import GroupCommit
from app.store.engine import autocommitting
from app.store.notify import Waker
from app.telemetry import metrics, tracing
from app.telemetry.logs import REQUEST_ID

UNSTORED_HEADERS = frozenset({"authorization", "cookie"})
MAX_BATCH = 256  # callbacks stored in one transaction
FINAL_JOBS_KEPT = 10_000  # final single jobs the intake remembers, to judge their late callbacks


def refused_allowance() -> SenderBuckets:
    """How many refused callbacks (unknown token, bad signature) are kept: per sender, a
    burst of 20 and then one every 10 s; for all senders together, 100 and then one a
    second. Beyond that they are answered all the same, counted
    (``icehook_callbacks_unrecorded_total``) and not stored: a flood costs the database at
    most about a kilobyte a second, however many addresses it comes from."""
    return SenderBuckets(burst=20, rate=0.1, shared_burst=100, shared_rate=1.0)


@dataclass(frozen=True)
class Received:
    """One callback as it arrived (its body without the callback token), and its reply if
    its token is known."""

    token_hash: bytes
    body: bytes
    size: int  # of the body as it arrived
    headers: dict[str, str]
    peer: str | None
    request_id: str | None  # the id http.middleware.RequestIds gave its request
    event_type: str | None  # these three from the envelope, when there is one
    ice_job_id: str | None
    ice_status: str | None
    reply: Reply
    keep_if_refused: bool  # whether its sender may still have a refused callback kept
    signed: bool | None = None  # X-ICE-SIGNATURE verified (None: no AuthKey configured)
    traceparent: str | None = None  # its request's span, which the worker's span continues

    def row(self) -> dict[str, Any]:
        """Its row for ``store.callbacks.store`` (its fields ``INCOMING``)."""
        pending = self.reply.outcome == CallbackOutcome.PENDING
        return {
            "token_hash": self.token_hash,
            "body": self.body,
            "size": self.size,
            "headers": json.dumps(self.headers),
            "keep": self.keep_if_refused,
            "peer": self.peer,
            "request_id": self.request_id,
            "event_type": self.event_type,
            "ice_job_id": self.ice_job_id,
            "ice_status": self.ice_status,
            "outcome": self.reply.outcome.value,
            "detail": None if pending else self.reply.detail,
            # The same delivery stored twice is one row; a judged callback is never deduplicated.
            "dedup_key": hashlib.sha256(self.token_hash + self.body).digest() if pending else None,
            "signed": self.signed,
            "traceparent": self.traceparent,
        }


class Intake:
    """Stores received callbacks in group commits.

    The writer keeps one connection of the pool for itself (taking a connection from the
    pool costs more CPU than the statement). A connection lost between writes is replaced
    and the statement tried once more on the new one; a write that fails any other way
    (the database too slow to answer within ``timeout``, or refusing) gives its connection
    up, and its callbacks are answered 503 so that ICE sends them again. A callback waits
    at most twice ``timeout`` for its write; ``watch`` sees a write that runs longer.

    It remembers the single jobs it saw final (up to ``FINAL_JOBS_KEPT``, the most recently
    seen), so that their later callbacks are judged at once: a final job never changes, so
    no worker and no ICE call could judge them differently.

    Uses: the engine, the workers' waker, the statement timeout, a watch, from the
    settings the public URL and callback AuthKeys (to verify ``X-ICE-SIGNATURE``), and a
    tracer (a span for each write, continuing the trace of its first callback's request
    and linked to the others').
    """

    def __init__(
        self,
        engine: AsyncEngine,
        waker: Waker,
        timeout: float,
        watch: Watch,
        *,
        public_url: str | None = None,
        auth_keys: Sequence[str] = (),
        tracer: Tracer = tracing.NO_TRACER,
    ) -> None:
        self.engine = autocommitting(engine)
        self.waker = waker
        self.timeout = timeout
        self.public_url = public_url
        self.auth_keys = tuple(auth_keys)
        self.tracer = tracer
        self.refused_kept = refused_allowance()
        self._commits = GroupCommit(self._insert, MAX_BATCH, watch)
        self._conn: AsyncConnection | None = None
        self._final: dict[bytes, dict[str, Any]] = {}  # token hash -> kind, status, ice_job_id

    async def accept(
        self, token: str, body: bytes, headers: Mapping[str, str], peer: str | None
    ) -> Reply:
        """Store one callback durably, then say how to answer it (200 only after the commit).
        ``TimeoutError`` (or the database's error) when it could not be committed.

        Whether its token is unknown is learnt as it is stored, so a token of its sender's
        refused allowance is taken for every callback and given back when not refused.
        """
        envelope = envelope_of(body)
        hashed, fields = token_hash(token), envelope_fields(envelope)
        signed, problem = self._signature(token, headers)
        reply = reply_to(envelope, problem)
        if reply.outcome == CallbackOutcome.PENDING:
            reply = self.judge_late(hashed, fields) or reply
        received = Received(
            token_hash=hashed,
            body=without_token(body, token),
            size=len(body),
            headers={
                k: postgres_text(v) for k, v in headers.items() if k.lower() not in UNSTORED_HEADERS
            },
            peer=peer,
            request_id=REQUEST_ID.get(),
            **fields,
            reply=reply,
            keep_if_refused=self.refused_kept.take(peer),
            signed=signed,
            traceparent=tracing.traceparent(),
        )
        job_id = await self.store(received)
        answer = received.reply if job_id is not None else UNKNOWN_TOKEN
        if answer.status_code != 401:
            if received.keep_if_refused:
                self.refused_kept.give_back(peer)
        elif not received.keep_if_refused:
            metrics.CALLBACKS_UNRECORDED.inc()
        return answer

    async def store(self, received: Received) -> uuid.UUID | None:
        """Commit ``received``; returns the id of its token's job (None: unknown token)."""
        # Twice the timeout: a write may be tried a second time, on a new connection.
        return await self._commits.submit(received, within=2 * self.timeout)

    async def close(self) -> None:
        """Return the writer's connection (after the last request was answered)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.timeout):
                    await conn.close()

    def _signature(self, token: str, headers: Mapping[str, str]) -> tuple[bool | None, str | None]:
        """Whether the callback's signature verified (None: no AuthKey to verify with), and
        why it is refused (None: it is not).

        Whether ICE signs callbacks sent to a job's own NotifyAddress is not documented
        (docs/ice.md, Callback authentication). A callback without the headers is therefore
        kept as a hint, recorded unsigned: it only makes icehook ask ICE, which a token
        already allows. A signature that is present must verify.
        """
        if not self.auth_keys:
            return None, None
        timestamp, signature = headers.get("x-ice-timestamp"), headers.get("x-ice-signature")
        if timestamp is None and signature is None:
            return False, None
        try:
            verify_callback(
                url=callback_url(self.public_url, token),
                timestamp=timestamp,
                signature=signature,
                auth_keys=self.auth_keys,
                now=time.time(),
            )
        except SignatureError as exc:
            return False, str(exc)
        return True, None

    def judge_late(self, hashed: bytes, fields: Mapping[str, str | None]) -> Reply | None:
        """The reply to a callback (its ``envelope_fields``) of a job already seen final;
        None if its job was not seen final."""
        job = self._final.get(hashed)
        if job is None:
            return None
        statuses = {job["ice_job_id"]: job["status"]}
        verdict, detail = outcome(job, fields, statuses, statuses, set())
        return Reply(200, verdict, detail)

    async def _insert(self, batch: Sequence[Received]) -> list[uuid.UUID | None]:
        """Store ``batch``; returns the job id of each one's token (None: unknown)."""
        rows = [received.row() for received in batch]
        causes = [received.traceparent for received in batch]
        with tracing.continuing(self.tracer, "store callbacks", causes) as span:
            span.set_attribute("icehook.callbacks", len(batch))
            try:
                stored = await self._execute(rows)
            except DBAPIError as exc:
                if not exc.connection_invalidated:
                    raise
                stored = await self._execute(rows)  # once more, on a new connection
        if any(row.woken for row in stored):
            self.waker.wake()
        self._remember_final(stored)
        owners = {row.token_hash: row.job_id for row in stored}
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

    async def _execute(self, rows: Sequence[Mapping[str, Any]]) -> Sequence[sa.Row[Any]]:
        if self._conn is None:
            self._conn = await self.engine.connect()
        try:
            stored = await callbacks.store(self._conn, rows)
            await self._conn.commit()  # the statement committed itself, but behind a pooler
            return stored
        except Exception:
            await self.close()  # whatever went wrong, the next write starts afresh
            raise
