"""The W3C trace headers the routes that create jobs and runs accept.

An invalid ``traceparent`` is ignored and the job starts a trace of its own, as the W3C
Trace Context spec asks of a receiver (an observability header never makes a submission
fail); docs/http-api.md, "Trace context". Litestar reads them as plain optional strings,
so OpenAPI documents them; ``tether.protocol.parse_traceparent`` does the checking.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from litestar import params

from tether.protocol import TraceContext, parse_traceparent

# Litestar 2.18+ names header parameters with HeaderParameter (Parameter(header=...) is
# deprecated there); the oldest Litestar allowed (constraints/oldest.txt) has only the latter.
_Header: Any = getattr(params, "HeaderParameter", None)


def _header(name: str, description: str) -> Any:
    if _Header is not None:
        return _Header(name=name, required=False, description=description)
    return params.Parameter(header=name, required=False, description=description)


TraceParentHeader = Annotated[
    str | None,
    _header(
        "traceparent",
        "W3C trace context (00-<trace id>-<parent span id>-<flags>): the job or run, its "
        "children and its spans join this trace. Invalid or absent: a new trace.",
    ),
]
TraceStateHeader = Annotated[
    str | None,
    _header(
        "tracestate",
        "W3C vendor trace state, kept with a valid traceparent (512 bytes at most)",
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
