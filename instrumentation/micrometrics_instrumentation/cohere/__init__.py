"""micrometrics instrumentation for the ``cohere`` client library (API v2).

Wraps ``chat``, ``chat_stream`` and ``embed`` of ``ClientV2`` and ``AsyncClientV2`` (and of
``client.v2``). ``AsyncClientV2.chat_stream`` is an async generator method: it returns its
stream without being awaited, and so does the wrapped one. The v1 API (``Client.chat``) is
not traced.

``ClientV2`` binds ``chat`` and ``chat_stream`` onto each instance when it is built (its
argument checks): a client built before ``instrument()`` would keep the methods it bound
then. While instrumented, a data descriptor on the client classes (it takes precedence
over the instance's copy) traces the calls of such a copy; a copy bound since already
calls the traced method and is used as it is.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Iterable

import wrapt

from micrometrics import internal_errors
from micrometrics.calls import async_iterator_wrapper, async_wrapper, sync_wrapper
from micrometrics_instrumentation.cohere.translators import ChatTranslator, EmbedTranslator
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target, _lock
from micrometrics_instrumentation.libraries import LIBRARIES

__all__ = ["CohereInstrumentor"]

_V2 = "cohere.v2.client"
#: The client classes whose constructor binds methods onto the instance.
_CLIENTS = "cohere.client_v2"


#: By method name, the instances whose copy was bound while instrumented: it calls our wrapper (which
#: traces whenever micrometrics is instrumented, in this generation or a later one), so it is not traced twice.
_BOUND_TRACED: dict[str, weakref.WeakSet[Any]] = {}


class _InstanceCopy:
    """A data descriptor for a method the constructor copies onto each instance (see the module docstring)."""

    def __init__(self, name: str, wrapper: Callable) -> None:
        self.name = name
        self.wrapper = wrapper
        self.bound_since = _BOUND_TRACED.setdefault(name, weakref.WeakSet())

    def _inherited(self, obj: Any, owner: type) -> Any:
        for klass in owner.__mro__:
            found = vars(klass).get(self.name)
            if found is not None and found is not self:
                return found.__get__(obj, owner) if hasattr(found, "__get__") else found
        raise AttributeError(self.name)

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        owner = owner if owner is not None else type(obj)
        copy = vars(obj).get(self.name) if obj is not None else None
        if copy is None:
            return self._inherited(obj, owner)
        try:
            if obj in self.bound_since:
                return copy
        except TypeError:  # not weakly referenceable: the copy as it is
            return copy
        wrapper = self.wrapper

        def traced(*args: Any, **kwargs: Any) -> Any:
            return wrapper(copy, obj, args, kwargs)

        return traced

    def __set__(self, obj: Any, value: Any) -> None:
        vars(obj)[self.name] = value
        try:
            self.bound_since.add(obj)
        except TypeError:
            pass

    def __delete__(self, obj: Any) -> None:
        del vars(obj)[self.name]


class CohereInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["cohere"]
    instruments = ("cohere >= 5.9",)
    _copies: list[tuple[type, str]] = []

    def _translators(self) -> tuple[Any, Any, Any]:
        if not hasattr(self, "_made"):
            self._made = (ChatTranslator(), ChatTranslator(streams=True), EmbedTranslator())
        return self._made

    def targets(self) -> Iterable[Target]:
        plain, streamed, embed = self._translators()
        return (
            (_V2, "V2Client", "chat", sync_wrapper(plain)),
            (_V2, "V2Client", "chat_stream", sync_wrapper(streamed)),
            (_V2, "V2Client", "embed", sync_wrapper(embed)),
            (_V2, "AsyncV2Client", "chat", async_wrapper(plain)),
            (_V2, "AsyncV2Client", "chat_stream", async_iterator_wrapper(streamed)),
            (_V2, "AsyncV2Client", "embed", async_wrapper(embed)),
        )

    def _instrument(self, **kwargs: Any) -> None:
        super()._instrument(**kwargs)
        plain, streamed, _ = self._translators()
        copies = {
            "ClientV2": {"chat": sync_wrapper(plain), "chat_stream": sync_wrapper(streamed)},
            "AsyncClientV2": {"chat": async_wrapper(plain), "chat_stream": async_iterator_wrapper(streamed)},
        }
        with _lock:
            generation = self._hooks
            self._copies = []

            def install(module: Any) -> None:
                try:
                    with _lock:
                        if self._hooks is not generation:  # uninstrumented (or re-instrumented) since
                            return
                        for cls_name, methods in copies.items():
                            cls = getattr(module, cls_name, None)
                            for name, wrapper in methods.items() if isinstance(cls, type) else ():
                                if name not in vars(cls):
                                    setattr(cls, name, _InstanceCopy(name, wrapper))
                                    self._copies.append((cls, name))
                except Exception as exc:  # never fail the application's import
                    internal_errors.report("instrument", exc)

            self._hooks.append((_CLIENTS, install))
        wrapt.register_post_import_hook(install, _CLIENTS)

    def _uninstrument(self, **kwargs: Any) -> None:
        with _lock:
            copies, self._copies = self._copies, []
        super()._uninstrument(**kwargs)
        for cls, name in copies:
            if isinstance(vars(cls).get(name), _InstanceCopy):
                delattr(cls, name)
