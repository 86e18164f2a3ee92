"""Instrumenting LlamaIndex in the tests, before and after the lead's reinstall makes its entry point visible."""

from __future__ import annotations

from typing import Any

from micrometrics import registry
from micrometrics_instrumentation.llama_index import LlamaIndexInstrumentor


def instrument(telemetry: Any, request: Any, **options: Any) -> Any:
    """``telemetry.instrument(**options)``, and LlamaIndex's instrumentor when the installed entry points lack it."""
    handle = telemetry.instrument(**options)
    if "llama_index" not in registry.supported():
        inst = LlamaIndexInstrumentor()
        inst.instrument()
        request.addfinalizer(inst.uninstrument)
    return handle
