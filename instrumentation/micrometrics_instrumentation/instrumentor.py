"""The shape every micrometrics instrumentor shares: a list of methods to wrap."""

from __future__ import annotations

import importlib
import logging
from typing import Any, Callable, Collection, Iterable

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.instrumentation.utils import unwrap

from micrometrics import core

logger = logging.getLogger("micrometrics")

#: (module path, class name, method name, wrapper)
Target = tuple[str, str, str, Callable]


class LibraryInstrumentor(BaseInstrumentor):
    """Subclasses set ``instruments`` and implement ``targets()``."""

    instruments: tuple[str, ...] = ()

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.instruments

    def targets(self) -> Iterable[Target]:  # pragma: no cover - abstract
        raise NotImplementedError

    def _instrument(self, **kwargs: Any) -> None:
        if core.current() is None:
            # Loaded by `opentelemetry-instrument`: build the pipeline on the global providers.
            from micrometrics.lifecycle import runtime_for_auto_instrumentation

            runtime_for_auto_instrumentation(**kwargs)
        wrapped = []
        for module, cls, method, wrapper in self.targets():
            owner = _resolve(module, cls)
            if owner is None or not hasattr(owner, method):
                continue
            wrapt.wrap_function_wrapper(owner, method, wrapper)
            wrapped.append((owner, method))
        self._wrapped = wrapped

    def _uninstrument(self, **kwargs: Any) -> None:
        for owner, method in getattr(self, "_wrapped", ()):
            unwrap(owner, method)
        self._wrapped = []


def _resolve(module: str, cls: str) -> Any:
    try:
        obj: Any = importlib.import_module(module)
    except ImportError:
        return None
    for part in cls.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj
