"""micrometrics instrumentation for the ``qdrant-client`` library.

Wraps ``query_points`` of ``QdrantClient`` and ``AsyncQdrantClient`` (remote and
local mode), and the older ``search`` where the installed version still has it: one
``retrieval {collection}`` span per call, with the points' ids and scores.
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.qdrant.translators import QueryPointsTranslator, SearchTranslator

__all__ = ["QdrantInstrumentor"]

_SYNC = "qdrant_client.qdrant_client"
_ASYNC = "qdrant_client.async_qdrant_client"


class QdrantInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["qdrant"]
    instruments = ("qdrant-client >= 1.10",)

    def targets(self) -> Iterable[Target]:
        query, search = QueryPointsTranslator(), SearchTranslator()
        return (
            (_SYNC, "QdrantClient", "query_points", sync_wrapper(query)),
            (_ASYNC, "AsyncQdrantClient", "query_points", async_wrapper(query)),
            # Absent since qdrant-client 1.15: the instrumentor skips missing methods.
            (_SYNC, "QdrantClient", "search", sync_wrapper(search)),
            (_ASYNC, "AsyncQdrantClient", "search", async_wrapper(search)),
        )
