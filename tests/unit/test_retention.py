"""Retention's pure rules: reading a window, the cutoffs it gives, what an audit view says."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from app.core.errors import ConfigError
from app.core.retention import Cutoffs, Purgeable, cutoffs, purged_for_job
from app.core.values import duration, format_duration
from app.settings import Settings

NOW = datetime(2026, 12, 4, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("15m", 900), ("12h", 43200), ("90d", 90 * 86400), ("2w", 14 * 86400)],
)
def test_a_duration_reads_and_prints_the_same(text: str, seconds: float) -> None:
    assert duration(text) == seconds
    assert format_duration(seconds) == text


def test_forever_is_infinite_and_prints_as_forever() -> None:
    assert duration("Forever") == math.inf
    assert format_duration(math.inf) == "forever"


@pytest.mark.parametrize("text", ["30", "d", "0d", "-1d", "1.5d", "30 days", "1y", "1e3s"])
def test_anything_else_is_refused_naming_the_variable(text: str) -> None:
    with pytest.raises(ConfigError, match="ICEHOOK_RETENTION") as refused:
        Settings.from_env({"ICEHOOK_RETENTION": text})
    assert "must be a duration like 30s" in str(refused.value)


def test_the_defaults_keep_thirty_days_of_records_and_history_forever() -> None:
    settings = Settings.from_env({})
    assert (settings.retention_seconds, settings.history_retention_seconds) == (
        30 * 86400,
        math.inf,
    )
    given = Settings.from_env({"ICEHOOK_RETENTION": "7d", "ICEHOOK_HISTORY_RETENTION": "365d"})
    assert given.retention_seconds == 7 * 86400
    assert given.history_retention_seconds == 365 * 86400


def test_cutoffs_follow_the_windows_and_forever_has_none() -> None:
    found = cutoffs(NOW, 86400, math.inf)
    day_ago = NOW - timedelta(days=1)
    assert found == Cutoffs(jobs=None, callbacks=day_ago, webhooks=day_ago)
    assert found.items() == [(Purgeable.CALLBACKS, day_ago), (Purgeable.WEBHOOKS, day_ago)]
    assert cutoffs(NOW, math.inf, math.inf).items() == []
    assert [k for k, _ in cutoffs(NOW, 60, 120).items()] == list(Purgeable)


def test_an_audit_view_names_only_horizons_that_can_touch_the_job() -> None:
    horizon = NOW - timedelta(days=30)
    horizons: dict[str, datetime] = {Purgeable.CALLBACKS: horizon, Purgeable.WEBHOOKS: horizon}
    older = purged_for_job(horizon - timedelta(seconds=1), horizons)
    assert older == {"callbacks_before": horizon, "webhooks_before": horizon}
    assert purged_for_job(horizon, horizons) == {"callbacks_before": None, "webhooks_before": None}
    assert purged_for_job(NOW - timedelta(days=400), {}) == {
        "callbacks_before": None,
        "webhooks_before": None,
    }
