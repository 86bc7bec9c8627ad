"""How a callback is judged: the pure rules, without the store or ICE.

A callback is a hint. When it arrives, ``reply_to`` says how to answer it (after it is
stored): 400 if it is not ICE's envelope, 401 if its signature is wrong, 200 otherwise
(``pending`` when icehook acts on its EventType, ``ignored`` when not). Later, once ICE has
been asked about its job, ``outcome`` judges it:

- ``applied``: confirming it moved the job forward;
- ``duplicate``: the job already had the status it reports;
- ``stale``: the job is already past the status it reports;
- ``rejected``: ICE contradicts it (or its token or signature is wrong: never applied);
- ``unmatched``: a valid token, but a JobId that is not that token's job;
- ``unrecognized``: a Status icehook does not know (ICE's answer is applied all the same);
- ``ignored`` / ``malformed``: an EventType icehook does not act on / not ICE's envelope.

``Work.needs_ice`` says when no ICE call is needed at all: the job is already at or past
what every pending callback reports, which is what makes duplicates cheap.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.parsing import postgres_text
from app.core.statuses import (
    RANK,
    TERMINAL_STATUSES,
    CallbackOutcome,
    JobKind,
    JobStatus,
    status_from_ice,
)

KNOWN_EVENTS = frozenset({"ProduceMediaComplete", "BatchProduceMediaComplete"})


@dataclass(frozen=True)
class Reply:
    """How a received callback is answered."""

    status_code: int
    outcome: CallbackOutcome
    detail: str


UNKNOWN_TOKEN = Reply(401, CallbackOutcome.REJECTED, "unknown callback token")


def reply_to(envelope: dict[str, Any] | None, signature_problem: str | None) -> Reply:
    """The reply to a callback whose token is known: ``signature_problem`` says why its
    signature does not verify (None: it does, or none is required)."""
    if signature_problem is not None:
        return Reply(401, CallbackOutcome.REJECTED, signature_problem)
    if envelope is None:
        return Reply(400, CallbackOutcome.MALFORMED, "not ICE's JSON callback envelope")
    if envelope["EventType"] not in KNOWN_EVENTS:
        return Reply(200, CallbackOutcome.IGNORED, f"EventType {envelope['EventType']!r}")
    return Reply(200, CallbackOutcome.PENDING, "")


def envelope_of(body: bytes) -> dict[str, Any] | None:
    """ICE's envelope (``EventType``, ``MessageBody``...) in ``body``; None if it is not one."""
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


def envelope_fields(envelope: dict[str, Any] | None) -> dict[str, str | None]:
    """What is kept of an envelope beside the raw body: its event type, JobId and Status,
    short and storable."""
    envelope = envelope or {}
    message = envelope.get("MessageBody") or {}
    return {
        "event_type": _short(envelope.get("EventType")),
        "ice_job_id": _short(message.get("JobId")),
        "ice_status": _short(message.get("Status")),
    }


def _short(value: object) -> str | None:
    return postgres_text(value[:200]) if isinstance(value, str) else None


Judged = Mapping[Any, Any]  # a job or a callback, as judging reads it (a row, or a dict)


@dataclass(frozen=True)
class Work:
    """A leased job with its pending callbacks, and its statuses by ICE JobId (a batch's
    include its sub-jobs')."""

    job: Judged
    pending: Sequence[Judged]
    statuses: Mapping[str | None, JobStatus]

    def reported_ice_job_ids(self) -> list[str]:
        """The ICE JobIds its pending callbacks give for the job itself (a batch's own event,
        not its sub-jobs'): how a job whose submission's answer was lost learns its id."""
        own = (
            "BatchProduceMediaComplete"
            if self.job["kind"] == JobKind.BATCH
            else "ProduceMediaComplete"
        )
        return [c["ice_job_id"] for c in self.pending if c["event_type"] == own and c["ice_job_id"]]

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


def _claim(job: Judged, callback: Judged) -> JobStatus | None:
    kind = JobKind.BATCH if callback["event_type"] == "BatchProduceMediaComplete" else JobKind.JOB
    return status_from_ice(kind, callback["ice_status"])


def _matches(job: Judged, callback: Judged) -> bool:
    """A single job's token only speaks for that job (unless ICE's id is not yet known);
    a batch's token also for its sub-jobs, which may not be known yet."""
    if job["kind"] == JobKind.BATCH or job["ice_job_id"] is None:
        return True
    return bool(callback["ice_job_id"] == job["ice_job_id"])


def outcome(
    job: Judged,
    callback: Judged,
    before: Mapping[str | None, JobStatus],
    after: Mapping[str | None, JobStatus],
    credited: set[str | None],
) -> tuple[CallbackOutcome, str]:
    """How ``callback`` of ``job`` is judged, given the statuses (by ICE JobId) before and
    after ICE was asked. Of several callbacks reporting one change, the first is ``applied``
    (``credited`` remembers which JobIds were), the others ``duplicate``."""
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


def verdicts(
    work: Work, after: Mapping[str | None, JobStatus]
) -> list[tuple[Any, CallbackOutcome, str]]:
    """Each pending callback of ``work`` (its id) with its outcome and why, given the job's
    statuses after ICE was asked."""
    credited: set[str | None] = set()
    return [
        (callback["id"], *outcome(work.job, callback, work.statuses, after, credited))
        for callback in work.pending
    ]
