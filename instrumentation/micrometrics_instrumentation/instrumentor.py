"""The shape every micrometrics instrumentor shares: a list of methods to wrap."""

from __future__ import annotations

import functools
import importlib
import logging
import weakref
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
    #: Per-instance cached views of a wrapped class that hold its methods bound (see _CurrentViews).
    bound_views: tuple[str, ...] = ()

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
        self._views = _current_views(dict.fromkeys(owner for owner, _ in wrapped), self.bound_views)

    def _uninstrument(self, **kwargs: Any) -> None:
        for owner, method in getattr(self, "_wrapped", ()):
            unwrap(owner, method)
        self._wrapped = []
        for owner, name, original in getattr(self, "_views", ()):
            if isinstance(owner.__dict__.get(name), _CurrentViews):
                setattr(owner, name, original)
        self._views = []


class _CurrentViews:
    """A ``functools.cached_property`` view (``with_raw_response``) rebuilt on the wrapped methods while instrumented.

    The SDK caches the view per resource with the methods bound when it was first touched:
    one touched before ``instrument()`` holds the library's own methods and is never traced.
    This data descriptor takes precedence over that cache and builds one view per resource
    on the current (wrapped) methods; ``uninstrument()`` puts the cached_property back.
    """

    def __init__(self, original: functools.cached_property) -> None:
        self.original = original
        self.views: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return self
        try:
            view = self.views.get(obj)
            if view is None:
                view = self.views[obj] = self.original.func(obj)
            return view
        except TypeError:  # not weakly referenceable: the SDK's own behaviour
            return self.original.__get__(obj, owner)

    def __set__(self, obj: Any, value: Any) -> None:
        self.views[obj] = value  # an app (or a test) assigning the view keeps it


def _current_views(owners: Iterable[Any], names: tuple[str, ...]) -> list[tuple[Any, str, Any]]:
    replaced = []
    for owner in owners:
        for name in names:
            original = owner.__dict__.get(name)
            if isinstance(original, functools.cached_property):
                setattr(owner, name, _CurrentViews(original))
                replaced.append((owner, name, original))
    return replaced


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
