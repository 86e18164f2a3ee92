"""LangChain retriever invocations and their documents -> retrieval records. Translation only."""

from __future__ import annotations

from typing import Any

from micrometrics.records import RetrievalRecord
from micrometrics.retrieval import to_document
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import values as V

#: ``VectorStore.similarity_search``'s default ``k``.
_VECTORSTORE_K_DEFAULT = 4
#: Vector store class names -> ``db.system.name``.
_DB_SYSTEMS = (("chroma", V.DB_SYSTEM_CHROMA), ("qdrant", V.DB_SYSTEM_QDRANT))


def _collection(vectorstore: Any) -> str | None:
    # langchain-qdrant: ``collection_name``; langchain-chroma: ``_collection.name``.
    for value in (getattr(vectorstore, "collection_name", None), getattr(getattr(vectorstore, "_collection", None), "name", None)):
        if isinstance(value, str) and value:
            return value
    return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class RetrieverTranslator(Translator):
    """``BaseRetriever.invoke`` / ``ainvoke``: every retriever built on langchain-core."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        query = args[0] if args else kwargs.get("input")
        vectorstore = getattr(instance, "vectorstore", None)
        name = getattr(instance, "name", None)
        top_k = None
        db_system = None
        collection = None
        if vectorstore is not None:
            search_kwargs = getattr(instance, "search_kwargs", None) or {}
            extra = {k: v for k, v in kwargs.items() if k != "config"}
            top_k = _int({**search_kwargs, **extra}.get("k", _VECTORSTORE_K_DEFAULT))
            kind = type(vectorstore).__name__.lower()
            db_system = next((system for key, system in _DB_SYSTEMS if key in kind), None)
            collection = _collection(vectorstore)
            source = name or collection or type(vectorstore).__name__
        else:
            top_k = _int(getattr(instance, "k", None)) or _int(getattr(instance, "top_k", None))
            source = name or type(instance).__name__
        return RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=V.PROVIDER_LANGCHAIN,
            data_source=source,
            query=query if isinstance(query, str) else None,
            top_k=top_k,
            # LangChain documents carry scores only when a retriever puts them in metadata.
            score_kind=V.SCORE_KIND_SIMILARITY,
            db_system=db_system,
            # The store's method (similarity_search, mmr...) is LangChain's, not the database's: no db.operation.name.
            db_collection=collection,
        )

    def response(self, record: RetrievalRecord, response: Any) -> None:
        # ``Document(id=..., page_content=..., metadata=...)``; a score only if the retriever put one in metadata.
        record.documents = [to_document(item) for item in response] if isinstance(response, list) else []
