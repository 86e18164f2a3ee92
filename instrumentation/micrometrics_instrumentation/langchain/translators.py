"""LangChain retriever invocations and their documents -> retrieval records. Translation only."""

from __future__ import annotations

from numbers import Real
from typing import Any

from micrometrics import nesting
from micrometrics.records import Document, RetrievalRecord
from micrometrics.retrieval import to_document
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import values as V

#: ``VectorStore.similarity_search``'s default ``k``.
_VECTORSTORE_K_DEFAULT = 4
#: Vector store class names (lowercased, any class of its MRO) -> ``db.system.name``.
_DB_SYSTEMS = (
    ("chroma", V.DB_SYSTEM_CHROMA),
    ("qdrant", V.DB_SYSTEM_QDRANT),
    ("pgvector", V.DB_SYSTEM_POSTGRESQL),
    ("faiss", V.DB_SYSTEM_FAISS),
    ("inmemoryvectorstore", V.DB_SYSTEM_LANGCHAIN_IN_MEMORY),
)
#: What ``similarity_search_with_score`` returns, per store (docs/retrieval.md): ``None`` when we do not know,
#: and then its scores are not exported (a distance must never pass for a similarity).
_WITH_SCORE_KINDS = (
    ("inmemoryvectorstore", V.SCORE_KIND_SIMILARITY),  # cosine similarity
    ("pgvector", V.SCORE_KIND_DISTANCE),  # the strategy's distance: cosine distance, L2, or negative inner product
    ("chroma", V.SCORE_KIND_DISTANCE),  # the collection's distance
    ("qdrant", V.SCORE_KIND_SIMILARITY),  # Qdrant's score
)


def _class_names(store: Any) -> list[str]:
    return [c.__name__.lower() for c in type(store).__mro__]


def _lookup(store: Any, table: tuple[tuple[str, str], ...]) -> str | None:
    for name in _class_names(store):
        for key, value in table:
            if key in name:
                return value
    return None


def db_system(store: Any) -> str | None:
    return _lookup(store, _DB_SYSTEMS)


def with_score_kind(store: Any) -> str | None:
    """Whether the store's ``similarity_search_with_score`` scores are similarities or distances."""
    if any("faiss" in name for name in _class_names(store)):
        # IndexFlatIP under MAX_INNER_PRODUCT (inner products), else IndexFlatL2 (squared L2 distances).
        return V.SCORE_KIND_SIMILARITY if str(getattr(store, "distance_strategy", "")).upper().endswith("MAX_INNER_PRODUCT") else V.SCORE_KIND_DISTANCE
    return _lookup(store, _WITH_SCORE_KINDS)


def _collection(vectorstore: Any) -> str | None:
    # langchain-qdrant and langchain-postgres: ``collection_name``; langchain-chroma: ``_collection.name``.
    for value in (getattr(vectorstore, "collection_name", None), getattr(getattr(vectorstore, "_collection", None), "name", None)):
        if isinstance(value, str) and value:
            return value
    return None


def _engine_server(vectorstore: Any) -> tuple[str | None, int | None]:
    """langchain-postgres: the SQLAlchemy engine's host and port (already parsed: no I/O)."""
    for name in ("_engine", "_async_engine"):
        url = getattr(getattr(vectorstore, name, None), "url", None)
        host = getattr(url, "host", None)
        if isinstance(host, str) and host:
            port = getattr(url, "port", None)
            return host, port if isinstance(port, int) else 5432
    return None, None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class RetrieverTranslator(Translator):
    """``BaseRetriever.invoke`` / ``ainvoke``: every retriever built on langchain-core."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        query = args[0] if args else kwargs.get("input")
        vectorstore = getattr(instance, "vectorstore", None)
        name = getattr(instance, "name", None)
        top_k = None
        system = None
        collection = None
        host, port = None, None
        if vectorstore is not None:
            search_kwargs = getattr(instance, "search_kwargs", None) or {}
            extra = {k: v for k, v in kwargs.items() if k != "config"}
            top_k = _int({**search_kwargs, **extra}.get("k", _VECTORSTORE_K_DEFAULT))
            system = db_system(vectorstore)
            collection = _collection(vectorstore)
            host, port = _engine_server(vectorstore)
            source = name or collection or type(vectorstore).__name__
        else:
            top_k = _int(getattr(instance, "k", None)) or _int(getattr(instance, "top_k", None))
            source = name or type(instance).__name__
        return RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=V.PROVIDER_LANGCHAIN,
            server_address=host,
            server_port=port,
            data_source=source,
            query=query if isinstance(query, str) else None,
            top_k=top_k,
            # LangChain documents carry scores only when a retriever puts them in metadata.
            score_kind=V.SCORE_KIND_SIMILARITY,
            db_system=system,
            # The store's method (similarity_search, mmr...) is LangChain's, not the database's: no db.operation.name.
            db_collection=collection,
        )

    def response(self, record: RetrievalRecord, response: Any) -> None:
        # ``Document(id=..., page_content=..., metadata=...)``; a score only if the retriever put one in metadata.
        record.documents = [to_document(item) for item in response] if isinstance(response, list) else []


class VectorStoreRetrieverTranslator(RetrieverTranslator):
    """A retriever over a LangChain vector store: its span is the query's one span; the store's search under it
    (wrapped too) and the store's client or SQL under that open none (``nesting.SUPPRESS``)."""

    nested = nesting.SUPPRESS


#: The searches of ``VectorStore`` (and of the subclasses that override them), sync; the async ones are ``a`` + these.
SEARCHES = (
    "similarity_search",
    "similarity_search_with_score",
    "similarity_search_with_relevance_scores",
    "similarity_search_by_vector",
    "similarity_search_with_score_by_vector",
    "max_marginal_relevance_search",
    "max_marginal_relevance_search_by_vector",
)
_RELEVANCE = "similarity_search_with_relevance_scores"


class VectorStoreTranslator(Translator):
    """One search method of any LangChain ``VectorStore``: ``retrieval {collection or class}``.

    The first search the application called has the span: the searches it calls in turn (``similarity_search``
    over ``similarity_search_with_score``, an async one over its sync one) and the store's own instrumented client
    (Chroma, Qdrant, pgvector SQL) open none.
    """

    nested = nesting.SUPPRESS

    def __init__(self, method: str = "similarity_search") -> None:
        self.method = method.removeprefix("a") if method.startswith("a") and method[1:] in SEARCHES else method
        self.by_vector = "by_vector" in self.method

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        query = None if self.by_vector else (args[0] if args else kwargs.get("query"))
        k = args[1] if len(args) > 1 else kwargs.get("k", _VECTORSTORE_K_DEFAULT)
        collection = _collection(instance)
        host, port = _engine_server(instance)
        if self.method == _RELEVANCE:
            score_kind = V.SCORE_KIND_SIMILARITY  # LangChain's relevance: 0 dissimilar .. 1 most similar
        elif "with_score" in self.method:
            score_kind = with_score_kind(instance)
        else:
            score_kind = None  # documents without scores
        return RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=V.PROVIDER_LANGCHAIN,
            server_address=host,
            server_port=port,
            data_source=collection or type(instance).__name__,
            query=query if isinstance(query, str) else None,  # a query vector is never recorded
            top_k=_int(k),
            score_kind=score_kind,
            db_system=db_system(instance),
            db_collection=collection,
        )

    def response(self, record: RetrievalRecord, response: Any) -> None:
        if not isinstance(response, list):
            return
        with_scores = "score" in self.method
        docs = []
        for item in response:
            if with_scores and isinstance(item, tuple) and len(item) == 2:
                doc, score = to_document(item[0]), item[1]
                known = record.score_kind is not None and isinstance(score, Real) and not isinstance(score, bool)
                docs.append(Document(id=doc.id, score=float(score) if known else None, content=doc.content, metadata=doc.metadata))
            else:
                docs.append(to_document(item))
        record.documents = docs
