"""Deliveries: each event on its way to each subscription, and every attempt at it.

A delivery is claimed with a lease (``claim``) that its sender renews while it sends it
(``renew``, from ``flows.leasing``), never while an earlier event of the same
job for the same subscription is neither delivered nor dead, so that a job's events arrive
in order. Its attempts are recorded in groups (``record``): every success of a group in one
statement, each failure with what it means (``core.delivery.verdict``) for the delivery
and its subscription.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.delivery import Attempt, DisablingRule, Verdict
from app.core.errors import Conflict
from app.core.statuses import DeliveryStatus
from app.store import subscriptions, tables
from app.store.batching import columns
from app.store.fanout import wants
from app.store.notify import DELIVERIES, notify

DELIVERY, SUBSCRIPTION, OUTBOX = tables.deliveries, tables.subscriptions, tables.outbox

# Leases up to :limit due deliveries for :lease_seconds, each the earliest undone event of
# its job (operational events, which have no job: of them all) for its subscription, and
# answers them with their message (and the traceparent its webhook's span continues) and
# subscription. Fair: each subscription gets at most what its room allows (its own
# max_in_flight less its requests in flight on every worker; :share less this worker's own
# requests for it, :held; what its max_per_second allows now, paced by paced_until (set by
# PACE after the claim)), and the subscriptions take turns: every one's first due delivery
# before anyone's second.
CLAIM = sa.text(
    """
    WITH in_flight AS (
        SELECT subscription_id, count(*) AS n FROM deliveries
        WHERE status = 'pending' AND lease_until IS NOT NULL
          AND lease_until >= clock_timestamp()
        GROUP BY subscription_id
    ), held AS (
        SELECT * FROM unnest(CAST(:held_ids AS uuid[]), CAST(:held_counts AS int[]))
            AS h(subscription_id, n)
    ), room AS (
        SELECT subscriptions.id, greatest(0, least(
            :limit,
            subscriptions.max_in_flight - coalesce(in_flight.n, 0),
            :share - coalesce(held.n, 0),
            CASE
                WHEN subscriptions.max_per_second IS NULL THEN :limit
                WHEN subscriptions.paced_until IS NULL
                  OR subscriptions.paced_until <= clock_timestamp()
                    THEN greatest(1, floor(subscriptions.max_per_second))
                ELSE floor(subscriptions.max_per_second * (1 - extract(
                    epoch FROM subscriptions.paced_until - clock_timestamp())))
            END
        )) AS free
        FROM subscriptions
        LEFT JOIN in_flight ON in_flight.subscription_id = subscriptions.id
        LEFT JOIN held ON held.subscription_id = subscriptions.id
        WHERE subscriptions.enabled AND subscriptions.deleted_at IS NULL
    ), due AS (
        SELECT picked.id, picked.next_attempt_at, row_number() OVER (
            PARTITION BY picked.subscription_id ORDER BY picked.next_attempt_at
        ) AS turn
        FROM room CROSS JOIN LATERAL (
            SELECT deliveries.id, deliveries.subscription_id, deliveries.next_attempt_at
            FROM deliveries
            WHERE deliveries.subscription_id = room.id
              AND deliveries.status = 'pending'
              AND deliveries.next_attempt_at <= now()
              AND (deliveries.lease_until IS NULL OR deliveries.lease_until < clock_timestamp())
              AND NOT EXISTS (
                  SELECT FROM deliveries AS earlier
                  WHERE earlier.subscription_id = deliveries.subscription_id
                    AND earlier.job_id = deliveries.job_id
                    AND earlier.message_id < deliveries.message_id
                    AND earlier.status = 'pending'
              )
              AND (deliveries.job_id IS NOT NULL OR NOT EXISTS (
                  SELECT FROM deliveries AS earlier
                  WHERE earlier.subscription_id = deliveries.subscription_id
                    AND earlier.job_id IS NULL
                    AND earlier.message_id < deliveries.message_id
                    AND earlier.status = 'pending'
              ))
            ORDER BY deliveries.next_attempt_at
            LIMIT room.free
            FOR UPDATE OF deliveries SKIP LOCKED
        ) AS picked
        WHERE room.free > 0
    ), chosen AS (
        SELECT id FROM due ORDER BY turn, next_attempt_at LIMIT :limit
    ), leased AS (
        UPDATE deliveries
        SET lease_until = clock_timestamp() + make_interval(secs => :lease_seconds)
        WHERE id IN (SELECT id FROM chosen)
        RETURNING id, attempts, subscription_id, message_id
    )
    SELECT leased.id, leased.attempts, leased.subscription_id, subscriptions.max_per_second,
           outbox.event_id, outbox.event_type, outbox.payload, outbox.traceparent,
           subscriptions.url, subscriptions.secret, subscriptions.previous_secret,
           subscriptions.previous_secret_until, subscriptions.signature_scheme,
           subscriptions.headers
    FROM leased
    JOIN outbox ON outbox.id = leased.message_id
    JOIN subscriptions ON subscriptions.id = leased.subscription_id
    """
)


async def claim(
    session: AsyncSession,
    *,
    limit: int,
    lease_seconds: float,
    share: int | None = None,
    held: Mapping[uuid.UUID, int] | None = None,
) -> list[RowMapping]:
    """Lease up to ``limit`` due deliveries (``CLAIM``), at most ``share`` (default: no
    bound but ``limit``) in flight for one subscription in this worker, which holds ``held``
    (its requests in flight, by subscription)."""
    held = held or {}
    rows = await session.execute(
        CLAIM,
        {
            "limit": limit,
            "lease_seconds": lease_seconds,
            "share": limit if share is None else share,
            "held_ids": list(held),
            "held_counts": list(held.values()),
        },
    )
    claimed = list(rows.mappings())
    taken = Counter(row["subscription_id"] for row in claimed if row["max_per_second"])
    if taken:
        await session.execute(PACE, {"ids": list(taken), "counts": [taken[key] for key in taken]})
    return claimed


# The rows of the subscriptions a recording will change, locked in id order as an UPDATE
# would (not their keys: new deliveries for them may still be inserted meanwhile): those
# with a failure, and those that were failing and now have a success. A healthy
# subscriber's row is not locked: recordings for it on several workers do not queue.
LOCK_CHANGING = sa.text(
    """
    SELECT id FROM subscriptions
    WHERE id = ANY(CAST(:failed AS uuid[]))
       OR (id = ANY(CAST(:delivered AS uuid[])) AND failing_since IS NOT NULL)
    ORDER BY id FOR NO KEY UPDATE
    """
)

# Each paced subscription's next start moved on by the requests just claimed for it: one
# every 1/max_per_second s. Its rows are locked in id order first, as ``record`` locks
# them, so that a claim and a recording never wait for each other in a cycle.
PACE = sa.text(
    """
    WITH taken AS (
        SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:counts AS int[])) AS t(id, n)
    ), locked AS (
        SELECT subscriptions.id FROM subscriptions JOIN taken USING (id)
        ORDER BY subscriptions.id FOR NO KEY UPDATE OF subscriptions
    )
    UPDATE subscriptions SET paced_until = greatest(
        subscriptions.paced_until, clock_timestamp()
    ) + make_interval(secs => taken.n / subscriptions.max_per_second)
    FROM taken
    WHERE subscriptions.id = taken.id AND subscriptions.id IN (SELECT id FROM locked)
      AND subscriptions.max_per_second IS NOT NULL
    """
)


# The leases of deliveries still being sent or recorded (released ones stay released).
RENEW = sa.text(
    """
    UPDATE deliveries SET lease_until = clock_timestamp() + make_interval(secs => :lease_seconds)
    WHERE id = ANY(CAST(:ids AS bigint[])) AND status = 'pending' AND lease_until IS NOT NULL
    """
)


async def renew(session: AsyncSession, delivery_ids: Sequence[int], lease_seconds: float) -> None:
    """Extend the leases of ``delivery_ids`` while they are sent (``flows.leasing``)."""
    await session.execute(RENEW, {"ids": list(delivery_ids), "lease_seconds": lease_seconds})


# A successful attempt of each of many deliveries, logged and settled in one statement; the
# subscription of each is no longer failing.
RECORD_DELIVERED = sa.text(
    """
    WITH done AS (
        SELECT * FROM unnest(
            CAST(:id AS bigint[]), CAST(:subscription_id AS uuid[]),
            CAST(:status_code AS int[]), CAST(:latency_ms AS float8[]), CAST(:excerpt AS text[])
        ) AS d(id, subscription_id, status_code, latency_ms, excerpt)
    ), logged AS (
        INSERT INTO delivery_attempts (delivery_id, status_code, latency_ms, response_excerpt)
        SELECT id, status_code, latency_ms, excerpt FROM done
    ), recovered AS (
        UPDATE subscriptions SET failing_since = NULL
        WHERE id IN (SELECT subscription_id FROM done) AND failing_since IS NOT NULL
    )
    UPDATE deliveries SET
        status = 'delivered', attempts = deliveries.attempts + 1, lease_until = NULL,
        last_status_code = done.status_code, last_error = NULL, delivered_at = now()
    FROM done
    WHERE deliveries.id = done.id AND deliveries.status = 'pending'
    """
)


async def record(
    session: AsyncSession,
    finished: Sequence[tuple[Mapping[Any, Any], Attempt, Verdict]],
    rule: DisablingRule,
) -> list[RowMapping]:
    """Log each attempt of ``finished`` (a claimed delivery, its attempt, and what it means)
    and settle its delivery; a subscription that answered 410, or has failed without one
    success for ``rule.after_seconds``, is disabled (``subscriptions.disable``). Returns the
    subscriptions this disabled."""
    delivered = [
        {
            "id": delivery["id"],
            "subscription_id": delivery["subscription_id"],
            "status_code": attempt.status_code,
            "latency_ms": attempt.latency_ms,
            "excerpt": attempt.excerpt,
        }
        for delivery, attempt, verdict in finished
        if verdict.status == DeliveryStatus.DELIVERED
    ]
    # The subscriptions this changes, locked first in id order, as the claim's PACE locks
    # them: a claim and a recording then never wait for each other in a cycle.
    failed = {d["subscription_id"] for d, _, v in finished if v.status != DeliveryStatus.DELIVERED}
    ok = {d["subscription_id"] for d in delivered}
    await session.execute(LOCK_CHANGING, {"failed": list(failed), "delivered": list(ok)})
    if delivered:
        await session.execute(RECORD_DELIVERED, columns(delivered))
    disabled = []
    for delivery, attempt, verdict in finished:
        if verdict.status == DeliveryStatus.DELIVERED:
            continue
        reason = await _record_failure(session, delivery, attempt, verdict, rule.after_seconds)
        if reason is None:
            continue
        row = await subscriptions.disable(
            session, delivery["subscription_id"], reason, rule.queue_seconds
        )
        if row is not None:
            disabled.append(row)
    return disabled


async def _record_failure(
    session: AsyncSession,
    delivery: Mapping[Any, Any],
    attempt: Attempt,
    verdict: Verdict,
    disable_after: float,
) -> str | None:
    """Settle a failed attempt; why its subscription must be disabled now, if it must."""
    values: dict[str, Any] = {
        "status": verdict.status,
        "attempts": DELIVERY.c.attempts + 1,
        "lease_until": None,
        "last_status_code": attempt.status_code,
        "last_error": attempt.error,
    }
    if verdict.retry_in is not None:
        values["next_attempt_at"] = sa.func.now() + timedelta(seconds=verdict.retry_in)
    logged = sa.insert(tables.delivery_attempts).values(
        delivery_id=delivery["id"],
        status_code=attempt.status_code,
        latency_ms=attempt.latency_ms,
        error=attempt.error,
        response_excerpt=attempt.excerpt,
    )
    await session.execute(
        sa.update(DELIVERY)
        .where(DELIVERY.c.id == delivery["id"], DELIVERY.c.status == DeliveryStatus.PENDING)
        .values(values)
        .add_cte(logged.cte("logged"))  # PostgreSQL runs a data-modifying WITH unread too
    )
    if verdict.gone:
        return "the endpoint answered 410 Gone"
    failing_since = (
        await session.execute(
            sa.update(SUBSCRIPTION)
            .where(SUBSCRIPTION.c.id == delivery["subscription_id"])
            .values(failing_since=sa.func.coalesce(SUBSCRIPTION.c.failing_since, sa.func.now()))
            .returning(SUBSCRIPTION.c.failing_since)
        )
    ).scalar_one_or_none()
    if failing_since is not None and failing_since <= datetime.now(UTC) - timedelta(
        seconds=disable_after
    ):
        return (
            f"every delivery has failed since {failing_since.isoformat()}, "
            f"longer than {disable_after:g} s"
        )
    return None


# -- by hand --------------------------------------------------------------------------------------

# What makes a delivery due again, with a fresh retry schedule (a leased one keeps its lease).
DUE_AGAIN = "status = 'pending', attempts = 0, next_attempt_at = now(), delivered_at = NULL"

# Every recorded event of a period that a subscription wants (its types and its filter),
# queued for it again: every one (a replay; also those from before it existed), or
# (:recovering) only those it was meant to receive and did not, yet.
REPLAY = sa.text(
    f"""
    INSERT INTO deliveries (message_id, subscription_id, job_id, event_type, status)
    SELECT outbox.id, subscriptions.id, outbox.job_id, outbox.event_type, 'pending'
    FROM outbox JOIN subscriptions ON subscriptions.id = :subscription_id
    LEFT JOIN jobs ON jobs.id = outbox.job_id
    WHERE outbox.created_at >= :since
      AND (CAST(:until AS timestamptz) IS NULL OR outbox.created_at < :until)
      AND {wants(subscription="subscriptions", job="jobs", event="outbox.event_type")}
      AND NOT (:recovering AND outbox.created_at < subscriptions.created_at)
      -- an operational event about this very subscription was never meant for it
      AND NOT (outbox.job_id IS NULL
               AND outbox.payload -> 'data' ->> 'id' = CAST(subscriptions.id AS text))
    ORDER BY outbox.id
    ON CONFLICT (message_id, subscription_id) DO UPDATE SET {DUE_AGAIN}
        WHERE NOT (:recovering AND deliveries.status = 'delivered')
    RETURNING id
    """
)


async def replay(
    session: AsyncSession,
    subscription_id: uuid.UUID,
    since: datetime,
    until: datetime | None,
    *,
    recovering: bool = False,
) -> int:
    """Send the subscription again every recorded event it wants from ``since`` (to
    ``until``), or when ``recovering`` only those not delivered to it; returns how many."""
    queued = await session.execute(
        REPLAY,
        {
            "subscription_id": subscription_id,
            "since": since,
            "until": until,
            "recovering": recovering,
        },
    )
    count = len(queued.all())
    if count:
        await session.execute(sa.select(notify(DELIVERIES)))
    return count


# A subscription's dead deliveries of a period (by when their event was recorded), due again.
RETRY_DEAD = sa.text(
    f"""
    UPDATE deliveries SET {DUE_AGAIN}
    FROM outbox
    WHERE deliveries.subscription_id = :subscription_id AND deliveries.status = 'dead'
      AND outbox.id = deliveries.message_id AND outbox.created_at >= :since
      AND (CAST(:until AS timestamptz) IS NULL OR outbox.created_at < :until)
    RETURNING deliveries.id
    """
)


async def retry_dead(
    session: AsyncSession, subscription_id: uuid.UUID, since: datetime, until: datetime | None
) -> int:
    """Make ``subscription_id``'s dead deliveries of events recorded from ``since`` (to
    ``until``) due now with a fresh retry schedule; returns how many."""
    found = await session.execute(
        RETRY_DEAD, {"subscription_id": subscription_id, "since": since, "until": until}
    )
    count = len(found.all())
    if count:
        await session.execute(sa.select(notify(DELIVERIES)))
    return count


RETRY = sa.text(f"UPDATE deliveries SET {DUE_AGAIN} WHERE id = :id RETURNING subscription_id")


async def retry(session: AsyncSession, delivery_id: int) -> bool:
    """Make a delivery due now, with a fresh retry schedule; False if there is no such.
    ``Conflict`` if its subscription is disabled or deleted (it would not be sent)."""
    subscription_id = (await session.execute(RETRY, {"id": delivery_id})).scalar_one_or_none()
    if subscription_id is None:
        return False
    subscription = (
        await session.execute(
            sa.select(SUBSCRIPTION.c.enabled, SUBSCRIPTION.c.deleted_at).where(
                SUBSCRIPTION.c.id == subscription_id
            )
        )
    ).one()
    if subscription.deleted_at is not None or not subscription.enabled:
        raise Conflict("its subscription is disabled or deleted; enable it first")
    await session.execute(sa.select(notify(DELIVERIES)))
    return True
