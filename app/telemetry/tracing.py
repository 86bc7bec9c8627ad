"""Tracing with OpenTelemetry: off unless the standard ``OTEL_*`` variables ask for it.

``from_environment`` decides, once per process (``icehook serve`` and ``icehook worker``),
whether spans are exported, and builds the SDK's ``TracerProvider`` when they are; the SDK
then reads the rest of its ``OTEL_*`` variables itself (endpoint, headers, timeout,
sampler, batch sizes, resource attributes). ``Tracing`` is what the composition root hands
to the parts that make spans: a tracer (a no-op one when off), and the instrumentation of
an SQLAlchemy engine and of an httpx client.

A trace crosses the database where icehook's work does: the request that stored a callback
leaves its ``traceparent`` (W3C Trace Context) on the callback's row, the worker that
confirms the job continues that trace, and the events it records carry the confirmation's
``traceparent`` to the webhooks they cause (docs/operations.md, Tracing). ``traceparent``
and ``continuing`` are the two halves of that.

Work that no trace asked for starts none on its own: a database statement or an outbound
request with no parent span (a worker's idle poll) is dropped by the sampler
(``WithoutOrphanClientSpans``), so traces are made of work, not of polling.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes
from sqlalchemy.ext.asyncio import AsyncEngine

from app.core.errors import ConfigError

# What --help lists: the variables that turn tracing on and off, and the SDK's others.
TRACING_VARIABLES = (
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT",
    "OTEL_PYTHON_[ASGI_]EXCLUDED_URLS",
    "OTEL_* (the OpenTelemetry SDK's)",
)
EXPORTERS = ("otlp", "console", "none")
# Requests that make no span by default: Kubernetes' probes and Prometheus' scrapes would
# otherwise be most traces.
PROBES = "/healthz$,/readyz$,/metrics$"  # OTEL_TRACES_EXPORTER's values that icehook knows
OTLP_PROTOCOL = "http/protobuf"  # the one OTLP protocol installed (no gRPC)
FLUSH_MILLIS = 5000  # at exit, how long spans still queued may take to be exported

_W3C = TraceContextTextMapPropagator()
NO_TRACER: trace.Tracer = trace.NoOpTracer()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def exporters_asked(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The exporters the ``OTEL_*`` variables ask for; none means tracing is off.

    Off unless ``OTEL_TRACES_EXPORTER`` names an exporter or an OTLP endpoint is set (then
    ``otlp``); ``OTEL_SDK_DISABLED=true`` turns it off whatever else is set. Raises
    ``ConfigError`` for an exporter or an OTLP protocol that icehook cannot export with.
    """
    if _truthy(environ.get("OTEL_SDK_DISABLED")):
        return ()
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named:
        asked = tuple(dict.fromkeys(name.strip() for name in named.split(",") if name.strip()))
    elif environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    ):
        asked = ("otlp",)
    else:
        return ()
    unknown = [name for name in asked if name not in EXPORTERS]
    if unknown:
        raise ConfigError(
            "OTEL_TRACES_EXPORTER", f"unknown exporter {unknown[0]!r}: use {', '.join(EXPORTERS)}"
        )
    if "otlp" in asked:
        for variable in ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"):
            protocol = environ.get(variable, "").strip().lower()
            if protocol and protocol != OTLP_PROTOCOL:
                raise ConfigError(
                    variable, f"icehook exports OTLP over {OTLP_PROTOCOL} only, not {protocol!r}"
                )
            if protocol:
                break
    return tuple(name for name in asked if name != "none")


class WithoutOrphanClientSpans(Sampler):
    """``delegate``'s decisions, except that a client span without a parent (a statement
    or request made outside any traced work) is never sampled."""

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if kind == SpanKind.CLIENT and not parent.is_valid:
            return SamplingResult(Decision.DROP)
        return self.delegate.should_sample(
            parent_context, trace_id, name, kind, attributes, links, trace_state
        )

    def get_description(self) -> str:
        return f"WithoutOrphanClientSpans{{{self.delegate.get_description()}}}"


def provider(
    exporters: Sequence[SpanExporter], *, version: str, sampler: Sampler | None = None
) -> TracerProvider:
    """A provider exporting in batches to each of ``exporters``, with the sampler of
    ``OTEL_TRACES_SAMPLER`` (or ``sampler``) without orphan client spans, as service
    ``icehook`` unless ``OTEL_SERVICE_NAME`` (or ``OTEL_RESOURCE_ATTRIBUTES``) says
    otherwise."""
    resource = Resource.create({SERVICE_VERSION: version})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "icehook"}))
    # The SDK's own reading of OTEL_TRACES_SAMPLER (and _ARG) is what a provider is
    # built with when it is given no sampler.
    chosen = sampler or TracerProvider(shutdown_on_exit=False).sampler
    built = TracerProvider(resource=resource, sampler=WithoutOrphanClientSpans(chosen))
    for exporter in exporters:
        built.add_span_processor(BatchSpanProcessor(exporter))
    return built


def from_environment(environ: Mapping[str, str], *, version: str) -> Tracing:
    """Tracing as the ``OTEL_*`` variables of ``environ`` ask (``exporters_asked``); off
    when they do not. Requests to the probes and the metrics make no span unless
    ``OTEL_PYTHON_ASGI_EXCLUDED_URLS`` (or ``OTEL_PYTHON_EXCLUDED_URLS``) says otherwise."""
    asked = exporters_asked(environ)
    if not asked:
        return Tracing(None)
    excluded = environ.get(
        "OTEL_PYTHON_ASGI_EXCLUDED_URLS", environ.get("OTEL_PYTHON_EXCLUDED_URLS", PROBES)
    )
    exporters: list[SpanExporter] = []
    for name in asked:
        if name == "console":
            exporters.append(ConsoleSpanExporter())
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporters.append(OTLPSpanExporter())  # endpoint, headers, timeout: OTEL_EXPORTER_*
    return Tracing(provider(exporters, version=version), excluded_urls=excluded)


@dataclasses.dataclass
class Tracing:
    """Spans for icehook's parts, exported by ``provider`` (None: tracing is off)."""

    provider: TracerProvider | None
    excluded_urls: str = ""  # requests that make no span: comma-separated regular expressions
    _instrumented_engine: bool = False

    @property
    def enabled(self) -> bool:
        return self.provider is not None

    @property
    def tracer(self) -> trace.Tracer:
        if self.provider is None:
            return NO_TRACER
        return self.provider.get_tracer("icehook")

    def instrument_engine(self, engine: AsyncEngine) -> None:
        """A span for each statement ``engine`` runs (``db.statement`` is the SQL, never
        its parameters)."""
        if self.provider is None:
            return
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        # The instrumentation declares SQLAlchemy < 2.1, but it only listens to engine
        # events (before/after_cursor_execute...) that 2.1 keeps as they were; the trace
        # test (tests/e2e/test_tracing.py) shows its spans.
        SQLAlchemyInstrumentor().instrument(
            engine=engine.sync_engine, tracer_provider=self.provider, skip_dep_check=True
        )
        self._instrumented_engine = True

    def instrument_client(self, client: httpx.AsyncClient) -> None:
        """A client span for each request ``client`` sends, with the W3C ``traceparent``
        header on the request. The span shows the address's origin only: ICE's query
        string holds the callback address with its token (and, signed the V2 way, the
        signature), and a webhook's path may hold its receiver's secret."""
        if self.provider is None:
            return
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        HTTPXClientInstrumentor.instrument_client(
            client, tracer_provider=self.provider, request_hook=_origin_only
        )

    def close(self) -> None:
        """Export what is still queued (within ``FLUSH_MILLIS``, each exporter within its
        own timeout) and stop; undo the engine's instrumentation."""
        if self._instrumented_engine:
            from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

            SQLAlchemyInstrumentor().uninstrument()
            self._instrumented_engine = False
        if self.provider is not None:
            self.provider.force_flush(FLUSH_MILLIS)
            self.provider.shutdown()


OFF = Tracing(None)

URL_ATTRIBUTES = ("url.full", "http.url")  # the current and the older semantic conventions


async def _origin_only(span: trace.Span, request: Any) -> None:
    """The instrumentation's request hook (an async client's must be async)."""
    url = request.url if isinstance(request.url, httpx.URL) else httpx.URL(str(request.url))
    origin = f"{url.scheme}://{url.netloc.decode('ascii')}"
    for attribute in URL_ATTRIBUTES:
        span.set_attribute(attribute, origin)


def traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span; None when there is none (tracing off)."""
    if not trace.get_current_span().get_span_context().is_valid:
        return None
    carrier: dict[str, str] = {}
    _W3C.inject(carrier)
    return carrier.get("traceparent")


def _context_of(header: str | None) -> otel_context.Context | None:
    if not header:
        return None
    extracted = _W3C.extract({"traceparent": header})
    valid = trace.get_current_span(extracted).get_span_context().is_valid
    return extracted if valid else None


@contextlib.contextmanager
def continuing(
    tracer: trace.Tracer,
    name: str,
    causes: Sequence[str | None] = (),
    *,
    attributes: Attributes = None,
) -> Iterator[trace.Span]:
    """A span named ``name``, current while the block runs, that continues the trace of
    the first of ``causes`` (``traceparent`` values of the work that led to this one) and
    links to the others; without any, a child of the current span (or a new trace).

    With tracing off, nothing at all: not even the API's no-op span, whose context
    handling cost the intake about 5% more CPU instructions per callback
    (``python -m bench.intake_cost``)."""
    if isinstance(tracer, trace.NoOpTracer):
        yield trace.INVALID_SPAN
        return
    contexts = [found for found in map(_context_of, causes) if found is not None]
    parent = contexts[0] if contexts else None
    links = [Link(trace.get_current_span(c).get_span_context()) for c in contexts[1:]]
    with tracer.start_as_current_span(
        name, context=parent, links=links, attributes=attributes
    ) as span:
        yield span
