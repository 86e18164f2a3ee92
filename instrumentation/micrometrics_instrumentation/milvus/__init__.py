"""micrometrics instrumentation for ``pymilvus``.

Wraps ``MilvusClient.search`` and ``AsyncMilvusClient.search`` (a Milvus server, Zilliz Cloud, or
the embedded ``milvus-lite`` a ``MilvusClient("./file.db")`` starts): one ``retrieval {collection}``
span per call, with the hits' ids and scores (similarity or distance by the metric type). The ORM's
``Collection.search`` too, while pymilvus has it.
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.milvus.translators import CollectionSearchTranslator, SearchTranslator

__all__ = ["MilvusInstrumentor"]


class MilvusInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["milvus"]
    instruments = ("pymilvus >= 2.4",)

    def targets(self) -> Iterable[Target]:
        search = SearchTranslator()
        return (
            ("pymilvus.milvus_client.milvus_client", "MilvusClient", "search", sync_wrapper(search)),
            ("pymilvus.milvus_client.async_milvus_client", "AsyncMilvusClient", "search", async_wrapper(search)),
            # The ORM API (removed in pymilvus 3.1): absent there, skipped.
            ("pymilvus.orm.collection", "Collection", "search", sync_wrapper(CollectionSearchTranslator())),
        )
