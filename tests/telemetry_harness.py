"""Read back what a user would see in a backend: finished spans, metric points, log records."""

from __future__ import annotations

from typing import Any

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import micrometrics

#: Every attribute key, metric name and event name any test saw emitted.
emitted_names: dict[str, set[str]] = {"attributes": set(), "metrics": set(), "events": set()}


def _ours(scope: Any) -> bool:
    return scope is None or getattr(scope, "name", "micrometrics") == "micrometrics"


class Telemetry:
    def __init__(self) -> None:
        self.span_exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.span_exporter))
        self.metric_reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metric_reader])
        self.log_exporter = InMemoryLogRecordExporter()
        self.logger_provider = LoggerProvider()
        self.logger_provider.add_log_record_processor(SimpleLogRecordProcessor(self.log_exporter))
        self.handle: micrometrics.Instrumentation | None = None

    def instrument(self, **options: Any) -> micrometrics.Instrumentation:
        options.setdefault("exporter", "none")
        self.handle = micrometrics.instrument(
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            logger_provider=self.logger_provider,
            **options,
        )
        return self.handle

    def flush(self) -> None:
        if self.handle is not None:
            self.handle.force_flush(timeout_s=10)

    # ---- what a backend shows ---------------------------------------------------------

    def spans(self, flush: bool = True) -> list[Any]:
        if flush:
            self.flush()
        spans = list(self.span_exporter.get_finished_spans())
        for s in spans:
            if not _ours(s.instrumentation_scope):
                continue  # e.g. a client library's own spans
            emitted_names["attributes"].update((s.attributes or {}).keys())
            for e in s.events:
                emitted_names["events"].add(e.name)
                emitted_names["attributes"].update((e.attributes or {}).keys())
        return spans

    def span(self, name: str | None = None) -> Any:
        spans = [s for s in self.spans() if name is None or s.name == name]
        assert len(spans) == 1, f"expected one span named {name!r}, got {[s.name for s in self.spans(False)]}"
        return spans[0]

    def logs(self) -> list[Any]:
        self.flush()
        finished = self.log_exporter.get_finished_logs()
        records = [r.log_record if hasattr(r, "log_record") else r for r in finished]
        for item, r in zip(finished, records):
            if not _ours(getattr(item, "instrumentation_scope", None)):
                continue
            if getattr(r, "event_name", None):
                emitted_names["events"].add(r.event_name)
            emitted_names["attributes"].update((r.attributes or {}).keys())
        return records

    def metrics(self) -> dict[str, list[Any]]:
        """metric name -> data points (with .attributes)."""
        self.flush()
        data = self.metric_reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        if data is None:
            return out
        for rm in data.resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    points = list(m.data.data_points)
                    if _ours(sm.scope):
                        emitted_names["metrics"].add(m.name)
                        for p in points:
                            emitted_names["attributes"].update((p.attributes or {}).keys())
                    out.setdefault(m.name, []).extend(points)
        return out

    def close(self) -> None:
        micrometrics.uninstrument()
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()
