"""weaviate-client v4 ``collection.query.{search}`` calls and ``QueryReturn`` objects -> retrieval records. Translation only.

Scores: only what the query's ``return_metadata`` asked the server for (we never add metadata to a user's
query: it would change what their call returns). A vector search (``near_*``) records ``distance`` when
asked for (a distance), else ``certainty`` (a similarity); ``hybrid`` and ``bm25`` record ``score`` (a
similarity: higher ranks first). A query that asked for none has ids and no scores.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Mapping

from micrometrics.records import Document, RetrievalRecord
from micrometrics.reading import field, per_client
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import values as V

#: Each wrapped search (its method name is its ``db.operation.name``) -> the name of its sync query class.
SEARCHES = {
    V.DB_OPERATION_WEAVIATE_NEAR_VECTOR: "_NearVectorQuery",
    V.DB_OPERATION_WEAVIATE_NEAR_TEXT: "_NearTextQuery",
    V.DB_OPERATION_WEAVIATE_NEAR_OBJECT: "_NearObjectQuery",
    V.DB_OPERATION_WEAVIATE_HYBRID: "_HybridQuery",
    V.DB_OPERATION_WEAVIATE_BM25: "_BM25Query",
}
#: The searches whose first argument is the query text (``near_text`` also takes a list of concepts).
_TEXT_SEARCHES = frozenset({V.DB_OPERATION_WEAVIATE_NEAR_TEXT, V.DB_OPERATION_WEAVIATE_HYBRID, V.DB_OPERATION_WEAVIATE_BM25})
#: The searches that rank by a relevance score rather than by vector distance.
_RANKED_SEARCHES = frozenset({V.DB_OPERATION_WEAVIATE_HYBRID, V.DB_OPERATION_WEAVIATE_BM25})
#: Per search, the returned metadata fields read as the score, in preference order, with the kind each is.
_VECTOR_SCORES = (("distance", V.SCORE_KIND_DISTANCE), ("certainty", V.SCORE_KIND_SIMILARITY))
_RANKED_SCORES = (("score", V.SCORE_KIND_SIMILARITY),)
#: Properties that usually hold an object's text (LangChain, LlamaIndex, plain).
_CONTENT_KEYS = ("text", "page_content", "content", "document", "chunk", "body")


@per_client
def query_target(query: Any) -> tuple[str | None, str | None, int | None]:
    """(collection name, server.address, server.port) of a collection's ``query`` namespace; searches go over gRPC."""
    name = getattr(query, "_name", None)
    grpc = getattr(getattr(getattr(query, "_connection", None), "_connection_params", None), "grpc", None)
    host, port = getattr(grpc, "host", None), getattr(grpc, "port", None)
    return (
        name if isinstance(name, str) else None,
        host if isinstance(host, str) and host else None,
        port if isinstance(port, int) and not isinstance(port, bool) else None,
    )


def _first(args: tuple, kwargs: dict, name: str) -> Any:
    return kwargs[name] if name in kwargs else (args[0] if args else None)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value) else None


def _content(properties: Any) -> str | None:
    if not isinstance(properties, Mapping):
        return None
    return next((properties[k] for k in _CONTENT_KEYS if isinstance(properties.get(k), str)), None)


class QueryTranslator(Translator):
    """One ``collection.query.{method}`` call (sync or async; a ``group_by`` query too, from its ``objects``)."""

    def __init__(self, method: str) -> None:
        self.method = method
        self.scores = _RANKED_SCORES if method in _RANKED_SEARCHES else _VECTOR_SCORES

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        name, host, port = query_target(instance)
        limit = kwargs.get("limit")
        query = _first(args, kwargs, "query") if self.method in _TEXT_SEARCHES else None
        return RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=V.PROVIDER_WEAVIATE,
            server_address=host,
            server_port=port,
            data_source=name,
            query=query if isinstance(query, str) else None,
            top_k=limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
            db_system=V.DB_SYSTEM_WEAVIATE,
            db_collection=name,
            db_operation=self.method,
        )

    def response(self, record: RetrievalRecord, response: Any) -> None:
        objects = field(response, "objects")
        objects = objects if isinstance(objects, (list, tuple)) else ()
        metadatas = [field(obj, "metadata") for obj in objects]
        # The first score field the query asked for (every returned object carries it then).
        key, kind = next(((k, kind) for k, kind in self.scores if any(_number(field(m, k)) is not None for m in metadatas)), (None, None))
        docs = []
        for obj, metadata in zip(objects, metadatas):
            uuid = field(obj, "uuid")
            properties = field(obj, "properties")
            docs.append(Document(
                id=None if uuid is None else str(uuid),
                score=_number(field(metadata, key)) if key else None,
                content=_content(properties),
                metadata=dict(properties) if isinstance(properties, Mapping) else None,
            ))
        record.documents = docs
        record.score_kind = kind
