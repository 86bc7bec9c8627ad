"""Scale benchmark: how far 1 or 2 ``serve`` processes and 1, 2 or 4 workers go on one
PostgreSQL, and where the limit moves to the database.

``python -m bench.scale`` runs ``bench.delivery``'s measurement for each topology of
``--topologies`` (``SxW``: S ``serve --no-worker`` processes sharing the callbacks, W
``icehook worker`` processes; default ``1x1,1x2,1x4,2x2,2x4``) at each rate of ``--rates``
(callbacks a second; default ``150,300,450``) for ``--seconds`` (10): a fresh database,
jobs run to their end at the simulator (which drops its callbacks), then their real
completion callbacks posted open loop at the rate, and the latency from each callback's
due time to its verified webhook at the receiver.

While the callbacks are posted and until the last webhook arrives, it measures the CPU time
of three groups (``psutil``): icehook's processes, PostgreSQL's (every ``postgres``
process on this machine), and the benchmark's own (the simulator, the receiver and the
load, all in one process), each as a share of the machine's CPUs over that time. A rate is
held when every callback was answered 200 and its webhook's p99 stayed under
``HELD_P99_MS``.

Results: ``bench/results/scale.json`` and ``scale.md``; docs/sizing.md reads them.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from bench import common, delivery

HELD_P99_MS = 1000.0
GROUPS = ("icehook", "postgres", "benchmark")


@dataclass
class CpuShares:
    """CPU time by group over a span of wall time, filled in when the span ends."""

    seconds: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0

    def shares(self) -> dict[str, float]:
        """Each group's CPU time as a share of every CPU of the machine over the span."""
        capacity = self.wall * (psutil.cpu_count() or 1)
        return {group: round(s / capacity, 3) for group, s in self.seconds.items()}


def _group(proc: psutil.Process) -> str | None:
    try:
        if proc.pid == os.getpid():
            return "benchmark"
        if proc.name() == "postgres":
            return "postgres"
        line = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    return "icehook" if "icehook" in line and (" serve" in line or " worker" in line) else None


def _cpu_by_group() -> dict[str, float]:
    found = dict.fromkeys(GROUPS, 0.0)
    for proc in psutil.process_iter():
        group = _group(proc)
        if group is None:
            continue
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            times = proc.cpu_times()
            found[group] += times.user + times.system
    return found


@contextlib.asynccontextmanager
async def measuring(into: CpuShares) -> AsyncIterator[None]:
    """Fill ``into`` with the CPU each group used while the block ran. A process that
    ends within the block is not counted; none of these does."""
    before, started = _cpu_by_group(), time.monotonic()
    yield
    after = _cpu_by_group()
    into.wall = time.monotonic() - started
    into.seconds = {group: after[group] - before[group] for group in GROUPS}


async def run(args: argparse.Namespace) -> None:
    topologies = [tuple(int(n) for n in t.split("x")) for t in args.topologies.split(",")]
    rates = [float(r) for r in args.rates.split(",")]
    facts: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    for serves, workers in topologies:
        for rate in rates:
            print(f"== {serves} serve x {workers} workers at {rate:g}/s", file=sys.stderr)
            one = argparse.Namespace(**vars(args), rate=rate, workers=workers)
            cpu = CpuShares()
            data = await delivery.measure(
                one, serves=serves, apart=True, during=functools.partial(measuring, cpu)
            )
            facts = facts or data["facts"]
            hook, ack = data["callback_to_webhook"], data["callback_ack"]
            held = ack["failed"] == 0 and hook["p99_ms"] < HELD_P99_MS
            rows.append(
                {
                    "serves": serves,
                    "workers": workers,
                    "rate": rate,
                    "p50_ms": hook["p50_ms"],
                    "p99_ms": hook["p99_ms"],
                    "ack_p99_ms": ack["p99_ms"],
                    "not_answered_200": ack["failed"],
                    "one_hop_p99_ms": data["baseline_one_hop"]["p99_ms"],
                    "held": held,
                    "cpu_share": cpu.shares(),
                    "wall_s": round(cpu.wall, 1),
                }
            )
            print(f"   {rows[-1]}", file=sys.stderr)
    facts["command"] = common.command_line("bench.scale")
    text = markdown(facts, rows)
    print(text)
    if not args.no_record:
        common.write_results("scale", {"facts": facts, "runs": rows}, text)


def markdown(facts: dict[str, Any], rows: Sequence[dict[str, Any]]) -> str:
    table = common.table(
        [
            "serve",
            "workers",
            "callbacks/s",
            "webhook p50 ms",
            "webhook p99 ms",
            "ack p99 ms",
            "held",
            "CPU icehook",
            "CPU PostgreSQL",
            "CPU benchmark",
        ],
        [
            [
                r["serves"],
                r["workers"],
                f"{r['rate']:g}",
                r["p50_ms"],
                r["p99_ms"],
                r["ack_p99_ms"],
                "yes" if r["held"] else "**no**",
                f"{r['cpu_share']['icehook']:.0%}",
                f"{r['cpu_share']['postgres']:.0%}",
                f"{r['cpu_share']['benchmark']:.0%}",
            ]
            for r in rows
        ],
    )
    return f"""# Scale benchmark (`python -m bench.scale`)

From an ICE callback to its verified webhook, by topology and rate; CPU as a share of
all of the machine's CPUs while the callbacks were posted and their webhooks arrived.
"held": every callback answered 200 and webhook p99 under {HELD_P99_MS:g} ms. See
docs/sizing.md.

{common.facts_markdown(facts)}

{table}
"""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.scale", description=__doc__)
    parser.add_argument("--server-url", default=common.DEFAULT_SERVER_URL)
    parser.add_argument("--topologies", default="1x1,1x2,1x4,2x2,2x4", help="SERVExWORKERS,...")
    parser.add_argument("--rates", default="150,300,450", help="callbacks a second, ...")
    parser.add_argument("--seconds", type=float, default=10.0, help="of each open loop")
    parser.add_argument("--submit-qps", type=float, default=1000.0, help="ICE's is 30")
    parser.add_argument("--no-record", action="store_true", help="print the results only")
    args = parser.parse_args(argv)
    args.database_url = None
    return args


def main(argv: Sequence[str] | None = None) -> None:
    common.run_main(run(parse_args(argv)))


if __name__ == "__main__":
    main()
