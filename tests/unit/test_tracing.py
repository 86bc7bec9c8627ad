"""Tracing's rules: when the ``OTEL_*`` variables turn it on, what the sampler keeps, and how
a trace is carried through the database (``traceparent`` and ``continuing``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.trace import SpanKind

from app.core.errors import ConfigError
from app.telemetry import tracing


@pytest.mark.parametrize(
    ("environ", "asked"),
    [
        ({}, ()),
        ({"OTEL_SERVICE_NAME": "x", "OTEL_TRACES_SAMPLER": "always_on"}, ()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ("otlp",)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "console"}, ("console",)),
        ({"OTEL_TRACES_EXPORTER": "otlp, console,otlp"}, ("otlp", "console")),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, ()),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "True"}, ()),
        (
            {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",  # for other signals
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            ("otlp",),
        ),
    ],
)
def test_tracing_is_off_unless_an_exporter_is_asked_for(
    environ: dict[str, str], asked: tuple[str, ...]
) -> None:
    assert tracing.exporters_asked(environ) == asked


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER"),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            "OTEL_EXPORTER_OTLP_PROTOCOL",
        ),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        ),
    ],
)
def test_what_icehook_cannot_export_with_is_a_config_error(
    environ: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        tracing.exporters_asked(environ)
    assert raised.value.variable == variable


def test_off_it_makes_no_spans_and_instruments_nothing() -> None:
    off = tracing.from_environment({}, version="1")
    assert not off.enabled
    assert isinstance(off.tracer, trace.NoOpTracer)
    with tracing.continuing(off.tracer, "work"):
        assert tracing.traceparent() is None, "nothing to store, nothing to continue"
    cause = "00-" + "1" * 32 + "-" + "2" * 16 + "-01"
    with tracing.continuing(off.tracer, "work", [cause]) as span:
        # Not even the no-op tracer's context: a traceparent stored while tracing was on
        # is not handed on.
        assert tracing.traceparent() is None
        assert span is trace.INVALID_SPAN


def excluded_urls(environ: dict[str, str]) -> str:
    made = tracing.from_environment(environ, version="1")
    made.close()
    return made.excluded_urls


def test_on_the_probes_make_no_span_unless_the_environment_says_otherwise() -> None:
    on = {"OTEL_TRACES_EXPORTER": "console"}
    assert excluded_urls(on) == tracing.PROBES
    chosen = {**on, "OTEL_PYTHON_EXCLUDED_URLS": "/metrics$"}
    assert excluded_urls(chosen) == "/metrics$"
    assert excluded_urls({**chosen, "OTEL_PYTHON_ASGI_EXCLUDED_URLS": ""}) == ""


def test_on_it_is_named_for_the_service_unless_the_environment_names_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    built = tracing.provider([], version="9.9")
    assert built.resource.attributes["service.name"] == "icehook"
    assert built.resource.attributes["service.version"] == "9.9"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "icehook-eu")
    renamed = tracing.provider([], version="9.9")
    assert renamed.resource.attributes["service.name"] == "icehook-eu"
    for made in (built, renamed):
        made.shutdown()


@pytest.fixture
def recorded() -> Iterator[tuple[trace.Tracer, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    provider = tracing.provider([], version="test", sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield provider.get_tracer("test"), exporter
    provider.shutdown()


def test_a_client_span_without_a_parent_is_dropped_and_one_with_a_parent_kept(
    recorded: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = recorded
    with tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT):
        pass  # a worker's idle poll
    with (
        tracer.start_as_current_span("confirm job"),
        tracer.start_as_current_span("SELECT", kind=SpanKind.CLIENT),
    ):
        pass
    with tracer.start_as_current_span("GET /v1/jobs", kind=SpanKind.SERVER):
        pass
    kept = [(span.name, span.parent is not None) for span in exporter.get_finished_spans()]
    assert kept == [("SELECT", True), ("confirm job", False), ("GET /v1/jobs", False)]
    description = tracing.WithoutOrphanClientSpans(ALWAYS_ON).get_description()
    assert description == "WithoutOrphanClientSpans{AlwaysOnSampler}"


def test_a_span_continues_the_first_cause_and_links_the_others(
    recorded: tuple[trace.Tracer, InMemorySpanExporter],
) -> None:
    tracer, exporter = recorded
    causes = []
    for name in ("callback 1", "callback 2"):
        with tracer.start_as_current_span(name):
            causes.append(tracing.traceparent())
    assert all(c is not None and c.startswith("00-") and int(c[-2:], 16) & 1 for c in causes)
    with tracing.continuing(tracer, "confirm job", [None, "not a traceparent", *causes]):
        pass
    first, second, confirm = exporter.get_finished_spans()
    assert confirm.parent is not None
    assert confirm.parent.span_id == first.context.span_id
    assert confirm.context.trace_id == first.context.trace_id
    assert [link.context.span_id for link in confirm.links] == [second.context.span_id]

    with tracing.continuing(tracer, "sweep"):  # no cause: a trace of its own
        pass
    assert exporter.get_finished_spans()[-1].parent is None
