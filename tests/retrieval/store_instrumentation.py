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


def is_wrapped(owner: type, name: str) -> bool:
    """Whether ``owner.name`` is a wrapper (ours or anyone's), not the library's own function."""
    import inspect

    import wrapt

    # wrapt 2's function wrappers do not derive from wrapt.ObjectProxy (its pure-Python proxy class): both are checked.
    return isinstance(inspect.getattr_static(owner, name), (wrapt.FunctionWrapper, wrapt.ObjectProxy))
