"""``OTEL_TRACES_EXPORTER=tether_jsonl``: an OpenTelemetry span exporter that appends
each finished span, as the SDK's own JSON (``ReadableSpan.to_json``), one per line, to
the file ``TETHER_OTEL_JSONL`` names. For tests and for looking at a trace without a
collector; several processes may append to the same file (each line is one write).

Loaded only through that entry point: importing it needs ``opentelemetry-sdk``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

ENV = "TETHER_OTEL_JSONL"


class JsonlSpanExporter(SpanExporter):
    def __init__(self, path: str | None = None) -> None:
        self.path = path or os.environ.get(ENV) or "tether-spans.jsonl"
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = "".join(span.to_json(indent=None) + "\n" for span in spans)
        with self._lock:
            # O_APPEND: one write per batch, so processes sharing the file never interleave
            # within a line.
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                os.write(fd, lines.encode())
            finally:
                os.close(fd)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True
