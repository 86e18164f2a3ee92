"""Instrumentations hooked on their library's import by module name: our package loads when the app imports the library.

``instrument()`` hooks every installed library; importing each instrumentation package then (wrapt,
opentelemetry-instrumentation, packaging, translators) would cost start-up time for libraries the
application may never import. A ``Deferred`` registers a post-import hook on the library's module,
named in ``micrometrics_instrumentation.libraries``, and loads and instruments its instrumentor
only when that hook fires (at once if the library is already imported). Every module an
instrumentor wraps lies under its library, so its own hooks are registered before any of them runs.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
import threading
from typing import Any, Callable

from micrometrics import internal_errors, registry

logger = logging.getLogger("micrometrics")


class Deferred:
    """One instrumentation, hooked on ``library``'s import; what ``Instrumentation`` holds until the library is imported."""

    def __init__(self, name: str, library: str) -> None:
        self.name = name
        self.library = library
        self.instrumentor: Any = None
        self._lock = threading.RLock()
        self._active = True
        self._failed = False
        self._hook = self._on_import  # one bound method: found again by ``forget``
        register(self._hook, library)  # runs now if the app already imported it

    @property
    def active(self) -> bool:
        """Hooked: calls are traced once the application imports the library."""
        return self._active and not self._failed and (self.instrumentor is None or self.instrumentor.active)

    @property
    def waiting(self) -> bool:
        """Hooked, but the application has not imported the library yet (nothing wrapped)."""
        if not self.active:
            return False
        return self.instrumentor is None or bool(getattr(self.instrumentor, "waiting", False))

    def _on_import(self, module: Any) -> None:
        try:
            with self._lock:
                if not self._active or self.instrumentor is not None:
                    return
                inst = registry.instrumentor(self.name)
                if not inst.is_instrumented_by_opentelemetry:
                    # Our instrumentor checks its library's version itself, on the import under way.
                    inst.instrument(skip_dep_check=True)
                self.instrumentor = inst
                if not inst.active:
                    self._failed = True
                    inst.uninstrument()
        except Exception as exc:  # never fail the application's import
            self._failed = True
            logger.warning("micrometrics: could not instrument %s: %s", self.name, exc)
            internal_errors.report("instrument", exc)

    def uninstrument(self) -> None:
        """Remove the hook if it never fired; otherwise restore every method the instrumentor wrapped."""
        with self._lock:
            self._active = False
            inst, self.instrumentor = self.instrumentor, None
        forget(self.library, self._hook)
        if inst is not None:
            inst.uninstrument()

    def __repr__(self) -> str:
        state = "loaded" if self.instrumentor is not None else "waiting" if self.waiting else "inactive"
        return f"<micrometrics deferred instrumentation {self.name!r} on {self.library!r}: {state}>"


def register(hook: Callable[[Any], None], name: str) -> None:
    """Call ``hook(module)`` once module ``name`` has been imported: now, if it already is.

    The same contract as ``wrapt.register_post_import_hook``, without importing wrapt (and asyncio with it)
    at ``instrument()``: the instrumentation packages import wrapt when they load.
    """
    global _finder
    with _hooks_lock:
        if _finder is None:
            _finder = _HookFinder()
            sys.meta_path.insert(0, _finder)
        module = sys.modules.get(name)
        if module is None:
            _hooks.setdefault(name, []).append(hook)
    if module is not None:
        hook(module)


def forget(module: str, hook: Callable) -> None:
    """Remove ``hook`` if its module was never imported (nothing to do otherwise: a hook runs once)."""
    with _hooks_lock:
        hooks = _hooks.get(module)
        if hooks is not None and hook in hooks:
            hooks.remove(hook)
            if not hooks:
                del _hooks[module]


def _notify(module: Any) -> None:
    with _hooks_lock:
        hooks = _hooks.pop(getattr(module, "__name__", None), ())
    for hook in hooks:
        hook(module)


_hooks: dict[str, list[Callable[[Any], None]]] = {}
_hooks_lock = threading.RLock()
_finder: "_HookFinder | None" = None


class _HookFinder:
    """First on ``sys.meta_path``: for a watched module, the spec the other finders give, its loader chained to the hooks."""

    def __init__(self) -> None:
        self.in_progress: set[str] = set()

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if _namespaces:
            self._namespace_imported(fullname)
        with _hooks_lock:
            if fullname not in _hooks or fullname in self.in_progress:
                return None
            self.in_progress.add(fullname)
        try:
            spec = importlib.util.find_spec(fullname)  # the finders after us (this one steps aside: in progress)
            if spec is not None and spec.loader is not None and not isinstance(spec.loader, _HookLoader):
                spec.loader = _HookLoader(spec.loader)
            elif spec is not None and spec.loader is None and spec.submodule_search_locations is not None:
                # A namespace package (mistralai 2+) runs no loader: its hooks run when its first submodule is imported.
                with _hooks_lock:
                    _namespaces.add(fullname)
            return spec
        finally:
            with _hooks_lock:
                self.in_progress.discard(fullname)


    @staticmethod
    def _namespace_imported(fullname: str) -> None:
        """A submodule of a watched namespace package is being imported: the package is imported, its hooks run now."""
        with _hooks_lock:
            ready = [n for n in _namespaces if fullname.startswith(n + ".") and n in sys.modules]
            for name in ready:
                _namespaces.discard(name)
        for name in ready:
            _notify(sys.modules[name])


#: Watched namespace packages imported (found by the finders) whose hooks wait for their first submodule's import.
_namespaces: set[str] = set()


class _HookLoader:
    """The module's own loader, then the hooks; the module keeps its own loader in ``__loader__`` and ``__spec__``."""

    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: Any) -> None:
        if getattr(module, "__loader__", None) in (None, self):
            module.__loader__ = self.loader
        spec = getattr(module, "__spec__", None)
        if spec is not None and spec.loader is self:
            spec.loader = self.loader
        self.loader.exec_module(module)
        _notify(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)  # is_package, get_code, get_resource_reader, ...
