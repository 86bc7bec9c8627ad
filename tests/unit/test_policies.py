"""When to try again and how long a lease lasts (app/core/policies.py, app/core/delivery.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from app.core.delivery import Attempt, verdict
from app.core.errors import IceError
from app.core.policies import (
    HEARTBEAT_SECONDS,
    LEASE_SECONDS,
    MAX_BACKOFF,
    answer_seconds,
    backoff,
    backoff_limit,
    longest_confirmation_seconds,
    next_check,
    refused,
    retryable,
)
from app.core.statuses import DeliveryStatus, JobStatus

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.mark.parametrize(
    ("code", "status", "idempotent", "again"),
    [
        ("Throttling.User", 400, False, True),  # ICE did nothing
        ("ConnectionFailed", 0, False, True),
        ("CredentialsUnavailable", 0, False, True),  # nothing was sent
        ("InvalidSecurityToken.Expired", 403, False, True),  # signed again with a renewed one
        ("NoAnswer", 0, True, True),  # unknown outcome: only when safe to repeat
        ("NoAnswer", 0, False, False),
        ("InternalError", 500, True, True),
        ("ServiceUnavailable", 503, False, False),
        ("InvalidParameter", 400, True, False),  # refused: never
        ("ClientError", 0, True, False),  # the client itself refused to send it
    ],
)
def test_which_ice_failures_are_tried_again(
    code: str, status: int, idempotent: bool, again: bool
) -> None:
    assert retryable(IceError(status, code, ""), idempotent) is again


def test_a_refusal_is_a_4xx_other_than_throttling() -> None:
    assert refused(IceError(400, "InvalidParameter", ""))
    assert refused(IceError(400, "icehook.RequestTooLarge", ""))
    assert not refused(IceError(400, "Throttling.User", ""))
    assert not refused(IceError(403, "InvalidSecurityToken.Expired", ""))  # the credential's
    assert not refused(IceError(500, "InternalError", ""))
    assert not refused(IceError(0, "NoAnswer", ""))


def test_backoff_grows_with_full_jitter_up_to_its_cap() -> None:
    rng = random.Random(7)
    assert [backoff_limit(n) for n in (1, 2, 3, 4, 5, 6)] == [0.4, 0.8, 1.6, 3.2, 6.4, 8.0]
    for attempt in range(1, 12):
        assert 0 <= backoff(rng, attempt) <= backoff_limit(attempt)


def test_a_confirmation_has_a_bound_and_a_lease_many_heartbeats() -> None:
    assert answer_seconds(10, 5) == 70  # 5 x 10 s, pauses of at most 4+4+4+4 s, and 4 s
    assert longest_confirmation_seconds(10, 5) > answer_seconds(10, 5)
    assert LEASE_SECONDS / HEARTBEAT_SECONDS >= 4, "a lease survives a few missed heartbeats"
    assert answer_seconds(1, 12) >= 12 * 1 + sum(backoff_limit(n) for n in range(1, 12))


def test_a_job_ice_answered_about_is_looked_at_after_the_sweep_interval() -> None:
    check = next_check(
        JobStatus.PROCESSING, 3, heard=True, sweep_after=HOUR, now=NOW, rng=random.Random()
    )
    assert check == {"check_at": NOW + HOUR, "check_count": 0, "heard_at": NOW}


def test_a_job_ice_could_not_be_asked_about_backs_off_to_an_hour() -> None:
    rng = random.Random(3)
    delays = []
    for count in range(0, 12):
        check = next_check(
            JobStatus.SUBMITTING,
            count,
            heard=False,
            sweep_after=timedelta(seconds=60),
            now=NOW,
            rng=rng,
        )
        assert check["check_count"] == count + 1
        assert check["heard_at"] is None
        delays.append(check["check_at"] - NOW)
    assert delays[0] >= timedelta(seconds=60 * 2 * 0.8)
    assert all(d <= MAX_BACKOFF * 1.2 for d in delays)
    assert delays[-1] >= MAX_BACKOFF * 0.8, "capped at an hour, with jitter"


def test_a_final_job_is_never_looked_at_again() -> None:
    check = next_check(
        JobStatus.SUCCEEDED, 5, heard=True, sweep_after=HOUR, now=NOW, rng=random.Random()
    )
    assert check == {"check_at": None, "check_count": 0, "heard_at": None}


@pytest.mark.parametrize(
    ("attempt", "before", "status", "retry_in", "gone"),
    [
        (Attempt(status_code=204), 0, DeliveryStatus.DELIVERED, None, False),
        (Attempt(status_code=410), 0, DeliveryStatus.DEAD, None, True),
        (Attempt(status_code=500), 0, DeliveryStatus.PENDING, (8.0, 12.0), False),
        (Attempt(error="refused"), 1, DeliveryStatus.PENDING, (24.0, 36.0), False),
        (
            Attempt(status_code=503, retry_after=25.0),
            0,
            DeliveryStatus.PENDING,
            (25.0, 25.0),
            False,
        ),
        (Attempt(status_code=500), 2, DeliveryStatus.DEAD, None, False),  # schedule used up
    ],
)
def test_what_an_attempt_means_for_its_delivery(
    attempt: Attempt,
    before: int,
    status: DeliveryStatus,
    retry_in: tuple[float, float] | None,
    gone: bool,
) -> None:
    judged = verdict(attempt, before, (10.0, 30.0), random.Random(1))
    assert (judged.status, judged.gone) == (status, gone)
    if retry_in is None:
        assert judged.retry_in is None
    else:
        assert judged.retry_in is not None
        assert retry_in[0] <= judged.retry_in <= retry_in[1]
