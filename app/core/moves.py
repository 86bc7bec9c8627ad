"""The move an observation makes of a job: which status it reaches, and what changes with it.

A ``Move`` is recorded (``store.jobs.record_statuses``) only if it goes forward; of two
moves of one job at once, the one that goes further counts (``furthest``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.core.answers import Answer, MediaProducingJob
from app.core.statuses import (
    RANK,
    TERMINAL_STATUSES,
    EventSource,
    JobKind,
    JobStatus,
    moves_forward,
    status_from_ice,
)
from app.core.tokens import redacted

Row = Mapping[Any, Any]  # a job's row, as the store reads it


@dataclass(frozen=True)
class Move:
    """An observation to record: ``job`` (its row, locked by the caller) to ``status``, with
    ``changes`` to its columns (``CHANGEABLE``) and ``payload``, what was observed."""

    job: Row
    status: JobStatus
    source: EventSource
    payload: Mapping[str, Any] | None
    changes: Mapping[str, Any] = field(default_factory=dict)
    # The W3C traceparent of the work that observed it, for its event's webhooks to continue.
    traceparent: str | None = None


CHANGEABLE = frozenset(
    {
        "ice_status",
        "ice_job_id",
        "project_id",
        "media_id",
        "media_url",
        "error_code",
        "error_message",
        "parameters",
        "sub_jobs_succeeded",
        "sub_jobs_failed",
    }
)


def move_for(
    job: Row,
    kind: JobKind,
    answer: Answer,
    source: EventSource,
    traceparent: str | None = None,
) -> Move | None:
    """The move ICE's ``answer`` makes of ``job`` (a job of ``kind``), observed by the work
    of ``traceparent``; None when ICE says a status icehook does not know."""
    to_status = status_from_ice(kind, answer.status)
    if to_status is None:
        return None
    changes: dict[str, Any] = {
        "ice_status": answer.status,
        "ice_job_id": answer.job_id or job["ice_job_id"],
        "error_code": answer.code,
        "error_message": answer.message,
    }
    if job["status"] == JobStatus.SUBMITTING and "UserData" in job["parameters"]:
        changes["parameters"] = redacted(job["parameters"])
    if isinstance(answer, MediaProducingJob):
        changes |= {
            "project_id": answer.project_id or job["project_id"],
            "media_id": answer.media_id,
            "media_url": answer.media_url,
        }
    elif answer.sub_jobs or to_status in TERMINAL_STATUSES:
        # A List answer omits sub-jobs, but a batch's final move always comes from a Get
        # (the sweeper fetches finished batches whole), so a final count is complete.
        outcomes = [status_from_ice(JobKind.JOB, sub.status) for sub in answer.sub_jobs]
        changes |= {
            "sub_jobs_succeeded": outcomes.count(JobStatus.SUCCEEDED),
            "sub_jobs_failed": outcomes.count(JobStatus.FAILED),
        }
        if to_status == JobStatus.FINISHED and not answer.sub_jobs and answer.code:
            # ICE may say Finished for a batch that failed as a whole, before any sub-job
            # (docs/ice.md, Batches): it made nothing, so it failed, with ICE's code.
            to_status = JobStatus.FAILED
    # ICE's answer repeats UserData, whose NotifyAddress holds the callback token.
    payload = redacted(answer.raw) if "UserData" in answer.raw else answer.raw
    return Move(job, to_status, source, payload, changes, traceparent)


def furthest(moves: Sequence[Move]) -> list[Move]:
    """The moves to record: per job, the one that goes furthest, if it goes forward at all.
    ``ValueError`` for a change no move may make (``CHANGEABLE``)."""
    by_job: dict[Any, Move] = {}
    for move in moves:  # two observations of one job at once: the one that went further counts
        seen = by_job.get(move.job["id"])
        if seen is None or RANK[move.status] > RANK[seen.status]:
            by_job[move.job["id"]] = move
    forward = [m for m in by_job.values() if moves_forward(JobStatus(m.job["status"]), m.status)]
    unknown = set().union(*(m.changes for m in forward)) - CHANGEABLE
    if unknown:
        raise ValueError(f"not changeable by a move: {sorted(unknown)}")
    return forward
