"""micrometrics instrumentation for the ``weaviate-client`` v4 collections API.

Wraps ``collection.query.near_vector``, ``near_text``, ``near_object``, ``hybrid`` and ``bm25`` of the
sync client (``WeaviateClient``) and the async one (``WeaviateAsyncClient``): one ``retrieval {collection}``
span per query, with the objects' uuids in rank order and the scores the query asked for (translators.py
says which). ``collection.generate.*`` (retrieval plus generation in one call) is not wrapped.
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.weaviate.translators import SEARCHES, QueryTranslator

__all__ = ["WeaviateInstrumentor"]

_QUERIES = "weaviate.collections.queries"


class WeaviateInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["weaviate"]
    #: Tested: 4.24 (one sync and one async class per search, in ``weaviate.collections.queries.{search}.query``).
    instruments = ("weaviate-client >= 4.4",)

    def targets(self) -> Iterable[Target]:
        targets: list[Target] = []
        for method, sync_class in SEARCHES.items():
            translator = QueryTranslator(method)
            # The executor's method returns a result (sync connection) or an awaitable (async): wrapped per colour.
            targets.append((f"{_QUERIES}.{method}.query.sync", sync_class, method, sync_wrapper(translator)))
            targets.append((f"{_QUERIES}.{method}.query.async_", f"{sync_class}Async", method, async_wrapper(translator)))
        return targets
