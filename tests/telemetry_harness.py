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
from micrometrics_semconv import SCHEMA_URL

#: Every attribute key, metric name and event name any test saw emitted.
emitted_names: dict[str, set[str]] = {"attributes": set(), "metrics": set(), "events": set()}

#: Attribute namespaces whose values are sampled for the conventions test (tests/test_zz_conventions.py).
SAMPLED_PREFIXES = ("gen_ai.", "server.", "error.", "db.", "exception.")
#: Keys whose values are JSON content: every distinct value is kept (up to ``MAX_JSON``), to validate against its schema.
CONTENT_KEYS = frozenset({
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.tool.definitions", "gen_ai.retrieval.documents",
})
MAX_VALUES = 20
MAX_JSON = 60
#: Larger JSON values (the large-response tests) are not kept: memory stays bounded.
MAX_JSON_CHARS = 200_000


def value_type(value: Any) -> str:
    """An attribute value's type as the conventions name it (``string``, ``int``, ``double``, ``boolean``, ``string[]``...)."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "double"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (bytes, bytearray)):
        return "bytes"
    if isinstance(value, dict) or hasattr(value, "keys"):
        return "map"
    if isinstance(value, (list, tuple)):
        kinds = {value_type(v) for v in value}
        return f"{kinds.pop()}[]" if len(kinds) == 1 else "any[]"
    return type(value).__name__


class Sample:
    """What one attribute key held where it was seen: its types, a few values, every distinct JSON content value."""

    __slots__ = ("types", "values", "json", "count")

    def __init__(self) -> None:
        self.types: set[str] = set()
        self.values: list[Any] = []
        self.json: list[Any] = []
        self.count = 0

    def add(self, key: str, value: Any) -> None:
        self.count += 1
        self.types.add(value_type(value))
        if key in CONTENT_KEYS:
            if isinstance(value, str) and len(value) > MAX_JSON_CHARS:
                return
            if len(self.json) < MAX_JSON and value not in self.json:
                self.json.append(value)
            return
        if isinstance(value, list):
            value = tuple(value)
        if len(self.values) < MAX_VALUES and value not in self.values:
            self.values.append(value)


#: (signal, where, key) -> Sample. ``signal``: span, span_event, log, metric; ``where``: the span's
#: ``gen_ai.operation.name`` (or its name), the event name, the metric name.
emitted_values: dict[tuple[str, str, str], Sample] = {}


def record_values(signal: str, where: str, attributes: Any) -> None:
    for key, value in (attributes or {}).items():
        if key.startswith(SAMPLED_PREFIXES):
            sample = emitted_values.get((signal, where, key))
            if sample is None:
                sample = emitted_values[(signal, where, key)] = Sample()
            sample.add(key, value)


def _ours(scope: Any) -> bool:
    return scope is None or getattr(scope, "name", "micrometrics") == "micrometrics"


def _v141(scope: Any) -> bool:
    """Emitted under the v1.41 conventions the values are validated against: not under the newer ones
    (OTEL_SEMCONV_STABILITY_OPT_IN, whose scope has no schema URL; tests/providers/test_latest_conventions.py)."""
    return getattr(scope, "schema_url", SCHEMA_URL) == SCHEMA_URL


def _record_span(s: Any) -> None:
    attrs = s.attributes or {}
    sampled = _v141(s.instrumentation_scope)
    emitted_names["attributes"].update(attrs.keys())
    if sampled:
        record_values("span", str(attrs.get("gen_ai.operation.name") or s.name), attrs)
    for e in s.events:
        emitted_names["events"].add(e.name)
        emitted_names["attributes"].update((e.attributes or {}).keys())
        if sampled:
            record_values("span_event", e.name, e.attributes)


def _record_log(r: Any, sampled: bool = True) -> None:
    name = getattr(r, "event_name", None)
    if name:
        emitted_names["events"].add(name)
    emitted_names["attributes"].update((r.attributes or {}).keys())
    if sampled:
        record_values("log", str(name or (r.attributes or {}).get("event.name") or ""), r.attributes)


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
            if _ours(s.instrumentation_scope):  # not, e.g., a client library's own spans
                _record_span(s)
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
            scope = getattr(item, "instrumentation_scope", None)
            if _ours(scope):
                _record_log(r, _v141(scope))
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
                            if _v141(sm.scope):
                                record_values("metric", m.name, p.attributes)
                    out.setdefault(m.name, []).extend(points)
        return out

    def close(self) -> None:
        micrometrics.uninstrument()
        # What the test did not read back counts too: every test's telemetry is checked against the conventions.
        self.handle = None  # uninstrument flushed it: nothing more to flush
        try:
            self.spans(), self.logs(), self.metrics()
        except Exception:  # a test that broke its own providers: its own assertions report it
            pass
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self.logger_provider.shutdown()
