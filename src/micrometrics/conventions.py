"""Which GenAI semantic conventions one ``instrument()`` emits: v1.41 (the default) or the latest experimental ones.

The GenAI conventions moved to open-telemetry/semantic-conventions-genai after v1.41, where the newer
definitions are not released yet. As the official instrumentations do (opentelemetry-instrumentation's
``_semconv``), ``OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`` switches to them, instead of
v1.41 and never beside it; ``instrument(conventions=...)`` does the same for micrometrics alone.

This module owns the switch; what differs is mapped where each thing is: attributes.py (attributes and
message parts), emission.py (metric instruments).
"""

from __future__ import annotations

import logging

from micrometrics_semconv import SCHEMA_URL

#: Shared with every OpenTelemetry instrumentation: a comma-separated list, one value per category.
OPT_IN_VARIABLE = "OTEL_SEMCONV_STABILITY_OPT_IN"
V1_41 = "v1.41"
#: The value the official GenAI instrumentations read (``_StabilityMode.GEN_AI_LATEST_EXPERIMENTAL``).
LATEST = "gen_ai_latest_experimental"
CONVENTIONS = (V1_41, LATEST)

logger = logging.getLogger("micrometrics")


def from_opt_in(raw: str, variable: str = OPT_IN_VARIABLE) -> str:
    """The conventions an ``OTEL_SEMCONV_STABILITY_OPT_IN`` value asks for.

    Values are matched exactly, as the official instrumentations match them, so that every GenAI
    instrumentation in the process emits the same version. Other categories (``http``, ``database/dup``)
    belong to other instrumentations and are ignored; a ``gen_ai`` value we do not know is logged, never
    raised: the variable is shared, and a value meant for a newer instrumentation must not break this one.
    """
    values = [value.strip() for value in raw.split(",")]
    if LATEST in values:
        return LATEST
    unknown = [v for v in values if v.lower().replace("-", "_").startswith(("gen_ai", "genai"))]
    if unknown:
        logger.warning(
            "micrometrics: %s=%r: %s not a GenAI value micrometrics knows (values are case-sensitive); "
            "emitting the GenAI conventions %s. Known: %r",
            variable, raw, ", ".join(map(repr, unknown)) + (" is" if len(unknown) == 1 else " are"), V1_41, LATEST,
        )
    return V1_41


def is_latest(conventions: str) -> bool:
    return conventions == LATEST


def schema_url(conventions: str) -> str | None:
    """The instrumentation scope's schema URL: v1.41's; none for the unreleased conventions, which have no schema yet."""
    return None if is_latest(conventions) else SCHEMA_URL
