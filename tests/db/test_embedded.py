"""The embedded PostgreSQL: shared by processes on one data dir, stopped by the last one,
and never blocked by what a killed process left behind."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from app.store import embedded
from tests.helpers.processes import start_icehook, stop, wait_ready
from tests.helpers.servers import free_port


def postgres_pids(data_dir: Path) -> set[int]:
    """The postgres server processes running on ``data_dir``'s pgdata."""
    pgdata = str((data_dir / "pgdata").resolve())
    found = set()
    for proc in psutil.process_iter(["name", "cmdline"]):
        if proc.info["name"] == "postgres" and pgdata in (proc.info["cmdline"] or []):
            found.add(proc.pid)
    return found


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "data"
    yield path
    embedded.stop_embedded(path)  # whatever a failed test left running


@pytest.fixture
def env(clean_env: dict[str, str], data_dir: Path) -> dict[str, str]:
    return {
        **clean_env,
        "ICEHOOK_DATA_DIR": str(data_dir),
        "ICEHOOK_API_KEYS": "test-key-0123456789",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "ak",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "sk",
    }


async def test_serve_on_the_embedded_database_then_sigterm_leaves_nothing_running(
    env: dict[str, str], data_dir: Path
) -> None:
    port = free_port()
    proc = await start_icehook("serve", "--port", str(port), env=env)
    await wait_ready(f"http://127.0.0.1:{port}")
    await wait_ready(f"http://127.0.0.1:{port}", "/healthz")
    assert postgres_pids(data_dir)

    assert await stop(proc) == 0
    assert postgres_pids(data_dir) == set()
    assert (data_dir / "pgdata" / "PG_VERSION").exists(), "the data persists"


async def test_two_processes_share_one_server_and_the_last_one_stops_it(
    env: dict[str, str], data_dir: Path
) -> None:
    ports = [free_port(), free_port()]
    procs = [await start_icehook("serve", "--port", str(port), env=env) for port in ports]
    for port in ports:
        await wait_ready(f"http://127.0.0.1:{port}")
    postmaster = (data_dir / "pgdata" / "postmaster.pid").read_text().split()[0]
    assert postgres_pids(data_dir) >= {int(postmaster)}

    assert await stop(procs[0]) == 0
    await wait_ready(f"http://127.0.0.1:{ports[1]}")  # still served by the same server
    assert (data_dir / "pgdata" / "postmaster.pid").read_text().split()[0] == postmaster

    assert await stop(procs[1]) == 0
    assert postgres_pids(data_dir) == set()


async def test_after_sigkill_the_next_start_reuses_the_server_and_later_stops_it(
    env: dict[str, str], data_dir: Path
) -> None:
    port = free_port()
    killed = await start_icehook("serve", "--port", str(port), env=env)
    await wait_ready(f"http://127.0.0.1:{port}")
    await stop(killed, signal.SIGKILL)
    survivors = postgres_pids(data_dir)
    assert survivors, "a killed icehook cannot stop the server: it keeps running"

    again = await start_icehook("serve", "--port", str(port), env=env)
    await wait_ready(f"http://127.0.0.1:{port}")
    assert postgres_pids(data_dir) == survivors, "reused, not restarted"

    # The killed process is still listed as a user of the server; the restart forgot it,
    # so this last user's exit stops the server.
    assert await stop(again) == 0
    assert postgres_pids(data_dir) == set()


async def test_a_stale_pid_file_of_an_unrelated_process_does_not_block_a_start(
    env: dict[str, str], data_dir: Path
) -> None:
    port = free_port()
    first = await start_icehook("serve", "--port", str(port), env=env)
    await wait_ready(f"http://127.0.0.1:{port}")
    assert await stop(first) == 0

    # As after a crash of the whole machine: the pid file names a process that is not postgres.
    bystander = await asyncio.create_subprocess_exec("sleep", "600")
    pidfile = data_dir / "pgdata" / "postmaster.pid"
    pidfile.write_text(f"{bystander.pid}\n{data_dir / 'pgdata'}\n0\n5432\n\n\n0 0\nready   \n")
    try:
        second = await start_icehook("serve", "--port", str(port), env=env)
        await wait_ready(f"http://127.0.0.1:{port}")
        assert await stop(second) == 0
        assert bystander.returncode is None, "icehook must never signal a process it does not own"
    finally:
        bystander.kill()
        await bystander.wait()
