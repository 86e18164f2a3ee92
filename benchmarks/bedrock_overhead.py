"""What micrometrics adds to a Bedrock call through boto3: the same calls with and without it, in one run.

Standalone: ``python benchmarks/bedrock_overhead.py [--rounds N] [--calls N]``.
A boto3 ``bedrock-runtime`` client answered in process: botocore's own ``before-send``
event hands back a canned Converse response (JSON, or an event stream of 50 text deltas
in AWS's binary framing, which botocore parses and checksums as it would off the wire),
so everything botocore does is timed and no network is. Two instrumented modes:

* ``spans``: no micro metrics (span, attributes, duration and token metrics);
* ``default``: the default metrics (judged on the monitor thread while the caller goes on).

Each is compared with the original ``BaseClient._make_api_call`` (``__wrapped__``), block
against block, alternating within every round, so the noise of a shared machine hits both
sides alike; after each block the monitor queue is flushed, untimed. Spans, metric points and
log records go through the SDK's batch processors to exporters that drop them.

Prints, per mode and call (``converse``; ``stream``: ``converse_stream`` read to its end), the
median and p95 latency of both sides, the difference of the medians, and the median over
rounds of the instrumented/original block-time ratio.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
for root in ("src", "semconv", "instrumentation", "examples", "benchmarks"):
    sys.path.insert(0, str(ROOT / root))

import boto3  # noqa: E402
from botocore.awsrequest import AWSResponse  # noqa: E402
from botocore.client import BaseClient  # noqa: E402
from botocore.config import Config  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402

import micrometrics  # noqa: E402
from paired import compare  # noqa: E402
from demo_server_bedrock import event_frame  # noqa: E402

MODES = ("spans", "default")
MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
ANSWER = ("Vielen Dank für Ihre Nachricht! Ihre Bestellung wurde gestern verschickt und sollte in zwei bis drei Werktagen "
          "bei Ihnen ankommen. Die Sendungsnummer finden Sie in der Versandbestätigung, die wir Ihnen per E-Mail geschickt "
          "haben. Kann ich sonst noch etwas für Sie tun?")
STREAM_CHUNKS = 50
USAGE = {"inputTokens": 42, "outputTokens": 48, "totalTokens": 90}
PARAMS = {"modelId": MODEL, "messages": [{"role": "user", "content": [{"text": "Hallo, wo ist meine Bestellung 4711?"}]}],
          "system": [{"text": "Du bist der Kundenservice eines Onlineshops."}], "inferenceConfig": {"maxTokens": 400}}


def _pieces(text: str, n: int) -> list[str]:
    size = -(-len(text) // n)
    return [text[i:i + size] for i in range(0, len(text), size)]


CONVERSE_BODY = json.dumps({"output": {"message": {"role": "assistant", "content": [{"text": ANSWER}]}}, "stopReason": "end_turn",
                            "usage": USAGE, "metrics": {"latencyMs": 120}}).encode()
STREAM_BODY = b"".join(
    [event_frame("messageStart", {"role": "assistant"})]
    + [event_frame("contentBlockDelta", {"delta": {"text": p}, "contentBlockIndex": 0}) for p in _pieces(ANSWER, STREAM_CHUNKS)]
    + [event_frame("contentBlockStop", {"contentBlockIndex": 0}), event_frame("messageStop", {"stopReason": "end_turn"}),
       event_frame("metadata", {"usage": USAGE, "metrics": {"latencyMs": 120}})]
)


class _Raw(io.BytesIO):
    """What botocore reads a response body from: ``stream()`` for JSON and event streams, ``read()`` otherwise."""

    def stream(self, amt: int = 4096, decode_content: bool = True) -> Any:
        while chunk := self.read(amt):
            yield chunk


def _answer(request: Any, **_: Any) -> AWSResponse:
    """botocore's ``before-send`` event: a response returned here is the one botocore parses, no network."""
    if request.url.endswith("/converse-stream"):
        return AWSResponse(request.url, 200, {"Content-Type": "application/vnd.amazon.eventstream"}, _Raw(STREAM_BODY))
    return AWSResponse(request.url, 200, {"Content-Type": "application/json", "Content-Length": str(len(CONVERSE_BODY))}, _Raw(CONVERSE_BODY))


class _DropSpans(SpanExporter):
    """Drops the spans, counting them: the check that the instrumented side was traced."""

    def __init__(self) -> None:
        self.spans: list[None] = []

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        self.spans += [None] * len(spans)
        return SpanExportResult.SUCCESS


class _DropLogs(LogRecordExporter):
    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def make_client() -> Any:
    """A ``bedrock-runtime`` client answered in process by botocore's ``before-send`` event."""
    client = boto3.client("bedrock-runtime", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
                          config=Config(retries={"total_max_attempts": 1}))
    client.meta.events.register("before-send.bedrock-runtime.*", _answer)
    return client


def run_block(call: Any, client: Any, operation: str, n: int) -> list[int]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        response = call(client, operation, dict(PARAMS))
        if operation == "ConverseStream":
            for _event in response["stream"]:
                pass
        times.append(time.perf_counter_ns() - t0)
    return times


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=100, help="calls per side per round")
    args = parser.parse_args(argv)

    client = make_client()
    tracer_provider = TracerProvider()
    dropped = _DropSpans()
    tracer_provider.add_span_processor(BatchSpanProcessor(dropped))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(_DropLogs()))
    providers = dict(tracer_provider=tracer_provider, meter_provider=meter_provider, logger_provider=logger_provider)

    for operation in ("Converse", "ConverseStream"):
        run_block(_bound, client, operation, 50)  # warm botocore's caches (models, endpoint rules) before anything is timed
    import botocore

    print(f"boto3 {boto3.__version__}, botocore {botocore.__version__}; in-process answers ({STREAM_CHUNKS} deltas per stream); "
          f"{args.rounds} rounds x {args.calls} calls per side")
    print(f"{'mode':<9}{'call':<8}{'original':>10}{'p95':>9}{'with mm':>10}{'p95':>9}{'+median us':>12}{'ratio':>8}")
    for mode in MODES:
        handle = micrometrics.instrument(exporter="none", instrumentations=["bedrock"], **({"metrics": []} if mode == "spans" else {}),
                                         **providers)
        original = vars(BaseClient)["_make_api_call"].__wrapped__
        spans_before = len(dropped.spans)
        for operation, label in (("Converse", "converse"), ("ConverseStream", "stream")):
            run_block(_bound, client, operation, 20)
            paired = compare(_timed(original, client, operation), _timed(_bound, client, operation), rounds=args.rounds, calls=args.calls,
                             settle=handle.force_flush)  # untimed: the next block starts with an idle monitor thread
            print(f"{mode:<9}" + paired.line(label, width=8))
        micrometrics.uninstrument()
        traced = len(dropped.spans) - spans_before
        assert traced == 2 * (20 + args.rounds * args.calls), f"{traced} spans: the instrumented side was not traced"


def _timed(call: Any, client: Any, operation: str) -> Any:
    """One call as paired.compare times it: a stream read to its end."""
    def timed(i: int) -> Any:
        response = call(client, operation, dict(PARAMS))
        if operation == "ConverseStream":
            for _event in response["stream"]:
                pass
        return response
    return timed


def _bound(client: Any, operation: str, params: dict) -> Any:
    """The call as every generated client method makes it (through the wrapper micrometrics put on the class)."""
    return client._make_api_call(operation, params)


if __name__ == "__main__":
    main()
