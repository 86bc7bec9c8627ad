"""A worker killed with SIGKILL while it confirms jobs: another worker takes them up within
seconds, and no job is ever confirmed by two processes at once.

Leases are short and renewed by their holder's heartbeat (app/flows/leasing.py): what a
dead process held is free within LEASE_SECONDS of its death. Real processes on real
sockets: the simulator (answering every call slowly), ``icehook serve`` and ``icehook
worker``; the process that holds the most leases is killed while it waits for ICE.
"""

from __future__ import annotations

import asyncio
import re
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from app.core.policies import LEASE_SECONDS
from app.store.tables import jobs
from tests.helpers.confirmations import CONFIRM, confirmations, overlaps
from tests.helpers.history import rows
from tests.helpers.processes import (
    icehook_env,
    kill_all,
    log_record,
    start_icehook_logged,
    start_simulator,
    stop,
    wait_for_line,
    wait_ready,
)
from tests.helpers.servers import free_port, http_client
from tests.helpers.waiting import eventually

KEY_ID, SECRET, API_KEY = "recover-ak", "recover-secret", "recover-api-key-0123"
OUTPUT = {"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out.mp4"}
JOBS = 16
ICE_LATENCY_MS = 1500  # every ICE call: a confirmation holds its lease at least this long
OWNER = re.compile(r"owner=([0-9a-f-]{36})")
# Recovery is LEASE_SECONDS, the next worker pass (1 s) and one ICE call: about 4 s here.
# Asserted with room for a loaded machine; the measured time is printed (docs/architecture.md).
RECOVERY_BOUND_SECONDS = 30


def unended(log: Path) -> list[datetime]:
    """When each confirmation that ``log`` shows begun and not ended began."""
    started: dict[str, list[datetime]] = {}
    for line in log.read_text(errors="replace").splitlines():
        record = log_record(line)
        found = CONFIRM.match(record["message"]) if record else None
        if record is None or found is None:
            continue
        if found["what"] == "start":
            started.setdefault(found["job"], []).append(datetime.fromisoformat(record["time"]))
        elif started.get(found["job"]):
            started[found["job"]].pop(0)
    return [at for times in started.values() for at in times]


def _recent() -> datetime:
    """Half a second ago: a confirmation begun since then waits for ICE a second more."""
    return datetime.now(UTC) - timedelta(seconds=0.5)


def owner_of(log: Path) -> str:
    found = OWNER.search(log.read_text(errors="replace"))
    assert found, f"no lease owner logged in {log}"
    return found[1]


async def test_a_killed_workers_jobs_are_taken_up_within_seconds(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    sim_url, api_port = f"http://127.0.0.1:{free_port()}", free_port()
    api_url = f"http://127.0.0.1:{api_port}"
    sim_env = {
        **clean_env,
        "ICEHOOK_SIM_ACCESS_KEYS": f"{KEY_ID}:{SECRET}",
        "ICEHOOK_SIM_JOB_SECONDS": "0.5",
        "ICEHOOK_SIM_API_LATENCY_MS": str(ICE_LATENCY_MS),
    }
    env = icehook_env(
        clean_env,
        data_dir=tmp_path / "data",
        database_url=database_url,
        ice_url=sim_url,
        public_url=api_url,
        access_key=(KEY_ID, SECRET),
        api_key=API_KEY,
    )
    logs = {name: tmp_path / f"{name}.log" for name in ("simulator", "serve", "worker")}
    procs: dict[str, asyncio.subprocess.Process] = {}
    try:
        async with asyncio.timeout(240):  # a hang guard only
            procs["simulator"] = await start_simulator(sim_url, sim_env, logs["simulator"])
            procs["serve"] = await start_icehook_logged(
                "serve", "--port", str(api_port), env=env, log=logs["serve"]
            )
            await wait_ready(api_url)
            procs["worker"] = await start_icehook_logged("worker", env=env, log=logs["worker"])
            await wait_for_line(logs["worker"], "owner=", procs["worker"])
            owners = {owner_of(logs[name]): name for name in ("serve", "worker")}

            async with http_client(
                base_url=api_url, headers={"authorization": f"Bearer {API_KEY}"}, timeout=60
            ) as api:
                answers = await asyncio.gather(
                    *(
                        api.post(
                            "/v1/jobs", json={"ProjectId": f"p{i}", "OutputMediaConfig": OUTPUT}
                        )
                        for i in range(JOBS)
                    )
                )
                assert all(a.status_code == 201 for a in answers), [a.text for a in answers]

                # Callbacks arrive; whoever claims a job holds it while ICE takes its time.
                # The process with the most confirmations just begun (its log says so) is
                # killed while it waits for ICE.
                waiting: dict[str, int] = {}

                async def confirming() -> bool:
                    for name in owners.values():
                        begun = [c for c in unended(logs[name]) if c > _recent()]
                        waiting[name] = len(begun)
                    return max(waiting.values()) >= 2

                await eventually(confirming, seconds=60, every=0.02)
                victim = max(waiting, key=lambda name: waiting[name])
                victim_owner = next(o for o, name in owners.items() if name == victim)
                procs[victim].send_signal(signal.SIGKILL)
                await procs[victim].wait()
                orphaned = await rows(
                    database_url,
                    sa.select(
                        jobs.c.id,
                        jobs.c.lease_until,
                        sa.func.clock_timestamp(type_=sa.DateTime(timezone=True)).label("now"),
                    ).where(
                        jobs.c.lease_owner == sa.cast(victim_owner, jobs.c.lease_owner.type),
                        jobs.c.lease_until.is_not(None),
                    ),
                )
                assert orphaned, f"{victim} held nothing when it was killed"
                killed_at = orphaned[0]["now"]
                orphans = [str(row["id"]) for row in orphaned]
                # Whatever it renewed last, its leases end within LEASE_SECONDS of its death.
                latest = max(row["lease_until"] for row in orphaned)
                assert latest <= killed_at + timedelta(seconds=LEASE_SECONDS + 0.05)

                async def orphans_final() -> bool:
                    found = await rows(
                        database_url,
                        sa.select(jobs.c.completed_at).where(
                            jobs.c.id.in_(orphans), jobs.c.completed_at.is_not(None)
                        ),
                    )
                    return len(found) == len(orphans)

                await eventually(orphans_final, seconds=RECOVERY_BOUND_SECONDS, every=0.05)
                (finished,) = await rows(
                    database_url,
                    sa.select(sa.func.max(jobs.c.completed_at).label("last")).where(
                        jobs.c.id.in_(orphans)
                    ),
                )
                recovery = (finished["last"] - killed_at).total_seconds()
                print(
                    f"{victim} killed holding {len(orphans)} jobs; all final {recovery:.2f} s later"
                )
                # The survivor finishes everything (a killed serve's stored callbacks too, but
                # not those ICE could no longer deliver to it).
                if victim == "worker":

                    async def all_final() -> bool:
                        final = jobs.c.completed_at.is_not(None)
                        return (
                            len(await rows(database_url, sa.select(jobs.c.id).where(final))) == JOBS
                        )

                    await eventually(all_final, seconds=60, every=0.1)

            survivor = "worker" if victim == "serve" else "serve"
            assert await stop(procs[survivor]) == 0
            found = confirmations(victim, logs[victim], killed_at=killed_at)
            found += confirmations(survivor, logs[survivor])
            assert {c.job for c in found if c.process == survivor} >= set(orphans)
            clashes = overlaps(found)
            assert not clashes, f"one job confirmed twice at the same time: {clashes[:5]}"
    finally:
        await kill_all(procs.values())
