"""Instrumenting a store whose entry point this checkout adds: the registry reads entry points from the installed
distribution, so until it is reinstalled the store's instrumentor is hooked here, beside ``micrometrics.instrument``.
Once reinstalled, ``instrument()`` has hooked it already and this adds nothing."""

from __future__ import annotations

from typing import Any


def instrument_store(telemetry: Any, request: Any, instrumentor: type, **options: Any) -> Any:
    handle = telemetry.instrument(**options)
    inst = instrumentor()
    if not inst.is_instrumented_by_opentelemetry:
        inst.instrument()
        request.addfinalizer(inst.uninstrument)
    return handle
