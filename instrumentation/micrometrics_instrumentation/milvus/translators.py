"""pymilvus ``MilvusClient.search`` / ``AsyncMilvusClient.search`` calls and results -> retrieval records. Translation only."""

from __future__ import annotations

from numbers import Real
from typing import Any

from micrometrics.records import Document, RetrievalRecord
from micrometrics.reading import field, per_client
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import values as V

#: ``search``'s parameters in their positional order.
_PARAMS = ("collection_name", "data", "filter", "limit", "output_fields", "search_params")
_LIMIT_DEFAULT = 10
#: Entity fields that usually hold a hit's text (LangChain, LlamaIndex, plain).
_CONTENT_KEYS = ("text", "page_content", "content", "document", "chunk", "body")
#: Metric types whose ``distance`` is a similarity (higher is nearer); the others (L2, HAMMING, JACCARD, ...) are distances.
_SIMILARITY_METRICS = frozenset({"COSINE", "IP", "BM25", "MAX_SIM", "MAX_SIM_COSINE", "MAX_SIM_IP"})


#: The ORM's ``Collection.search`` parameters in their positional order.
_ORM_PARAMS = ("data", "anns_field", "param", "limit")


def _arg(args: tuple, kwargs: dict, name: str, default: Any = None, params: tuple[str, ...] = _PARAMS) -> Any:
    if name in kwargs:
        return kwargs[name]
    index = params.index(name)
    return args[index] if index < len(args) else default


@per_client
def client_server(client: Any) -> tuple[str | None, int | None]:
    """(server.address, server.port) the client's gRPC channel goes to (milvus-lite's local server too); none over a unix socket."""
    address = getattr(getattr(client, "_config", None), "address", None)
    if not isinstance(address, str) or ":" not in address or address.startswith("unix:"):
        return None, None
    host, _, port = address.rpartition(":")
    return (host or None), (int(port) if port.isdigit() else None)


def metric_score_kind(search_params: Any) -> str | None:
    """``similarity`` or ``distance`` by the metric type the search names; None when it names none."""
    metric = field(search_params, "metric_type")
    if not isinstance(metric, str):
        return None
    return V.SCORE_KIND_SIMILARITY if metric.upper() in _SIMILARITY_METRICS else V.SCORE_KIND_DISTANCE


def order_score_kind(scores: list[float]) -> str | None:
    """Milvus returns hits nearest first: scores falling are similarities, rising are distances; None if they do not say."""
    falling = all(a >= b for a, b in zip(scores, scores[1:]))
    rising = all(a <= b for a, b in zip(scores, scores[1:]))
    if falling and not rising:
        return V.SCORE_KIND_SIMILARITY
    if rising and not falling:
        return V.SCORE_KIND_DISTANCE
    return None


def _score(hit: Any) -> float | None:
    score = field(hit, "distance")
    return float(score) if isinstance(score, Real) and not isinstance(score, bool) else None


def _content(entity: Any) -> str | None:
    if not isinstance(entity, dict):
        return None
    for key in _CONTENT_KEYS:
        value = entity.get(key)
        if isinstance(value, str):
            return value
    return None


def _first_query_hits(response: Any) -> list:
    # A SearchResult is a list with one list of hits per query vector.
    if not isinstance(response, (list, tuple)) or not response:
        return []
    first = response[0]
    return list(first) if isinstance(first, (list, tuple)) else []


def _record(collection: Any, data: Any, limit: Any, search_params: Any, server: tuple[str | None, int | None]) -> RetrievalRecord:
    collection = collection if isinstance(collection, str) else None
    # Full-text search (a BM25 function on the collection) takes the query as text.
    query = data[0] if isinstance(data, (list, tuple)) and data and isinstance(data[0], str) else None
    return RetrievalRecord(
        operation=V.OPERATION_RETRIEVAL,
        provider=V.PROVIDER_MILVUS,
        server_address=server[0],
        server_port=server[1],
        data_source=collection,
        query=query,
        top_k=limit if isinstance(limit, int) and not isinstance(limit, bool) else None,
        score_kind=metric_score_kind(search_params),
        db_system=V.DB_SYSTEM_MILVUS,
        db_collection=collection,
        db_operation=V.DB_OPERATION_MILVUS_SEARCH,
    )


class SearchTranslator(Translator):
    """``MilvusClient.search``: a batch of query vectors is one call and one span, recording the first query's hits."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        return _record(
            _arg(args, kwargs, "collection_name"), _arg(args, kwargs, "data"), _arg(args, kwargs, "limit", _LIMIT_DEFAULT),
            _arg(args, kwargs, "search_params"), client_server(instance),
        )

    def response(self, record: RetrievalRecord, response: Any) -> None:
        docs = []
        for hit in _first_query_hits(response):
            hit_id = field(hit, "id")
            entity = field(hit, "entity")
            docs.append(
                Document(
                    id=str(hit_id) if hit_id is not None else None,
                    score=_score(hit),
                    content=_content(entity),
                    metadata=entity if isinstance(entity, dict) else None,
                )
            )
        record.documents = docs
        if record.score_kind is None:  # the search named no metric: the collection's index has it, read from the order
            record.score_kind = order_score_kind([d.score for d in docs if d.score is not None])


class CollectionSearchTranslator(SearchTranslator):
    """The ORM's ``Collection.search(data, anns_field, param, limit)`` (deprecated in pymilvus 3.0): the same
    result; ``param`` holds the metric type. The ORM's connection does not expose its address: no server."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        return _record(
            getattr(instance, "name", None), _arg(args, kwargs, "data", params=_ORM_PARAMS),
            _arg(args, kwargs, "limit", params=_ORM_PARAMS), _arg(args, kwargs, "param", params=_ORM_PARAMS), (None, None),
        )
