"""A span exporter for people: one compact line per finished span, on stderr."""

from __future__ import annotations

import os
import sys
import threading
from typing import IO, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from micrometrics_semconv import attributes as A

_GREEN, _RED, _YELLOW, _DIM, _BOLD, _RESET = "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[1m", "\033[0m"
_LABEL_SUFFIX = "." + A.RESULT_LABEL
_GOOD = {"pass", "match"}
_BAD = {"fail", "mismatch", "error", "timeout"}


def format_span(span: ReadableSpan, colour: bool = False) -> str:
    attrs = span.attributes or {}

    def paint(text: str, code: str) -> str:
        return f"{code}{text}{_RESET}" if colour else text

    duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    pieces = [paint(span.name, _BOLD), f"{duration_ms:.0f} ms"]
    provider = attrs.get(A.GEN_AI_PROVIDER_NAME)
    if provider:
        pieces.append(str(provider))
    attempt = attrs.get(A.MICROMETRICS_ATTEMPT)
    if attempt:
        pieces.append(f"attempt={attempt}")
    tin, tout = attrs.get(A.GEN_AI_USAGE_INPUT_TOKENS), attrs.get(A.GEN_AI_USAGE_OUTPUT_TOKENS)
    if tin is not None or tout is not None:
        pieces.append(f"tokens in={tin if tin is not None else '-'} out={tout if tout is not None else '-'}")
    reasons = attrs.get(A.GEN_AI_RESPONSE_FINISH_REASONS)
    if reasons:
        pieces.append("finish=" + ",".join(reasons))
    ttfc = attrs.get(A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK)
    if ttfc is not None:
        pieces.append(f"ttfc={ttfc * 1000:.0f} ms")
    docs = attrs.get(A.GEN_AI_RETRIEVAL_DOCUMENTS)
    if docs:
        pieces.append(f"docs={docs.count('{')}")
    err = attrs.get(A.ERROR_TYPE)
    if err:
        pieces.append(paint(f"error={err}", _RED))
    for key, value in attrs.items():
        if key.startswith(A.MICROMETRIC_ATTRIBUTE_PREFIX) and key.endswith(_LABEL_SUFFIX):
            name = key[len(A.MICROMETRIC_ATTRIBUTE_PREFIX) : -len(_LABEL_SUFFIX)]
            code = _GREEN if value in _GOOD else _RED if value in _BAD else _YELLOW
            pieces.append(paint(f"{name}={value}", code))
    return paint("[micrometrics] ", _DIM) + "  ".join(pieces)


class ConsoleSpanExporter(SpanExporter):
    """Writes one line per span; colour only when the stream is a terminal."""

    def __init__(self, out: IO[str] | None = None, colour: bool | None = None) -> None:
        self._out = out
        self._colour = colour
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        out = self._out or sys.stderr
        colour = self._colour
        if colour is None:
            colour = hasattr(out, "isatty") and out.isatty() and "NO_COLOR" not in os.environ
        try:
            lines = "".join(format_span(s, colour) + "\n" for s in spans)
            with self._lock:
                out.write(lines)
                out.flush()
        except Exception:
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True
