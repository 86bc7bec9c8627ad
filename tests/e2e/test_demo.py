"""``icehook demo`` as a user runs it: the real command, as a process, on a test database.

The demo drives its own service through the API; these tests read what it left in the
database to check that it told the truth.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from app.store.tables import deliveries, job_events, jobs, subscriptions
from tests.helpers.history import rows
from tests.helpers.processes import run_icehook
from tests.helpers.waiting import FINAL

# Four jobs, one batch and the batch's three sub-jobs.
JOBS = 8


async def run_demo(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    # The limit is a hang guard only: the demo's own time limit ends it long before.
    return await run_icehook("demo", *args, env=env, limit_seconds=300)


def summary_statuses(out: str) -> dict[str, str]:
    """Short job id -> status, from the summary table (columns as its header places them)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("job ") and "status" in line)
    header = lines[start]
    status_at, status_end = header.index("status"), header.index("events")
    table = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        table[line.split()[0]] = line[status_at:status_end].strip()
    return table


def demo_env(clean_env: dict[str, str], database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        **clean_env,
        "ICEHOOK_DATABASE_URL": database_url,
        "ICEHOOK_DATA_DIR": str(tmp_path / "data"),
    }


async def test_the_demo_finishes_every_job_and_verifies_every_event(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    code, out, err = await run_demo(
        "--timeout", "180", env=demo_env(clean_env, database_url, tmp_path)
    )
    assert code == 0, out + err
    assert "Traceback" not in err
    assert "every job final, every event delivered and verified" in out

    statuses = summary_statuses(out)
    assert len(statuses) == JOBS, out
    assert set(statuses.values()) <= FINAL, out
    assert {"succeeded", "failed", "finished"} <= set(statuses.values()), out

    found = await rows(database_url, sa.select(jobs.c.id, jobs.c.status))
    assert len(found) == JOBS
    assert {row["id"].hex[:8] for row in found} == set(statuses)
    assert all(row["status"] in FINAL for row in found), found

    # The dropped callback: the job got there because the sweeper asked ICE.
    sources = [row["source"] for row in await rows(database_url, sa.select(job_events.c.source))]
    assert "sweep" in sources
    assert "callback" in sources

    # One subscription, the demo's, deleted at the end with its history kept: every event
    # was delivered to it, once each.
    (subscription,) = await rows(database_url, sa.select(subscriptions))
    assert subscription["deleted_at"] is not None
    sent = await rows(
        database_url,
        sa.select(deliveries.c.status).where(deliveries.c.subscription_id == subscription["id"]),
    )
    assert len(sent) == len(sources)
    assert {row["status"] for row in sent} == {"delivered"}


async def test_a_demo_out_of_time_exits_1_with_one_line(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    # Its first job alone runs two seconds: it cannot be done within one.
    code, out, err = await run_demo(
        "--timeout", "1", env=demo_env(clean_env, database_url, tmp_path)
    )
    assert code == 1, out + err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("icehook demo: not done within 1 s"), err
    assert "jobs not final" in lines[0] or "submissions not made" in lines[0], err
    # The summary still shows how far it got.
    assert "jobs:" in out


async def test_a_bad_timeout_is_refused(clean_env: dict[str, str], tmp_path: Path) -> None:
    code, _, err = await run_demo(
        "--timeout", "soon", env={**clean_env, "ICEHOOK_DATA_DIR": str(tmp_path)}
    )
    assert code == 2
    assert "--timeout" in err
