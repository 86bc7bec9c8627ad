"""Tracing: one trace follows an ICE callback from its HTTP request, through the worker's
confirmation with ICE, to the webhook it causes; exported in memory by the SDK, from a
real icehook and simulator on real sockets in this process."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import sqlalchemy as sa
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind

from app.store.tables import callbacks, outbox
from app.telemetry import tracing
from tests.helpers.receiver import receiver
from tests.helpers.stack import API_KEY, SECRET, stack
from tests.helpers.waiting import eventually


@pytest.fixture
def exported() -> Iterator[tuple[tracing.Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = tracing.provider([], version="test", sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    traced = tracing.Tracing(provider, excluded_urls=tracing.PROBES)
    yield traced, exporter
    traced.close()


def named(spans: Sequence[ReadableSpan], name: str, **attributes: Any) -> list[ReadableSpan]:
    return [
        span
        for span in spans
        if span.name == name
        and all((span.attributes or {}).get(k) == v for k, v in attributes.items())
    ]


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


async def test_one_trace_follows_a_callback_to_its_confirmation_and_webhook(
    database_url: str, exported: tuple[tracing.Tracing, InMemorySpanExporter]
) -> None:
    traced, exporter = exported
    async with receiver() as r, stack(database_url, job_seconds=0.3, tracing=traced) as s:
        answer = await s.api.post(
            "/v1/subscriptions", json={"url": r.url, "event_types": ["job.*"]}
        )
        assert answer.status_code == 201
        r.secrets.append(answer.json()["secret"])
        job = await s.submit(ProjectId="p-traced")
        assert (await s.callbacks.get("/healthz")).status_code == 200

        async def succeeded_delivered() -> bool:
            return any(event["type"] == "job.succeeded" for event in r.delivered())

        await eventually(succeeded_delivered, seconds=30)
        token = await s.token_of(str((await s.job(job["id"]))["ice_job_id"]))
    spans = exporter.get_finished_spans()

    # The callback's request: a server span whose name and attributes hide the token.
    (request,) = [s for s in spans if s.kind == SpanKind.SERVER and "/callbacks/ice/" in s.name]
    assert request.name == "POST /callbacks/ice/{token}"
    assert (request.attributes or {}).get("icehook.request_id")
    trace_id = request.context.trace_id
    in_trace = [s for s in spans if s.context.trace_id == trace_id]

    # The worker's confirmation continues it, and asks ICE within it.
    (confirm,) = named(in_trace, "confirm job", **{"icehook.source": "callback"})
    assert (confirm.attributes or {})["icehook.job_id"] == job["id"]
    (ice,) = named(in_trace, "ICE GetMediaProducingJob")
    assert ice.parent is not None
    assert ice.parent.span_id == confirm.context.span_id
    (request_to_ice,) = [c for c in children(in_trace, ice) if c.name == "POST"]
    assert request_to_ice.kind == SpanKind.CLIENT
    # Its address is the origin only: ICE's query string holds the callback address.
    assert str((request_to_ice.attributes or {})["url.full"]).count("/") == 2
    (recorded,) = named(in_trace, "record ICE's answers")
    statements = [s for s in children(in_trace, recorded) if s.kind == SpanKind.CLIENT]
    assert statements, "the transaction's statements are spans of the same trace"

    # The webhook the confirmation caused continues the trace, and so does its receiver.
    (sent,) = named(in_trace, "send webhook", **{"icehook.event_type": "job.succeeded"})
    assert (sent.attributes or {})["icehook.delivered"] is True
    (post,) = children(in_trace, sent)
    assert (post.kind, post.name) == (SpanKind.CLIENT, "POST")
    (delivery,) = [d for d in r.requests if json.loads(d.body)["type"] == "job.succeeded"]
    assert delivery.headers["traceparent"].split("-")[1] == format(trace_id, "032x")

    # The submission is a trace of its own: the API request, its ICE call, its webhook.
    (submit,) = [s for s in spans if s.kind == SpanKind.SERVER and s.name == "POST /v1/jobs"]
    submitted = [s for s in spans if s.context.trace_id == submit.context.trace_id]
    assert named(submitted, "ICE SubmitMediaProducingJob")
    assert named(submitted, "send webhook", **{"icehook.event_type": "job.submitted"})

    # A probe is no trace at all.
    assert not [s for s in spans if "healthz" in s.name]

    # No span holds a secret: the callback token, the API key, the AccessKey secret.
    for span in spans:
        shown = json.dumps([span.name, dict(span.attributes or {})], default=str)
        for secret in (token, API_KEY, SECRET):
            assert secret not in shown, (span.name, secret)


async def test_off_by_default_no_traceparent_is_stored(database_url: str) -> None:
    async with stack(database_url, job_seconds=0.3) as s:
        job = await s.submit(ProjectId="p-untraced")

        async def final() -> bool:
            return bool((await s.job(job["id"]))["status"] == "succeeded")

        await eventually(final, seconds=30)
        of_job = sa.select(callbacks.c.traceparent).where(callbacks.c.job_id == job["id"])
        stored = await s.rows(of_job)
        events = await s.rows(sa.select(outbox.c.traceparent).where(outbox.c.job_id == job["id"]))
    assert stored
    assert events
    assert {row.traceparent for row in [*stored, *events]} == {None}
