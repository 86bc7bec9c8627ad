"""Statuses: ICE's words, and forward only."""

from __future__ import annotations

import itertools

import pytest

from app.core.statuses import (
    RANK,
    TERMINAL_STATUSES,
    JobKind,
    JobStatus,
    moves_forward,
    status_from_ice,
)


@pytest.mark.parametrize(
    ("kind", "word", "status"),
    [
        (JobKind.JOB, "Init", JobStatus.SUBMITTED),
        (JobKind.JOB, "Queuing", JobStatus.QUEUING),
        (JobKind.JOB, "processing", JobStatus.PROCESSING),
        (JobKind.JOB, "Success", JobStatus.SUCCEEDED),
        (JobKind.JOB, "Failed", JobStatus.FAILED),
        (JobKind.JOB, "Fail", JobStatus.FAILED),  # what ICE's callbacks may say
        (JobKind.BATCH, "Finished", JobStatus.FINISHED),
        (JobKind.BATCH, "Processing", JobStatus.PROCESSING),
        (JobKind.JOB, "Finished", None),
        (JobKind.JOB, "Exploded", None),
        (JobKind.JOB, None, None),
    ],
)
def test_ice_words_map_to_statuses(
    kind: JobKind, word: str | None, status: JobStatus | None
) -> None:
    assert status_from_ice(kind, word) == status


def test_only_forward_moves_are_allowed_and_terminal_is_final() -> None:
    for current, new in itertools.product(JobStatus, JobStatus):
        allowed = moves_forward(current, new)
        assert allowed == (RANK[new] > RANK[current])
        if current in TERMINAL_STATUSES:
            assert not allowed
