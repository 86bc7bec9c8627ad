"""Prometheus metrics (``prometheus-client``), served at ``GET /metrics``.

Counters and histograms are this process's own: ``serve`` counts what it and its worker
did (an ``icehook worker`` process serves no HTTP, and is not scraped). The gauges of jobs
by status and of the delivery backlog are read from the database once a second by
``serve`` (``flows.gauges``, from totals kept by triggers: ``store.counts``) and published
at each scrape, so they are the whole deployment's.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

CALLBACKS_RECEIVED = Counter(
    "icehook_callbacks_received",
    "ICE callbacks received, by outcome as stored (pending: to be confirmed with ICE)",
    ["outcome"],
    registry=REGISTRY,
)
CALLBACKS_JUDGED = Counter(
    "icehook_callbacks_judged",
    "Pending callbacks judged after ICE was asked, by outcome",
    ["outcome"],
    registry=REGISTRY,
)
INTAKE_SECONDS = Histogram(
    "icehook_callback_intake_seconds",
    "From a callback's arrival to its answer (stored and committed)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=REGISTRY,
)
ICE_CALLS = Counter(
    "icehook_ice_calls",
    "ICE API requests, by action and outcome (ok, or the error code)",
    ["action", "outcome"],
    registry=REGISTRY,
)
ICE_RETRIES = Counter(
    "icehook_ice_retries",
    "ICE calls tried again, by action and the error that made them (Throttling: ICE's limit)",
    ["action", "code"],
    registry=REGISTRY,
)
ICE_SUBMIT_UNKNOWN = Counter(
    "icehook_ice_submit_unknown",
    "Submissions whose outcome is unknown (no answer from ICE), by reason; each is looked up",
    ["reason"],
    registry=REGISTRY,
)
DELIVERY_ATTEMPTS = Counter(
    "icehook_delivery_attempts",
    "Webhook delivery attempts, by outcome (delivered or failed)",
    ["outcome"],
    registry=REGISTRY,
)
DELIVERY_SECONDS = Histogram(
    "icehook_delivery_seconds",
    "Duration of one webhook request",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0),
    registry=REGISTRY,
)
CALLBACKS_UNRECORDED = Counter(
    "icehook_callbacks_unrecorded",
    "Refused callbacks (unknown token, bad signature) not stored: their sender went over the"
    " rate at which refused callbacks are kept",
    registry=REGISTRY,
)
HTTP_REFUSED = Counter(
    "icehook_http_refused",
    "Connections and requests refused at the edge, by reason (connections, head_too_large,"
    " too_many_headers, head_timeout, body_timeout)",
    ["reason"],
    registry=REGISTRY,
)
JOBS = Gauge("icehook_jobs", "Jobs by status", ["status"], registry=REGISTRY)
FATE_UNKNOWN = Gauge(
    "icehook_jobs_fate_unknown",
    "Submissions whose answer was lost and that ICE cannot show it has (see fate_unknown_since)",
    registry=REGISTRY,
)
PENDING_DELIVERIES = Gauge(
    "icehook_outbox_pending_deliveries",
    "Webhook deliveries not yet delivered or dead",
    registry=REGISTRY,
)
SUBSCRIPTIONS = Gauge(
    "icehook_subscriptions",
    "Webhook subscriptions by state: enabled, failing (enabled, failing since its last "
    "success), disabled (by icehook after a 410 or failing too long, or through the API)",
    ["state"],
    registry=REGISTRY,
)
SUBSCRIPTION_STATES = ("enabled", "failing", "disabled")
OLDEST_PENDING = Gauge(
    "icehook_outbox_oldest_pending_seconds",
    "Age of the oldest delivery not yet delivered or dead (0: none)",
    registry=REGISTRY,
)


def render() -> bytes:
    return generate_latest(REGISTRY)
