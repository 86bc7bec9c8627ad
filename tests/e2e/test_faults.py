"""Fault injection against the real ``icehook serve``, over real sockets: no single bad peer,
socket or request may stall it or fill it up.

- a database path that stops forwarding (``faults.TcpProxy``): callbacks are answered 503
  within their deadline while it lasts, ``/readyz`` says so, and within 10 s of the path
  coming back callbacks are answered again and the worker works;
- a subscriber and an ICE that trickle their answers a byte at a time: neither holds a
  request (or a slot) past its deadline, a webhook is never sent twice at once, and the
  other subscriber's webhooks are not held back longer than that deadline;
- clients that hold connections, trickle heads or bodies, or flood headers: closed at the
  configured times, refused at the configured sizes, and the database gains a bounded
  number of bytes;
- SIGTERM ends the process within its bound in each of these.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import httpx
import psutil
import sqlalchemy as sa

from app.store.callbacks import KEPT_OF_REFUSED
from app.store.tables import callbacks as callbacks_table
from app.store.tables import jobs, outbox
from tests.helpers.faults import closed_within, database_proxy, open_raw, send, trickle, trickling
from tests.helpers.history import rows
from tests.helpers.processes import (
    clean_environment,
    kill_all,
    start_icehook_logged,
    troubles,
    wait_ready,
)
from tests.helpers.receiver import receiver
from tests.helpers.servers import free_port, http_client
from tests.helpers.waiting import FINAL, eventually, timed

API_KEY = "faults-api-key-0123"
OUTPUT = {"MediaURL": "https://bucket.oss-cn-shanghai.aliyuncs.com/out.mp4"}
UNKNOWN = "/callbacks/ice/no-such-token"
SLACK = 3.0  # on a loaded 2-core machine; every bound below is a few seconds


@dataclasses.dataclass
class Running:
    proc: asyncio.subprocess.Process
    url: str
    log: Path


@contextlib.asynccontextmanager
async def serving(
    database_url: str, tmp_path: Path, *args: str, **variables: str
) -> AsyncIterator[Running]:
    """The real ``icehook serve`` (``args``: more of its arguments, e.g. ``--simulate``),
    ready; killed at the end if a test left it running."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **clean_environment(),
        "ICEHOOK_DATABASE_URL": database_url,
        "ICEHOOK_DATA_DIR": str(tmp_path / "data"),
        "ICEHOOK_API_KEYS": API_KEY,
        "ICEHOOK_PUBLIC_URL": url,
        "ICEHOOK_SHUTDOWN_TIMEOUT_SECONDS": "3",
        **variables,
    }
    log = tmp_path / "serve.log"
    proc = await start_icehook_logged("serve", *args, "--port", str(port), env=env, log=log)
    try:
        await wait_ready(url)
        yield Running(proc, url, log)
    finally:
        await kill_all([proc])


def api(url: str) -> httpx.AsyncClient:
    return http_client(base_url=url, headers={"authorization": f"Bearer {API_KEY}"}, timeout=30)


async def stops_within(proc: asyncio.subprocess.Process, seconds: float) -> float:
    """SIGTERM, and how long the process took to exit (at most ``seconds``)."""
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    await asyncio.wait_for(proc.wait(), seconds)
    return time.monotonic() - started


# -- the database ------------------------------------------------------------------------------


async def test_a_database_that_stops_answering_holds_nothing_up_for_long(
    database_url: str, tmp_path: Path
) -> None:
    timeout = 1.0
    async with (
        database_proxy(database_url) as (proxy, through),
        serving(
            through,
            tmp_path,
            "--simulate",
            ICEHOOK_DATABASE_TIMEOUT_SECONDS=str(timeout),
            ICEHOOK_SWEEP_AFTER_SECONDS="2",
            ICEHOOK_SIM_JOB_SECONDS="1",
        ) as running,
        api(running.url) as http,
    ):
        assert (await http.post(UNKNOWN, content=b"{}")).status_code == 401
        proxy.pause()
        answer, took = await timed(http.post(UNKNOWN, content=b"{}"))
        assert answer.status_code == 503
        assert answer.headers["retry-after"] == "1"
        assert took < 2 * timeout + SLACK, "a callback waits at most its deadline"

        async def unready() -> bool:
            return (await http.get("/readyz")).status_code == 503

        await eventually(unready, 10)
        await asyncio.sleep(3)  # the outage goes on
        proxy.resume()

        async def answered() -> bool:
            return (await http.post(UNKNOWN, content=b"{}")).status_code == 401

        assert await eventually(answered, 10) < 10, "answered again within 10 s"

        async def ready() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await eventually(ready, 10)
        job = await http.post("/v1/jobs", json={"ProjectId": "p", "OutputMediaConfig": OUTPUT})
        assert job.status_code == 201, job.text

        async def final() -> bool:
            found = (await http.get(f"/v1/jobs/{job.json()['id']}")).json()
            return found["status"] in FINAL

        await eventually(final, 30)  # the worker recovered too

        proxy.pause()  # and a SIGTERM during an outage ends in its bound
        pending = asyncio.create_task(http.post(UNKNOWN, content=b"{}"))
        await asyncio.sleep(0.2)
        assert await stops_within(running.proc, 3 + 5 + SLACK) < 3 + 5 + SLACK
        pending.cancel()
        proxy.resume()
    assert not troubles(running.log), "losing the database is a warning, not an error"


# -- peers that trickle ----------------------------------------------------------------------


async def test_a_trickling_subscriber_holds_one_slot_until_its_deadline_only(
    database_url: str, tmp_path: Path
) -> None:
    deadline = 2.0
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 40\r\n\r\n" + b"x" * 40
    async with (
        trickling(answer, interval=0.5) as slow,
        receiver() as fast,
        serving(
            database_url,
            tmp_path,
            "--simulate",
            ICEHOOK_DELIVERY_TIMEOUT_SECONDS=str(deadline),
            ICEHOOK_DELIVERY_CONCURRENCY="2",
            ICEHOOK_DELIVERY_RETRY_SCHEDULE="1,1,1,1,1,1,1,1,1,1",
            ICEHOOK_ALLOWED_WEBHOOK_NETS="127.0.0.0/8",
            ICEHOOK_SIM_JOB_SECONDS="1",
        ) as running,
        api(running.url) as http,
    ):
        for url in (f"{slow.url}/hook", fast.url):
            created = await http.post("/v1/subscriptions", json={"url": url, "event_types": ["*"]})
            assert created.status_code == 201, created.text
            fast.secrets.append(created.json()["secret"])
        for n in range(3):
            submitted = await http.post(
                "/v1/jobs", json={"ProjectId": f"p{n}", "OutputMediaConfig": OUTPUT}
            )
            assert submitted.status_code == 201, submitted.text

        async def all_final() -> bool:
            return {j["status"] for j in await rows(database_url, sa.select(jobs))} <= FINAL

        await eventually(all_final, 60)
        sent = {
            m["event_id"]: m["created_at"].timestamp()
            for m in await rows(database_url, sa.select(outbox))
        }

        async def all_delivered() -> bool:
            return {d["webhook_id"] for d in fast.delivered()} == sent.keys()

        await eventually(all_delivered, 60)
        late = {
            event: round(fast.first_arrival[event] - created, 2)
            for event, created in sent.items()
            if fast.first_arrival[event] - created > deadline + SLACK
        }
        assert not late, f"held back past the slow subscriber's deadline: {late}"

        async def tried_more() -> bool:
            return len([v for v in slow.visits if v.closed]) >= 6

        await eventually(tried_more, 60)
        now = time.monotonic()
        held = [(v.closed or now) - v.opened for v in slow.visits]
        assert max(held) < deadline + SLACK, f"a request outlived its deadline: {max(held)}"
        assert set(slow.most_at_once.values()) == {1}, "never two copies of one webhook at once"
        took = await stops_within(running.proc, 3 + 5 + SLACK)
        assert took < 3 + 5 + SLACK
    assert not troubles(running.log)


async def test_a_trickling_ice_holds_neither_a_request_nor_the_worker(
    database_url: str, tmp_path: Path
) -> None:
    body = b'{"RequestId": "r-1", "JobId": "ice-job-1"}'
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    answer += b"content-length: %d\r\n\r\n" % len(body) + body
    async with trickling(answer, interval=0.5) as ice:
        async with (
            serving(
                database_url,
                tmp_path,
                ICEHOOK_ICE_ENDPOINT=ice.url,
                ALIBABA_CLOUD_ACCESS_KEY_ID="faults-ak",
                ALIBABA_CLOUD_ACCESS_KEY_SECRET="faults-secret",
                ICEHOOK_ICE_TIMEOUT_SECONDS="1",
                ICEHOOK_ICE_MAX_ATTEMPTS="2",
                ICEHOOK_SWEEP_AFTER_SECONDS="1",
            ) as running,
            api(running.url) as http,
        ):
            submitted, took = await timed(
                http.post("/v1/jobs", json={"ProjectId": "p", "OutputMediaConfig": OUTPUT})
            )
            assert submitted.status_code == 202, "no answer from ICE in time: settled later"
            # Two attempts of at most 1 s each, and a backoff of at most 0.8 s between.
            assert took < 2 * 1 + 0.8 + SLACK
            for _ in range(10):  # the sweeper keeps asking ICE, and is never wedged
                assert (await http.get("/readyz")).status_code == 200
                await asyncio.sleep(0.5)
            assert len(ice.visits) >= 3
            now = time.monotonic()
            assert max((v.closed or now) - v.opened for v in ice.visits) < 1 + SLACK
            assert await stops_within(running.proc, 3 + 5 + SLACK) < 3 + 5 + SLACK
        (job,) = await rows(database_url, sa.select(jobs))
        assert job["status"] == "submitting"
        assert job["check_count"] >= 1, "a job ICE did not answer about is checked with backoff"


# -- clients that hold, trickle or flood ---------------------------------------------------------


async def test_held_and_trickling_connections_are_closed_at_the_configured_times(
    database_url: str, tmp_path: Path
) -> None:
    async with serving(
        database_url,
        tmp_path,
        "--simulate",
        ICEHOOK_HTTP_HEADER_TIMEOUT_SECONDS="1",
        ICEHOOK_HTTP_BODY_TIMEOUT_SECONDS="2",
        ICEHOOK_HTTP_MAX_CONNECTIONS="100",
    ) as running:
        held = [await open_raw(running.url) for _ in range(100)]
        await asyncio.sleep(0.2)
        over = [await open_raw(running.url) for _ in range(20)]
        for reader, _ in over:
            assert (await closed_within(reader, SLACK)).startswith(b"HTTP/1.1 503 ")
        started = time.monotonic()
        for reader, _ in held:
            await closed_within(reader, 1 + SLACK)
        assert time.monotonic() - started < 1 + SLACK

        heads = [await open_raw(running.url) for _ in range(50)]
        trickles = [
            asyncio.create_task(trickle(writer, b"POST /callbacks/ice/x HTTP/1.1\r\n" * 5, 0.3))
            for _, writer in heads
        ]
        reader, writer = await open_raw(running.url)
        send(writer, b"POST /callbacks/ice/x HTTP/1.1\r\nhost: x\r\ncontent-length: 500\r\n\r\n")
        trickles.append(asyncio.create_task(trickle(writer, b"{" * 500, 0.3)))
        try:
            for head_reader, _ in heads:
                assert (await closed_within(head_reader, 1 + SLACK)).startswith(b"HTTP/1.1 408 ")
            assert (await closed_within(reader, 2 + SLACK)).startswith(b"HTTP/1.1 408 ")
        finally:
            for task in trickles:
                task.cancel()
        assert psutil.Process(running.proc.pid).num_fds() < 100, "every held socket closed"
        async with api(running.url) as http:
            assert (await http.get("/readyz")).status_code == 200
        assert await stops_within(running.proc, 3 + 5 + SLACK) < 3 + 5 + SLACK
    assert not await rows(database_url, sa.select(callbacks_table)), "nothing half-sent is kept"
    assert not troubles(running.log)


async def test_a_header_flood_stores_a_bounded_number_of_bytes(
    database_url: str, tmp_path: Path
) -> None:
    async with serving(database_url, tmp_path, "--simulate") as running, api(running.url) as http:
        rss = psutil.Process(running.proc.pid).memory_info().rss

        async def flood() -> None:
            reader, writer = await open_raw(running.url)
            send(writer, b"POST /callbacks/ice/x HTTP/1.1\r\nhost: x\r\n")
            with contextlib.suppress(OSError):
                for _ in range(32):  # 32 MiB of one header
                    writer.write(b"x-flood: " + b"y" * (1 << 20))
                    await writer.drain()
            await closed_within(reader, SLACK)

        await asyncio.gather(*(flood() for _ in range(4)))
        grown = psutil.Process(running.proc.pid).memory_info().rss - rss
        assert grown < 64 * 1024 * 1024, f"the process grew by {grown} bytes"

        big_headers = {f"x-h{n}": "v" * 1000 for n in range(14)}  # within the head limit
        answers = await asyncio.gather(
            *(http.post(UNKNOWN, content=b"{" * 60_000, headers=big_headers) for _ in range(300))
        )
        assert {a.status_code for a in answers} == {401}
        metrics = (await http.get("/metrics")).text
    kept = await rows(
        database_url,
        sa.select(
            sa.func.count().label("count"),
            sa.func.sum(sa.func.octet_length(callbacks_table.c.body)).label("body"),
            sa.func.sum(sa.func.pg_column_size(callbacks_table.c.headers)).label("headers"),
        ),
    )
    count, body_bytes, header_bytes = kept[0]["count"], kept[0]["body"], kept[0]["headers"]
    assert 0 < count <= 30, "a burst of refused callbacks is kept, then no more"
    assert body_bytes <= count * KEPT_OF_REFUSED
    assert header_bytes <= count * 300, "a summary of the headers, not the headers"
    unrecorded = next(
        float(line.split()[-1])
        for line in metrics.splitlines()
        if line.startswith("icehook_callbacks_unrecorded_total")
    )
    assert unrecorded >= 300 - count


async def test_clients_that_vanish_mid_body_write_no_errors(
    database_url: str, tmp_path: Path
) -> None:
    async with serving(database_url, tmp_path, "--simulate") as running:

        async def vanish(path: str) -> None:
            _, writer = await open_raw(running.url)
            head = f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n"
            send(writer, head.encode() + f"authorization: Bearer {API_KEY}\r\n\r\n{{".encode())
            await asyncio.sleep(0.05)
            writer.close()

        paths: Sequence[str] = (UNKNOWN, "/v1/jobs", "/v1/subscriptions")
        await asyncio.gather(*(vanish(paths[n % 3]) for n in range(150)))
        async with api(running.url) as http:
            assert (await http.get("/readyz")).status_code == 200
        assert await stops_within(running.proc, 3 + 5 + SLACK) < 3 + 5 + SLACK
    assert not troubles(running.log), "a client that goes away is not an error"


async def test_a_second_signal_ends_the_process_at_once(database_url: str, tmp_path: Path) -> None:
    """A webhook request that may run 30 s more holds the first SIGTERM up; the second one
    does not wait for it."""
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n" + b"x" * 100
    async with (
        trickling(answer, interval=1) as slow,
        serving(
            database_url,
            tmp_path,
            "--simulate",
            ICEHOOK_DELIVERY_TIMEOUT_SECONDS="30",
            ICEHOOK_SHUTDOWN_TIMEOUT_SECONDS="30",
            ICEHOOK_ALLOWED_WEBHOOK_NETS="127.0.0.0/8",
        ) as running,
        api(running.url) as http,
    ):
        created = await http.post("/v1/subscriptions", json={"url": slow.url, "event_types": ["*"]})
        assert created.status_code == 201
        await http.post("/v1/jobs", json={"ProjectId": "p", "OutputMediaConfig": OUTPUT})

        async def sending() -> bool:
            return bool(slow.visits)

        await eventually(sending, 30)
        running.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(1)
        assert running.proc.returncode is None, "the first signal waits for the request"
        assert await stops_within(running.proc, 5 + SLACK) < 5 + SLACK
