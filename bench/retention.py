"""Retention benchmark: 90 days of traffic, purged as a worker purges, while callbacks arrive.

``python -m bench.retention`` builds a fresh database with Alembic and plays ``--days`` (90)
days, one at a time, on a simulated clock that ends now. Each day it:

1. seeds that day's traffic in a few SQL statements: ``--jobs-per-day`` (2,000) jobs, each
   with four events (submitted, queuing, processing, succeeded), one to three callbacks as
   ICE sends them (body and headers), four webhook messages with one delivery each and one
   attempt each (one subscription), all stamped within the day;
2. runs the workers' housekeeping (``app.flows.housekeeping``: the status counts folded,
   then the ``Purger`` of ``app.flows.retention``), its clock at the end of the day,
   ``ICEHOOK_RETENTION`` ``--retention-days`` (30) and ``ICEHOOK_HISTORY_RETENTION``
   ``--history-days`` (60), timing it;
3. runs ``VACUUM`` on the tables, as autovacuum would (the test PostgreSQL runs without it),
   so that the space of purged rows is reused, and records the database's size.

Then, on the database as the 90 days left it, it starts the real intake (``icehook``'s
HTTP app, no worker) and sends it ``--rate`` (200) callbacks a second, open loop
(``bench.load``), for ``--seconds`` (20): first with no purge, then while a purge removes
``--backlog-days`` (10) days at once (the retention shortened by that much, as an operator
may). Reported: the database size by day (it stops growing once both windows are full), the
purge time per day and per thousand rows removed early and late (it does not grow with the
data), intake p50/p99 with and without the purge and their ratio (target: p99 within 1.5x),
and the bytes per job (every table and index, divided by the jobs) at the end of the first
retention window. Results: ``bench/results/retention.json`` and ``retention.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import statistics
import sys
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from app.core.access import ApiKey, Role
from app.core.retention import Purgeable
from app.flows.housekeeping import Housekeeper
from app.flows.retention import Purger
from app.settings import Settings
from app.store import schema
from app.store.engine import create_engine, create_sessionmaker
from app.wiring import create_app
from bench import common
from bench.load import OpenLoop, Target, open_loop, target
from tests.helpers.servers import serve

TARGET_RATIO = 1.5
TABLES = (
    "jobs",
    "job_events",
    "callbacks",
    "outbox",
    "deliveries",
    "delivery_attempts",
    "subscriptions",
    "purge_horizons",
    "status_counts",
    "status_count_changes",
)
SUBSCRIPTION_ID = "6c2e1b63-4d2f-4c8b-8b68-4f1e3d7a0c21"
TOKENS = 32  # jobs of the last day whose callback URLs the intake load posts to

# $1: the day's start, $2: jobs that day, $3: the first job number of the day.
DAY = """
CREATE TEMP TABLE day (n int, id uuid, ice_job_id text, project_id text, media_id text,
                       created_at timestamptz, t1 timestamptz, t2 timestamptz,
                       t3 timestamptz, t4 timestamptz, copies int) ON COMMIT DROP;

INSERT INTO day
SELECT n, md5('job' || n)::uuid AS id, md5('ice' || n) AS ice_job_id,
       md5('project' || n % 500) AS project_id, md5('media' || n) AS media_id,
       c AS created_at, c + interval '0.4 s' AS t1, c + interval '20 s' AS t2,
       c + interval '90 s' AS t3, c + (180 + random() * 600) * interval '1 s' AS t4,
       CASE WHEN r < 0.7 THEN 1 WHEN r < 0.9 THEN 2 ELSE 3 END AS copies
FROM generate_series($3::int, $3::int + $2::int - 1) AS n,
     LATERAL (SELECT random() AS r,
                     $1::timestamptz + (n - $3::int) * (86400.0 / $2::int) * interval '1 s' AS c)
       AS drawn;

INSERT INTO jobs (id, kind, status, ice_status, ice_job_id, project_id, media_id, media_url,
                  user_data, parameters, callback_token_hash, client_token, created_at,
                  updated_at, completed_at, heard_at, last_sent_at)
SELECT id, 'job', 'succeeded', 'Success', ice_job_id, project_id, media_id,
       'https://bucket.oss-cn-shanghai.aliyuncs.com/out/' || media_id || '.mp4',
       jsonb_build_object('order_id', n, 'tenant', 'tenant-' || n % 97),
       jsonb_build_object(
         'ProjectId', project_id,
         'OutputMediaConfig', jsonb_build_object(
           'MediaURL', 'https://bucket.oss-cn-shanghai.aliyuncs.com/out/' || n || '.mp4',
           'Width', 1920, 'Height', 1080, 'Bitrate', 4000),
         'ClientToken', 'icehook-' || replace(id::text, '-', ''),
         'UserData', jsonb_build_object('order_id', n, 'tenant', 'tenant-' || n % 97)::text),
       sha256(convert_to('token-' || n, 'UTF8')), 'icehook-' || replace(id::text, '-', ''),
       created_at, t4, t4, t4, t1
FROM day;

INSERT INTO job_events (job_id, from_status, to_status, source, payload, created_at)
SELECT d.id, e.from_status, e.to_status, e.source,
       jsonb_build_object('JobId', d.ice_job_id, 'ProjectId', d.project_id,
                          'MediaId', d.media_id, 'Status', e.ice_status,
                          'ModifiedTime', e.at, 'UserData', '{"order_id":' || d.n || '}'),
       e.at
FROM day AS d CROSS JOIN LATERAL (VALUES
  (NULL, 'submitted', 'submit', 'Init', d.t1),
  ('submitted', 'queuing', 'sweep', 'Queuing', d.t2),
  ('queuing', 'processing', 'sweep', 'Processing', d.t3),
  ('processing', 'succeeded', 'callback', 'Success', d.t4)
) AS e(from_status, to_status, source, ice_status, at)
ORDER BY e.at;

INSERT INTO outbox (event_id, job_id, job_event_id, event_type, payload, created_at)
SELECT 'msg_' || md5('msg' || e.id), e.job_id, e.id, 'job.' || e.to_status,
       jsonb_build_object(
         'type', 'job.' || e.to_status, 'timestamp', e.created_at,
         'data', jsonb_build_object(
           'id', j.id, 'ice_job_id', j.ice_job_id, 'kind', 'job', 'status', e.to_status,
           'project_id', j.project_id, 'media_id', j.media_id, 'media_url', j.media_url,
           'user_data', j.user_data, 'created_at', j.created_at, 'updated_at', e.created_at)),
       e.created_at
FROM job_events AS e JOIN jobs AS j ON j.id = e.job_id
WHERE e.job_id IN (SELECT id FROM day)
ORDER BY e.id;

INSERT INTO deliveries (message_id, subscription_id, job_id, event_type, status, attempts,
                        next_attempt_at, last_status_code, created_at, delivered_at)
SELECT o.id, '{subscription}', o.job_id, o.event_type, 'delivered', 1, o.created_at, 200,
       o.created_at, o.created_at + interval '0.1 s'
FROM outbox AS o WHERE o.job_id IN (SELECT id FROM day)
ORDER BY o.id;

INSERT INTO delivery_attempts (delivery_id, attempted_at, status_code, latency_ms,
                               response_excerpt)
SELECT d.id, d.delivered_at, 200, 40 + random() * 60, '{"ok":true}'
FROM deliveries AS d WHERE d.job_id IN (SELECT id FROM day)
ORDER BY d.id;

INSERT INTO callbacks (received_at, dedup_key, token_hash, job_id, ice_job_id, event_type,
                       ice_status, body, headers, peer, request_id, outcome, detail,
                       processed_at)
SELECT got.at, sha256(token || convert_to(body, 'UTF8')), token, d.id, d.ice_job_id,
       'ProduceMediaComplete', 'Success', convert_to(body, 'UTF8'),
       jsonb_build_object(
         'host', 'icehook.example.com', 'content-type', 'application/json',
         'content-length', octet_length(body)::text, 'user-agent', 'AlibabaCloud-ICE/1.0',
         'x-forwarded-for', '47.100.' || d.n % 200 || '.' || d.n % 250),
       '10.0.3.17', md5('request' || d.n || copy),
       CASE WHEN copy = 1 THEN 'applied' ELSE 'duplicate' END,
       CASE WHEN copy = 1 THEN 'confirmed by ICE: succeeded' ELSE 'already succeeded' END,
       got.at + interval '0.05 s'
FROM day AS d
CROSS JOIN LATERAL generate_series(1, d.copies) AS copy
CROSS JOIN LATERAL (SELECT d.t4 + (copy - 1) * interval '1 s' AS at,
                           sha256(convert_to('token-' || d.n, 'UTF8')) AS token) AS got
CROSS JOIN LATERAL (SELECT json_build_object(
    'EventType', 'ProduceMediaComplete', 'UserId', 1234567890123456,
    'EventTime', to_char(got.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
    'MessageBody', json_build_object(
      'Status', 'Success', 'JobId', d.ice_job_id, 'MediaId', d.media_id,
      'ProjectId', d.project_id, 'ErrorCode', '', 'ErrorMessage', '',
      'MediaURL', 'https://bucket.oss-cn-shanghai.aliyuncs.com/out/' || d.media_id || '.mp4',
      'UserData', '{"order_id":' || d.n || '}'))::text AS body) AS made
ORDER BY got.at;
""".replace("{subscription}", SUBSCRIPTION_ID)

SUBSCRIPTION = f"""
INSERT INTO subscriptions (id, url, event_types, description, secret, created_at, updated_at)
VALUES ('{SUBSCRIPTION_ID}', 'https://hooks.example.com/icehook', ARRAY['*'],
        'bench.retention', 'whsec_' || encode(sha256('bench.retention'), 'base64'),
        $1::timestamptz, $1::timestamptz)
"""  # noqa: S608 (fixed text; values are parameters)

SIZE = f"""
SELECT sum(pg_total_relation_size(c.oid))::bigint
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relname IN ({", ".join(f"'{t}'" for t in TABLES)})
"""  # noqa: S608 (fixed text)


# Each table's heap and its indexes, in bytes per job.
BREAKDOWN = f"""
SELECT c.relname AS name, pg_table_size(c.oid) AS heap, pg_indexes_size(c.oid) AS indexes
FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relname IN ({", ".join(f"'{t}'" for t in TABLES)})
ORDER BY pg_total_relation_size(c.oid) DESC
"""  # noqa: S608 (fixed text)


async def bytes_per_job(conn: asyncpg.Connection) -> dict[str, Any]:
    """Every table's heap and indexes over the number of jobs, and their sum."""
    jobs = int(await conn.fetchval("SELECT count(*) FROM jobs"))
    tables = {
        row["name"]: {"heap": round(row["heap"] / jobs), "indexes": round(row["indexes"] / jobs)}
        for row in await conn.fetch(BREAKDOWN)
    }
    total = sum(t["heap"] + t["indexes"] for t in tables.values())
    return {"total": total, "tables": tables}


async def seed_day(conn: asyncpg.Connection, start: datetime, jobs: int, first: int) -> None:
    async with conn.transaction():
        for statement in DAY.split(";\n"):
            if not statement.strip():
                continue
            params = [start, jobs, first]
            used = [p for i, p in enumerate(params, 1) if f"${i}" in statement]
            await conn.execute(statement, *used)


async def play_days(
    conn: asyncpg.Connection, url: str, args: argparse.Namespace, start: datetime
) -> dict[str, Any]:
    """Seed and purge day after day; what each day measured."""
    engine = create_engine(url, timeout=60)
    sessionmaker = create_sessionmaker(engine)
    days: list[dict[str, Any]] = []
    per_job: dict[str, Any] | None = None
    try:
        for day in range(args.days):
            began = start + timedelta(days=day)
            seeded = time.monotonic()
            await seed_day(conn, began, args.jobs_per_day, day * args.jobs_per_day + 1)
            seeded = time.monotonic() - seeded
            end_of_day = began + timedelta(days=1)
            purger = Purger(
                sessionmaker,
                retention_seconds=args.retention_days * 86400.0,
                history_seconds=args.history_days * 86400.0,
                clock=functools.partial(lambda at: at, end_of_day),
            )
            purged_at = time.monotonic()
            removed = await Housekeeper(sessionmaker, purger).run_once(asyncio.Event())
            purge_seconds = time.monotonic() - purged_at
            vacuumed = time.monotonic()
            for table in TABLES:
                await conn.execute(f"VACUUM {table}")
            vacuum_seconds = time.monotonic() - vacuumed
            size = int(await conn.fetchval(SIZE))
            if day + 1 == args.retention_days:  # one window full, nothing purged yet
                per_job = await bytes_per_job(conn)
            rows = sum(removed.values())
            days.append(
                {
                    "day": day + 1,
                    "seed_s": round(seeded, 2),
                    "purge_s": round(purge_seconds, 3),
                    "removed": {str(k): v for k, v in removed.items()},
                    "removed_rows": rows,
                    "vacuum_s": round(vacuum_seconds, 2),
                    "size_mb": round(size / 2**20, 1),
                }
            )
            print(
                f"day {day + 1:>3}: size {size / 2**20:8.1f} MB, purged {rows:>6} in "
                f"{purge_seconds:6.2f} s, vacuum {vacuum_seconds:5.2f} s",
                file=sys.stderr,
            )
    finally:
        await engine.dispose()
    return {"days": days, "bytes_per_job": per_job}


async def _timed(purging: Awaitable[dict[Purgeable, int]]) -> tuple[dict[Purgeable, int], float]:
    """What a purge removed, and how long it took."""
    began = time.monotonic()
    removed = await purging
    return removed, time.monotonic() - began


def _targets(first_token: int) -> list[Target]:
    """Callbacks for jobs of the last day (late copies: stored, judged later by a worker)."""
    found = []
    for n in range(first_token, first_token + TOKENS):
        job = {
            "final_status": "Success",
            "job_id": f"ice-{n}",
            "media_id": f"media-{n}",
            "project_id": f"project-{n}",
            "code": "",
            "message": "",
            "media_url": f"https://bucket.oss-cn-shanghai.aliyuncs.com/out/{n}.mp4",
            "user_data": json.dumps({"order_id": n}, separators=(",", ":")),
        }
        found.append(target(f"token-{n}", job))
    return found


async def intake_under_purge(
    url: str, args: argparse.Namespace, now: datetime, first_token: int
) -> dict[str, Any]:
    """Intake latency without a purge, then while a purge removes ``backlog_days`` days."""
    settings = Settings(
        database_url=url,
        api_keys=(ApiKey(Role.ADMIN, common.API_KEY),),
        log_format="text",
        retention_seconds=args.retention_days * 86400.0,
        history_retention_seconds=args.history_days * 86400.0,
    )
    targets = _targets(first_token)
    engine = create_engine(url, timeout=60)
    results: dict[str, Any] = {}
    try:
        async with serve(create_app(settings)) as base:
            host, port = base.removeprefix("http://").split(":")
            event = 0
            for phase in ("without_purge", "with_purge"):
                purge_task = None
                purged_seconds = None
                if phase == "with_purge":
                    shorter = (args.retention_days - args.backlog_days) * 86400.0
                    purger = Purger(
                        create_sessionmaker(engine),
                        retention_seconds=shorter,
                        history_seconds=args.history_days * 86400.0,
                        clock=lambda: now,
                    )
                    purge_task = asyncio.create_task(_timed(purger.purge()))
                loop: OpenLoop = await open_loop(
                    host,
                    int(port),
                    targets,
                    rate=args.rate,
                    seconds=args.seconds,
                    first_event=event,
                )
                event += loop.sent
                removed = None
                if purge_task is not None:
                    removed, purged_seconds = await purge_task
                results[phase] = {
                    "sent": loop.sent,
                    "ok": loop.ok,
                    "failed": loop.failed,
                    "p50_ms": round(loop.p50_ms, 2),
                    "p99_ms": round(loop.p99_ms, 2),
                    "max_ms": round(loop.max_ms, 2),
                    "purge_s": None if purged_seconds is None else round(purged_seconds, 2),
                    "removed": None if removed is None else {str(k): v for k, v in removed.items()},
                }
                print(f"intake {phase}: {results[phase]}", file=sys.stderr)
    finally:
        await engine.dispose()
    results["p99_ratio"] = round(
        results["with_purge"]["p99_ms"] / results["without_purge"]["p99_ms"], 2
    )
    return results


def _regime(days: list[dict[str, Any]], first: int, last: int) -> dict[str, Any]:
    """Purge milliseconds per 1,000 records over days ``first``..``last``: the median of its
    first and of its last third, and late over early."""
    per_thousand = [
        1e6 * d["purge_s"] / d["removed_rows"]
        for d in days
        if first <= d["day"] <= last and d["removed_rows"]
    ]
    if len(per_thousand) < 3:
        return {}
    third = len(per_thousand) // 3
    early, late = statistics.median(per_thousand[:third]), statistics.median(per_thousand[-third:])
    return {
        "days": f"{first}-{last}",
        "early_ms_per_1000": round(early, 1),
        "late_ms_per_1000": round(late, 1),
        "late_over_early": round(late / early, 2),
    }


def summarize(played: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """The figures the benchmark is for. Purge cost is compared within each regime, since
    a day that also purges finished jobs removes dearer records: callbacks and webhooks
    only (while the job history still grows), then jobs too (everything at steady size)."""
    days = played["days"]
    full = max(args.retention_days, args.history_days)
    steady = [d["size_mb"] for d in days if d["day"] > full + 1]
    low, high = sorted((args.retention_days, args.history_days))
    return {
        "size_mb_at_window_end": days[full - 1]["size_mb"] if len(days) >= full else None,
        "size_mb_at_end": days[-1]["size_mb"],
        "steady_growth_ratio": round(steady[-1] / steady[0], 3) if len(steady) > 1 else None,
        "purge_first_regime": _regime(days, low + 2, high),
        "purge_second_regime": _regime(days, high + 2, len(days)),
        "bytes_per_job": played["bytes_per_job"]["total"] if played["bytes_per_job"] else None,
    }


def markdown(
    facts: dict[str, Any],
    summary: dict[str, Any],
    intake: dict[str, Any],
    days: list[Any],
    per_job: dict[str, Any] | None,
) -> str:
    lines = [
        "# Retention (`python -m bench.retention`)",
        "",
        common.facts_markdown(facts),
        "",
        "## Summary",
        "",
        common.table(["measure", "value"], [[k, v] for k, v in summary.items()]),
        "",
        "## Bytes per job at the end of the first retention window",
        "",
        common.table(
            ["table", "heap", "indexes"],
            [[name, t["heap"], t["indexes"]] for name, t in per_job["tables"].items()],
        )
        if per_job
        else "(fewer days than the window)",
        "",
        f"## Intake during a purge (target: p99 ratio at most {TARGET_RATIO})",
        "",
        common.table(
            ["phase", "sent", "ok", "p50 ms", "p99 ms", "max ms", "purge s", "removed"],
            [
                [
                    phase,
                    intake[phase]["sent"],
                    intake[phase]["ok"],
                    intake[phase]["p50_ms"],
                    intake[phase]["p99_ms"],
                    intake[phase]["max_ms"],
                    intake[phase]["purge_s"],
                    intake[phase]["removed"],
                ]
                for phase in ("without_purge", "with_purge")
            ],
        ),
        "",
        f"p99 with a purge / without: **{intake['p99_ratio']}**",
        "",
        "## By day",
        "",
        common.table(
            ["day", "size MB", "purge s", "rows removed", "vacuum s"],
            [
                [d["day"], d["size_mb"], d["purge_s"], d["removed_rows"], d["vacuum_s"]]
                for d in days
            ],
        ),
    ]
    return "\n".join(lines)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.retention", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--server-url", default=common.DEFAULT_SERVER_URL)
    parser.add_argument("--database-url", help="an empty database to use (kept)")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--jobs-per-day", type=int, default=2000)
    parser.add_argument("--retention-days", type=int, default=30)
    parser.add_argument("--history-days", type=int, default=60)
    parser.add_argument("--backlog-days", type=int, default=10)
    parser.add_argument("--rate", type=float, default=200.0, help="callbacks a second")
    parser.add_argument("--seconds", type=float, default=20.0, help="of each intake phase")
    parser.add_argument("--no-record", action="store_true", help="print only")
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(days=args.days)
    async with common.database(args.server_url, args.database_url) as url:
        await asyncio.to_thread(schema.upgrade, url)
        conn = await asyncpg.connect(common.plain_dsn(url))
        try:
            await conn.execute(SUBSCRIPTION, start - timedelta(days=1))
            played = await play_days(conn, url, args, start)
        finally:
            await conn.close()
        first_token = (args.days - 1) * args.jobs_per_day + 1
        intake = await intake_under_purge(url, args, now, first_token)
        facts = await common.machine_facts(url, common.command_line("bench.retention"))
    summary = summarize(played, args)
    print(summary, file=sys.stderr)
    if not args.no_record:
        data = {"facts": facts, "summary": summary, "intake": intake, "days": played["days"]}
        data["bytes_per_job"] = played["bytes_per_job"]
        text = markdown(facts, summary, intake, played["days"], played["bytes_per_job"])
        common.write_results("retention", data, text)


if __name__ == "__main__":
    common.run_main(main())
