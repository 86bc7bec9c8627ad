"""``GET /metrics``: Prometheus' text format, behind the API key, over real sockets."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.receiver import receiver
from tests.helpers.servers import http_client
from tests.helpers.stack import Stack, stack
from tests.helpers.waiting import eventually


async def scrape(s: Stack) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``/metrics``, by name and labels."""
    answer = await s.api.get("/metrics")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }


async def test_metrics_count_callbacks_ice_calls_jobs_and_deliveries(database_url: str) -> None:
    icehook = {"delivery_retry_schedule": (0.3,) * 20}
    async with receiver() as r, stack(database_url, job_seconds=0.3, icehook=icehook) as s:
        async with http_client(base_url=str(s.api.base_url)) as anonymous:
            assert (await anonymous.get("/metrics")).status_code == 401
        before = await scrape(s)
        created = await s.api.post("/v1/subscriptions", json={"url": r.url, "event_types": ["*"]})
        r.secrets.append(created.json()["secret"])
        r.status = 503
        await s.submit(ProjectId="p-metrics")

        async def backlog() -> bool:
            now = await scrape(s)
            return bool(
                any(request.answered == 503 for request in r.requests)
                and now[("icehook_outbox_pending_deliveries", ())] >= 1
                and now[("icehook_outbox_oldest_pending_seconds", ())] > 0
            )

        await eventually(backlog)
        r.status = 200

        async def delivered() -> bool:
            return len(r.delivered()) == 2  # job.submitted, job.succeeded

        async def no_backlog() -> bool:
            return (await scrape(s))[("icehook_outbox_pending_deliveries", ())] == 0

        await eventually(delivered)
        await eventually(no_backlog)
        assert (await s.callbacks.post("/callbacks/ice/not-a-token", json={})).status_code == 401
        after = await scrape(s)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert grew("icehook_callbacks_received_total", outcome="pending") == 1
    assert grew("icehook_callbacks_received_total", outcome="rejected") == 1
    assert grew("icehook_callbacks_judged_total", outcome="applied") == 1
    assert grew("icehook_callback_intake_seconds_count") == 2
    assert grew("icehook_ice_calls_total", action="SubmitMediaProducingJob", outcome="ok") == 1
    assert grew("icehook_ice_calls_total", action="GetMediaProducingJob", outcome="ok") == 1
    assert grew("icehook_delivery_attempts_total", outcome="delivered") == 2
    assert grew("icehook_delivery_attempts_total", outcome="failed") >= 1
    assert grew("icehook_delivery_seconds_count") == grew(
        "icehook_delivery_attempts_total", outcome="delivered"
    ) + grew("icehook_delivery_attempts_total", outcome="failed")
    assert after[("icehook_jobs", (("status", "succeeded"),))] == 1
    assert after[("icehook_jobs", (("status", "failed"),))] == 0
    assert after[("icehook_outbox_oldest_pending_seconds", ())] == 0
