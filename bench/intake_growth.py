"""icehook's ack latency on a fresh database, then after the database has grown.

``python -m bench.intake_growth`` starts the processes of ``bench.intake`` (the simulator,
``icehook serve`` and the two baselines, on a fresh database), makes the same callback
targets, and measures icehook alone:

1. an open loop at ``--rate`` on the fresh database;
2. ``--fill-runs`` closed-loop runs (``wrk``, 256 connections, 10 s each), which store
   the callbacks that ``bench.intake`` stores before its own open loop;
3. the open loop again, in the same process;
4. with ``--restart``, ``icehook serve`` restarted on the grown database and the open
   loop once more.

It prints each open loop's p50/p99 and the connections the load generator opened; it
records nothing. This is the diagnosis of why ``bench.intake``'s p99 target is missed
(``bench/results/intake-profile.md``), not a benchmark with a target.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence

from bench import common, intake, load


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.intake_growth",
        description="icehook's ack latency on a fresh database, then after it has grown.",
    )
    parser.add_argument("--server-url", default=common.DEFAULT_SERVER_URL)
    parser.add_argument("--rate", type=float, default=1200.0, help="open-loop callbacks/s")
    parser.add_argument("--seconds", type=float, default=30.0, help="one open loop")
    parser.add_argument("--fill-runs", type=int, default=3, help="closed-loop runs between")
    parser.add_argument("--restart", action="store_true", help="then restart serve, once more")
    args = parser.parse_args(argv)
    if not (1 <= args.rate <= 10_000 and 1 <= args.seconds <= 600 and 0 <= args.fill_runs <= 20):
        parser.error("--rate 1-10000, --seconds 1-600, --fill-runs 0-20")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    if load.wrk_path() is None:
        print("bench.intake_growth needs wrk: apt-get install -y wrk", file=sys.stderr)
        sys.exit(intake.EXIT_NO_WRK)
    common.run_main(run(args))


async def run(args: argparse.Namespace) -> None:
    events = itertools.count(intake.FIRST_EVENT, intake.EVENTS_PER_RUN)
    async with (
        common.database(args.server_url, None) as database_url,
        common.processes("icehook-bench-growth") as procs,
    ):
        servers = await intake.start_servers(procs, database_url)
        ice = servers["icehook"]
        targets = await intake.make_targets(servers, database_url, 32)
        targets_file = procs.log_dir / "targets.tsv"
        load.write_targets(targets, targets_file)

        async def quiet() -> None:
            await common.wait_until(
                lambda: intake.no_pending(database_url),
                seconds=intake.DRAIN_SECONDS,
                what="icehook's worker has judged every stored callback",
            )

        async def open_loop(label: str) -> None:
            await quiet()
            rows = (await intake.count_rows(database_url))["icehook"]
            o = await load.open_loop(
                ice.host,
                ice.port,
                targets,
                rate=args.rate,
                seconds=args.seconds,
                first_event=next(events),
            )
            print(
                f"{label} ({rows:,} callbacks stored before): {args.rate:.0f}/s, "
                f"p50 {o.p50_ms:.1f} ms, p99 {o.p99_ms:.1f} ms, {o.failed} failed, "
                f"{o.connections_opened} connections opened",
                flush=True,
            )

        await open_loop("fresh database")
        for _ in range(args.fill_runs):
            await quiet()
            filled = await load.closed_loop(
                ice.url, targets_file, connections=256, seconds=10, first_event=next(events)
            )
            print(f"closed loop: {filled.ok_per_second:,.0f} 200s/s", flush=True)
        await open_loop("grown database, same process")
        if args.restart:
            await procs.stop(procs.running[1])  # icehook serve: started second
            await procs.start(
                "icehook-restarted",
                common.icehook("serve", "--port", str(ice.port)),
                common.icehook_env(database_url, servers["simulator"].url),
            )
            await common.wait_http(f"{ice.url}/readyz")
            await open_loop("grown database, restarted serve")


if __name__ == "__main__":
    main()
