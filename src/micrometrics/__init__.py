"""micrometrics: OpenTelemetry instrumentation for LLM systems, with micro metrics.

    import micrometrics
    micrometrics.instrument()
"""

from typing import TYPE_CHECKING, Any

from micrometrics.callcontext import context
from micrometrics.metric import CallView, MicroMetric, Result, micro_metric

if TYPE_CHECKING:
    from micrometrics.guards import GuardError
    from micrometrics.installation import Instrumentation, instrument, uninstrument
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
    "workflow",
    "agent",
    "tool",
    "__version__",
]

# Imported on first use: the OpenTelemetry SDK and the pipeline are not needed to define a
# metric, and the evaluator process (evaluator_process.py) imports only what metrics need.
_LAZY = {
    "GuardError": "micrometrics.guards",
    "Instrumentation": "micrometrics.installation",
    "instrument": "micrometrics.installation",
    "uninstrument": "micrometrics.installation",
    "record_retrieval": "micrometrics.retrieval",
    "retriever": "micrometrics.retrieval",
    "workflow": "micrometrics.operations",
    "agent": "micrometrics.operations",
    "tool": "micrometrics.operations",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'micrometrics' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
