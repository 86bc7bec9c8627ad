"""When to try ICE again, and how long a job's lease lasts (webhooks: ``core.delivery``).

- ICE calls: a failure that proves ICE did nothing (``Throttling*``, a refused connection)
  may always be tried again; one that leaves the outcome unknown (no answer,
  ``InternalError``, ``ServiceUnavailable``, any 5xx) only when the call is idempotent;
  any other 4xx never (``retryable``). Pauses are exponential with full jitter
  (``backoff``), and at least ICE's ``x-acs-retry-after`` up to ``MAX_RETRY_WAIT_SECONDS``.
- Leases: a job or delivery is held with a lease of ``LEASE_SECONDS`` that its holder
  renews every ``HEARTBEAT_SECONDS`` while it works on it; a holder that dies stops
  renewing, and what it held is free again within ``LEASE_SECONDS`` (docs/architecture.md,
  Leases).
- Confirmations: getting ICE's word on a job may take ``answer_seconds`` (and one
  confirmation, ``longest_confirmation_seconds``).
- The sweeper: a job ICE answered about is looked at again after the sweep interval; one
  it could not be asked about, with exponential backoff up to an hour (``next_check``).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from app.core.errors import IceError
from app.core.statuses import TERMINAL_STATUSES, JobStatus

RETRYABLE_CODES = frozenset({"InternalError", "ServiceUnavailable"})
# The longest wait ICE's x-acs-retry-after may ask for between two attempts of a call; a
# call asked to wait longer gives up (the caller comes back later).
MAX_RETRY_WAIT_SECONDS = 4.0
MAX_BACKOFF_SECONDS = 8.0
MAX_BACKOFF = timedelta(hours=1)  # between two checks of a job ICE could not be asked about
# A lease lasts this long unless renewed: how long a dead holder's work waits for another
# worker (plus that worker's next pass). Its holder renews it five times as often, so only
# a process that cannot reach the database (or run at all) for that long loses it.
LEASE_SECONDS = 1.5
HEARTBEAT_SECONDS = LEASE_SECONDS / 5


# -- ICE calls ----------------------------------------------------------------------------------


# Failures before anything reached ICE: no connection, or no credentials to sign with.
NOTHING_SENT = frozenset({"ConnectionFailed", "CredentialsUnavailable"})


# ICE refused the credential, not the call (an STS token that expired as it was sent):
# the next attempt is signed with a renewed one (ice.credentials).
EXPIRED_CREDENTIAL = "InvalidSecurityToken.Expired"


def retryable(exc: IceError, idempotent: bool) -> bool:
    """Whether a call that failed with ``exc`` may be made again."""
    if exc.code.startswith(("Throttling", EXPIRED_CREDENTIAL)) or exc.code in NOTHING_SENT:
        return True  # ICE did nothing
    unknown_outcome = exc.code == "NoAnswer" or exc.code in RETRYABLE_CODES or exc.status >= 500
    return unknown_outcome and idempotent


def backoff(rng: random.Random, attempt: int) -> float:
    """The pause after failed ``attempt``: 0..``backoff_limit(attempt)`` seconds."""
    return rng.uniform(0, backoff_limit(attempt))


def backoff_limit(attempt: int) -> float:
    return min(MAX_BACKOFF_SECONDS, 0.2 * 2.0**attempt)


def refused(error: IceError) -> bool:
    """ICE answered and said no: not "no answer", "failed on ICE's side" or "try later"."""
    return 400 <= error.status < 500 and not error.code.startswith(
        ("Throttling", EXPIRED_CREDENTIAL)
    )


# -- confirming and sweeping --------------------------------------------------------------------


def answer_seconds(ice_timeout: float, ice_attempts: int) -> float:
    """How long one ICE call may take: every attempt running to its deadline, and the
    longest pause after each failed one but the last (the backoff, or ICE's retry-after up
    to ``MAX_RETRY_WAIT_SECONDS``), and a few seconds more. Getting ICE's word on a job is
    given up then (and tried again later). 70 s with the default 10 s and 5 attempts."""
    pauses = sum(
        max(MAX_RETRY_WAIT_SECONDS, backoff_limit(attempt)) for attempt in range(1, ice_attempts)
    )
    return ice_timeout * ice_attempts + pauses + 4


def longest_confirmation_seconds(ice_timeout: float, ice_attempts: int) -> float:
    """How long confirming a job may take at most: ICE's answer, and recording it."""
    return answer_seconds(ice_timeout, ice_attempts) + 10


def next_check(
    status: JobStatus,
    check_count: int,
    *,
    heard: bool,
    sweep_after: timedelta,
    now: datetime,
    rng: random.Random,
) -> dict[str, Any]:
    """When to look at a job again (``check_at``, ``check_count``, ``heard_at``): after the
    sweep interval when ICE answered (``heard``), with backoff when it could not be asked;
    never, once final."""
    if status in TERMINAL_STATUSES:
        return {"check_at": None, "check_count": 0, "heard_at": None}
    if heard:
        return {"check_at": now + sweep_after, "check_count": 0, "heard_at": now}
    count = check_count + 1
    delay = min(sweep_after * 2**count, MAX_BACKOFF) * rng.uniform(0.8, 1.2)
    return {"check_at": now + delay, "check_count": count, "heard_at": None}
