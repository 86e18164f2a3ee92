"""micrometrics: OpenTelemetry instrumentation for LLM systems, with micro metrics.

    import micrometrics
    micrometrics.instrument()
"""

from micrometrics.callcontext import context
from micrometrics.core import GuardError
from micrometrics.lifecycle import Instrumentation, instrument, uninstrument
from micrometrics.metric import CallView, MicroMetric, Result, micro_metric
from micrometrics.retrieval import record_retrieval, retriever

__version__ = "0.1.0"

__all__ = [
    "instrument",
    "uninstrument",
    "Instrumentation",
    "context",
    "MicroMetric",
    "Result",
    "micro_metric",
    "CallView",
    "GuardError",
    "retriever",
    "record_retrieval",
    "__version__",
]
