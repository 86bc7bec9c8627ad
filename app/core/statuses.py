"""What a job, a callback and a delivery can be, and how ICE's words map onto them.

A job's status only moves forward (``RANK``), and a terminal status is final::

    submitting -> submitted -> queuing -> processing -> succeeded | failed
    submitting -> rejected
    batch: submitting -> submitted -> processing -> finished | failed | rejected
    batch: submitting -> abandoned (by an operator, when ICE cannot show whether it exists)
"""

from __future__ import annotations

import enum


class JobKind(enum.StrEnum):
    JOB = "job"
    BATCH = "batch"


class JobStatus(enum.StrEnum):
    SUBMITTING = "submitting"
    SUBMITTED = "submitted"
    QUEUING = "queuing"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    FINISHED = "finished"
    REJECTED = "rejected"
    ABANDONED = "abandoned"


TERMINAL_STATUSES = frozenset(
    {
        JobStatus.SUCCEEDED,
        JobStatus.FAILED,
        JobStatus.FINISHED,
        JobStatus.REJECTED,
        JobStatus.ABANDONED,
    }
)


class EventSource(enum.StrEnum):
    SUBMIT = "submit"
    CALLBACK = "callback"
    RECONCILE = "reconcile"
    SWEEP = "sweep"
    MANUAL = "manual"


class CallbackOutcome(enum.StrEnum):
    PENDING = "pending"  # stored, not yet confirmed against ICE
    APPLIED = "applied"  # confirming it moved the job forward
    DUPLICATE = "duplicate"  # the job already had that status
    STALE = "stale"  # ICE's answer would have moved the job backwards
    UNMATCHED = "unmatched"  # valid token, but the JobId is not one of that token's jobs
    UNRECOGNIZED = "unrecognized"  # a Status icehook does not know (ICE was asked instead)
    IGNORED = "ignored"  # an EventType icehook does not act on
    MALFORMED = "malformed"  # not JSON, or not ICE's envelope
    REJECTED = "rejected"  # unknown token or bad signature: never applied


class DeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


RANK = {
    JobStatus.SUBMITTING: 0,
    JobStatus.SUBMITTED: 1,
    JobStatus.QUEUING: 2,
    JobStatus.PROCESSING: 3,
    **dict.fromkeys(TERMINAL_STATUSES, 4),
}


# ICE's words, lower-cased. ICE's callbacks may say "Fail" where Get says "Failed".
_JOB_STATUSES = {
    "init": JobStatus.SUBMITTED,
    "queuing": JobStatus.QUEUING,
    "processing": JobStatus.PROCESSING,
    "success": JobStatus.SUCCEEDED,
    "failed": JobStatus.FAILED,
    "fail": JobStatus.FAILED,
}


_BATCH_STATUSES = {
    "init": JobStatus.SUBMITTED,
    "processing": JobStatus.PROCESSING,
    "finished": JobStatus.FINISHED,
    "failed": JobStatus.FAILED,
    "fail": JobStatus.FAILED,
}


def status_from_ice(kind: JobKind, ice_status: str | None) -> JobStatus | None:
    """icehook's status for ICE's word, or None for a word icehook does not know."""
    table = _BATCH_STATUSES if kind == JobKind.BATCH else _JOB_STATUSES
    return table.get((ice_status or "").strip().lower())


def moves_forward(current: JobStatus, new: JobStatus) -> bool:
    """Forward only; terminal statuses are final (so nothing follows them)."""
    return RANK[new] > RANK[current]
