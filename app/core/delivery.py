"""What a webhook attempt gave, and what it means for its delivery: the retry policy.

A 2xx is delivered. ``410 Gone`` makes the delivery dead and disables its subscription.
Anything else is tried again after the next step of the retry schedule, with +-20 %
jitter and never sooner than the answer's ``Retry-After``; after the last step the delivery
is dead. A delivery is leased while it is sent and recorded, the lease renewed all along
(``flows.leasing``), so no other worker sends it meanwhile unless its sender could not
renew it for ``core.policies.LEASE_SECONDS``.
"""

from __future__ import annotations

import contextlib
import email.utils
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from app.core.parsing import natural
from app.core.statuses import DeliveryStatus

JITTER = 0.2
EXCERPT_BYTES = 1024  # of a subscriber's answer, kept with the attempt


@dataclass(frozen=True)
class Attempt:
    """What one POST to a subscriber gave."""

    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None
    excerpt: str | None = None
    retry_after: float | None = None  # seconds, from the answer's Retry-After

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Verdict:
    """What an attempt means for its delivery: its new status, when to try again (seconds;
    None: never), and whether the subscriber is gone (410: its subscription is disabled)."""

    status: DeliveryStatus
    retry_in: float | None = None
    gone: bool = False


@dataclass(frozen=True)
class DisablingRule:
    """When icehook disables a subscription by itself, and what it keeps doing for it: it is
    disabled by a 410 or after failing without one success for ``after_seconds``, and its
    new events are still queued for it for ``queue_seconds`` after (enabling it again
    within them catches up without a replay)."""

    after_seconds: float
    queue_seconds: float


def verdict(
    attempt: Attempt, attempts_before: int, schedule: Sequence[float], rng: random.Random
) -> Verdict:
    """What ``attempt``, after ``attempts_before`` earlier ones, means for its delivery."""
    if attempt.delivered:
        return Verdict(DeliveryStatus.DELIVERED)
    if attempt.status_code == 410:
        return Verdict(DeliveryStatus.DEAD, gone=True)
    delay = next_delay(schedule, attempts_before + 1, attempt.retry_after, rng)
    if delay is None:
        return Verdict(DeliveryStatus.DEAD)
    return Verdict(DeliveryStatus.PENDING, retry_in=delay)


def next_delay(
    schedule: Sequence[float], failures: int, retry_after: float | None, rng: random.Random
) -> float | None:
    """Seconds until the next attempt after ``failures`` failed ones; None: no more."""
    if failures > len(schedule):
        return None
    delay = schedule[failures - 1] * rng.uniform(1 - JITTER, 1 + JITTER)
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(schedule)))
    return delay


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """``Retry-After`` as seconds from ``now`` (a number of seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    seconds = natural(value)
    if seconds is not None:
        return float(seconds)
    with contextlib.suppress(TypeError, ValueError):
        moment = email.utils.parsedate_to_datetime(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return max(0.0, (moment - now).total_seconds())
    return None
