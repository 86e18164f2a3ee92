"""micrometrics instrumentation for the ``elasticsearch`` client library.

Wraps ``Elasticsearch.search`` and ``AsyncElasticsearch.search``: a kNN search (the ``knn``
option, or a ``knn`` query in ``query``, also inside a ``bool`` query) is one ``retrieval {index}``
span with the hits' ids and scores; every other search is left untouched (knn.py says why).
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.elasticsearch.knn import vector_searches_only
from micrometrics_instrumentation.elasticsearch.translators import SearchTranslator, is_knn_search
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES

__all__ = ["ElasticsearchInstrumentor"]


class ElasticsearchInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["elasticsearch"]
    instruments = ("elasticsearch >= 8.0",)

    def targets(self) -> Iterable[Target]:
        search = SearchTranslator()
        return (
            ("elasticsearch._sync.client", "Elasticsearch", "search", vector_searches_only(sync_wrapper(search), is_knn_search)),
            ("elasticsearch._async.client", "AsyncElasticsearch", "search", vector_searches_only(async_wrapper(search), is_knn_search)),
        )
