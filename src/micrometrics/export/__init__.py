"""Where telemetry goes: one table from ``exporter=`` to the pipeline it builds, and the providers that carry it.

``console`` prints spans for people, ``otlp`` builds OTLP exporters behind an ``outbox``,
``presets`` holds what Jaeger and Datadog decide, ``providers`` reuses or builds the SDK providers.
"""

from __future__ import annotations

from typing import Any, Callable

from micrometrics.export import console, providers
from micrometrics.export.pipeline import Pipeline
from micrometrics.export.providers import Providers
from micrometrics.settings import Settings

__all__ = ["PIPELINES", "Pipeline", "Providers", "build", "pipeline_for"]


def _none(settings: Settings) -> Pipeline:
    return Pipeline()


def _console(settings: Settings) -> Pipeline:
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


def pipeline_for(settings: Settings) -> Pipeline:
    build_pipeline = PIPELINES.get(settings.exporter)
    if build_pipeline is None:
        raise ValueError(f"micrometrics: no exporter preset named {settings.exporter!r}")
    return build_pipeline(settings)


def build(settings: Settings, tracer_provider: Any = None, meter_provider: Any = None, logger_provider: Any = None) -> Providers:
    """The pipeline ``settings`` ask for, on the application's providers or ours (see ``providers.build``)."""
    return providers.build(settings, pipeline_for(settings), tracer_provider, meter_provider, logger_provider)
