"""The move an ICE answer makes of a job (app/core/moves.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.core.answers import BatchJob, MediaProducingJob
from app.core.moves import Move, furthest, move_for
from app.core.statuses import EventSource, JobKind, JobStatus

NOTIFY = "https://hooks.example/callbacks/ice/SecretToken-123"


def job(status: JobStatus = JobStatus.SUBMITTED, **more: Any) -> dict[str, Any]:
    return {
        "id": "job-1",
        "kind": JobKind.JOB,
        "status": status,
        "ice_job_id": "j1",
        "project_id": "p1",
        "parameters": {},
        **more,
    }


def answer(status: str = "Success", **more: Any) -> MediaProducingJob:
    raw = {
        "JobId": "j1",
        "Status": status,
        "MediaURL": "https://oss/out.mp4",
        "UserData": json.dumps({"NotifyAddress": NOTIFY}),
        **more,
    }
    return MediaProducingJob.parse(raw)


def test_a_job_answer_moves_the_job_with_its_media_and_without_the_token() -> None:
    move = move_for(job(), JobKind.JOB, answer(), EventSource.CALLBACK)
    assert move is not None
    assert move.status == JobStatus.SUCCEEDED
    assert move.changes["media_url"] == "https://oss/out.mp4"
    assert move.changes["project_id"] == "p1", "ICE's answer left it out: the job's is kept"
    assert move.payload is not None
    assert "SecretToken-123" not in json.dumps(move.payload)


def test_a_submitting_jobs_parameters_lose_the_token_when_ice_answers() -> None:
    parameters = {"UserData": json.dumps({"NotifyAddress": NOTIFY, "k": 1})}
    move = move_for(
        job(JobStatus.SUBMITTING, parameters=parameters),
        JobKind.JOB,
        answer("Init"),
        EventSource.SWEEP,
    )
    assert move is not None
    assert "SecretToken-123" not in move.changes["parameters"]["UserData"]
    assert '"k": 1' in move.changes["parameters"]["UserData"]


def test_a_status_icehook_does_not_know_makes_no_move() -> None:
    assert move_for(job(), JobKind.JOB, answer("Exploded"), EventSource.CALLBACK) is None


def test_a_batch_answer_carries_its_error_from_extend() -> None:
    raw = {
        "JobId": "b1",
        "Status": "Failed",
        "Extend": json.dumps({"ErrorCode": "E", "ErrorMessage": "m"}),
    }
    batch = job(kind=JobKind.BATCH, ice_job_id="b1")
    move = move_for(batch, JobKind.BATCH, BatchJob.parse(raw), EventSource.SWEEP)
    assert move is not None
    assert (move.status, move.changes["error_code"], move.changes["error_message"]) == (
        JobStatus.FAILED,
        "E",
        "m",
    )


@pytest.mark.parametrize("batch_word", ["Finished", "Failed"])
@pytest.mark.parametrize(
    ("sub_words", "expected", "counts"),
    [
        (["Success", "Failed"], None, (1, 1)),
        (["Success", "Success"], None, (2, 0)),
        (["Failed", "Fail"], None, (0, 2)),
        ([], "failed", (0, 0)),  # failed as a whole: failed, whichever word ICE used
    ],
)
def test_a_final_batch_counts_its_sub_jobs_whichever_word_ice_used(
    batch_word: str, sub_words: list[str], expected: str | None, counts: tuple[int, int]
) -> None:
    raw = {
        "JobId": "b1",
        "Status": batch_word,
        "SubJobList": [{"JobId": f"s{n}", "Status": w} for n, w in enumerate(sub_words)],
        "Extend": json.dumps({"ErrorCode": "InvalidParameter.ProjectIds", "ErrorMessage": "m"})
        if not sub_words
        else "{}",
    }
    batch = job(kind=JobKind.BATCH, ice_job_id="b1")
    move = move_for(batch, JobKind.BATCH, BatchJob.parse(raw), EventSource.CALLBACK)
    assert move is not None
    assert move.status == (expected or batch_word.lower())
    assert (move.changes["sub_jobs_succeeded"], move.changes["sub_jobs_failed"]) == counts
    if not sub_words:
        assert move.changes["error_code"] == "InvalidParameter.ProjectIds"


def test_a_batch_still_running_is_not_counted_from_a_list_answer() -> None:
    batch = job(kind=JobKind.BATCH, ice_job_id="b1")
    answer = BatchJob.parse({"JobId": "b1", "Status": "Processing"})
    move = move_for(batch, JobKind.BATCH, answer, EventSource.SWEEP)
    assert move is not None
    assert "sub_jobs_succeeded" not in move.changes


def test_of_two_moves_of_one_job_the_further_counts_and_backwards_ones_none() -> None:
    queued = Move(job(), JobStatus.QUEUING, EventSource.CALLBACK, None)
    done = Move(job(), JobStatus.SUCCEEDED, EventSource.CALLBACK, None)
    back = Move(
        job(JobStatus.PROCESSING, id="job-2"), JobStatus.QUEUING, EventSource.CALLBACK, None
    )
    assert furthest([queued, done, back]) == [done]


def test_a_move_may_not_change_what_it_does_not_own() -> None:
    rogue = Move(job(), JobStatus.QUEUING, EventSource.CALLBACK, None, {"callback_token_hash": b""})
    with pytest.raises(ValueError, match="callback_token_hash"):
        furthest([rogue])
