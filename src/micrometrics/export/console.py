"""A span exporter for people: one compact line per finished span, on stderr."""

from __future__ import annotations

import collections
import os
import sys
import threading
import time
from typing import IO, Any, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from micrometrics import internal_errors
from micrometrics_semconv import attributes as A

_SCOPE = "micrometrics"  # core's tracer: the application's own spans do not hold the console back
_GREEN, _RED, _YELLOW, _DIM, _BOLD, _RESET = "\033[32m", "\033[31m", "\033[33m", "\033[2m", "\033[1m", "\033[0m"
_LABEL_SUFFIX = "." + A.RESULT_LABEL
_GOOD = {"pass", "match", "answered"}
_BAD = {"fail", "mismatch", "error", "timeout", "refused"}


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


#: Lines waiting for the writer thread; beyond this they are dropped (counted), never waited for.
MAX_PENDING_LINES = 2_000
#: Lines wait while a call of ours is in flight (a stream being printed, say), then this long after the last one
#: ended (the app's own newline after a stream comes first), but never longer than MAX_HOLD_S.
QUIET_S = 0.1
MAX_HOLD_S = 10.0
#: How long shutdown waits for the writer to empty its buffer (a stream nobody reads must not hold the exit).
SHUTDOWN_FLUSH_S = 1.0


class ConsoleSpanExporter(SpanExporter):
    """Writes one line per span; colour only when the stream is a terminal.

    The caller only formats and queues: a writer thread does the I/O, so a stderr that nobody drains (a full pipe)
    blocks that thread, never the application. It writes to the file descriptor itself where there is one: a thread
    stuck in a buffered write would hold the stream's lock, and the interpreter needs that lock at exit.
    """

    def __init__(self, out: IO[str] | None = None, colour: bool | None = None) -> None:
        self._out = out
        self._colour = colour
        self._cond = threading.Condition()
        self._pending: collections.deque[tuple[IO[str], str]] = collections.deque()
        self._writing = False
        self._in_flight = 0
        self._last_end = 0.0
        self._urgent = 0  # force_flush callers waiting: no holding back
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        out = self._out or sys.stderr
        colour = self._colour
        try:
            if colour is None:
                colour = hasattr(out, "isatty") and out.isatty() and "NO_COLOR" not in os.environ
            lines = [(out, format_span(s, colour) + "\n") for s in spans]
        except Exception:
            return SpanExportResult.FAILURE
        with self._cond:
            room = MAX_PENDING_LINES - len(self._pending)
            if len(lines) > room:
                self.dropped += len(lines) - max(room, 0)
                for _ in range(len(lines) - max(room, 0)):
                    internal_errors.report("export", BufferError("console output buffer full: span line dropped"))
                lines = lines[: max(room, 0)]
            self._pending.extend(lines)
            if self._thread is None or self._thread.ident is not None and not self._thread.is_alive():
                # (Re)started lazily: after a fork the child has no writer thread.
                self._thread = threading.Thread(target=self._write_forever, name="micrometrics-console", daemon=True)
                self._thread.start()
            self._cond.notify()
        return SpanExportResult.SUCCESS

    def call_started(self) -> None:
        with self._cond:
            self._in_flight += 1

    def call_ended(self) -> None:
        with self._cond:
            self._in_flight = max(0, self._in_flight - 1)
            self._last_end = time.monotonic()
            self._cond.notify_all()

    def _write_forever(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    self._writing = False
                    self._cond.notify_all()
                    self._cond.wait()
                # Not in the middle of what the app prints while a call (a stream) is in flight.
                give_up = time.monotonic() + MAX_HOLD_S
                while not self._urgent:
                    now = time.monotonic()
                    quiet_at = self._last_end + QUIET_S
                    if now >= give_up or (self._in_flight == 0 and now >= quiet_at):
                        break
                    self._cond.wait(min(give_up, quiet_at if self._in_flight == 0 else give_up) - now)
                batch = list(self._pending)
                self._pending.clear()
                self._writing = True
            by_stream: dict[int, tuple[IO[str], list[str]]] = {}
            for out, line in batch:
                by_stream.setdefault(id(out), (out, []))[1].append(line)
            for out, lines in by_stream.values():
                try:
                    _write(out, "".join(lines))
                except Exception:
                    pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        deadline = time.monotonic() + timeout_millis / 1000
        with self._cond:
            self._urgent += 1
            self._cond.notify_all()
            try:
                while self._pending or self._writing:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self._cond.wait(left)
            finally:
                self._urgent -= 1
        return True

    def shutdown(self) -> None:
        self.force_flush(int(SHUTDOWN_FLUSH_S * 1000))


def _write(out: IO[str], text: str) -> None:
    try:
        fd = out.fileno()
    except Exception:
        fd = None
    if fd is None:
        out.write(text)
        out.flush()
        return
    data = text.encode(getattr(out, "encoding", None) or "utf-8", "replace")
    while data:
        data = data[os.write(fd, data) :]


class ConsoleSpanProcessor(SimpleSpanProcessor):
    """The SDK's simple processor, whose force_flush also waits (bounded) for the console writer, and which tells
    the writer when calls of ours are in flight."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        if _ours(span):
            self.span_exporter.call_started()

    def on_end(self, span: ReadableSpan) -> None:
        if _ours(span):
            self.span_exporter.call_ended()
        super().on_end(span)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.span_exporter.force_flush(timeout_millis)


def _ours(span: Any) -> bool:
    scope = getattr(span, "instrumentation_scope", None)
    return getattr(scope, "name", None) == _SCOPE
