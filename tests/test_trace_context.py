"""tether.protocol's W3C Trace Context rules: what a traceparent header must be to be
kept, and the compact form a job or run keeps it in."""

from __future__ import annotations

import pytest

from tether.protocol import (
    MAX_TRACEPARENT,
    TraceContext,
    job_trace,
    job_trace_id,
    job_traceparent,
    parse_traceparent,
)
from tether.tracing import call_span_id, exporter_entry_names, wanted

TRACE, SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{SPAN}-01"


def test_a_valid_traceparent_gives_its_trace_id_span_id_and_flags() -> None:
    ctx = parse_traceparent(VALID)
    assert ctx == TraceContext(TRACE, SPAN, "01", "")
    assert ctx.traceparent == VALID and ctx.sampled


def test_a_later_version_may_carry_more_fields_after_a_dash() -> None:
    ctx = parse_traceparent(f"cc-{TRACE}-{SPAN}-00-what-the-future-adds")
    assert ctx is not None and (ctx.trace_id, ctx.sampled) == (TRACE, False)


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("garbage", id="garbage"),
        pytest.param("", id="empty"),
        pytest.param(VALID + "-" + "x" * MAX_TRACEPARENT, id="oversized"),
        pytest.param(f"00-{'0' * 32}-{SPAN}-01", id="all-zero-trace-id"),
        pytest.param(f"00-{TRACE}-{'0' * 16}-01", id="all-zero-span-id"),
        pytest.param(f"ff-{TRACE}-{SPAN}-01", id="version-ff"),
        pytest.param(f"00-{TRACE}-{SPAN}-01-extra", id="version-00-with-extra-fields"),
        pytest.param(VALID.upper(), id="uppercase-hex"),
        pytest.param(f"00-{TRACE[:-1]}-{SPAN}-01", id="short-trace-id"),
        pytest.param(f"00-{TRACE}-{SPAN}-1", id="short-flags"),
        pytest.param(f"{VALID},{VALID}", id="two-headers-joined"),
        pytest.param(f"00-{TRACE}-{SPAN}-01\r\nx-injected: 1", id="crlf-injection"),
        pytest.param(f"00-{TRACE}-{SPAN}-0\u00e9", id="non-ascii"),
    ],
)
def test_an_invalid_traceparent_is_not_a_context(header: str) -> None:
    assert parse_traceparent(header) is None


def test_a_valid_tracestate_is_kept_with_its_traceparent() -> None:
    ctx = parse_traceparent(VALID, "congo=t61rcWkgMzE, rojo=00f067aa0ba902b7")
    assert ctx is not None and ctx.state == "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"


@pytest.mark.parametrize(
    "state",
    [
        pytest.param("A=uppercase-key", id="bad-key"),
        pytest.param("k=" + "v" * 600, id="oversized"),
        pytest.param(",".join(f"k{i}=v" for i in range(33)), id="too-many-members"),
        pytest.param("k=v\nx=y", id="newline"),
        pytest.param("novalue", id="no-equals"),
    ],
)
def test_an_invalid_tracestate_is_dropped_and_the_traceparent_kept(state: str) -> None:
    ctx = parse_traceparent(VALID, state)
    assert ctx is not None and (ctx.trace_id, ctx.state) == (TRACE, "")


def test_the_compact_field_is_50_characters_without_a_tracestate_and_reads_back() -> None:
    ctx = TraceContext(TRACE, SPAN, "01", "")
    assert len(ctx.to_field()) == 50
    assert TraceContext.from_field(ctx.to_field()) == ctx
    with_state = TraceContext(TRACE, SPAN, "01", "a=b c,d=e")
    assert TraceContext.from_field(with_state.to_field()) == with_state


def test_a_job_without_a_kept_context_uses_its_random_id_as_its_trace_id() -> None:
    job_id = "9f86d081884c7d659a2feaa0c55ad015"
    assert job_trace(job_id, None).trace_id == job_id
    assert job_trace(job_id, None) == job_trace(job_id, None)  # the same, wherever computed


def test_a_job_id_that_is_not_32_hex_digits_gets_a_derived_trace_id() -> None:
    ctx = job_trace("order-7:c2", None)
    assert len(ctx.trace_id) == 32 and ctx.trace_id.strip("0")
    assert ctx.trace_id == job_trace("order-7:c2", None).trace_id


def test_a_kept_context_wins_over_the_made_up_one() -> None:
    kept = TraceContext(TRACE, SPAN).to_field()
    assert job_trace("9f86d081884c7d659a2feaa0c55ad015", kept).trace_id == TRACE


def test_a_call_span_id_follows_from_the_child_id_alone() -> None:
    assert call_span_id("r1:c2") == call_span_id("r1:c2") != call_span_id("r1:c3")
    assert len(call_span_id("r1:c2")) == 16


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_spans_are_on_only_when_otel_traces_exporter_names_one(
    env: dict[str, str], on: bool
) -> None:
    assert wanted(env) is on


def test_the_fast_paths_agree_with_job_trace() -> None:
    kept = TraceContext(TRACE, SPAN, "00", "a=b").to_field()
    for job_id, stored in [
        ("9f86d081884c7d659a2feaa0c55ad015", None),
        ("9f86d081884c7d659a2feaa0c55ad015", kept),
        ("order-7:c2", None),
        ("0000000000000000" + "9f86d081884c7d65", None),
        ("order-7", "not a field"),
    ]:
        ctx = job_trace(job_id, stored)
        assert job_trace_id(job_id, stored) == ctx.trace_id
        assert job_traceparent(job_id, stored) == ctx.traceparent


@pytest.mark.parametrize(
    ("protocol", "names"),
    [
        ("", ["otlp_proto_grpc", "otlp_proto_http"]),
        ("grpc", ["otlp_proto_grpc"]),
        ("http/protobuf", ["otlp_proto_http"]),
    ],
)
def test_the_otlp_exporter_name_follows_the_otlp_protocol_variable(
    monkeypatch: pytest.MonkeyPatch, protocol: str, names: list[str]
) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    assert exporter_entry_names("otlp") == names
    assert exporter_entry_names("console") == ["console"]
