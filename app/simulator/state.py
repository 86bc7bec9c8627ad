"""What the simulated ICE account holds: jobs, batches and ClientTokens, in memory.

A job's whole life is decided when it is submitted: when it enters each status and whether it
ends ``Success`` or ``Failed``. Its status at any moment is then read off the clock
(``Job.status_at``) instead of being advanced by timers, so a query is exact and a later change
of the simulator's settings cannot alter a job already running. Only callbacks need timers, and
those live in ``callbacks.py``.

Jobs and batches are kept in submission order with a sequence number each, which is what the
List actions page by: a page token names the last sequence number seen, so jobs submitted while
a client pages through never make it see a job twice or skip one.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal, TypeVar

from app.simulator.settings import SimulatorSettings

JobStatus = Literal["Init", "Queuing", "Processing", "Success", "Failed"]
BatchStatus = Literal["Init", "Processing", "Finished", "Failed"]
JOB_STATUSES: tuple[JobStatus, ...] = ("Init", "Queuing", "Processing", "Success", "Failed")
BATCH_STATUSES: tuple[BatchStatus, ...] = ("Init", "Processing", "Finished", "Failed")
BATCH_JOB_TYPE = "Scene_Batch_Editing"
# The JobType filter of ListBatchMediaProducingJobs accepts these (the SDK's model).
BATCH_JOB_TYPES = frozenset(
    {
        "Script",
        "Smart_Mix",
        "Sports_Highlights",
        "Screen_Media_Highlights",
        "Smart_Mix_Media_Select",
        "Smart_Mix_Timeline_Organize",
        "Screen_Media_Highlights_Media_Select",
        "Screen_Media_Highlights_Timeline_Organize",
        BATCH_JOB_TYPE,
    }
)

# Where in job_seconds each phase begins; the job ends at 1.0.
QUEUING_AT = 0.1
PROCESSING_AT = 0.3

# Failures as ICE reports them in GetMediaProducingJob (Code, Message). The first is the
# documented example; the others are codes ICE uses for editing jobs, with messages in its style.
FAILURES: tuple[tuple[str, str], ...] = (
    ("ExceededMaximumValue", 'The specified "Width_Height" has exceeded maximum value.'),
    ("InvalidParameter.Timeline", 'The specified parameter "Timeline" is not valid.'),
    ("MediaNotFound", "The specified media is not found."),
    ("InvalidMaterial", "The specified material cannot be decoded."),
)

ICE_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

Clock = Callable[[], float]


def ice_time(moment: float) -> str:
    """ICE's time format: UTC, whole seconds, ``Z``."""
    return datetime.fromtimestamp(moment, UTC).strftime(ICE_TIME_FORMAT)


def iso_time(moment: float) -> str:
    """The admin routes' time format: ISO 8601, UTC, microseconds, ``Z``.

    ``Z`` rather than ``+00:00``, so the value can be pasted into a ``since=`` query unencoded.
    """
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


def parse_ice_time(text: str) -> float:
    """Parse ``yyyy-MM-ddTHH:mm:ssZ``; ValueError if it is not that."""
    return datetime.strptime(text, ICE_TIME_FORMAT).replace(tzinfo=UTC).timestamp()


def new_id() -> str:
    """An ICE-style id: 32 lower-case hex digits."""
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Job:
    """A media-producing job, alone or a batch's sub-job, with its whole life decided."""

    seq: int
    job_id: str
    project_id: str
    media_id: str
    media_url: str
    vod_media_id: str | None
    created: float
    queuing_at: float
    processing_at: float
    done_at: float
    final_status: Literal["Success", "Failed"]
    code: str  # "" unless the job fails
    message: str
    duration: float  # seconds of output, reported on success only
    timeline: str | None
    template_id: str | None
    clips_param: str | None
    user_data: str | None  # exactly as submitted
    client_token: str | None
    master_job_id: str | None  # the batch a sub-job belongs to

    @property
    def job_type(self) -> str:
        """ListMediaProducingJobs' JobType: a template job is a VETemplateJob."""
        return "VETemplateJob" if self.template_id else "EditingJob"

    def status_at(self, now: float) -> JobStatus:
        if now >= self.done_at:
            return self.final_status
        if now >= self.processing_at:
            return "Processing"
        if now >= self.queuing_at:
            return "Queuing"
        return "Init"

    def modified_at(self, now: float) -> float:
        """When the job last changed status, as of ``now``."""
        reached = [t for t in (self.queuing_at, self.processing_at, self.done_at) if t <= now]
        return max(reached, default=self.created)

    def progress_at(self, now: float) -> int:
        """Percent done: 0 until processing, rising through it, 100 on success.

        ICE does not document Progress; a failed job keeps what it had reached.
        """
        span = self.done_at - self.processing_at
        if now < self.processing_at:
            return 0
        if now >= self.done_at:
            return 100 if self.final_status == "Success" else 99
        return min(99, int(100 * (now - self.processing_at) / span)) if span > 0 else 99

    def describe(self, now: float) -> dict[str, object]:
        """The simulator's truth about this job, for ``GET /_sim/jobs/{JobId}``."""
        return {
            "job_id": self.job_id,
            "kind": "job",
            "status": self.status_at(now),
            "final_status": self.final_status,
            "code": self.code,
            "message": self.message,
            "project_id": self.project_id,
            "media_id": self.media_id,
            "media_url": self.media_url,
            "duration": self.duration if self.final_status == "Success" else None,
            "master_job_id": self.master_job_id,
            "client_token": self.client_token,
            "user_data": self.user_data,
            "created_at": iso_time(self.created),
            "status_times": {
                "Init": iso_time(self.created),
                "Queuing": iso_time(self.queuing_at),
                "Processing": iso_time(self.processing_at),
                self.final_status: iso_time(self.done_at),
            },
            "completes_at": iso_time(self.done_at),
        }


# A batch naming a project whose id starts with this fails as a whole, without sub-jobs, as
# ICE fails a batch it cannot start (docs/simulator.md).
UNKNOWN_PROJECT_PREFIX = "unknown"
WHOLE_FAILURE_AFTER = 0.1  # of job_seconds: when such a batch is Failed


@dataclass(frozen=True)
class Batch:
    """A SubmitSceneBatchEditingJob batch: one sub-job per project, or none when it failed as
    a whole (``refusal``)."""

    seq: int
    job_id: str
    project_ids: tuple[str, ...]
    output_config: str
    user_data: str | None
    created: float
    sub_jobs: tuple[Job, ...]
    # What a batch whose sub-jobs all failed ends as (the batch_failure setting when submitted).
    when_all_fail: Literal["Finished", "Failed"] = "Failed"
    refusal: tuple[str, str] | None = None  # (ErrorCode, ErrorMessage) of a whole failure
    refused_at: float = 0.0

    @property
    def processing_at(self) -> float:
        if not self.sub_jobs:
            return self.refused_at
        return min(job.queuing_at for job in self.sub_jobs)

    @property
    def done_at(self) -> float:
        if not self.sub_jobs:
            return self.refused_at
        return max(job.done_at for job in self.sub_jobs)

    @property
    def final_status(self) -> Literal["Finished", "Failed"]:
        # Finished even when some sub-jobs failed; when all did (or it failed as a whole,
        # with none), as the batch_failure setting said.
        if all(job.final_status == "Failed" for job in self.sub_jobs):
            return self.when_all_fail
        return "Finished"

    def status_at(self, now: float) -> BatchStatus:
        if now >= self.done_at:
            return self.final_status
        if now >= self.processing_at:
            return "Processing"
        return "Init"

    def modified_at(self, now: float) -> float:
        reached = [t for t in (self.processing_at, self.done_at) if t <= now]
        return max(reached, default=self.created)

    def error(self) -> tuple[str, str]:
        """The batch's own ErrorCode and ErrorMessage (for Extend), set only when it failed."""
        if self.refusal is not None:
            return self.refusal
        if self.final_status == "Failed":
            return self.sub_jobs[0].code, self.sub_jobs[0].message
        return "", ""

    def describe(self, now: float) -> dict[str, object]:
        """The simulator's truth about this batch, for ``GET /_sim/jobs/{JobId}``."""
        return {
            "job_id": self.job_id,
            "kind": "batch",
            "status": self.status_at(now),
            "final_status": self.final_status,
            "project_ids": list(self.project_ids),
            "output_config": self.output_config,
            "user_data": self.user_data,
            "created_at": iso_time(self.created),
            "status_times": {
                "Init": iso_time(self.created),
                "Processing": iso_time(self.processing_at),
                self.final_status: iso_time(self.done_at),
            },
            "completes_at": iso_time(self.done_at),
            "sub_jobs": [job.describe(now) for job in self.sub_jobs],
        }


class TokenMismatch(Exception):
    """A ClientToken already used for a submission with other parameters."""


class TokenReused(Exception):
    """A ClientToken already used (``client_token_reuse`` ``error``)."""


@dataclass(frozen=True)
class JobSpec:
    """What a submission asks for, validated; the store decides the rest."""

    project_id: str | None
    timeline: str | None
    template_id: str | None
    clips_param: str | None
    media_url: str
    vod_output: bool
    user_data: str | None


T = TypeVar("T", Job, Batch)


class Store:
    """Every job and batch of the simulated account, and the ClientToken index."""

    def __init__(self, clock: Clock, rng: random.Random) -> None:
        self._clock = clock
        self._rng = rng
        self._jobs: list[Job] = []  # index == seq
        self._jobs_by_id: dict[str, Job] = {}
        self._batches: list[Batch] = []
        self._batches_by_id: dict[str, Batch] = {}
        # ClientToken -> (fingerprint of the submission's parameters, JobId)
        self._tokens: dict[str, tuple[str, str]] = {}

    def job(self, job_id: str) -> Job | None:
        return self._jobs_by_id.get(job_id)

    def batch(self, job_id: str) -> Batch | None:
        return self._batches_by_id.get(job_id)

    def submit_job(
        self,
        spec: JobSpec,
        settings: SimulatorSettings,
        *,
        client_token: str | None,
        fingerprint: str,
    ) -> tuple[Job, bool]:
        """Add a job, or return the one this ClientToken already made; True when new.

        With ``client_token_reuse`` ``original``, raises TokenMismatch when the token was used
        with other parameters; with ``error``, TokenReused whenever it was used; with
        ``ignored``, the token changes nothing (a second job).
        """
        reuse = settings.client_token_reuse
        if client_token is not None and client_token in self._tokens and reuse != "ignored":
            known_fingerprint, job_id = self._tokens[client_token]
            if reuse == "error":
                raise TokenReused(client_token)
            if known_fingerprint != fingerprint:
                raise TokenMismatch(client_token)
            return self._jobs_by_id[job_id], False
        job = self._add_job(
            spec, settings, self._clock(), client_token=client_token, master_job_id=None
        )
        if client_token is not None:
            self._tokens[client_token] = (fingerprint, job.job_id)
        return job, True

    def submit_batch(
        self,
        project_ids: Sequence[str],
        output_config: str,
        media_urls: Sequence[str],
        vod_output: bool,
        user_data: str | None,
        settings: SimulatorSettings,
    ) -> Batch:
        """Add a batch with one sub-job per project; ``media_urls`` has one URL per project.
        A batch naming an unknown project gets no sub-job and fails as a whole."""
        batch_id = new_id()
        now = self._clock()
        unknown = [p for p in project_ids if p.startswith(UNKNOWN_PROJECT_PREFIX)]
        sub_jobs: tuple[Job, ...] = ()
        if not unknown:
            sub_jobs = tuple(
                self._add_job(
                    JobSpec(
                        project_id=project_id,
                        timeline=None,
                        template_id=None,
                        clips_param=None,
                        media_url=media_url,
                        vod_output=vod_output,
                        user_data=user_data,
                    ),
                    settings,
                    now,
                    client_token=None,
                    master_job_id=batch_id,
                )
                for project_id, media_url in zip(project_ids, media_urls, strict=True)
            )
        batch = Batch(
            seq=len(self._batches),
            job_id=batch_id,
            project_ids=tuple(project_ids),
            output_config=output_config,
            user_data=user_data,
            created=now,
            sub_jobs=sub_jobs,
            when_all_fail="Finished" if settings.batch_failure == "always-finished" else "Failed",
            refusal=(
                ("InvalidParameter.ProjectIds", f"The specified project {unknown[0]} is not found.")
                if unknown
                else None
            ),
            refused_at=now + WHOLE_FAILURE_AFTER * settings.job_seconds,
        )
        self._batches.append(batch)
        self._batches_by_id[batch.job_id] = batch
        return batch

    def _add_job(
        self,
        spec: JobSpec,
        settings: SimulatorSettings,
        now: float,
        *,
        client_token: str | None,
        master_job_id: str | None,
    ) -> Job:
        seconds = settings.job_seconds
        failed = self._rng.random() < settings.failure_rate
        code, message = self._rng.choice(FAILURES) if failed else ("", "")
        job = Job(
            seq=len(self._jobs),
            job_id=new_id(),
            # ICE makes a project for a bare Timeline (and for a template job).
            project_id=spec.project_id or new_id(),
            media_id=new_id(),
            media_url=spec.media_url,
            vod_media_id=new_id() if spec.vod_output else None,
            created=now,
            queuing_at=now + QUEUING_AT * seconds,
            processing_at=now + PROCESSING_AT * seconds,
            done_at=now + seconds,
            final_status="Failed" if failed else "Success",
            code=code,
            message=message,
            duration=round(self._rng.uniform(5.0, 120.0), 3),
            timeline=spec.timeline,
            template_id=spec.template_id,
            clips_param=spec.clips_param,
            user_data=spec.user_data,
            client_token=client_token,
            master_job_id=master_job_id,
        )
        self._jobs.append(job)
        self._jobs_by_id[job.job_id] = job
        return job

    def every_job(self) -> Sequence[Job]:
        return tuple(self._jobs)

    def every_batch(self) -> Sequence[Batch]:
        return tuple(self._batches)

    def jobs_after(self, cursor: int | None, descending: bool) -> Iterator[Job]:
        """Jobs in creation order (or reversed) strictly after the job with seq ``cursor``."""
        return _walk(self._jobs, cursor, descending)

    def batches_after(self, cursor: int | None, descending: bool) -> Iterator[Batch]:
        return _walk(self._batches, cursor, descending)


def _walk(items: list[T], cursor: int | None, descending: bool) -> Iterator[T]:
    # The list only grows at its end and index == seq, so a cursor stays valid however many
    # items are added while a client pages.
    if descending:
        start = len(items) - 1 if cursor is None else min(cursor, len(items)) - 1
        for index in range(start, -1, -1):
            yield items[index]
    else:
        start = 0 if cursor is None else cursor + 1
        index = start
        while index < len(items):
            yield items[index]
            index += 1


def parse_json_object(text: str) -> dict[str, object] | None:
    """The JSON object in ``text``, or None when it is not one."""
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
