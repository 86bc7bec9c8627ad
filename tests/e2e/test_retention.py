"""Retention end to end: ``icehook purge`` against a running service's database, and what the
API and ``jobs show`` then say of a job whose records were purged."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from app.store.engine import create_engine
from tests.helpers.history import check_status_counts
from tests.helpers.processes import run_icehook
from tests.helpers.receiver import receiver
from tests.helpers.stack import Stack, stack
from tests.helpers.waiting import eventually

# Everything of the first job moves 40 days back: past the default 30-day retention.
BACKDATE = (
    "UPDATE callbacks SET received_at = received_at - interval '40 days' WHERE job_id = :job",
    "UPDATE outbox SET created_at = created_at - interval '40 days' WHERE job_id = :job",
    "UPDATE jobs SET created_at = created_at - interval '40 days',"
    " completed_at = completed_at - interval '40 days' WHERE id = :job",
)


async def _settled(s: Stack, jobs: list[dict[str, Any]], deliveries: int) -> bool:
    found = [await s.job(job["id"]) for job in jobs]
    delivered = sum(d["status"] == "delivered" for job in found for d in job["deliveries"])
    return all(job["status"] == "succeeded" for job in found) and delivered == deliveries


async def _execute(database_url: str, statements: tuple[str, ...], job_id: str) -> None:
    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            for statement in statements:
                await conn.execute(sa.text(statement), {"job": job_id})
    finally:
        await engine.dispose()


async def test_purge_removes_old_records_and_the_audit_view_says_so(
    database_url: str, clean_env: dict[str, str]
) -> None:
    env = {**clean_env, "ICEHOOK_DATABASE_URL": database_url}
    async with receiver() as r, stack(database_url, job_seconds=0.3) as s:
        created = await s.api.post("/v1/subscriptions", json={"url": r.url, "event_types": ["*"]})
        r.secrets.append(created.json()["secret"])
        old, new = [await s.submit(ProjectId=f"p-{n}") for n in range(2)]
        await eventually(lambda: _settled(s, [old, new], deliveries=4))
        before = await s.job(old["id"])
        assert before["callbacks"]
        assert before["deliveries"]
        assert before["purged"] == {"callbacks_before": None, "webhooks_before": None}
        await _execute(database_url, BACKDATE, old["id"])

        code, out, err = await run_icehook("purge", "--dry-run", env=env)
        assert code == 0, err
        assert "would remove (ICEHOOK_RETENTION=30d, ICEHOOK_HISTORY_RETENTION=forever)" in out
        counted = {line.split(None, 1)[1]: line.split()[0] for line in out.splitlines()[1:]}
        assert counted["callbacks as received"] == str(len(before["callbacks"]))
        assert counted["webhook messages (with their deliveries and attempt logs)"] == "2"
        assert counted[next(k for k in counted if k.startswith("finished jobs"))] == "-"
        still = await s.job(old["id"])
        assert len(still["callbacks"]) == len(before["callbacks"]), "a dry run only"

        code, out, err = await run_icehook("purge", "--json", env=env)
        assert code == 0, err
        assert json.loads(out) == {
            "dry_run": False,
            "callbacks": len(before["callbacks"]),
            "webhooks": 2,
        }
        after = await s.job(old["id"])
        assert (after["callbacks"], after["deliveries"]) == ([], [])
        assert after["events"] == before["events"], "the history stays"
        assert after["purged"]["callbacks_before"] is not None
        assert after["purged"]["webhooks_before"] is not None
        kept = await s.job(new["id"])
        assert kept["purged"] == {"callbacks_before": None, "webhooks_before": None}
        assert len(kept["deliveries"]) == 2

        await check_status_counts(database_url)  # the purge's deletes counted too
        code, out, err = await run_icehook("jobs", "show", old["id"], env=env)
        assert code == 0, err
        assert "purged by retention: callbacks before " in out
        code, _, err = await run_icehook("purge", env={**env, "ICEHOOK_RETENTION": "30"})
        assert code == 2
        assert err.startswith("icehook: ICEHOOK_RETENTION: must be a duration like 30s"), err
