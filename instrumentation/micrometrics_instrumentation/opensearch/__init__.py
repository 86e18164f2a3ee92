"""micrometrics instrumentation for ``opensearch-py``.

Wraps ``OpenSearch.search`` and ``AsyncOpenSearch.search``: a k-NN search (a ``knn`` query, or the
neural plugin's ``neural`` query, at the top of the query or inside a ``bool`` query) is one
``retrieval {index}`` span with the hits' ids and scores; every other search is left untouched
(the rule of the elasticsearch package's knn.py).
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.elasticsearch.knn import vector_searches_only
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.opensearch.translators import SearchTranslator, is_knn_search

__all__ = ["OpenSearchInstrumentor"]


class OpenSearchInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["opensearch"]
    instruments = ("opensearch-py >= 2.0",)

    def targets(self) -> Iterable[Target]:
        search = SearchTranslator()
        return (
            ("opensearchpy.client", "OpenSearch", "search", vector_searches_only(sync_wrapper(search), is_knn_search)),
            ("opensearchpy._async.client", "AsyncOpenSearch", "search", vector_searches_only(async_wrapper(search), is_knn_search)),
        )
