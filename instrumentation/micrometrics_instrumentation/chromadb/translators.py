"""Chroma ``Collection.query`` calls and results -> retrieval records. Translation only."""

from __future__ import annotations

from numbers import Real
from typing import Any

from micrometrics.records import Document, RetrievalRecord
from micrometrics.reading import field, per_client, server
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import values as V

#: ``Collection.query``'s parameters in their positional order.
_PARAMS = ("query_embeddings", "query_texts", "query_images", "query_uris", "ids", "n_results", "where", "where_document", "include")
_N_RESULTS_DEFAULT = 10


def _arg(args: tuple, kwargs: dict, name: str, default: Any = None) -> Any:
    if name in kwargs:
        return kwargs[name]
    index = _PARAMS.index(name)
    return args[index] if index < len(args) else default


@per_client
def client_server(client: Any) -> tuple[str | None, int | None]:
    """(server.address, server.port) of an HTTP client; (None, None) in-process."""
    url = getattr(client, "_api_url", None)
    return server(url if isinstance(url, str) else None)


def distance_space(collection: Any) -> str | None:
    """The collection's distance function (``l2``, ``cosine``, ``ip``), from what the collection object already
    holds (its configuration, or the older ``hnsw:space`` metadata); None if it says none."""
    config = getattr(collection, "configuration_json", None)  # the raw dict: ``configuration`` builds the embedding function
    if isinstance(config, dict):
        for index in ("hnsw", "spann"):
            space = field(config.get(index), "space")
            if isinstance(space, str):
                return space
    metadata = getattr(collection, "metadata", None)
    space = metadata.get("hnsw:space") if isinstance(metadata, dict) else None
    return space if isinstance(space, str) else None


#: Spaces whose distance d is 1 minus a similarity: cosine (d = 1 - cos) and inner product (d = 1 - a·b).
#: An l2 distance (squared Euclidean) has no such similarity: it stays a distance.
_ONE_MINUS_SIMILARITY = frozenset({"cosine", "ip"})


def _first_row(result: Any, key: str) -> list:
    rows = field(result, key)
    if not isinstance(rows, (list, tuple)) or not rows:  # absent, or not what Chroma returns
        return []
    first = rows[0]
    return list(first) if isinstance(first, (list, tuple)) else []


class QueryTranslator(Translator):
    """``Collection.query`` / ``AsyncCollection.query``.

    A batch of queries is one call and one span: it records the first query's
    documents (the ones its metrics can judge against the first query text).
    """

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        texts = _arg(args, kwargs, "query_texts")
        query = texts if isinstance(texts, str) else texts[0] if isinstance(texts, list) and texts and isinstance(texts[0], str) else None
        n_results = _arg(args, kwargs, "n_results", _N_RESULTS_DEFAULT)
        host, port = client_server(getattr(instance, "_client", None))
        similarity = distance_space(instance) in _ONE_MINUS_SIMILARITY
        return RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=V.PROVIDER_CHROMA,
            server_address=host,
            server_port=port,
            data_source=getattr(instance, "name", None),
            query=query,
            top_k=n_results if isinstance(n_results, int) and not isinstance(n_results, bool) else None,
            score_kind=V.SCORE_KIND_SIMILARITY if similarity else V.SCORE_KIND_DISTANCE,
            db_system=V.DB_SYSTEM_CHROMA,
            db_collection=getattr(instance, "name", None),
            db_operation=V.DB_OPERATION_CHROMA_QUERY,
        )

    def response(self, record: RetrievalRecord, response: Any) -> None:
        ids = _first_row(response, "ids")
        distances = _first_row(response, "distances")
        contents = _first_row(response, "documents")
        metadatas = _first_row(response, "metadatas")
        similarity = record.score_kind == V.SCORE_KIND_SIMILARITY  # the space made it one at request()
        docs = []
        for i, doc_id in enumerate(ids):
            distance = distances[i] if i < len(distances) else None
            if not isinstance(distance, Real) or isinstance(distance, bool):  # numpy floats are Real too
                distance = None
            content = contents[i] if i < len(contents) else None
            metadata = metadatas[i] if i < len(metadatas) else None
            docs.append(
                Document(
                    id=str(doc_id),
                    score=None if distance is None else 1.0 - float(distance) if similarity else float(distance),
                    content=content if isinstance(content, str) else None,
                    metadata=metadata if isinstance(metadata, dict) else None,
                )
            )
        record.documents = docs
