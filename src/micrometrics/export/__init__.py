"""Where telemetry goes: one table from ``exporter=`` to the pipeline it builds, and the providers that carry it.

``console`` prints spans for people, ``otlp`` builds OTLP exporters behind an ``outbox``,
``presets`` holds what Jaeger and Datadog decide, ``providers`` reuses or builds the SDK providers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from micrometrics.export.pipeline import Pipeline
from micrometrics.settings import Settings

if TYPE_CHECKING:
    from micrometrics.export.providers import Providers

# This module is light: instrument() reads it (check) before the OpenTelemetry SDK is imported; console,
# providers and the OTLP modules, which import the SDK, load when a pipeline is built.
__all__ = ["PIPELINES", "Pipeline", "Providers", "build", "check", "pipeline_for"]


def _none(settings: Settings) -> Pipeline:
    return Pipeline()


def _console(settings: Settings) -> Pipeline:
    from micrometrics.export import console

    return Pipeline(span_processor=console.ConsoleSpanProcessor(console.ConsoleSpanExporter()))


# The OTLP modules load on first use: `none` and `console` (and `import micrometrics`) do not pay for them.
def _otlp(settings: Settings) -> Pipeline:
    """Plain ``exporter="otlp"``: every signal to one OTLP endpoint (the SDK's defaults), with the presets' outage handling."""
    from micrometrics.export import otlp

    return otlp.pipeline(settings, "the OTLP collector", settings.protocol, otlp.local_endpoint(settings.protocol))


def _jaeger(settings: Settings) -> Pipeline:
    from micrometrics.export import presets

    return presets.jaeger_pipeline(settings)


def _datadog(settings: Settings) -> Pipeline:
    from micrometrics.export import presets

    return presets.datadog_pipeline(settings)


#: Every ``exporter=`` value and the function that builds its pipeline.
PIPELINES: dict[str, Callable[[Settings], Pipeline]] = {
    "none": _none,
    "console": _console,
    "otlp": _otlp,
    "jaeger": _jaeger,
    "datadog": _datadog,
}


def _pipeline_builder(settings: Settings) -> Callable[[Settings], Pipeline]:
    build_pipeline = PIPELINES.get(settings.exporter)
    if build_pipeline is None:
        raise ValueError(f"micrometrics: no exporter preset named {settings.exporter!r}")
    return build_pipeline


def pipeline_for(settings: Settings) -> Pipeline:
    return _pipeline_builder(settings)(settings)


def check(settings: Settings) -> None:
    """What building the pipeline would raise on the application's configuration (the environment a preset reads),
    raised now and without importing the SDK, so that ``instrument()`` can build it later on another thread."""
    _pipeline_builder(settings)
    if settings.exporter == "datadog":
        from micrometrics.export import datadog_site

        datadog_site.check(settings)


def build(settings: Settings, tracer_provider: Any = None, meter_provider: Any = None, logger_provider: Any = None) -> "Providers":
    """The pipeline ``settings`` ask for, on the application's providers or ours (see ``providers.build``)."""
    from micrometrics.export import providers

    return providers.build(settings, pipeline_for(settings), tracer_provider, meter_provider, logger_provider)


def __getattr__(name: str) -> Any:
    if name == "Providers":
        from micrometrics.export.providers import Providers

        return Providers
    raise AttributeError(f"module 'micrometrics.export' has no attribute {name!r}")
