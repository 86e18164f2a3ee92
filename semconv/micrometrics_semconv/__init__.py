"""Every attribute, metric and event name micrometrics emits, as constants.

The GenAI names follow the OpenTelemetry semantic conventions version in
``SEMCONV_VERSION``; the ``micrometrics.*`` names are ours. No other module spells
a telemetry name as a string literal: they import it from here, so that a test can
check that everything we emit is declared.
"""

from micrometrics_semconv.attributes import *  # noqa: F401,F403
from micrometrics_semconv.metrics import *  # noqa: F401,F403
from micrometrics_semconv.events import *  # noqa: F401,F403
from micrometrics_semconv.values import *  # noqa: F401,F403
from micrometrics_semconv import attributes, events, metrics, values

SEMCONV_VERSION = "1.41.0"
SCHEMA_URL = "https://opentelemetry.io/schemas/1.41.0"


def _declared(module) -> frozenset[str]:
    return frozenset(v for k, v in vars(module).items() if k.isupper() and isinstance(v, str))


#: Every span/log attribute key we may emit, excluding the per-metric dynamic keys
#: (``micrometrics.<metric>.<detail>``), which match ``MICROMETRIC_ATTRIBUTE_PREFIX``.
ATTRIBUTE_NAMES: frozenset[str] = _declared(attributes)
METRIC_NAMES: frozenset[str] = _declared(metrics)
EVENT_NAMES: frozenset[str] = _declared(events)


def is_declared_attribute(key: str) -> bool:
    """True for a declared key, or a ``micrometrics.<metric>.<detail>`` result key."""
    return key in ATTRIBUTE_NAMES or (
        key.startswith(attributes.MICROMETRIC_ATTRIBUTE_PREFIX) and key.count(".") >= 2
    )
