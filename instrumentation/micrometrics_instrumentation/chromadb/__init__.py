"""micrometrics instrumentation for the ``chromadb`` client library.

Wraps ``Collection.query`` (in-process and HTTP clients) and ``AsyncCollection.query``
(``chromadb.AsyncHttpClient``): one ``retrieval {collection}`` span per call, with
the documents' ids and distances.
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.chromadb.translators import QueryTranslator
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES

__all__ = ["ChromaInstrumentor"]


class ChromaInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["chromadb"]
    instruments = ("chromadb >= 0.5",)

    def targets(self) -> Iterable[Target]:
        query = QueryTranslator()
        return (
            ("chromadb.api.models.Collection", "Collection", "query", sync_wrapper(query)),
            ("chromadb.api.models.AsyncCollection", "AsyncCollection", "query", async_wrapper(query)),
        )
