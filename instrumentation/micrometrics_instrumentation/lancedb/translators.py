"""LanceDB vector query executions and their Arrow results -> retrieval records. Translation only."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

from micrometrics.records import Document, RetrievalRecord
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import values as V

#: LanceDB's default number of results and distance type.
_LIMIT_DEFAULT = 10
_DISTANCE_DEFAULT = "l2"
#: Distance types whose ``_distance`` is 1 minus a similarity: cosine (1 - cos) and dot (1 - a·b). l2 and hamming stay distances.
_ONE_MINUS_SIMILARITY = frozenset({"cosine", "dot"})
#: Columns that usually hold a row's id, and its text (LangChain, LlamaIndex, plain).
_ID_COLUMNS = ("id", "_id", "doc_id", "_rowid")
_CONTENT_COLUMNS = ("text", "page_content", "content", "document", "chunk", "body")
_DISTANCE = "_distance"
#: A reranked query's score: higher is more relevant.
_RELEVANCE = "_relevance_score"


def _table_name(table: Any) -> str | None:
    name = getattr(table, "name", None)
    return name if isinstance(name, str) else None


def _record(table: Any, limit: Any, distance_type: Any, query: Any) -> RetrievalRecord:
    name = _table_name(table)
    distance = distance_type.lower() if isinstance(distance_type, str) else _DISTANCE_DEFAULT
    return RetrievalRecord(
        operation=V.OPERATION_RETRIEVAL,
        provider=V.PROVIDER_LANCEDB,
        data_source=name,
        query=query if isinstance(query, str) else None,
        top_k=limit if isinstance(limit, int) and not isinstance(limit, bool) else _LIMIT_DEFAULT if limit is None else None,
        score_kind=V.SCORE_KIND_SIMILARITY if distance in _ONE_MINUS_SIMILARITY else V.SCORE_KIND_DISTANCE,
        db_system=V.DB_SYSTEM_LANCEDB,
        db_collection=name,
        db_operation=V.DB_OPERATION_LANCEDB_VECTOR_SEARCH,
    )


def _column(table: Any, columns: list, names: tuple[str, ...]) -> list:
    for name in names:
        if name in columns:
            return table.column(name).to_pylist()
    return []


def _number(value: Any) -> float | None:
    if isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def _documents(record: RetrievalRecord, table: Any) -> None:
    columns = getattr(table, "column_names", None)  # an Arrow table's; read once (each read builds the list)
    if not isinstance(columns, list):
        record.documents = []
        return
    ids = _column(table, columns, _ID_COLUMNS)
    texts = _column(table, columns, _CONTENT_COLUMNS)
    relevance = _column(table, columns, (_RELEVANCE,))
    if relevance:  # a reranker's score replaces the distance
        scores, record.score_kind = [_number(s) for s in relevance], V.SCORE_KIND_SIMILARITY
    else:
        similarity = record.score_kind == V.SCORE_KIND_SIMILARITY  # the distance type made it one at request()
        scores = [None if d is None else 1.0 - d if similarity else d for d in map(_number, _column(table, columns, (_DISTANCE,)))]
    rows = getattr(table, "num_rows", 0)
    count = rows if isinstance(rows, int) else 0
    record.documents = [
        Document(
            id=None if i >= len(ids) or ids[i] is None else str(ids[i]),
            score=scores[i] if i < len(scores) else None,
            content=texts[i] if i < len(texts) and isinstance(texts[i], str) else None,
        )
        for i in range(count)
    ]


class VectorQueryTranslator(Translator):
    """``LanceVectorQueryBuilder.to_arrow`` and ``AsyncVectorQuery.to_arrow``: one translator for both."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        if hasattr(instance, "_limit"):  # the sync builder holds the query as the application set it
            # ``_str_query``: text the table's embedding function turned into the vector.
            limit, distance, text = instance._limit, getattr(instance, "_distance_type", None), getattr(instance, "_str_query", None)
        else:  # an async query keeps its settings in the native builder
            to_query = getattr(instance, "to_query_object", None)
            query = to_query() if callable(to_query) else None
            limit, distance, text = getattr(query, "limit", None), getattr(query, "distance_type", None), getattr(instance, "_query_string", None)
        return _record(getattr(instance, "_table", None), limit, distance, text)

    def response(self, record: RetrievalRecord, response: Any) -> None:
        _documents(record, response)
