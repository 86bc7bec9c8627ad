"""The console's pictures, as numbers an SVG template draws: bars, hourly columns and a
job's timeline. No script draws them, so the page needs none (its Content-Security-Policy
allows no inline script or style), and every label is text the template escapes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

BAR_WIDTH = 300  # of the longest bar, in SVG units
HOURS = 24
COLUMN_HEIGHT = 120


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    width: float  # 0 to BAR_WIDTH, in proportion to the largest value
    tone: str  # a CSS class: what the colour means


def bars(values: Mapping[str, int], tones: Mapping[str, str]) -> list[Bar]:
    """One bar per value, in the order given, each as long as its share of the largest."""
    largest = max(values.values(), default=0) or 1
    return [
        Bar(label, n, BAR_WIDTH * n / largest, tones.get(label, "neutral"))
        for label, n in values.items()
    ]


@dataclass(frozen=True)
class Column:
    hour: datetime
    good: int  # jobs that succeeded or finished in that hour
    bad: int  # that failed, were rejected or abandoned
    good_height: float
    bad_height: float


def hourly(rows: Sequence[Mapping[Any, Any]], now: datetime, good: frozenset[str]) -> list[Column]:
    """The last ``HOURS`` hours up to ``now``, oldest first, each with its jobs finished
    well (``good`` statuses) and badly, scaled to ``COLUMN_HEIGHT``."""
    this_hour = now.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    hours = [this_hour - timedelta(hours=n) for n in range(HOURS - 1, -1, -1)]
    counts = {hour: [0, 0] for hour in hours}
    for row in rows:
        hour = row["hour"].replace(tzinfo=UTC)  # the database's UTC hour, without a zone
        if hour in counts:
            counts[hour][0 if row["status"] in good else 1] += int(row["n"])
    largest = max((sum(pair) for pair in counts.values()), default=0) or 1
    scale = COLUMN_HEIGHT / largest
    return [Column(hour, g, b, g * scale, b * scale) for hour, (g, b) in counts.items()]


@dataclass(frozen=True)
class Mark:
    x: float  # 0 to TIMELINE_WIDTH
    status: str
    source: str  # what brought it: submit, callback, sweep, reconcile, manual
    at: datetime
    final: bool
    after: str | None  # how long after the previous event, for the segment that leads here


TIMELINE_WIDTH = 1000


def timeline_marks(events: Sequence[Mapping[Any, Any]], final: frozenset[str]) -> list[Mark]:
    """Each event of a job, oldest first, evenly along the line (so that labels never
    overlap), each with the time since the one before."""
    marks = []
    step = (TIMELINE_WIDTH - 160) / max(len(events) - 1, 1)
    for n, event in enumerate(events):
        status = str(event["to_status"])
        after = None
        if n:
            after = elapsed((event["created_at"] - events[n - 1]["created_at"]).total_seconds())
        marks.append(
            Mark(
                80 + step * n,
                status,
                str(event["source"]),
                event["created_at"],
                status in final,
                after,
            )
        )
    return marks


def elapsed(seconds: float) -> str:
    """A span of time as people read it: ``850 ms``, ``12.5 s``, ``4 min``, ``3 h``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.3g} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
