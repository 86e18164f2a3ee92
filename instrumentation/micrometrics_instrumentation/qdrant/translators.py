"""qdrant-client ``query_points`` / ``search`` calls and results -> retrieval records. Translation only."""

from __future__ import annotations

from typing import Any

from micrometrics.records import Document, RetrievalRecord
from micrometrics.reading import per_client
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import values as V

#: Payload keys that usually hold a point's text (LangChain, LlamaIndex, plain).
_CONTENT_KEYS = ("page_content", "text", "content", "document", "chunk", "body")
_LIMIT_DEFAULT = 10


@per_client
def server(client: Any) -> tuple[str | None, int | None]:
    """(server.address, server.port) of a remote client; (None, None) for local mode."""
    inner = getattr(client, "_client", None)
    host = getattr(inner, "_host", None)
    if not isinstance(host, str) or not host:
        return None, None
    port = getattr(inner, "_grpc_port", None) if getattr(inner, "_prefer_grpc", False) else getattr(inner, "_port", None)
    return host, port if isinstance(port, int) else None


def _query_text(query: Any) -> str | None:
    # ``models.Document(text=..., model=...)``: text embedded server-side or by fastembed.
    text = getattr(query, "text", None)
    return text if isinstance(text, str) else None


def _content(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    for key in _CONTENT_KEYS:
        value = payload.get(key)
        if isinstance(value, str):
            return value
    return None


def _documents(points: Any) -> list[Document]:
    docs = []
    for point in points or ():
        score = getattr(point, "score", None)
        payload = getattr(point, "payload", None)
        point_id = getattr(point, "id", None)
        docs.append(
            Document(
                id=str(point_id) if point_id is not None else None,
                score=float(score) if isinstance(score, (int, float)) else None,
                content=_content(payload),
                metadata=payload if isinstance(payload, dict) else None,
            )
        )
    return docs


class _Translator(Translator):
    #: The argument holding the query, and its position after ``collection_name``.
    query_param = "query"
    limit_index = 6
    operation = V.DB_OPERATION_QDRANT_QUERY_POINTS

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        collection = kwargs.get("collection_name", args[0] if args else None)
        query = kwargs.get(self.query_param, args[1] if len(args) > 1 else None)
        limit = kwargs.get("limit", args[self.limit_index] if len(args) > self.limit_index else _LIMIT_DEFAULT)
        host, port = server(instance)
        return RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=V.PROVIDER_QDRANT,
            server_address=host,
            server_port=port,
            data_source=collection if isinstance(collection, str) else None,
            query=_query_text(query),
            top_k=limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
            # Cosine and dot-product scores; a Euclid/Manhattan collection's scores are distances.
            score_kind=V.SCORE_KIND_SIMILARITY,
            db_system=V.DB_SYSTEM_QDRANT,
            db_collection=collection if isinstance(collection, str) else None,
            db_operation=self.operation,
        )


class QueryPointsTranslator(_Translator):
    """``query_points``: returns ``QueryResponse(points=[ScoredPoint, ...])``."""

    def response(self, record: RetrievalRecord, response: Any) -> None:
        record.documents = _documents(getattr(response, "points", None))


class SearchTranslator(_Translator):
    """The older ``search`` (removed in qdrant-client 1.15): returns ``[ScoredPoint, ...]``."""

    query_param = "query_vector"
    limit_index = 4
    operation = V.DB_OPERATION_QDRANT_SEARCH

    def response(self, record: RetrievalRecord, response: Any) -> None:
        record.documents = _documents(response if isinstance(response, list) else None)
