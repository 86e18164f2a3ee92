"""opensearch-py k-NN ``search`` calls and their hits -> retrieval records. Translation only.

The response is Elasticsearch's ``hits.hits``; the request differs: ``knn`` is keyed by the vector field
(``{"knn": {"embedding": {"vector": [...], "k": 3}}}``) and the options come as ``body``, keywords or ``params``.
"""

from __future__ import annotations

from typing import Any, Mapping

from micrometrics.records import RetrievalRecord
from micrometrics.reading import per_client
from micrometrics_instrumentation.elasticsearch.knn import knn_clause
from micrometrics_instrumentation.elasticsearch.translators import hits, index_name, top_k
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import values as V

#: Vector queries: the k-NN plugin's ``knn``, the neural search plugin's ``neural`` (text embedded on the cluster).
_KINDS = ("knn", "neural")


def _vector_query(kwargs: dict) -> Mapping | None:
    """``{vector|query_text, k, ...}`` of the search's vector query: the clause is keyed by its field."""
    body = kwargs.get("body")
    clause = knn_clause(body.get("query"), _KINDS) if isinstance(body, Mapping) else None
    if clause is None:
        return None
    inner = next(iter(clause.values()), None) if clause else None
    return inner if isinstance(inner, Mapping) else {}


def is_knn_search(kwargs: dict) -> bool:
    return _vector_query(kwargs) is not None


def _size(kwargs: dict) -> Any:
    # Precedence as the client sends it: a keyword or ``params`` becomes a query-string ``size``, over the body's.
    params = kwargs.get("params")
    for source in (kwargs, params if isinstance(params, Mapping) else {}, kwargs.get("body") or {}):
        size = source.get("size") if isinstance(source, Mapping) else None
        if size is not None:
            return int(size) if isinstance(size, str) and size.isascii() and size.isdigit() else size
    return None


@per_client
def client_server(client: Any) -> tuple[str | None, int | None]:
    """The first host the client was given."""
    hosts = getattr(getattr(client, "transport", None), "hosts", None)
    first = hosts[0] if isinstance(hosts, list) and hosts else None
    host = first.get("host") if isinstance(first, Mapping) else None
    port = first.get("port") if isinstance(first, Mapping) else None
    if not isinstance(host, str) or not host:
        return None, None
    return host, port if isinstance(port, int) and not isinstance(port, bool) else None


class SearchTranslator(Translator):
    """``search`` with a ``knn`` (or ``neural``) query: one span, the hits the cluster returned."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        vector = _vector_query(kwargs) or {}
        index = index_name(kwargs.get("index"))
        host, port = client_server(instance)
        text = vector.get("query_text")
        return RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=V.PROVIDER_OPENSEARCH,
            server_address=host,
            server_port=port,
            data_source=index,
            query=text if isinstance(text, str) else None,
            top_k=top_k(_size(kwargs), vector.get("k")),
            score_kind=V.SCORE_KIND_SIMILARITY,
            db_system=V.DB_SYSTEM_OPENSEARCH,
            db_collection=index,
            db_operation=V.DB_OPERATION_SEARCH,
        )

    def response(self, record: RetrievalRecord, response: Any) -> None:
        record.documents = hits(response)
