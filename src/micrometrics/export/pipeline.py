"""What one ``exporter=`` choice sends where: its own module so presets and providers share it without a cycle."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Pipeline:
    """What to export where, decided from the settings (the table in ``export`` picks the builder)."""

    span_processor: Any = None
    metric_reader: Any = None
    log_processor: Any = None
    resource_attributes: dict[str, Any] = field(default_factory=dict)
    #: Where micro-metric results go besides the spans (``DatadogEvaluations``), or None.
    evaluations: Any = None
