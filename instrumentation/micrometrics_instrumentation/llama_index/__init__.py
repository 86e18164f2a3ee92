"""micrometrics instrumentation for LlamaIndex (``llama-index-core``).

No method is wrapped: when the application imports ``llama_index.core``, a span handler and an event handler are
added to LlamaIndex's root instrumentation dispatcher (every LlamaIndex dispatcher propagates to it), and
``uninstrument()`` removes them. What becomes a span is said in handlers.py: model calls (one inference span
with the instrumented SDK below), embeddings, retrievers, query engines, agents, workflows and tools.
"""

from __future__ import annotations

import sys
import threading
from typing import Any, Callable, Iterable

import wrapt

from micrometrics import internal_errors
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.llama_index.handlers import Handlers, event_handler, span_handler

__all__ = ["LlamaIndexInstrumentor"]

_MODULE = "llama_index.core"
_INSTRUMENTATION = "llama_index.core.instrumentation"


class LlamaIndexInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["llama_index"]
    instruments = ("llama-index-core >= 0.12",)

    _lock = threading.Lock()
    _handlers: Handlers | None = None
    #: The span and event handler objects we added to the root dispatcher (removed by identity).
    _added: tuple[Any, Any] | None = None

    def targets(self) -> Iterable[Target]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        super()._instrument(**kwargs)
        generation = self._hooks
        hook = self._on_llama_index(generation)
        generation.append((_MODULE, hook))  # forgotten by uninstrument with the others
        wrapt.register_post_import_hook(hook, _MODULE)  # runs now if llama_index.core is imported

    def _on_llama_index(self, generation: list) -> Callable[[Any], None]:
        def hook(module: Any) -> None:
            try:
                with self._lock:
                    if self._hooks is not generation or self._added is not None or not self._supported(generation):
                        return
                    from llama_index.core.instrumentation import get_dispatcher

                    handlers = Handlers()
                    spans, events = span_handler(handlers), event_handler(handlers)
                    root = get_dispatcher()
                    root.add_span_handler(spans)
                    root.add_event_handler(events)
                    self._handlers, self._added = handlers, (spans, events)
            except Exception as exc:  # never fail the application's import
                internal_errors.report("instrument", exc)

        return hook

    def _uninstrument(self, **kwargs: Any) -> None:
        super()._uninstrument(**kwargs)
        with self._lock:
            added, handlers, self._added, self._handlers = self._added, self._handlers, None, None
        if added is not None and _INSTRUMENTATION in sys.modules:
            try:
                root = sys.modules[_INSTRUMENTATION].get_dispatcher()
                spans, events = added
                root.span_handlers = [h for h in root.span_handlers if h is not spans]
                root.event_handlers = [h for h in root.event_handlers if h is not events]
            except Exception as exc:
                internal_errors.report("instrument", exc)
        if handlers is not None:
            handlers.close()
