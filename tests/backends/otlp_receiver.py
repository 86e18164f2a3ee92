"""A loopback OTLP receiver (HTTP and gRPC) that decodes what it gets, and can be down, hang or fail.

It stands in for Jaeger (which cannot run here) and for Datadog's intake: what it decodes
with ``opentelemetry-proto`` is what such a backend would store. Decoding helpers turn the
protobuf requests into plain Python (``Span``, ``MetricPoint``, ``LogRecord``), and also read
the JSON the Datadog test agent returns, so both kinds of tests assert on the same shapes.
"""

from __future__ import annotations

import http.server
import socket
import threading
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

REQUEST_TYPES = {
    "traces": trace_service_pb2.ExportTraceServiceRequest,
    "metrics": metrics_service_pb2.ExportMetricsServiceRequest,
    "logs": logs_service_pb2.ExportLogsServiceRequest,
}
RESPONSE_TYPES = {
    "traces": trace_service_pb2.ExportTraceServiceResponse,
    "metrics": metrics_service_pb2.ExportMetricsServiceResponse,
    "logs": logs_service_pb2.ExportLogsServiceResponse,
}
HTTP_PATHS = {"/v1/traces": "traces", "/v1/metrics": "metrics", "/v1/logs": "logs"}
#: The receiver's behaviours: answer, refuse with 500 / INTERNAL, or hold the request until released.
MODES = ("ok", "fail", "hang")
#: How long a hanging request is held at most (the exporters give up much earlier).
HANG_LIMIT_S = 30.0


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# ---- what a backend stores ----------------------------------------------------------------


def any_value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind is None:
        return None
    if kind == "array_value":
        return tuple(any_value(x) for x in v.array_value.values)
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in v.kvlist_value.values}
    return getattr(v, kind)


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


@dataclass
class Span:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]]
    resource: dict[str, Any]
    scope: str
    status_code: int
    start_ns: int
    end_ns: int


@dataclass
class MetricPoint:
    name: str
    kind: str
    temporality: int | None
    attributes: dict[str, Any]
    value: Any
    resource: dict[str, Any]
    unit: str


@dataclass
class LogRecord:
    event_name: str
    attributes: dict[str, Any]
    body: Any
    trace_id: str
    span_id: str
    resource: dict[str, Any]


def spans_of(requests: list[Any]) -> list[Span]:
    out = []
    for req in requests:
        for rs in req.resource_spans:
            resource = attributes(rs.resource.attributes)
            for ss in rs.scope_spans:
                for s in ss.spans:
                    out.append(Span(
                        name=s.name, kind=s.kind, trace_id=s.trace_id.hex(), span_id=s.span_id.hex(),
                        parent_span_id=s.parent_span_id.hex(), attributes=attributes(s.attributes),
                        events=[(e.name, attributes(e.attributes)) for e in s.events], resource=resource,
                        scope=ss.scope.name, status_code=s.status.code, start_ns=s.start_time_unix_nano,
                        end_ns=s.end_time_unix_nano,
                    ))
    return out


def metric_points_of(requests: list[Any]) -> list[MetricPoint]:
    out = []
    for req in requests:
        for rm in req.resource_metrics:
            resource = attributes(rm.resource.attributes)
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    kind = m.WhichOneof("data")
                    data = getattr(m, kind)
                    temporality = getattr(data, "aggregation_temporality", None)
                    for p in data.data_points:
                        if kind == "histogram":
                            value: Any = (p.count, p.sum)
                        else:
                            value = getattr(p, p.WhichOneof("value"))
                        out.append(MetricPoint(m.name, kind, temporality, attributes(p.attributes), value, resource, m.unit))
    return out


def log_records_of(requests: list[Any]) -> list[LogRecord]:
    out = []
    for req in requests:
        for rl in req.resource_logs:
            resource = attributes(rl.resource.attributes)
            for sl in rl.scope_logs:
                for r in sl.log_records:
                    out.append(LogRecord(
                        event_name=r.event_name, attributes=attributes(r.attributes), body=any_value(r.body),
                        trace_id=r.trace_id.hex(), span_id=r.span_id.hex(), resource=resource,
                    ))
    return out


def from_json(signal: str, payloads: list[dict[str, Any]]) -> list[Any]:
    """The Datadog test agent's decoded JSON back into protobuf requests."""
    return [ParseDict(p, REQUEST_TYPES[signal](), ignore_unknown_fields=True) for p in payloads]


# ---- the receiver -------------------------------------------------------------------------


@dataclass
class Received:
    signal: str
    request: Any
    headers: dict[str, str]
    body: bytes


@dataclass
class OtlpReceiver:
    """Serves OTLP on loopback; ``protocol`` is "http/protobuf" or "grpc". Not started = backend down."""

    protocol: str = "http/protobuf"
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    mode: str = "ok"
    received: list[Received] = field(default_factory=list)
    refused: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._http: http.server.ThreadingHTTPServer | None = None
        self._grpc: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    # -- lifecycle

    def start(self) -> "OtlpReceiver":
        if self.protocol == "grpc":
            self._start_grpc()
        else:
            self._start_http()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._grpc is not None:
            self._grpc.stop(grace=None)
            self._grpc = None

    def set_mode(self, mode: str) -> None:
        assert mode in MODES, mode
        if mode == "hang":
            self._release.clear()
        else:
            self._release.set()
        self.mode = mode

    def __enter__(self) -> "OtlpReceiver":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- what arrived

    def requests(self, signal: str) -> list[Any]:
        with self._lock:
            return [r.request for r in self.received if r.signal == signal]

    def spans(self) -> list[Span]:
        return spans_of(self.requests("traces"))

    def metric_points(self) -> list[MetricPoint]:
        return metric_points_of(self.requests("metrics"))

    def log_records(self) -> list[LogRecord]:
        return log_records_of(self.requests("logs"))

    # -- handling

    def _accept(self, signal: str, body: bytes, headers: dict[str, str]) -> bool:
        """True: stored; False: refused (the caller answers 500 / INTERNAL)."""
        if self.mode == "hang":
            self._release.wait(HANG_LIMIT_S)
            # The exporter gave up long ago: what a hung backend got is not stored.
            with self._lock:
                self.refused += 1
            return False
        if self.mode == "fail":
            with self._lock:
                self.refused += 1
            return False
        request = REQUEST_TYPES[signal]()
        request.ParseFromString(body)
        with self._lock:
            self.received.append(Received(signal, request, headers, body))
        return True

    def _start_http(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

            def do_POST(self) -> None:
                signal = HTTP_PATHS.get(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if signal is None:
                    self._answer(404, b"")
                    return
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    ok = receiver._accept(signal, body, headers)
                except Exception:
                    ok = False
                if ok:
                    self._answer(200, RESPONSE_TYPES[signal]().SerializeToString())
                else:
                    self._answer(500, b"backend error")

            def _answer(self, status: int, payload: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/x-protobuf")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the exporter hung up (timeout)

        server = http.server.ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="otlp-receiver-http", daemon=True).start()
        self._http = server

    def _start_grpc(self) -> None:
        receiver = self

        def servicer(signal: str, base: type) -> Any:
            class Servicer(base):  # type: ignore[misc, valid-type]
                def Export(self, request: Any, context: Any) -> Any:  # noqa: N802
                    headers = {k: v for k, v in context.invocation_metadata() if isinstance(v, str)}
                    if not receiver._accept(signal, request.SerializeToString(), headers):
                        context.abort(grpc.StatusCode.INTERNAL, "backend error")
                    return RESPONSE_TYPES[signal]()

            return Servicer()

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer("traces", trace_service_pb2_grpc.TraceServiceServicer), server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(servicer("metrics", metrics_service_pb2_grpc.MetricsServiceServicer), server)
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(servicer("logs", logs_service_pb2_grpc.LogsServiceServicer), server)
        if not server.add_insecure_port(f"{self.host}:{self.port}"):
            raise OSError(f"cannot listen on {self.host}:{self.port}")
        server.start()
        self._grpc = server
