"""The one retrieval scenario every vector store runs: the same four documents, the same labelled
query, the same expected precision, recall, MRR and NDCG, whatever the store.

A store's test loads ``DOCUMENTS`` (id, text, unit vector), runs its own nearest-neighbour query for
``QUERY_VECTOR`` (or ``QUERY_TEXT`` where the store embeds) with ``TOP_K`` inside
``micrometrics.context(relevant_document_ids=RELEVANT_IDS)``, and calls ``assert_scenario`` on the
telemetry. The vectors are unit length, so cosine, inner product and L2 rank them the same way:
1, 2, 3 (then 4, not retrieved). Relevant: 1, 3 and 4.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

#: ``(id, text, vector)``; ids are numeric strings so that stores with integer keys (Qdrant, Milvus) hold them too.
DOCUMENTS: list[tuple[str, str, list[float]]] = [
    ("1", "Refunds are issued within 14 days of receiving the returned item.", [1.0, 0.0, 0.0, 0.0]),
    ("2", "Our office is in Berlin and open Monday to Friday.", [0.8, 0.6, 0.0, 0.0]),
    ("3", "A refund is paid to the original payment method.", [0.6, 0.0, 0.8, 0.0]),
    ("4", "Refund requests after 30 days need a receipt.", [0.0, 0.0, 0.6, 0.8]),
]
QUERY_TEXT = "How do refunds work?"
QUERY_VECTOR = [0.99, 0.1, 0.1, 0.0]
TOP_K = 3
RELEVANT_IDS = ["1", "3", "4"]
#: The ids the store returns, in rank order.
EXPECTED_IDS = ["1", "2", "3"]
DIMENSION = 4


def _ideal_ndcg() -> float:
    dcg = 1 / math.log2(2) + 0 / math.log2(3) + 1 / math.log2(4)
    ideal = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)
    return round(dcg / ideal, 4)


#: RetrievalPrecision's details on the retrieval span.
EXPECTED_PRECISION = {
    "micrometrics.retrieval_precision.precision_at_k": round(2 / 3, 4),
    "micrometrics.retrieval_precision.recall_at_k": round(2 / 3, 4),
    "micrometrics.retrieval_precision.mrr": 1.0,
    "micrometrics.retrieval_precision.ndcg_at_k": _ideal_ndcg(),
    "micrometrics.retrieval_precision.k": 3,
    "micrometrics.retrieval_precision.relevant_retrieved": 2,
}


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b)) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def assert_scenario(span: Any, *, data_source: str, db_system: str, score_kind: str | None = None) -> dict[str, Any]:
    """The retrieval span a user sees for the scenario's query, from any store; returns its attributes.

    ``span`` is the exported (ReadableSpan) retrieval span. Checks name, operation, data source, db system,
    top_k, and RetrievalPrecision's results against the labels; ``score_kind`` (``similarity`` or
    ``distance``) when the store reports scores.
    """
    attrs: Mapping[str, Any] = span.attributes
    assert span.name == f"retrieval {data_source}", span.name
    assert attrs["gen_ai.operation.name"] == "retrieval"
    assert attrs["gen_ai.data_source.id"] == data_source
    assert attrs["db.system.name"] == db_system
    assert attrs["gen_ai.request.top_k"] == float(TOP_K)
    for key, value in EXPECTED_PRECISION.items():
        assert attrs.get(key) == value, (key, attrs.get(key), value)
    assert attrs["micrometrics.retrieval_precision.label"] == "pass"  # 2/3 >= the default min_precision 0.5
    assert attrs["micrometrics.retrieval_precision.passed"] is True
    if score_kind is not None:
        assert attrs["micrometrics.retrieval.score_kind"] == score_kind
    return dict(attrs)
