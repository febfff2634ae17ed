"""OpenTelemetry spans, when the process is configured for them through the standard
``OTEL_*`` variables (docs/observability.md, "Traces"); nothing otherwise.

``opentelemetry`` is an optional extra (``pip install 'tether[otel]'``) and is imported
only by ``setup()``, once, at process start: with tracing off, the hot paths pay one
``TRACER is None`` check and never import it.

The trace context every job and run carries (``tether.protocol.TraceContext``) exists
whether or not spans are exported: it is how a caller's trace reaches the function
(``ctx["traceparent"]``, ``WorkflowContext.traceparent``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from collections.abc import Iterator, Mapping
from typing import Any

from tether.protocol import TraceContext, derived_id

log = logging.getLogger("tether.tracing")

# The tracer once setup() found OTEL_* asking for spans; None: tracing is off.
TRACER: Any = None
_PROVIDER: Any = None
# A span id the next span must take (a child's call span, whose id its child already
# carries): read by the provider's id generator, set only around that one span.
_FORCED_SPAN_ID: contextvars.ContextVar[int | None] = contextvars.ContextVar(
    "tether_forced_span_id", default=None
)

EXPORTER_GROUP = "opentelemetry_traces_exporter"  # the entry points the SDK's own setup reads


def wanted(env: Mapping[str, str] | None = None) -> bool:
    """Spans are asked for: OTEL_TRACES_EXPORTER names an exporter (not 'none') and
    OTEL_SDK_DISABLED is not true. Unlike the SDK's own auto-setup, an unset exporter
    means off: having the package installed must not start exporting anywhere."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip()]
    return bool(names) and names != ["none"]


def setup(service: str) -> bool:
    """Configure spans for this process from OTEL_* (once; later calls change nothing).
    ``service``: the service.name when OTEL_SERVICE_NAME does not give one. Returns
    whether tracing is on. A missing package or an unknown exporter logs one warning and
    leaves tracing off: observability never stops the process."""
    global TRACER, _PROVIDER
    if TRACER is not None or not wanted():
        return TRACER is not None
    try:
        from importlib.metadata import entry_points

        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_TRACES_EXPORTER is set but opentelemetry-sdk is not installed: "
            "no spans (pip install 'tether[otel]')"
        )
        return False

    attributes = {}
    if not os.environ.get("OTEL_SERVICE_NAME") and "service.name=" not in os.environ.get(
        "OTEL_RESOURCE_ATTRIBUTES", ""
    ):
        attributes[SERVICE_NAME] = service
    # The provider reads OTEL_TRACES_SAMPLER*, the resource OTEL_SERVICE_NAME and
    # OTEL_RESOURCE_ATTRIBUTES, the batch processor OTEL_BSP_*, each exporter its own.
    provider = new_provider(Resource.create(attributes))
    added = 0
    for name in os.environ["OTEL_TRACES_EXPORTER"].split(","):
        name = name.strip()
        if not name or name == "none":
            continue
        found = [
            ep
            for n in exporter_entry_names(name)
            for ep in entry_points(group=EXPORTER_GROUP, name=n)
        ]
        if not found:
            log.warning("OTEL_TRACES_EXPORTER names %r, which no installed package provides", name)
            continue
        try:
            exporter = found[0].load()()
        except Exception:
            log.warning("the %r span exporter did not start: no spans to it", name, exc_info=True)
            continue
        provider.add_span_processor(BatchSpanProcessor(exporter))
        added += 1
    if not added:
        return False  # nothing would receive the spans: not worth making them
    with contextlib.suppress(Exception):  # an application's own provider stays
        trace.set_tracer_provider(provider)
    _PROVIDER = provider
    TRACER = provider.get_tracer("tether")
    return True


def exporter_entry_names(name: str) -> list[str]:
    """The entry points an OTEL_TRACES_EXPORTER name may be, in order: 'otlp' is either
    OTLP exporter, by OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL as the SDK reads it (grpc
    unless it says http/...; the otel extra ships the HTTP one, so it is the fallback)."""
    if name != "otlp":
        return [name]
    protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get(
        "OTEL_EXPORTER_OTLP_PROTOCOL", ""
    )
    if protocol.startswith("http"):
        return ["otlp_proto_http"]
    return ["otlp_proto_grpc"] if protocol == "grpc" else ["otlp_proto_grpc", "otlp_proto_http"]


def new_provider(resource: Any = None) -> Any:
    """An SDK TracerProvider whose id generator gives a span the id it must have when
    one is forced (``start(span_id=...)``), else random ids as the SDK's own."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.id_generator import RandomIdGenerator

    class _Ids(RandomIdGenerator):
        def generate_span_id(self) -> int:
            forced = _FORCED_SPAN_ID.get()
            return forced if forced is not None else int(super().generate_span_id())

    return TracerProvider(resource=resource, id_generator=_Ids())


def shutdown() -> None:
    """Export what is buffered (the SDK also does it at exit)."""
    if _PROVIDER is not None:
        _PROVIDER.shutdown()


# -- building spans (each function is called only when TRACER is not None) -----------------


def _parent(ctx: TraceContext) -> Any:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

    state = TraceState.from_header([ctx.state]) if ctx.state else None
    span_context = SpanContext(
        int(ctx.trace_id, 16),
        int(ctx.span_id, 16),
        is_remote=True,
        trace_flags=TraceFlags(int(ctx.flags, 16)),
        trace_state=state,
    )
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def context_of(span: Any, state: str = "") -> TraceContext:
    """The trace context a span gives its children."""
    sc = span.get_span_context()
    return TraceContext(
        format(sc.trace_id, "032x"),
        format(sc.span_id, "016x"),
        format(int(sc.trace_flags), "02x"),
        state,
    )


def start(
    name: str,
    parent: TraceContext | None,
    attributes: Mapping[str, Any],
    *,
    kind: str = "INTERNAL",
    start_ns: int | None = None,
    span_id: str | None = None,
) -> Any:
    """A started span under ``parent`` (None: under the current span, or a new trace).
    ``span_id``: the id it must have (one its children already carry)."""
    from opentelemetry.trace import SpanKind

    context = _parent(parent) if parent is not None else None
    token = _FORCED_SPAN_ID.set(int(span_id, 16)) if span_id is not None else None
    try:
        return TRACER.start_span(
            name,
            context=context,
            kind=SpanKind[kind],
            attributes=dict(attributes),
            start_time=start_ns,
        )
    finally:
        if token is not None:
            _FORCED_SPAN_ID.reset(token)


def record(
    name: str,
    parent: TraceContext,
    attributes: Mapping[str, Any],
    start_ms: float,
    end_ms: float,
    *,
    span_id: str | None = None,
    error: str | None = None,
) -> None:
    """A span that already happened, with explicit times (ms since the epoch): time
    queued, a wait or a child call reconstructed from the run's history."""
    span = start(name, parent, attributes, start_ns=_ns(start_ms), span_id=span_id)
    if error is not None:
        set_error(span, error)
    span.end(end_time=_ns(max(end_ms, start_ms)))


def _ns(ms: float) -> int:
    # Whole milliseconds (Redis's) stay exact; a float through 1e6 would not.
    return ms * 1_000_000 if isinstance(ms, int) else round(ms * 1_000_000)


def set_error(span: Any, message: str) -> None:
    from opentelemetry.trace import Status, StatusCode

    span.set_status(Status(StatusCode.ERROR, message[:500]))


def fail(span: Any, exc: BaseException) -> None:
    span.record_exception(exc)
    set_error(span, f"{type(exc).__name__}: {exc}")


@contextlib.contextmanager
def current(span: Any) -> Iterator[None]:
    """``span`` is the current span inside (so spans the job's own code makes with the
    OpenTelemetry API nest under it)."""
    from opentelemetry import context, trace

    token = context.attach(trace.set_span_in_context(span))
    try:
        yield
    finally:
        context.detach(token)


@contextlib.contextmanager
def enqueue_span(
    what: str, count: int, record_id: str | None, parent: TraceContext | None, *, run: bool = False
) -> Iterator[str]:
    """The API's span around creating jobs (or a run): yields the compact trace context
    they keep, this span's, so what they do hangs under it. ``parent``: the request's
    traceparent (None: the span starts a trace)."""
    attributes: dict[str, Any] = {
        "tether.workflow" if run else "tether.function": what,
    }
    if count != 1:
        attributes["tether.jobs"] = count
    if record_id is not None:
        attributes["tether.run.id" if run else "tether.job.id"] = record_id
    span = start(f"tether.enqueue {what}", parent, attributes, kind="PRODUCER")
    try:
        yield context_of(span, parent.state if parent is not None else "").to_field()
    except BaseException as exc:
        fail(span, exc)
        raise
    finally:
        span.end()


def call_span_id(child_id: str) -> str:
    """The span id of the call that started child job or run ``child_id``: the control
    plane writes it into the child's trace context (suspend_run.lua), and the worker that
    reports the call's span gives it this same id."""
    return derived_id(child_id + "/call")
