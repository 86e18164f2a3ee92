"""Instrumentations hooked on their library's import by module name: our package loads when the app imports the library.

``instrument()`` hooks every installed library; importing each instrumentation package then (wrapt,
opentelemetry-instrumentation, packaging, translators) would cost start-up time for libraries the
application may never import. A ``Deferred`` registers a post-import hook on the library's module,
named in ``micrometrics_instrumentation.libraries``, and loads and instruments its instrumentor
only when that hook fires (at once if the library is already imported). Every module an
instrumentor wraps lies under its library, so its own hooks are registered before any of them runs.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import Any, Callable

import wrapt.importer

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
        wrapt.importer.register_post_import_hook(self._hook, library)  # runs now if the app already imported it

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


def forget(module: str, hook: Callable) -> None:
    """Remove a hook whose module was never imported from wrapt's table (wrapt has no public way).

    If wrapt's internals change this does nothing, and the stale hook stays inert (it checks its owner's state).
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
