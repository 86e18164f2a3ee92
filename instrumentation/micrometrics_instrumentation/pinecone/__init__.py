"""micrometrics instrumentation for the ``pinecone`` client (REST data plane).

Wraps ``Index.query`` and ``AsyncIndex.query``: one ``retrieval {index}`` span per query, with the
matches' ids and scores. ``GrpcIndex`` (the gRPC data plane) is not wrapped.
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.pinecone.translators import QueryTranslator

__all__ = ["PineconeInstrumentor"]


class PineconeInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["pinecone"]
    #: The client rewritten around ``pinecone.index.Index`` / ``pinecone.async_client.async_index.AsyncIndex`` (tested: 10.2);
    #: v5-v7 kept their index classes in other modules (``pinecone.db_data``), not wrapped here.
    instruments = ("pinecone >= 10.0",)

    def targets(self) -> Iterable[Target]:
        query = QueryTranslator()
        return (
            ("pinecone.index", "Index", "query", sync_wrapper(query)),
            ("pinecone.async_client.async_index", "AsyncIndex", "query", async_wrapper(query)),
        )
