"""Export that survives a backend outage, shared by every OTLP preset (``otlp``, ``jaeger``, ``datadog``).

* the application's calls never wait for the backend: spans and log records go through the
  SDK's batch processors (bounded queues, background threads), metric points through the
  periodic reader;
* a failed export is kept in a bounded outbox (oldest dropped first, counted) and sent again
  once the backend answers, at the latest on ``force_flush()``; while the backend is failing,
  attempts are spaced out (5 s doubling to 60 s) so the export thread is not stuck retrying;
* the user gets one warning naming the backend and the endpoint, not one error per export:
  the OTLP exporters' own per-export log lines are counted instead of printed.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
import weakref
from typing import Any, Callable, Sequence

from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogExportResult, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, PeriodicExportingMetricReader
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from micrometrics import internal_errors

logger = logging.getLogger("micrometrics")

#: Spacing of export attempts while a backend fails: first pause, ceiling.
RETRY_FIRST_S = 5.0
RETRY_MAX_S = 60.0
#: A second outage warns again only after this long (a flapping backend must not flood the log).
REWARN_AFTER_S = 600.0
#: Metric exports kept while the backend is unreachable (an hour at the default 60 s interval).
METRIC_OUTBOX_EXPORTS = 60


# ---- one signal's exporter behind its outbox ----------------------------------------------


def _env_int(name: str, default: int) -> int:
    try:
        value = int(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


def span_processor(inner: SpanExporter, endpoint: str, health: "ExportHealth") -> BatchSpanProcessor:
    """``inner`` behind an outbox and the SDK's batch processor (sized by OTEL_BSP_*)."""
    _quiet(inner)
    queue = _env_int("OTEL_BSP_MAX_QUEUE_SIZE", 2048)
    batch = min(_env_int("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512), queue)
    outbox = Outbox("traces", "spans", endpoint, health, capacity=queue, chunk=batch, send=_send_spans(inner), close=inner.shutdown)
    return FlushingBatchSpanProcessor(GuardedSpanExporter(outbox), max_queue_size=queue, max_export_batch_size=batch)


def log_processor(inner: LogRecordExporter, endpoint: str, health: "ExportHealth") -> BatchLogRecordProcessor:
    """``inner`` behind an outbox and the SDK's batch processor (sized by OTEL_BLRP_*)."""
    _quiet(inner)
    queue = _env_int("OTEL_BLRP_MAX_QUEUE_SIZE", 2048)
    batch = min(_env_int("OTEL_BLRP_MAX_EXPORT_BATCH_SIZE", 512), queue)
    outbox = Outbox("logs", "log records", endpoint, health, capacity=queue, chunk=batch, send=_send_logs(inner), close=inner.shutdown)
    return FlushingBatchLogRecordProcessor(GuardedLogExporter(outbox), max_queue_size=queue, max_export_batch_size=batch)


def metric_reader(inner: MetricExporter, endpoint: str, health: "ExportHealth") -> PeriodicExportingMetricReader:
    """``inner`` behind an outbox and the SDK's periodic reader."""
    _quiet(inner)
    outbox = Outbox(
        "metrics", "metric exports", endpoint, health, capacity=METRIC_OUTBOX_EXPORTS, chunk=1,
        send=_send_metrics(inner), close=inner.shutdown,
    )
    return PeriodicExportingMetricReader(GuardedMetricExporter(inner, outbox))


# ---- fault tolerance ----------------------------------------------------------------------

_LOG_SUCCESS = {LogRecordExportResult.SUCCESS, LogExportResult.SUCCESS}


def _send_spans(inner: Any) -> Callable[[list[Any]], bool]:
    return lambda chunk: inner.export(chunk) == SpanExportResult.SUCCESS


def _send_logs(inner: Any) -> Callable[[list[Any]], bool]:
    return lambda chunk: inner.export(chunk) in _LOG_SUCCESS


def _send_metrics(inner: Any) -> Callable[[list[Any]], bool]:
    return lambda chunk: all(inner.export(data) == MetricExportResult.SUCCESS for data in chunk)


#: The outbox whose export is running on this thread: the exporters' own log lines are counted against it.
_exporting = threading.local()


class ExporterLogFilter(logging.Filter):
    """Counts (and keeps the first) warning or error an OTLP exporter logs while one of our outboxes exports."""

    def filter(self, record: logging.LogRecord) -> bool:
        outbox = getattr(_exporting, "outbox", None)
        if outbox is None or record.levelno < logging.WARNING:
            return True
        outbox.note(record)
        return False


_filter = ExporterLogFilter()


class QueueFullFilter(logging.Filter):
    """The SDK's batch processors warn per item dropped on a full queue: while our backend is in trouble, count instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Queue full"):
            return True
        troubled = [h for h in list(_live) if h.troubled]
        if not troubled:
            return True
        what = str(record.args[0]).lower() if isinstance(record.args, tuple) and record.args else "item"
        troubled[0].count_dropped(f"{what}s (batch queue full)", 1)
        return False


#: Backends of live pipelines, for the queue-full filter.
_live: "weakref.WeakSet[ExportHealth]" = weakref.WeakSet()
_queue_filter = QueueFullFilter()
_sdk_logger = logging.getLogger("opentelemetry.sdk._shared_internal")
if _queue_filter not in _sdk_logger.filters:
    # Ahead of the SDK's own duplicate filter, which would hide most drops from the count.
    _sdk_logger.filters.insert(0, _queue_filter)


def _quiet(exporter: Any) -> None:
    """Attach the filter to the loggers the exporter's classes log through (filters do not propagate)."""
    names = {cls.__module__ for cls in type(exporter).__mro__ if cls.__module__.startswith("opentelemetry.")}
    names.add("opentelemetry.exporter.otlp.common.http")
    for name in names:
        logging.getLogger(name).addFilter(_filter)


class ExportHealth:
    """One backend's export state, shared by its signals: warn once per outage, count the rest, note recovery."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self._lock = threading.Lock()
        self.failing = False
        self.failed_attempts = 0
        self.suppressed = 0
        self.dropped: collections.Counter[str] = collections.Counter()
        self._retry_at = 0.0
        self._pause = RETRY_FIRST_S
        self._warned_at: float | None = None
        self.attempting = 0
        #: Shut down: its state no longer speaks for anything still exporting.
        self.retired = False
        _live.add(self)

    @property
    def troubled(self) -> bool:
        return not self.retired and (self.failing or self.attempting > 0)

    def may_attempt(self) -> bool:
        with self._lock:
            return not self.failing or time.monotonic() >= self._retry_at

    def failed(self, signal: str, endpoint: str, reason: str) -> None:
        now = time.monotonic()
        with self._lock:
            first = not self.failing
            self.failing = True
            self.failed_attempts += 1
            self._retry_at = now + self._pause
            self._pause = min(self._pause * 2, RETRY_MAX_S)
            warn = first and (self._warned_at is None or now - self._warned_at >= REWARN_AFTER_S)
            if warn:
                self._warned_at = now
        if warn:
            logger.warning(
                "micrometrics: cannot export %s to %s at %s (%s). Your application's calls are not affected: telemetry "
                "waits in bounded buffers (oldest dropped first) and is sent when %s answers again. Further export "
                "errors are counted, not logged.",
                signal, self.backend, endpoint, reason, self.backend,
            )

    def succeeded(self) -> None:
        with self._lock:
            if not self.failing:
                return
            failed, suppressed, dropped = self.failed_attempts, self.suppressed, dict(self.dropped)
            self.failing = False
            self.failed_attempts = self.suppressed = 0
            self.dropped.clear()
            self._pause = RETRY_FIRST_S
        lost = ", ".join(f"{n} {what}" for what, n in dropped.items()) or "nothing"
        logger.info(
            "micrometrics: export to %s resumed after %d failed attempts (%d exporter errors not logged); dropped meanwhile: %s",
            self.backend, failed, suppressed, lost,
        )

    def count_suppressed(self) -> None:
        with self._lock:
            self.suppressed += 1

    def count_dropped(self, what: str, n: int) -> None:
        with self._lock:
            self.dropped[what] += n


class Outbox:
    """Telemetry of one signal that the backend has not accepted yet: bounded, oldest dropped first."""

    def __init__(
        self, signal: str, what: str, endpoint: str, health: ExportHealth, *, capacity: int, chunk: int,
        send: Callable[[list[Any]], bool], close: Callable[[], Any],
    ) -> None:
        self.signal, self.what, self.endpoint, self.health = signal, what, endpoint, health
        self.capacity, self.chunk = capacity, chunk
        self._send, self._close = send, close
        self._pending: collections.deque[Any] = collections.deque()
        self._lock = threading.Lock()
        self._reason: str | None = None
        self._closed = False

    def note(self, record: logging.LogRecord) -> None:
        self.health.count_suppressed()
        if self._reason is None:
            try:
                self._reason = record.getMessage()
            except Exception:
                self._reason = str(record.msg)

    def submit(self, items: Sequence[Any]) -> bool:
        """Queue ``items`` and send what is pending, unless the backend is in its retry pause."""
        with self._lock:
            self._pending.extend(items)
            overflow = len(self._pending) - self.capacity
            if overflow > 0:
                for _ in range(overflow):
                    self._pending.popleft()
                self.health.count_dropped(self.what, overflow)
            if self._closed or not self.health.may_attempt():
                return False
            return self._drain(None)

    def flush(self, timeout_s: float | None = None) -> bool:
        """Send everything pending now, retry pause or not (``force_flush()`` is an explicit request)."""
        with self._lock:
            if self._closed:
                return not self._pending
            return self._drain(None if timeout_s is None else time.monotonic() + timeout_s)

    def close(self, timeout_s: float | None = None) -> None:
        with self._lock:
            if self._closed:
                return
            if self._pending and self.health.may_attempt():
                self._drain(None if timeout_s is None else time.monotonic() + timeout_s)
            self._closed = True
            self.health.retired = True
            left = len(self._pending)
            self._pending.clear()
        if left:
            logger.warning("micrometrics: %d %s were not exported to %s at %s before shutdown", left, self.what, self.health.backend, self.endpoint)
        try:
            self._close()
        except Exception as exc:
            logger.debug("micrometrics: closing the %s exporter failed: %s", self.signal, exc)

    def _drain(self, deadline: float | None) -> bool:
        sent = False
        while self._pending:
            if deadline is not None and time.monotonic() > deadline:
                return False
            chunk = [self._pending[i] for i in range(min(self.chunk, len(self._pending)))]
            self._reason = None
            _exporting.outbox = self
            self.health.attempting += 1
            try:
                ok = bool(self._send(chunk))
            except Exception as exc:
                # An exporter that raises is broken, not the backend: retrying the chunk would raise again and
                # block everything behind it. Drop it, counted.
                internal_errors.report("export", exc)
                self.health.count_dropped(f"{self.what} (exporter error)", len(chunk))
                for _ in chunk:
                    self._pending.popleft()
                continue
            finally:
                _exporting.outbox = None
                self.health.attempting -= 1
            if not ok:
                reason = _short(self._reason or "the exporter reported a failure")
                logger.debug("micrometrics: %s export to %s failed: %s", self.signal, self.endpoint, reason)
                self.health.failed(self.signal, self.endpoint, reason)
                return False
            for _ in chunk:
                self._pending.popleft()
            sent = True
        if sent:
            self.health.succeeded()
        return True


def _short(reason: str, limit: int = 300) -> str:
    reason = " ".join(reason.split())
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


class GuardedSpanExporter(SpanExporter):
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        return SpanExportResult.SUCCESS if self.outbox.submit(spans) else SpanExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.outbox.flush(timeout_millis / 1000)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.outbox.close(timeout_millis / 1000)


class GuardedLogExporter(LogRecordExporter):
    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox

    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS if self.outbox.submit(batch) else LogRecordExportResult.FAILURE

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.outbox.flush(timeout_millis / 1000)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.outbox.close(timeout_millis / 1000)


class GuardedMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, outbox: Outbox) -> None:
        super().__init__(preferred_temporality=inner._preferred_temporality, preferred_aggregation=inner._preferred_aggregation)
        self.outbox = outbox

    def export(self, metrics_data: Any, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        return MetricExportResult.SUCCESS if self.outbox.submit([metrics_data]) else MetricExportResult.FAILURE

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.outbox.flush(timeout_millis / 1000)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.outbox.close(timeout_millis / 1000)


class FlushingBatchSpanProcessor(BatchSpanProcessor):
    """force_flush also empties the outbox: the SDK's processor only exports what is still in its own queue."""

    def __init__(self, exporter: GuardedSpanExporter, **options: Any) -> None:
        super().__init__(exporter, **options)
        self.guarded = exporter

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        ok = super().force_flush(timeout_millis)
        return self.guarded.force_flush(timeout_millis) and ok


class FlushingBatchLogRecordProcessor(BatchLogRecordProcessor):
    def __init__(self, exporter: GuardedLogExporter, **options: Any) -> None:
        super().__init__(exporter, **options)
        self.guarded = exporter

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        ok = super().force_flush(timeout_millis)
        return self.guarded.force_flush(timeout_millis) and ok
