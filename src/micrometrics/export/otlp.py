"""The one OTLP exporter factory: where each signal goes, with which headers, and the exporter that sends it.

Every OTLP preset (``otlp``, ``jaeger``, ``datadog``) builds its pipeline with ``pipeline()``;
what a preset decides is the backend's name, the protocol, the default endpoint, its own
headers per signal and the metric temporality.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from opentelemetry.util.re import parse_env_headers

from micrometrics.export import outbox
from micrometrics.export.pipeline import Pipeline
from micrometrics.settings import Settings

#: OTLP's well-known ports, used by Jaeger and the Datadog Agent alike.
OTLP_GRPC_PORT = 4317
OTLP_HTTP_PORT = 4318
SIGNALS = ("traces", "metrics", "logs")
_SIGNAL_PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}
#: A reconnect after an outage starts afresh: gRPC's shared subchannels would keep a long backoff (up to 120 s).
GRPC_CHANNEL_OPTIONS = (("grpc.use_local_subchannel_pool", 1), ("grpc.max_reconnect_backoff_ms", 5000))


def pipeline(
    settings: Settings, backend: str, protocol: str, default_base: str, *,
    headers: Mapping[str, dict[str, str]] | None = None, temporality: Any = None, signals: tuple[str, ...] = SIGNALS,
) -> Pipeline:
    """``signals`` over OTLP to ``backend``, each behind its outbox; one export health (one warning) per backend.

    ``headers`` are the preset's own per signal (they win over the environment and ``headers=``).
    """
    health = outbox.ExportHealth(backend)
    headers = headers or {}

    def exporter_and_endpoint(signal: str) -> tuple[Any, str]:
        endpoint = signal_endpoint(settings, protocol, signal, default_base)
        wire_headers = signal_headers(settings, protocol, signal, headers.get(signal, {}))
        return exporter(protocol, signal, endpoint, wire_headers, temporality if signal == "metrics" else None), endpoint

    pipe = Pipeline()
    if "traces" in signals:
        pipe.span_processor = outbox.span_processor(*exporter_and_endpoint("traces"), health)
    if "metrics" in signals:
        pipe.metric_reader = outbox.metric_reader(*exporter_and_endpoint("metrics"), health)
    if "logs" in signals:
        pipe.log_processor = outbox.log_processor(*exporter_and_endpoint("logs"), health)
    return pipe


def local_endpoint(protocol: str, host: str = "localhost") -> str:
    """A collector (or agent) on ``host`` at OTLP's well-known port for ``protocol``."""
    return f"http://{host}:{OTLP_GRPC_PORT if protocol == 'grpc' else OTLP_HTTP_PORT}"


def http_endpoint(base: str, signal: str) -> str:
    """OTLP/HTTP's per-signal URL under ``base`` (kept as is when it already names the signal's path)."""
    path = _SIGNAL_PATHS[signal]
    return base if base.rstrip("/").endswith(path) else base.rstrip("/") + path


def signal_endpoint(settings: Settings, protocol: str, signal: str, default_base: str) -> str:
    """``endpoint=`` first, then OTEL_EXPORTER_OTLP_{SIGNAL}_ENDPOINT, OTEL_EXPORTER_OTLP_ENDPOINT, the preset's default."""
    grpc = protocol == "grpc"
    if settings.endpoint:
        base = settings.endpoint
    else:
        specific = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_ENDPOINT", "").strip()
        if specific:
            return specific
        base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip() or default_base
    return base if grpc else http_endpoint(base, signal)


def signal_headers(settings: Settings, protocol: str, signal: str, extra: dict[str, str]) -> dict[str, str]:
    """The OTEL_EXPORTER_OTLP_*_HEADERS environment, then ``headers=``, then the preset's own headers."""
    raw = os.environ.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_HEADERS") or os.environ.get("OTEL_EXPORTER_OTLP_HEADERS") or ""
    merged = dict(parse_env_headers(raw, liberal=True)) if raw else {}
    merged.update(settings.headers)
    merged.update(extra)
    # gRPC metadata keys must be lower case.
    return {k.lower(): v for k, v in merged.items()} if protocol == "grpc" else merged


def exporter(protocol: str, signal: str, endpoint: str, headers: dict[str, str], temporality: Any = None) -> Any:
    """One OTLP exporter; timeouts, compression and TLS files still come from the OTEL_EXPORTER_OTLP_* environment."""
    if protocol == "grpc":
        insecure = True if endpoint.startswith("http://") else False if endpoint.startswith("https://") else None
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(endpoint=endpoint, headers=headers or None, insecure=insecure, channel_options=GRPC_CHANNEL_OPTIONS)
        if signal == "metrics":
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

            return OTLPMetricExporter(
                endpoint=endpoint, headers=headers or None, insecure=insecure, preferred_temporality=temporality,
                channel_options=GRPC_CHANNEL_OPTIONS,
            )
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=endpoint, headers=headers or None, insecure=insecure, channel_options=GRPC_CHANNEL_OPTIONS)
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=endpoint, headers=headers or None)
    if signal == "metrics":
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        return OTLPMetricExporter(endpoint=endpoint, headers=headers or None, preferred_temporality=temporality)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return OTLPLogExporter(endpoint=endpoint, headers=headers or None)
