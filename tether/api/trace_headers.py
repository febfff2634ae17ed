"""The W3C trace headers the routes that create jobs and runs accept.

An invalid ``traceparent`` is ignored and the job starts a trace of its own, as the W3C
Trace Context spec asks of a receiver (an observability header never makes a submission
fail); docs/http-api.md, "Trace context". Litestar reads them as plain optional strings,
so OpenAPI documents them; ``tether.protocol.parse_traceparent`` does the checking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from litestar.params import Parameter

from tether.protocol import TraceContext, parse_traceparent

TraceParentHeader = Annotated[
    str | None,
    Parameter(
        header="traceparent",
        required=False,
        description=(
            "W3C trace context (00-<trace id>-<parent span id>-<flags>): the job or run, "
            "its children and its spans join this trace. Invalid or absent: a new trace."
        ),
    ),
]
TraceStateHeader = Annotated[
    str | None,
    Parameter(
        header="tracestate",
        required=False,
        description="W3C vendor trace state, kept with a valid traceparent (512 bytes at most)",
    ),
]


@dataclass(frozen=True, slots=True)
class TraceHeaders:
    traceparent: str | None
    tracestate: str | None

    @property
    def parsed(self) -> TraceContext | None:
        """The header's context; None if it is absent or invalid."""
        return parse_traceparent(self.traceparent, self.tracestate)
