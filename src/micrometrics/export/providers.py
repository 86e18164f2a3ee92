"""OpenTelemetry providers: reuse the application's, or build (and install) our own around a pipeline."""

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

from micrometrics.settings import Settings
from micrometrics.export.pipeline import Pipeline
from micrometrics_semconv import attributes as A

logger = logging.getLogger("micrometrics")


@dataclass
class Providers:
    tracer_provider: Any
    meter_provider: Any
    logger_provider: Any
    #: Providers we created (and shut down); the application's are never shut down by us.
    owned: list[Any] = field(default_factory=list)
    #: Processors/readers we attached to the application's providers.
    attached: list[Any] = field(default_factory=list)
    #: The pipeline's second destination of micro-metric results (``DatadogEvaluations``), or None.
    evaluations: Any = None


#: Providers micrometrics created in this process: a global one left from an earlier
#: ``instrument()`` is shut down, never reused.
_created: "weakref.WeakSet[Any]" = weakref.WeakSet()


def _is_sdk(provider: Any, sdk_type: type) -> bool:
    return isinstance(provider, sdk_type) and provider not in _created


def _app_resource(tp: Any, mp: Any, lp: Any) -> Any:
    """The resource of the application's own SDK provider (tracer first), or None."""
    if _is_sdk(tp, TracerProvider):
        return tp.resource
    if _is_sdk(mp, MeterProvider):
        return getattr(getattr(mp, "_sdk_config", None), "resource", None)
    if _is_sdk(lp, LoggerProvider):
        return lp.resource
    return None


def _resource(settings: Settings, pipe: Pipeline, app: Any) -> Resource:
    """What the providers we create describe: the application's service when it has a provider
    (one service across traces, metrics and logs), else ``service_name=``."""
    ours = Resource.create({A.SERVICE_NAME: settings.service_name, **pipe.resource_attributes, **settings.resource_attributes})
    if app is None:
        return ours
    app_service = app.attributes.get(A.SERVICE_NAME)
    if app_service != settings.service_name and settings.service_name != "unknown_service":
        logger.warning(
            "micrometrics: service_name=%r cannot be applied to the application's OpenTelemetry provider (service.name=%r); "
            "micrometrics reports as %r on traces, metrics and logs alike. Set the service name on the application's Resource "
            "(or OTEL_SERVICE_NAME) to change it.", settings.service_name, app_service, app_service,
        )
    # Preset attributes (Datadog's unified tags) and resource_attributes= still describe our data; the service is the app's.
    extra = {k: v for k, v in {**pipe.resource_attributes, **settings.resource_attributes}.items() if k != A.SERVICE_NAME}
    return app.merge(Resource(extra)) if extra else app


def _no_op(provider: Any) -> bool:
    """An explicit no-op provider (passed, or installed by the app): the app asked for no telemetry of that signal."""
    return type(provider).__name__.lstrip("_").startswith("NoOp")


def build(
    settings: Settings, pipe: Pipeline, tracer_provider: Any = None, meter_provider: Any = None, logger_provider: Any = None
) -> Providers:
    """Use the providers given or installed by the application; create (and install) the missing ones, carrying ``pipe``.

    A NoOp provider the application passed or installed is respected: that signal is not
    recorded (logged once), never silently replaced.
    """
    owned: list[Any] = []
    attached: list[Any] = []

    tp = tracer_provider or trace.get_tracer_provider()
    mp_given = meter_provider or otel_metrics.get_meter_provider()
    lp_given = logger_provider or otel_logs.get_logger_provider()
    resource = _resource(settings, pipe, _app_resource(tp, mp_given, lp_given))
    for kind, given in (("TracerProvider", tp), ("MeterProvider", mp_given), ("LoggerProvider", lp_given)):
        if _no_op(given):
            logger.warning("micrometrics: the application's %s is a no-op (%s): micrometrics records nothing through it", kind, type(given).__name__)
    tp = _reuse_or_build(
        tp, TracerProvider, "add_span_processor", pipe.span_processor, trace, "tracer", settings, resource, owned, attached
    )

    mp = mp_given
    if _no_op(mp):
        pass
    elif not _is_sdk(mp, MeterProvider):
        mp = MeterProvider(resource=resource, metric_readers=[pipe.metric_reader] if pipe.metric_reader else [], shutdown_on_exit=False)
        owned.append(mp)
        _install(otel_metrics, "get_meter_provider", "set_meter_provider", mp)
    elif settings.exporter_explicit and pipe.metric_reader is not None:
        # The SDK cannot add a reader to a running MeterProvider: say so rather than drop silently.
        logger.warning(
            "micrometrics: the application's MeterProvider is used as is; add a metric reader for exporter=%r to it yourself",
            settings.exporter,
        )

    lp = _reuse_or_build(
        lp_given, LoggerProvider, "add_log_record_processor", pipe.log_processor, otel_logs, "logger", settings, resource, owned, attached
    )
    for p in owned:
        _created.add(p)
    if pipe.evaluations is not None:
        # The service the spans are exported as, whoever built the tracer provider: ml_app and unified tags follow it.
        pipe.evaluations.describe(dict(getattr(getattr(tp, "resource", None), "attributes", None) or resource.attributes))
    return Providers(tp, mp, lp, owned, attached, pipe.evaluations)



def _reuse_or_build(
    given: Any, sdk_type: type, add: str, processor: Any, api: Any, kind: str,
    settings: Settings, resource: Any, owned: list[Any], attached: list[Any],
) -> Any:
    """A tracer or logger provider: a no-op one as it is (nothing records through it); the application's
    SDK one, with our processor attached only when ``exporter=`` was passed; else ours, installed globally."""
    if _no_op(given):
        return given
    if _is_sdk(given, sdk_type):
        if settings.exporter_explicit and processor is not None:
            getattr(given, add)(processor)
            attached.append(processor)
        return given
    # Our own exit hook shuts it down within a bounded time (the SDK's would wait on a hung backend).
    provider = sdk_type(resource=resource, shutdown_on_exit=False)
    if processor is not None:
        getattr(provider, add)(processor)
    owned.append(provider)
    _install(api, f"get_{kind}_provider", f"set_{kind}_provider", provider)
    return provider

def _install(api: Any, getter: str, setter: str, provider: Any) -> None:
    """Install as the global provider only while none is installed (the API allows it once)."""
    # Before any set_*_provider() the API hands out its proxy (or no-op) provider.
    if type(getattr(api, getter)()).__name__.lstrip("_").startswith(("Proxy", "NoOp")):
        getattr(api, setter)(provider)
