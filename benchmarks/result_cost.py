"""What one micro-metric result costs to emit, element by element: the price list of the micro-metric contract.

    python benchmarks/result_cost.py [--rounds 15] [--number 2000] [--json out.json]

Issue 21.2 asks the default metrics to add at most 150 µs of CPU per call. This prices what they add, so that a
decision about the contract (shared/DESIGN.md: per result span attributes, a span event, a
``gen_ai.evaluation.result`` log record, the ``micrometrics.evaluations`` counter and the ``micrometrics.score``
histogram; ``micrometrics.evaluation.duration`` is ours) can be taken on figures:

1. One real call (the OpenAI client of ``workload.py``, the default metrics and one that keeps the CallView they saw,
   the SDK's in-memory exporters) gives the exact attribute sets micrometrics emits for LanguageMatch's result: the span's result attributes, the events, the log records, the
   metric points' attributes.
2. Each element is then timed on its own with those attributes, through the real OpenTelemetry SDK (a span's
   ``set_attributes`` and ``add_event``, a logger's ``emit`` into a batch processor, a histogram's ``record``,
   our counter tally) and, for what leaves the process, the real OTLP protobuf encoders of
   ``opentelemetry-exporter-otlp`` (a log record; a span event, as the difference between a span encoded with
   and without its events). LanguageMatch (its detection of the call's ~330-character answer) and
   ResponseLength are timed beside them, on the call the metrics saw.

Elements run interleaved, ``--rounds`` times ``--number`` repetitions each; reported are the median and the
minimum over rounds of the µs per repetition (a hot loop: in situ, with the caller's work evicting the caches
between calls, ``profile_call.py`` measures about 1.3x these). Per call = per result x the results the default
metrics emit (two: LanguageMatch, ResponseLength; one score point, ResponseLength has no score).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import timeit
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import workload as w  # noqa: E402

#: Log records per encoded batch (the share of one is the batch's encoding / this).
LOG_BATCH = 64
#: Element -> (what it is, its kind: the contract's, ours or the evaluation, times per call with the default metrics).
ELEMENTS: dict[str, tuple[str, str, float]] = {
    "span attributes": ("the result's label, score, passed and details on the call's span (`set_attributes`)", "contract", 2),
    "span event": ("`micrometrics.evaluation` (`add_event`)", "contract", 2),
    "span event, OTLP encoding": ("its share of the span's protobuf encoding", "contract", 2),
    "log record": ("`gen_ai.evaluation.result` (`Logger.emit` into a batch processor)", "contract", 2),
    "log record, OTLP encoding": ("its protobuf encoding in the export batch", "contract", 2),
    "micrometrics.evaluations": ("the counter, tallied by us and read at collection", "contract", 2),
    "micrometrics.score point": ("`Histogram.record`, 7 attributes", "contract", 1),
    "micrometrics.evaluation.duration point": ("`Histogram.record`, 7 attributes", "ours", 2),
    "LanguageMatch": ("`LanguageMatch.evaluate`: the answer's detection (the user's language is cached per text)", "evaluation", 1),
    "ResponseLength": ("`ResponseLength.evaluate`", "evaluation", 1),
}


def capture() -> dict[str, Any]:
    """The telemetry of one real call with the default metrics: the span, its events, the log records, the points."""
    import micrometrics
    from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    sink = w.Sink(span_exporter=InMemorySpanExporter(), log_exporter=InMemoryLogRecordExporter())
    client = w.client(w.Transport())
    views: list[Any] = []

    @micrometrics.micro_metric(name="view_keeper")
    def view_keeper(call: Any) -> Any:
        views.append(call)  # the CallView the metrics saw: LanguageMatch and ResponseLength are timed on it
        return micrometrics.Result("pass")

    from micrometrics.metrics import DEFAULTS

    metrics = [*(cls() for cls in DEFAULTS), view_keeper]
    handle = micrometrics.instrument(
        exporter="none", instrumentations=["openai"], metrics=metrics,
        tracer_provider=sink.tracer_provider, meter_provider=sink.meter_provider, logger_provider=sink.logger_provider,
    )
    try:
        w.chat(client)
        handle.runtime.flush(30)
        sink.flush()
        (span,) = sink.spans.get_finished_spans()
        logs = [entry for entry in sink.logs.get_finished_logs() if entry.log_record.event_name == "gen_ai.evaluation.result"]
        points: dict[str, list[dict[str, Any]]] = {}
        for rm in sink.reader.get_metrics_data().resource_metrics:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    points.setdefault(m.name, []).extend(dict(dp.attributes) for dp in m.data.data_points)
        return {"span": span, "logs": logs, "points": points, "sink": sink, "view": views[0]}
    finally:
        handle.shutdown()


def timers(got: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """One callable per element, doing that element once with the captured attributes."""
    from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
    from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider

    from micrometrics.emission import EvaluationTally
    from micrometrics.metrics import LanguageMatch, ResponseLength

    span, logs, points = got["span"], got["logs"], got["points"]
    prefix = "micrometrics.language_match."
    result_attrs = {k: v for k, v in span.attributes.items() if k.startswith(prefix)}
    event = next(e for e in span.events if e.attributes.get("gen_ai.evaluation.name") == "language_match")
    log = next(entry for entry in logs if entry.log_record.attributes.get("gen_ai.evaluation.name") == "language_match")
    log_attrs = dict(log.log_record.attributes)
    point_attrs = next(p for p in points["micrometrics.score"] if p.get("gen_ai.evaluation.name") == "language_match")
    counted = next(p for p in points["micrometrics.evaluations"] if p.get("gen_ai.evaluation.name") == "language_match")

    tracer = TracerProvider().get_tracer("result_cost")
    target = tracer.start_span("chat gpt-4o-mini")
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(w.CountingLogExporter()))
    logger = logger_provider.get_logger("result_cost")
    meter = MeterProvider(metric_readers=[InMemoryMetricReader()]).get_meter("result_cost")
    histogram = meter.create_histogram("micrometrics.score", unit="1")
    tally = EvaluationTally()
    batch = [log] * LOG_BATCH
    without_events = _without_events(span)
    view = got["view"]
    length, match = ResponseLength(), LanguageMatch()

    def log_encoding() -> None:
        encode_logs(batch)

    def event_encoding() -> None:
        encode_spans([span])
        encode_spans([without_events])

    return {
        "span attributes": lambda: target.set_attributes(result_attrs),
        "span event": lambda: target.add_event(event.name, event.attributes, timestamp=event.timestamp),
        # Two encodings per repetition, a span with its two events and without: the difference is two events.
        "span event, OTLP encoding": event_encoding,
        "log record": lambda: logger.emit(event_name=log.log_record.event_name, attributes=log_attrs, timestamp=log.log_record.timestamp),
        "log record, OTLP encoding": log_encoding,
        "micrometrics.evaluations": lambda: tally.add(counted),
        "micrometrics.score point": lambda: histogram.record(1.0, point_attrs),
        "micrometrics.evaluation.duration point": lambda: histogram.record(0.0002, point_attrs),
        "LanguageMatch": lambda: match.evaluate(view),
        "ResponseLength": lambda: length.evaluate(view),
        # References, subtracted below: the same encodings without the element.
        "_span without events, OTLP encoding": lambda: (encode_spans([without_events]), encode_spans([without_events])),
    }


def _without_events(span: Any) -> Any:
    """The same exported span without its events (for the events' share of the encoding)."""
    from opentelemetry.sdk.trace import ReadableSpan

    return ReadableSpan(
        name=span.name, context=span.context, parent=span.parent, resource=span.resource, attributes=span.attributes,
        events=(), links=span.links, kind=span.kind, status=span.status, start_time=span.start_time, end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def measure(rounds: int, number: int) -> dict[str, Any]:
    got = capture()
    fns = timers(got)
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for name, fn in fns.items():  # warm: the detector's token cache, the SDK's attribute sets
        for _ in range(50):
            fn()
    for _ in range(rounds):
        for name, fn in fns.items():
            samples[name].append(timeit.timeit(fn, number=number) / number * 1e6)
    reference = samples.pop("_span without events, OTLP encoding")
    elements = {name: {"median_us": statistics.median(v), "min_us": min(v)} for name, v in samples.items()}
    # Per repetition the encoding ran twice, with and without two events: the difference is two events' share. The
    # median of the rounds' differences; the minimum as the difference of the two minimums (a difference of noisy
    # timings can have any minimum).
    events = samples["span event, OTLP encoding"]
    elements["span event, OTLP encoding"] = {
        "median_us": statistics.median((a - b) / 2 for a, b in zip(events, reference)), "min_us": (min(events) - min(reference)) / 2,
    }
    elements["log record, OTLP encoding"] = {k: v / LOG_BATCH for k, v in elements["log record, OTLP encoding"].items()}
    got["sink"].flush()
    return {"rounds": rounds, "number": number, "elements": elements}


#: The kinds of ELEMENTS, in the order per_call() sums them.
KINDS = ("contract", "ours", "evaluation")


def per_call(elements: dict[str, dict[str, float]]) -> dict[str, float]:
    """µs per call with the default metrics (medians x times per call): a total per kind, and ``encoding``, the OTLP
    encoding's share of the contract's."""
    out = dict.fromkeys((*KINDS, "encoding"), 0.0)
    for name, (_, kind, times) in ELEMENTS.items():
        cost = elements[name]["median_us"] * times
        out[kind] += cost
        if "OTLP encoding" in name:
            out["encoding"] += cost
    return out


def report(r: dict[str, Any]) -> str:
    e = r["elements"]
    lines = [
        f"µs per element, hot loop through the OpenTelemetry SDK with the attributes of a real call (median and minimum of "
        f"{r['rounds']} interleaved rounds of {r['number']:,}); per call: times the default metrics emit it",
        "",
        "| element | what | kind | median µs | min µs | per call µs |",
        "|---|---|---|---:|---:|---:|",
    ]
    for name, (what, kind, times) in ELEMENTS.items():
        f = e[name]
        lines.append(f"| {name} | {what} | {kind} | {f['median_us']:.1f} | {f['min_us']:.1f} | {f['median_us'] * times:.1f} |")
    totals = per_call(e)
    lines += [
        "",
        "Per call with the default metrics (medians, hot loop): "
        + ", ".join(f"{kind} {totals[kind]:.0f} µs" for kind in KINDS)
        + f"; all together {sum(totals[kind] for kind in KINDS):.0f} µs against issue 21.2's 150 µs (in situ about 1.3x).",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--number", type=int, default=2000)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    return w.publish(measure(args.rounds, args.number), args.json, report)


if __name__ == "__main__":
    sys.exit(main())
