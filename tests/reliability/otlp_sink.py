"""A loopback OTLP/HTTP receiver that keeps the raw request bodies: privacy checks scan bytes, not objects."""

from __future__ import annotations

import gzip
import http.server
import threading
import zlib
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

SIGNALS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}


@dataclass
class Payload:
    signal: str  # traces | metrics | logs
    headers: dict[str, str]  # lower-case keys
    body: bytes  # decompressed


class OtlpSink:
    """``with OtlpSink() as sink: instrument(exporter="otlp", endpoint=sink.url)``."""

    def __init__(self) -> None:
        self.payloads: list[Payload] = []
        self._lock = threading.Lock()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                encoding = (self.headers.get("content-encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with sink._lock:
                    sink.payloads.append(Payload(SIGNALS.get(self.path.split("?")[0], self.path), headers, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> "OtlpSink":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    # ---- what arrived --------------------------------------------------------------

    def raw(self, signal: str | None = None) -> list[bytes]:
        with self._lock:
            return [p.body for p in self.payloads if signal is None or p.signal == signal]

    def everything(self) -> bytes:
        """Every body and every header value, concatenated: what a leak scan reads."""
        with self._lock:
            chunks = []
            for p in self.payloads:
                chunks.append(p.body)
                chunks.extend(v.encode("utf-8", "replace") for v in p.headers.values())
            return b"\n".join(chunks)

    def spans(self) -> list[Any]:
        out = []
        for body in self.raw("traces"):
            req = trace_service_pb2.ExportTraceServiceRequest.FromString(body)
            for rs in req.resource_spans:
                for ss in rs.scope_spans:
                    out.extend(ss.spans)
        return out

    def metric_names(self) -> set[str]:
        names = set()
        for body in self.raw("metrics"):
            req = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    names.update(m.name for m in sm.metrics)
        return names

    def metric_points(self, name: str) -> list[tuple[dict[str, Any], Any]]:
        """(attributes, value) of every data point of the metric ``name`` received."""
        out = []
        for body in self.raw("metrics"):
            req = metrics_service_pb2.ExportMetricsServiceRequest.FromString(body)
            for rm in req.resource_metrics:
                for sm in rm.scope_metrics:
                    for m in sm.metrics:
                        if m.name != name:
                            continue
                        data = getattr(m, m.WhichOneof("data"))
                        for p in data.data_points:
                            fields = {f.name for f, _ in p.ListFields()}
                            v = p.as_int if "as_int" in fields else p.as_double if "as_double" in fields else p.sum
                            out.append((attributes(p), v))
        return out

    def log_records(self) -> list[Any]:
        out = []
        for body in self.raw("logs"):
            req = logs_service_pb2.ExportLogsServiceRequest.FromString(body)
            for rl in req.resource_logs:
                for sl in rl.scope_logs:
                    out.extend(sl.log_records)
        return out


def value(any_value: AnyValue) -> Any:
    kind = any_value.WhichOneof("value")
    if kind == "array_value":
        return tuple(value(v) for v in any_value.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: value(kv.value) for kv in any_value.kvlist_value.values}
    return getattr(any_value, kind) if kind else None


def attributes(item: Any) -> dict[str, Any]:
    return {kv.key: value(kv.value) for kv in item.attributes}
