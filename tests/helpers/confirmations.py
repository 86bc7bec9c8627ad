"""Confirmations as icehook's logs show them: each process logs ``confirm start job=...``
and ``confirm end job=... status=...`` (logger ``app.flows.confirm``) around every
confirmation of a job, the end before the commit that releases its lease; from those lines
tests check that no job was ever confirmed by two processes at once.

A confirmation that ended ``status=lost`` recorded nothing (its process could not renew the
lease in time and another took the job over: app/flows/leasing.py), so it is no
confirmation at all here.
"""

from __future__ import annotations

import dataclasses
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

from tests.helpers.processes import log_record

CONFIRM = re.compile(
    r"confirm (?P<what>start|end) job=(?P<job>[0-9a-f-]{36})(?: status=(?P<status>\w+))?"
)


@dataclasses.dataclass(frozen=True)
class Confirmation:
    process: str
    job: str
    start: datetime
    end: datetime


def confirmations(process: str, log: Path, killed_at: datetime | None = None) -> list[Confirmation]:
    """The confirmations in one process's log, each a start..end interval.

    Each JSON log line has a UTC time to the microsecond; all processes share this
    machine's clock. Starts and ends of one job are paired first in, first out. Of a
    process killed at ``killed_at``, a confirmation it never ended lasted until then.
    """
    done: list[Confirmation] = []
    started: dict[str, list[datetime]] = defaultdict(list)
    for line in log.read_text(errors="replace").splitlines():
        record = log_record(line)
        if record is None or record["logger"] != "app.flows.confirm":
            continue
        match = CONFIRM.match(record["message"])
        if match is None:
            continue
        at = datetime.fromisoformat(record["time"])
        job = match["job"]
        if match["what"] == "start":
            started[job].append(at)
        else:
            assert started[job], f"{process}: an end without a start: {line}"
            began = started[job].pop(0)
            if match["status"] != "lost":
                done.append(Confirmation(process, job, began, at))
    unended = sorted((job, at) for job, starts in started.items() for at in starts)
    if killed_at is not None:
        done += [Confirmation(process, job, at, killed_at) for job, at in unended]
    else:
        assert not unended, f"{process}: confirmations that never ended: {unended}"
    return done


def overlaps(found: list[Confirmation]) -> list[tuple[Confirmation, Confirmation]]:
    """Pairs of confirmations of one job (by two processes, or twice by one) that overlap."""
    by_job: dict[str, list[Confirmation]] = defaultdict(list)
    for confirmation in found:
        by_job[confirmation.job].append(confirmation)
    clashes = []
    for intervals in by_job.values():
        for i, a in enumerate(intervals):
            for b in intervals[i + 1 :]:
                if max(a.start, b.start) < min(a.end, b.end):
                    clashes.append((a, b))
    return clashes
