"""OpenTelemetry providers and exporters: reuse the application's, or build our own."""

from __future__ import annotations

import logging
import weakref
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import metrics as otel_metrics
from opentelemetry import trace
from opentelemetry import _logs as otel_logs
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider

from micrometrics.config import Settings
from micrometrics.console import ConsoleSpanExporter, ConsoleSpanProcessor
from micrometrics_semconv import attributes as A

logger = logging.getLogger("micrometrics")

_SIGNAL_PATHS = {"traces": "/v1/traces", "metrics": "/v1/metrics", "logs": "/v1/logs"}


@dataclass
class Providers:
    tracer_provider: Any
    meter_provider: Any
    logger_provider: Any
    #: Providers we created (and shut down); the application's are never shut down by us.
    owned: list[Any] = field(default_factory=list)
    #: Processors/readers we attached to the application's providers.
    attached: list[Any] = field(default_factory=list)


def _http_endpoint(base: str | None, signal: str) -> str | None:
    if base is None:
        return None
    path = _SIGNAL_PATHS[signal]
    return base if base.rstrip("/").endswith(path) else base.rstrip("/") + path


@dataclass
class Pipeline:
    """What to export where, decided from the settings (presets live in ``backends``)."""

    span_processor: Any = None
    metric_reader: Any = None
    log_processor: Any = None
    resource_attributes: dict[str, Any] = field(default_factory=dict)


def pipeline_for(settings: Settings) -> Pipeline:
    if settings.exporter == "none":
        return Pipeline()
    if settings.exporter == "console":
        return Pipeline(span_processor=ConsoleSpanProcessor(ConsoleSpanExporter()))
    from micrometrics import backends

    return backends.pipeline_for(settings)


#: Providers micrometrics created in this process: a global one left from an earlier
#: ``instrument()`` is shut down, never reused.
_created: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _is_sdk(provider: Any, sdk_type: type) -> bool:
    return isinstance(provider, sdk_type) and provider not in _created


def build(settings: Settings, tracer_provider: Any = None, meter_provider: Any = None, logger_provider: Any = None) -> Providers:
    """Use the providers given or installed by the application; create (and install) the missing ones."""
    pipe = pipeline_for(settings)
    resource = Resource.create({A.SERVICE_NAME: settings.service_name, **pipe.resource_attributes, **settings.resource_attributes})
    owned: list[Any] = []
    attached: list[Any] = []

    tp = tracer_provider or trace.get_tracer_provider()
    if _is_sdk(tp, TracerProvider):
        if settings.exporter_explicit and pipe.span_processor is not None:
            tp.add_span_processor(pipe.span_processor)
            attached.append(pipe.span_processor)
    else:
        # Our own exit hook shuts it down within a bounded time (the SDK's would wait on a hung backend).
        tp = TracerProvider(resource=resource, shutdown_on_exit=False)
        if pipe.span_processor is not None:
            tp.add_span_processor(pipe.span_processor)
        owned.append(tp)
        _install(trace, "get_tracer_provider", "set_tracer_provider", tp)

    mp = meter_provider or otel_metrics.get_meter_provider()
    if not _is_sdk(mp, MeterProvider):
        mp = MeterProvider(resource=resource, metric_readers=[pipe.metric_reader] if pipe.metric_reader else [], shutdown_on_exit=False)
        owned.append(mp)
        _install(otel_metrics, "get_meter_provider", "set_meter_provider", mp)
    elif settings.exporter_explicit and pipe.metric_reader is not None:
        # The SDK cannot add a reader to a running MeterProvider: say so rather than drop silently.
        logger.warning(
            "micrometrics: the application's MeterProvider is used as is; add a metric reader for exporter=%r to it yourself",
            settings.exporter,
        )

    lp = logger_provider or otel_logs.get_logger_provider()
    if _is_sdk(lp, LoggerProvider):
        if settings.exporter_explicit and pipe.log_processor is not None:
            lp.add_log_record_processor(pipe.log_processor)
            attached.append(pipe.log_processor)
    else:
        lp = LoggerProvider(resource=resource, shutdown_on_exit=False)
        if pipe.log_processor is not None:
            lp.add_log_record_processor(pipe.log_processor)
        owned.append(lp)
        _install(otel_logs, "get_logger_provider", "set_logger_provider", lp)
    for p in owned:
        _created.add(p)
    return Providers(tp, mp, lp, owned, attached)


def _install(api: Any, getter: str, setter: str, provider: Any) -> None:
    """Install as the global provider only while none is installed (the API allows it once)."""
    # Before any set_*_provider() the API hands out its proxy (or no-op) provider.
    if type(getattr(api, getter)()).__name__.lstrip("_").startswith(("Proxy", "NoOp")):
        getattr(api, setter)(provider)
