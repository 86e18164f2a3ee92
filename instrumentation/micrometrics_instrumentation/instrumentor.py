"""The shape every micrometrics instrumentor shares: a list of methods to wrap.

Each method is wrapped when the application imports the module that defines it (a post-import
hook), never by us importing the library: instrumenting costs nothing for a library the
application does not use, and a module already imported is wrapped at once.

Another GenAI instrumentation of the same method (layers.py) is put above ours and gated, when we
wrap and after any OpenTelemetry instrumentor's ``instrument()`` while we are active, so that the
call has one span, ours, in either install order.
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
import weakref
from typing import Any, Callable, Collection, Iterable

import wrapt
import wrapt.importer
from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor

from micrometrics import active, internal_errors
from micrometrics_instrumentation import layers

logger = logging.getLogger("micrometrics")

#: (module path, attribute path of the owner in that module ("" for the module itself), method name, wrapper)
Target = tuple[str, str, str, Callable]

#: Guards every instrumentor's hooks and wrapped list; hooks run on whichever thread imports.
_lock = threading.RLock()
#: Our instrumentors that are hooked: their methods keep our layer under any other GenAI instrumentation's.
_hooked: "set[LibraryInstrumentor]" = set()


class LibraryInstrumentor(BaseInstrumentor):
    """Subclasses set ``library`` and ``instruments`` (their own library only) and implement ``targets()``."""

    #: The module the application imports (``google.genai``): whether the library is installed, found without importing it.
    library: str = ""
    instruments: tuple[str, ...] = ()
    #: Per-instance cached views of a wrapped class that hold its methods bound (see _CurrentViews).
    bound_views: tuple[str, ...] = ()
    _wrapped: list[tuple[Any, str]] = []
    _views: list[tuple[Any, str, Any]] = []
    _hooks: list[tuple[str, Callable]] = []
    _active = False
    _checked: Any = None
    _usable = False

    def instrumentation_dependencies(self) -> Collection[str]:
        return self.instruments

    def targets(self) -> Iterable[Target]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def active(self) -> bool:
        """Hooked: every call is traced once the application imports the library."""
        return self._active

    @property
    def waiting(self) -> bool:
        """Hooked, but the application has not imported the library yet (nothing wrapped)."""
        with _lock:
            return self._active and not self._wrapped

    def _instrument(self, **kwargs: Any) -> None:
        # `opentelemetry-instrument` loads all our entry points once any one library is installed
        # (the `instruments-any` extra) and skips the per-instrumentor check: each checks its own
        # library's version when the application imports it (a missing library's hooks never fire).
        if not active.installed():  # never waits for a set-up in progress: instrument() may be running it
            # Loaded by `opentelemetry-instrument`: build the pipeline on the global providers.
            from micrometrics.installation import runtime_for_auto_instrumentation

            runtime_for_auto_instrumentation(**kwargs)
        by_module: dict[str, list[Target]] = {}
        for target in self.targets():
            by_module.setdefault(target[0], []).append(target)
        with _lock:
            self._wrapped, self._views, self._hooks, self._active = [], [], [], True
            generation = self._hooks
            for module, targets in by_module.items():
                self._hooks.append((module, self._on_import(generation, targets)))
            _hooked.add(self)
            _watch_other_instrumentors()
        for module, hook in list(generation):
            # Runs the hook now if the module is already imported.
            wrapt.register_post_import_hook(hook, module)

    def _on_import(self, generation: list, targets: list[Target]) -> Callable[[Any], None]:
        def hook(module: Any) -> None:
            try:
                with _lock:
                    if self._hooks is not generation:  # uninstrumented (or re-instrumented) since
                        return
                    if not self._supported(generation):
                        return
                    owners = []
                    for _, path, method, wrapper in targets:
                        owner = _attribute(module, path)
                        if owner is None or not hasattr(owner, method):
                            continue  # absent in this version of the library
                        setattr(wrapper, layers.OURS, True)
                        wrapt.wrap_function_wrapper(owner, method, wrapper)
                        self._wrapped.append((owner, method))
                        owners.append(owner)
                        layers.ours_innermost(owner, method)  # another instrumentation wrapped it first
                    self._views.extend(_current_views(dict.fromkeys(owners), self.bound_views))
            except Exception as exc:  # never fail the application's import
                internal_errors.report("instrument", exc)

        return hook

    def _supported(self, generation: list) -> bool:
        """Whether the installed library is a version we support; checked once, at its first import."""
        if self._checked is not generation:
            # Read from installed metadata (~10 ms), so paid when the app imports the library, not in instrument().
            conflict = get_dependency_conflicts(self.instrumentation_dependencies())
            self._checked, self._usable = generation, conflict is None
            if conflict is not None:
                (logger.warning if conflict.found else logger.debug)("micrometrics: %s", conflict._format_message(type(self).__name__))
        return self._usable

    def _keep_ours_innermost(self) -> None:
        """Put our layer back under another GenAI instrumentation's that was added on top of it."""
        with _lock:
            changed = [owner for owner, method in self._wrapped if layers.ours_innermost(owner, method)]
            for owner in dict.fromkeys(changed):
                for name in self.bound_views:
                    views = owner.__dict__.get(name)
                    if isinstance(views, _CurrentViews):
                        views.views.clear()  # they hold the methods bound before the change

    def _uninstrument(self, **kwargs: Any) -> None:
        with _lock:
            wrapped, views, hooks = self._wrapped, self._views, self._hooks
            self._wrapped, self._views, self._hooks, self._active = [], [], [], False
            _hooked.discard(self)
            if not _hooked:
                layers.remove(BaseInstrumentor, "instrument")
        for module, hook in hooks:
            _forget_hook(module, hook)
        for owner, method in reversed(wrapped):
            # Ours only, wherever it is: `unwrap` would take the outermost layer, maybe another instrumentation's.
            layers.remove(owner, method)
        for owner, name, original in views:
            if isinstance(owner.__dict__.get(name), _CurrentViews):
                setattr(owner, name, original)


def _after_instrument(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """Any OpenTelemetry instrumentor's ``instrument()``: one that wrapped a method of ours after us goes above it, gated."""
    result = wrapped(*args, **kwargs)
    if not isinstance(instance, LibraryInstrumentor):  # ours check their methods as they wrap them
        try:
            for inst in list(_hooked):
                inst._keep_ours_innermost()
        except Exception as exc:
            internal_errors.report("instrument", exc)
    return result


setattr(_after_instrument, layers.OURS, True)


def _watch_other_instrumentors() -> None:
    """Every instrumentor (contrib, OpenLLMetry, OpenInference) instruments through ``BaseInstrumentor.instrument``."""
    if not any(layers.is_ours(fn) for fn, _ in layers.chain(BaseInstrumentor, "instrument")[0]):
        wrapt.wrap_function_wrapper(BaseInstrumentor, "instrument", _after_instrument)


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


def _attribute(module: Any, path: str) -> Any:
    obj = module
    for part in filter(None, path.split(".")):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _forget_hook(module: str, hook: Callable) -> None:
    """Remove a hook whose module was never imported from wrapt's table (wrapt has no public way).

    If wrapt's internals change this does nothing, and the stale hook stays inert (it checks its generation).
    """
    table = getattr(wrapt.importer, "_post_import_hooks", None)
    lock = getattr(wrapt.importer, "_post_import_hooks_lock", None)
    if not isinstance(table, dict) or lock is None:
        return
    with lock:
        hooks = table.get(module)
        if isinstance(hooks, list) and hook in hooks:
            hooks.remove(hook)
            if not hooks and module not in sys.modules:
                del table[module]  # an empty list means "already imported" to older wrapt releases
