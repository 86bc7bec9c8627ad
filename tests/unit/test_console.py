"""The console's pure parts: its pictures' numbers, the times typed into its forms, and
where it may send a browser after signing in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.http.console import charts
from app.http.console.forms import is_console_path, utc

NOW = datetime(2026, 12, 4, 10, 37, tzinfo=UTC)


def test_bars_are_as_long_as_their_share_of_the_largest() -> None:
    drawn = charts.bars({"succeeded": 10, "failed": 5, "queuing": 0}, {"failed": "bad"})
    assert [(b.label, b.width, b.tone) for b in drawn] == [
        ("succeeded", charts.BAR_WIDTH, "neutral"),
        ("failed", charts.BAR_WIDTH / 2, "bad"),
        ("queuing", 0, "neutral"),
    ]
    assert [b.width for b in charts.bars({"a": 0}, {})] == [0]  # nothing yet: no division


def _utc_hour(year: int, month: int, day: int, hour: int) -> datetime:
    """An hour as the database gives it: UTC, without a zone."""
    return datetime(year, month, day, hour, tzinfo=UTC).replace(tzinfo=None)


def test_the_last_day_is_24_hourly_columns_ending_with_this_hour() -> None:
    rows = [
        {"hour": _utc_hour(2026, 12, 4, 10), "status": "succeeded", "n": 6},
        {"hour": _utc_hour(2026, 12, 4, 10), "status": "failed", "n": 2},
        {"hour": _utc_hour(2026, 12, 3, 11), "status": "finished", "n": 4},
        {"hour": _utc_hour(2026, 12, 3, 10), "status": "succeeded", "n": 99},  # a day ago
    ]
    columns = charts.hourly(rows, NOW, frozenset({"succeeded", "finished"}))
    assert len(columns) == charts.HOURS
    assert columns[0].hour == datetime(2026, 12, 3, 11, tzinfo=UTC)
    assert columns[-1].hour == datetime(2026, 12, 4, 10, tzinfo=UTC)
    assert (columns[-1].good, columns[-1].bad) == (6, 2)
    assert columns[-1].good_height + columns[-1].bad_height == charts.COLUMN_HEIGHT
    assert (columns[0].good, columns[0].bad) == (4, 0)
    assert sum(c.good + c.bad for c in columns) == 12


def test_a_timeline_spaces_its_events_evenly_and_says_the_time_between() -> None:
    events = [
        {"to_status": "submitted", "source": "submit", "created_at": NOW},
        {"to_status": "processing", "source": "sweep", "created_at": NOW + timedelta(seconds=0.5)},
        {"to_status": "failed", "source": "callback", "created_at": NOW + timedelta(hours=2)},
    ]
    marks = charts.timeline_marks(events, frozenset({"failed"}))
    assert [m.after for m in marks] == [None, "500 ms", "2.0 h"]
    assert marks[1].x - marks[0].x == marks[2].x - marks[1].x
    assert [m.final for m in marks] == [False, False, True]
    assert charts.timeline_marks([], frozenset()) == []


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("2026-12-04T10:30", "2026-12-04T10:30:00+00:00"),  # datetime-local: UTC
        ("2026-12-04T10:30:15", "2026-12-04T10:30:15+00:00"),
        ("2026-12-04T10:30:00+08:00", "2026-12-04T10:30:00+08:00"),  # its own zone kept
        ("yesterday", "yesterday"),  # left for the API's check to refuse, naming the field
        ("", ""),
    ],
)
def test_a_typed_time_without_a_zone_is_utc(typed: str, meant: str) -> None:
    assert utc(typed) == meant


@pytest.mark.parametrize(
    ("target", "allowed"),
    [
        ("/console/jobs?status=failed", True),
        ("/console/", True),
        ("/v1/jobs", False),
        ("https://evil.example/console/", False),
        ("//evil.example/console/", False),
        ("/console//evil.example", False),
        ("/console/\\evil", False),
        ("", False),
    ],
)
def test_after_sign_in_only_the_consoles_own_pages(target: str, allowed: bool) -> None:
    assert is_console_path(target) is allowed
