"""What the backend presets decide (``exporter="jaeger"``, ``exporter="datadog"``): endpoints, headers,
resource attributes, temporality, agentless. Every preset is plain OTLP, built by ``otlp.pipeline``."""

from __future__ import annotations

import logging
import os
import sys

from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, ConsoleLogRecordExporter
from opentelemetry.sdk.metrics import Counter, Histogram, ObservableCounter
from opentelemetry.sdk.metrics.export import AggregationTemporality, ConsoleMetricExporter, PeriodicExportingMetricReader

from micrometrics.export import otlp
from micrometrics.export.datadog_site import (  # noqa: F401  (the presets' names, as before)
    DATADOG_API_KEY_HEADER,
    DATADOG_OTLP_SOURCE_HEADER,
    DATADOG_OTLP_SOURCE_LLMOBS,
    DEFAULT_DATADOG_SITE,
    LLMOBS_SITES,
    NO_LLMOBS_SITES,
    check,
    datadog_site,
)
from micrometrics.export.pipeline import Pipeline
from micrometrics.attributes import EVENT_ONLY
from micrometrics.settings import Settings
from micrometrics_semconv import attributes as A

logger = logging.getLogger("micrometrics")

#: Datadog recommends delta temporality for monotonic sums and histograms (its intake requires it).
DELTA_TEMPORALITY = {
    Counter: AggregationTemporality.DELTA,
    Histogram: AggregationTemporality.DELTA,
    ObservableCounter: AggregationTemporality.DELTA,
}


def jaeger_pipeline(settings: Settings) -> Pipeline:
    """Traces over OTLP to Jaeger (gRPC 4317 by default); Jaeger stores no metrics or logs."""
    protocol = settings.protocol
    pipe = otlp.pipeline(settings, "Jaeger", protocol, otlp.local_endpoint(protocol), signals=("traces",))
    if settings.jaeger_metrics == "console":
        # sys.stdout of now, not of when the SDK was imported (their default).
        pipe.metric_reader = PeriodicExportingMetricReader(ConsoleMetricExporter(out=sys.stdout))
        pipe.log_processor = BatchLogRecordProcessor(ConsoleLogRecordExporter(out=sys.stdout))
    return pipe


def datadog_pipeline(settings: Settings) -> Pipeline:
    """Traces, metrics and logs over OTLP to a Datadog Agent, or straight to Datadog's intake (agentless); and,
    unless ``datadog_evaluations=False``, the micro-metric results to LLM Observability's evaluation API."""
    evaluations_on = settings.datadog_evaluations is not False
    # The site decides the hosts (agentless) and whether LLM Observability exists there: checked before anything is built.
    site, api_key = check(settings)
    if settings.datadog_agentless:
        protocol = "http/protobuf"
        if settings.protocol != protocol:
            logger.warning("micrometrics: Datadog's OTLP intake accepts http/protobuf only; using it instead of %r", settings.protocol)
        default = f"https://otlp.{site}"
        key_header = {DATADOG_API_KEY_HEADER: api_key}
        headers = {
            "traces": {**key_header, DATADOG_OTLP_SOURCE_HEADER: DATADOG_OTLP_SOURCE_LLMOBS},
            "metrics": key_header,
            "logs": key_header,
        }
        backend = "Datadog"
    else:
        protocol = settings.protocol
        host = os.environ.get("DD_AGENT_HOST", "").strip() or "localhost"
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        default = otlp.local_endpoint(protocol, host)
        headers = {}
        backend = "the Datadog Agent"
    pipe = otlp.pipeline(settings, backend, protocol, default, headers=headers, temporality=DELTA_TEMPORALITY)
    pipe.resource_attributes = unified_service_tags()
    if evaluations_on:
        from micrometrics.export import datadog_evaluations

        base = settings.datadog_evaluations if isinstance(settings.datadog_evaluations, str) else None
        pipe.evaluations = datadog_evaluations.DatadogEvaluations(
            datadog_evaluations.target(agentless=settings.datadog_agentless, site=site or DEFAULT_DATADOG_SITE, api_key=api_key, base=base)
        )
    if settings.capture_mode == EVENT_ONLY:
        logger.warning(
            "micrometrics: capture_content='EVENT_ONLY' puts prompts and responses on log records only; LLM Observability "
            "reads them from spans: use 'SPAN_ONLY' or 'SPAN_AND_EVENT' to see them there"
        )
    return pipe


def unified_service_tags() -> dict[str, str]:
    """DD_ENV and DD_VERSION onto the OTel resource (DD_SERVICE is the service name's fallback in ``settings``)."""
    tags: dict[str, str] = {}
    for env_var, key in (("DD_ENV", A.DEPLOYMENT_ENVIRONMENT_NAME), ("DD_VERSION", A.SERVICE_VERSION)):
        value = os.environ.get(env_var, "").strip()
        if value:
            tags[key] = value
    return tags
