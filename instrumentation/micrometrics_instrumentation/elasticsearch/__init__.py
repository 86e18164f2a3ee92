"""micrometrics instrumentation for the ``elasticsearch`` client library.

Wraps ``Elasticsearch.search`` and ``AsyncElasticsearch.search``: a kNN search (the ``knn``
option, or a ``knn`` query in ``query``, also inside a ``bool`` query) is one ``retrieval {index}``
span with the hits' ids and scores; every other search is left untouched (knn.py says why).

The client traces itself (elasticsearch 8.13+: a ``search`` span per API call, on by default): for a
kNN search we trace, that would be a second span for the same query. While we trace one, the
client's span is skipped (its tracing-off path), as anthropic's is (docs/coexistence.md, rule 3);
searches we do not trace keep the client's own spans.
"""

from __future__ import annotations

import contextlib
import sys
from contextvars import ContextVar
from typing import Any, Callable, Iterable

from opentelemetry import trace

from micrometrics import internal_errors
from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.elasticsearch.knn import vector_searches_only
from micrometrics_instrumentation.elasticsearch.translators import SearchTranslator, is_knn_search
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES

__all__ = ["ElasticsearchInstrumentor"]

#: Where the client opens its own span per API call (elasticsearch 8.13+; earlier releases do not trace).
_OWN_TRACING = "elasticsearch._otel"
#: True while the client runs a search that we trace (our span is current).
_owned: ContextVar[bool] = ContextVar("micrometrics_elasticsearch_owned", default=False)


def _ours(wrapper: Callable, is_async: bool) -> Callable:
    """``wrapper`` whose original call runs marked as ours when our span started (it is current)."""

    def run_owned(wrapped: Callable, before: Any) -> Callable:
        if is_async:
            async def call(*args: Any, **kwargs: Any) -> Any:
                token = _owned.set(trace.get_current_span() is not before)
                try:
                    return await wrapped(*args, **kwargs)
                finally:
                    _owned.reset(token)
        else:
            def call(*args: Any, **kwargs: Any) -> Any:
                token = _owned.set(trace.get_current_span() is not before)
                try:
                    return wrapped(*args, **kwargs)
                finally:
                    _owned.reset(token)
        return call

    def traced(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        # The span current before ours: if it is still current inside, our span did not start (the client keeps its own).
        return wrapper(run_owned(wrapped, trace.get_current_span()), instance, args, kwargs)

    return traced


def _defer_to_ours(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """The client's span for an API call, unless we trace the call: then its tracing-off path (it records nothing)."""
    if not _owned.get():
        return wrapped(*args, **kwargs)
    try:
        return contextlib.nullcontext(sys.modules[_OWN_TRACING].OpenTelemetrySpan(None))
    except Exception as exc:
        internal_errors.report("request", exc)
        return wrapped(*args, **kwargs)


class ElasticsearchInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["elasticsearch"]
    instruments = ("elasticsearch >= 8.0",)

    def targets(self) -> Iterable[Target]:
        search = SearchTranslator()
        return (
            ("elasticsearch._sync.client", "Elasticsearch", "search", vector_searches_only(_ours(sync_wrapper(search), False), is_knn_search)),
            ("elasticsearch._async.client", "AsyncElasticsearch", "search", vector_searches_only(_ours(async_wrapper(search), True), is_knn_search)),
            (_OWN_TRACING, "OpenTelemetry", "span", _defer_to_ours),
        )
