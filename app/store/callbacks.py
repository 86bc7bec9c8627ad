"""Callbacks as received, and how each was judged.

``store`` writes a batch of received callbacks with one statement (``STORE``), so one round
trip and one transaction serve them all. ``record_verdicts`` writes how pending ones were
judged once ICE was asked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.core.judging import UNKNOWN_TOKEN
from app.core.statuses import CallbackOutcome
from app.store.batching import columns
from app.store.notify import WORK

KEPT_OF_REFUSED = 256  # bytes of a refused callback's body kept for the audit

# The fields of each callback ``store`` takes (``flows.intake.Received.row``), in order.
INCOMING = (
    "token_hash",
    "body",
    "size",  # of the body as it arrived
    "headers",  # JSON text
    "keep",  # whether it is stored if it turns out refused
    "peer",
    "request_id",
    "event_type",
    "ice_job_id",
    "ice_status",
    "outcome",  # as judged on arrival, if its token is known
    "detail",
    "dedup_key",
    "signed",  # whether X-ICE-SIGNATURE was verified (None: no AuthKey to verify with)
    "traceparent",  # W3C Trace Context of the request that brought it (None: tracing off)
)
PENDING, REJECTED = CallbackOutcome.PENDING.value, CallbackOutcome.REJECTED.value

# Finds each callback's job by its token and stores it: an accepted one (known token, not
# refused) in full, unless it is a duplicate of one already stored; a refused one (unknown
# token, bad signature) only if ``keep``, and then as a bounded summary: its size, the
# first KEPT_OF_REFUSED bytes, a few short headers. A pending one keeps its request's
# traceparent, which the worker that judges it continues. Wakes the workers when a new
# pending one was stored. Answers, for each callback, its token's job (NULL: unknown) and that
# job's kind, status and ICE JobId.
STORE = sa.text(
    f"""
    WITH incoming AS (
        SELECT * FROM unnest(
            CAST(:token_hash AS bytea[]), CAST(:body AS bytea[]), CAST(:size AS int[]),
            CAST(:headers AS text[]), CAST(:keep AS boolean[]), CAST(:peer AS text[]),
            CAST(:request_id AS text[]), CAST(:event_type AS text[]),
            CAST(:ice_job_id AS text[]), CAST(:ice_status AS text[]), CAST(:outcome AS text[]),
            CAST(:detail AS text[]), CAST(:dedup_key AS bytea[]), CAST(:signed AS boolean[]),
            CAST(:traceparent AS text[])
        ) AS i({", ".join(INCOMING)})
    ), matched AS (
        SELECT incoming.*,
               jobs.id AS job_id, jobs.kind AS job_kind, jobs.status AS job_status,
               jobs.ice_job_id AS job_ice_job_id,
               jobs.id IS NOT NULL AND incoming.outcome <> '{REJECTED}' AS accepted
        FROM incoming LEFT JOIN jobs ON jobs.callback_token_hash = incoming.token_hash
    ), stored AS (
        INSERT INTO callbacks (
            token_hash, body, headers, peer, request_id, event_type, ice_job_id, ice_status,
            outcome, detail, dedup_key, job_id, processed_at, signed, traceparent
        )
        SELECT
            token_hash,
            CASE WHEN accepted THEN body ELSE substring(body FROM 1 FOR {KEPT_OF_REFUSED}) END,
            CASE WHEN accepted THEN CAST(headers AS jsonb)
                ELSE jsonb_strip_nulls(jsonb_build_object(
                    'body_bytes', size,
                    'content-type', left(CAST(headers AS jsonb) ->> 'content-type', 200),
                    'user-agent', left(CAST(headers AS jsonb) ->> 'user-agent', 200),
                    'x-forwarded-for', left(CAST(headers AS jsonb) ->> 'x-forwarded-for', 200)
                )) END,
            peer, request_id, event_type, ice_job_id, ice_status,
            CASE WHEN job_id IS NOT NULL THEN outcome ELSE '{UNKNOWN_TOKEN.outcome.value}' END,
            CASE WHEN job_id IS NOT NULL THEN detail ELSE '{UNKNOWN_TOKEN.detail}' END,
            CASE WHEN accepted THEN dedup_key END,
            job_id,
            CASE WHEN accepted AND outcome = '{PENDING}' THEN NULL ELSE now() END,
            signed,
            CASE WHEN accepted AND outcome = '{PENDING}' THEN traceparent END
        FROM matched
        WHERE accepted OR keep
        ON CONFLICT (dedup_key) DO NOTHING
        RETURNING outcome
    ), woken AS (
        SELECT pg_notify('{WORK}', '') WHERE EXISTS (
            SELECT FROM stored WHERE outcome = '{PENDING}'
        )
    )
    SELECT token_hash, job_id, job_kind, job_status, job_ice_job_id,
           EXISTS (SELECT FROM woken) AS woken
    FROM matched
    """
).columns(  # typed result columns: SQLAlchemy then reads the result's shape once, not per batch
    sa.column("token_hash", sa.LargeBinary),
    sa.column("job_id", sa.Uuid),
    sa.column("job_kind", sa.Text),
    sa.column("job_status", sa.Text),
    sa.column("job_ice_job_id", sa.Text),
    sa.column("woken", sa.Boolean),
)


async def store(conn: AsyncConnection, received: Sequence[Mapping[str, Any]]) -> Sequence[Any]:
    """Store ``received`` (rows with the ``INCOMING`` fields) with ``STORE``; its rows."""
    return (await conn.execute(STORE, columns(received))).all()


RECORD_VERDICTS = sa.text(
    """
    UPDATE callbacks SET outcome = verdict.outcome, detail = verdict.detail, processed_at = now()
    FROM unnest(CAST(:id AS bigint[]), CAST(:outcome AS text[]), CAST(:detail AS text[]))
         AS verdict(id, outcome, detail)
    WHERE callbacks.id = verdict.id
    """
)


async def record_verdicts(
    session: AsyncSession, verdicts: Sequence[tuple[Any, CallbackOutcome, str]]
) -> None:
    """How each callback (its id) was judged, and why."""
    if verdicts:
        rows = [{"id": i, "outcome": o.value, "detail": d} for i, o, d in verdicts]
        await session.execute(RECORD_VERDICTS, columns(rows))
