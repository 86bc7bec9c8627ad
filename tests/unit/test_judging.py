"""How a callback is judged (app/core/judging.py): on arrival, and once ICE was asked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.core.judging import (
    UNKNOWN_TOKEN,
    Reply,
    Work,
    envelope_fields,
    envelope_of,
    outcome,
    reply_to,
    verdicts,
)
from app.core.statuses import CallbackOutcome, JobKind, JobStatus


def envelope(
    status: str = "Success", job: str = "j1", event: str = "ProduceMediaComplete"
) -> bytes:
    return json.dumps(
        {"EventType": event, "MessageBody": {"JobId": job, "Status": status}}
    ).encode()


def job(
    status: JobStatus = JobStatus.PROCESSING, ice_job_id: str | None = "j1", **more: Any
) -> dict[str, Any]:
    return {"id": "job", "kind": JobKind.JOB, "status": status, "ice_job_id": ice_job_id, **more}


def callback(
    status: str = "Success", job_id: str = "j1", n: int = 1, **more: Any
) -> dict[str, Any]:
    return {
        "id": n,
        "event_type": "ProduceMediaComplete",
        "ice_job_id": job_id,
        "ice_status": status,
        **more,
    }


@pytest.mark.parametrize(
    ("body", "problem", "expected"),
    [
        (envelope(), None, Reply(200, CallbackOutcome.PENDING, "")),
        (envelope(), "bad signature", Reply(401, CallbackOutcome.REJECTED, "bad signature")),
        (
            b"{not json",
            None,
            Reply(400, CallbackOutcome.MALFORMED, "not ICE's JSON callback envelope"),
        ),
        (b"[1]", None, Reply(400, CallbackOutcome.MALFORMED, "not ICE's JSON callback envelope")),
        (
            b"[" * 5000,
            None,
            Reply(400, CallbackOutcome.MALFORMED, "not ICE's JSON callback envelope"),
        ),
        (
            envelope(event="RegisterMediaComplete"),
            None,
            Reply(200, CallbackOutcome.IGNORED, "EventType 'RegisterMediaComplete'"),
        ),
    ],
)
def test_the_reply_on_arrival(body: bytes, problem: str | None, expected: Reply) -> None:
    assert reply_to(envelope_of(body), problem) == expected


def test_an_unknown_token_is_refused() -> None:
    assert (UNKNOWN_TOKEN.status_code, UNKNOWN_TOKEN.outcome) == (401, CallbackOutcome.REJECTED)


def test_envelope_fields_are_short_and_storable() -> None:
    fields = envelope_fields(envelope_of(envelope(status="S\x00" + "x" * 500)))
    assert fields["ice_job_id"] == "j1"
    assert fields["ice_status"] is not None
    assert len(fields["ice_status"]) == 200
    assert "\x00" not in fields["ice_status"]
    assert envelope_fields(None) == {"event_type": None, "ice_job_id": None, "ice_status": None}


@pytest.mark.parametrize(
    ("reported", "before", "after", "expected"),
    [
        ("Success", JobStatus.PROCESSING, JobStatus.SUCCEEDED, CallbackOutcome.APPLIED),
        ("Success", JobStatus.SUCCEEDED, JobStatus.SUCCEEDED, CallbackOutcome.DUPLICATE),
        ("Processing", JobStatus.SUCCEEDED, JobStatus.SUCCEEDED, CallbackOutcome.STALE),
        ("Failed", JobStatus.PROCESSING, JobStatus.SUCCEEDED, CallbackOutcome.REJECTED),
        ("Exploded", JobStatus.PROCESSING, JobStatus.SUCCEEDED, CallbackOutcome.UNRECOGNIZED),
    ],
)
def test_the_outcome_once_ice_was_asked(
    reported: str, before: JobStatus, after: JobStatus, expected: CallbackOutcome
) -> None:
    verdict, detail = outcome(job(before), callback(reported), {"j1": before}, {"j1": after}, set())
    assert verdict == expected
    assert detail


def test_a_callback_for_another_job_is_unmatched() -> None:
    verdict, detail = outcome(
        job(),
        callback(job_id="j2"),
        {"j1": JobStatus.PROCESSING},
        {"j1": JobStatus.PROCESSING},
        set(),
    )
    assert verdict == CallbackOutcome.UNMATCHED
    assert "'j2'" in detail


def test_of_several_reporting_one_change_the_first_is_applied() -> None:
    work = Work(job(), [callback(n=1), callback(n=2)], {"j1": JobStatus.PROCESSING})
    judged = verdicts(work, {"j1": JobStatus.SUCCEEDED})
    assert [(n, o) for n, o, _ in judged] == [
        (1, CallbackOutcome.APPLIED),
        (2, CallbackOutcome.DUPLICATE),
    ]


@pytest.mark.parametrize(
    ("status", "reported", "known", "needed"),
    [
        (JobStatus.PROCESSING, "Success", JobStatus.PROCESSING, True),  # it may have moved
        (JobStatus.SUCCEEDED, "Success", JobStatus.SUCCEEDED, False),  # final: nothing to ask
        (JobStatus.PROCESSING, "Queuing", JobStatus.PROCESSING, False),  # already past it
        (JobStatus.PROCESSING, "Processing", JobStatus.PROCESSING, False),  # already there
        (JobStatus.PROCESSING, "Exploded", JobStatus.PROCESSING, True),  # unknown: ask ICE
    ],
)
def test_ice_is_asked_only_when_a_callback_could_move_the_job(
    status: JobStatus, reported: str, known: JobStatus, needed: bool
) -> None:
    work = Work(job(status), [callback(reported)], {"j1": known})
    assert work.needs_ice() is needed


def test_a_batch_token_speaks_for_its_sub_jobs() -> None:
    batch = job(ice_job_id="b1", kind=JobKind.BATCH)
    sub = callback("Success", job_id="s1")
    statuses: dict[str | None, JobStatus] = {"b1": JobStatus.PROCESSING, "s1": JobStatus.PROCESSING}
    assert Work(batch, [sub], statuses).needs_ice()
    after: dict[str | None, JobStatus] = {**statuses, "s1": JobStatus.SUCCEEDED}
    verdict, _ = outcome(batch, sub, statuses, after, set())
    assert verdict == CallbackOutcome.APPLIED
