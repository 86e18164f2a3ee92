"""Elasticsearch kNN ``search`` calls and their hits -> retrieval records. Translation only."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Mapping

from micrometrics.records import Document, RetrievalRecord
from micrometrics.reading import per_client
from micrometrics_instrumentation.elasticsearch.knn import knn_clause
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import values as V

#: The search's default ``size``.
_SIZE_DEFAULT = 10
#: ``_source`` fields that usually hold a document's text (LangChain, LlamaIndex, plain).
_CONTENT_KEYS = ("text", "page_content", "content", "document", "chunk", "body")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _search_request(kwargs: dict) -> dict:
    """The search as one dict: the keyword options over a ``body=`` the application passed whole."""
    body = kwargs.get("body")
    merged = dict(body) if isinstance(body, Mapping) else {}
    merged.update({k: v for k, v in kwargs.items() if k != "body" and v is not None})
    return merged


def _first_knn(search: Mapping) -> Mapping | None:
    knn = search.get("knn")
    if isinstance(knn, list):  # several kNN searches, combined by the cluster: the first one's k
        knn = knn[0] if knn else None
    return knn if isinstance(knn, Mapping) else knn_clause(search.get("query"))


def is_knn_search(kwargs: dict) -> bool:
    return _first_knn(_search_request(kwargs)) is not None


def top_k(size: Any, k: Any) -> int:
    """How many hits the search can return: ``k`` and ``size`` both cap it; ``size`` is 10 when unset."""
    size, k = _int(size), _int(k)
    return min(size if size is not None else _SIZE_DEFAULT, k) if k is not None else size if size is not None else _SIZE_DEFAULT


def query_text(knn: Mapping) -> str | None:
    """The text a ``query_vector_builder`` embeds on the cluster (``text_embedding.model_text``); a vector has none."""
    builder = knn.get("query_vector_builder")
    embedding = builder.get("text_embedding") if isinstance(builder, Mapping) else None
    text = embedding.get("model_text") if isinstance(embedding, Mapping) else None
    return text if isinstance(text, str) else None


def index_name(index: Any) -> str | None:
    if isinstance(index, str) and index:
        return index
    if isinstance(index, (list, tuple)) and index and all(isinstance(i, str) for i in index):
        return ",".join(index)  # as the request path names them
    return None


def hits(response: Any) -> list[Document]:
    """``hits.hits`` in the cluster's order: ``_id``, ``_score`` (a similarity: higher is nearer), ``_source`` text."""
    body = getattr(response, "body", response)  # the client's ObjectApiResponse, or a plain dict
    outer = body.get("hits") if isinstance(body, Mapping) else None
    items = outer.get("hits") if isinstance(outer, Mapping) else None
    docs = []
    for hit in items if isinstance(items, list) else ():
        if not isinstance(hit, Mapping):
            docs.append(Document())
            continue
        doc_id, score, source = hit.get("_id"), hit.get("_score"), hit.get("_source")
        score = float(score) if isinstance(score, Real) and not isinstance(score, bool) and math.isfinite(score) else None
        content = None
        if isinstance(source, Mapping):
            content = next((source[k] for k in _CONTENT_KEYS if isinstance(source.get(k), str)), None)
        docs.append(Document(id=None if doc_id is None else str(doc_id), score=score, content=content,
                             metadata=dict(source) if isinstance(source, Mapping) else None))
    return docs


@per_client
def client_server(client: Any) -> tuple[str | None, int | None]:
    """The first node the client was given (a cluster has several; the first names it)."""
    pool = getattr(getattr(client, "transport", None), "node_pool", None)
    nodes = pool.all() if pool is not None else []
    config = getattr(nodes[0], "config", None) if nodes else None
    host, port = getattr(config, "host", None), getattr(config, "port", None)
    return (host, _int(port)) if isinstance(host, str) and host else (None, None)


class SearchTranslator(Translator):
    """``search`` with ``knn`` (or a ``knn`` query): one span, the hits the cluster returned."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        search = _search_request(kwargs)
        knn = _first_knn(search) or {}
        index = index_name(search.get("index"))
        host, port = client_server(instance)
        return RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=V.PROVIDER_ELASTICSEARCH,
            server_address=host,
            server_port=port,
            data_source=index,
            query=query_text(knn),
            top_k=top_k(search.get("size"), knn.get("k")),
            score_kind=V.SCORE_KIND_SIMILARITY,
            db_system=V.DB_SYSTEM_ELASTICSEARCH,
            db_collection=index,
            db_operation=V.DB_OPERATION_SEARCH,
        )

    def response(self, record: RetrievalRecord, response: Any) -> None:
        record.documents = hits(response)
