"""A user instruments an app that queries Qdrant (sync and async clients): what their backend shows."""

from __future__ import annotations

import json

import pytest
from opentelemetry.trace import SpanKind, StatusCode
from qdrant_client import AsyncQdrantClient, models

import micrometrics
from conftest import qdrant_points
from corpus import CORPUS
from micrometrics.metrics import RetrievalPrecision
from micrometrics_semconv import attributes as A
from vectors import embed


def documents_of(span) -> list[dict]:
    return json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_query_points_is_one_retrieval_span_with_ids_and_similarities(telemetry, qdrant, capture):
    telemetry.instrument(capture_content=capture, metrics=[RetrievalPrecision()])
    response = qdrant.query_points("kb", query=embed("shipping to Germany"), limit=3)

    span = telemetry.span("retrieval kb")
    attrs = span.attributes
    assert span.kind == SpanKind.CLIENT
    assert attrs[A.GEN_AI_OPERATION_NAME] == "retrieval"
    assert attrs[A.GEN_AI_PROVIDER_NAME] == "qdrant"
    assert attrs[A.DB_SYSTEM_NAME] == "qdrant"
    assert attrs[A.GEN_AI_DATA_SOURCE_ID] == "kb"
    assert attrs[A.GEN_AI_REQUEST_TOP_K] == 3
    assert attrs[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == "similarity"
    assert A.SERVER_ADDRESS not in attrs  # local mode: no server
    assert documents_of(span) == [{"id": str(p.id), "score": pytest.approx(p.score)} for p in response.points]
    assert response.points[0].payload["slug"] == "shipping-germany"
    # A vector query has no text: nothing to judge by without labels or min_score.
    assert attrs["micrometrics.retrieval_precision.label"] == "undetermined"
    assert A.GEN_AI_RETRIEVAL_QUERY_TEXT not in attrs
    if capture:
        contents = json.loads(attrs[A.MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS])
        assert contents[0] == {"id": "2", "content": CORPUS["shipping-germany"]}
    else:
        assert A.MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS not in attrs
        assert not any(text in str(v) for v in attrs.values() for text in CORPUS.values())


def test_labels_with_integer_point_ids(telemetry, qdrant):
    telemetry.instrument(metrics=[RetrievalPrecision()])
    with micrometrics.context(relevant_document_ids=[2, 3]):
        response = qdrant.query_points(collection_name="kb", query=embed("shipping to Germany"), limit=2)
    assert [p.id for p in response.points][0] == 2
    attrs = telemetry.span("retrieval kb").attributes
    relevant = len({2, 3} & {p.id for p in response.points})
    assert attrs["micrometrics.retrieval_precision.judged_by"] == "labels"
    assert attrs["micrometrics.retrieval_precision.relevant_retrieved"] == relevant
    assert attrs["micrometrics.retrieval_precision.recall_at_k"] == relevant / 2
    assert attrs["micrometrics.retrieval_precision.mrr"] == 1.0


def test_min_score_judges_by_similarity(telemetry, qdrant):
    telemetry.instrument(metrics=[RetrievalPrecision(min_score=0.3)])
    response = qdrant.query_points("kb", query=embed("shipping to Germany"), limit=4)
    above = sum(1 for p in response.points if p.score >= 0.3)
    assert 0 < above < 4
    attrs = telemetry.span("retrieval kb").attributes
    assert attrs["micrometrics.retrieval_precision.judged_by"] == "score"
    assert attrs["micrometrics.retrieval_precision.precision_at_k"] == pytest.approx(above / 4)


async def test_async_client_query_points(telemetry):
    telemetry.instrument(capture_content=True, metrics=[RetrievalPrecision()])
    client = AsyncQdrantClient(":memory:")
    await client.create_collection("kb-async", vectors_config=models.VectorParams(size=len(embed("x")), distance=models.Distance.COSINE))
    await client.upsert("kb-async", points=qdrant_points())
    with micrometrics.context(relevant_document_ids=[4]):
        response = await client.query_points("kb-async", query=embed("office in Berlin"), limit=2)
    await client.close()

    span = telemetry.span("retrieval kb-async")
    assert response.points[0].id == 4
    assert documents_of(span)[0]["id"] == "4"
    assert span.attributes["micrometrics.retrieval_precision.label"] == "pass"
    assert span.attributes["micrometrics.retrieval_precision.ndcg_at_k"] == 1.0


def test_a_failing_query_raises_the_same_exception_and_marks_the_span(telemetry, qdrant):
    telemetry.instrument(metrics=[RetrievalPrecision()])
    with pytest.raises(ValueError) as raised:
        qdrant.query_points("missing", query=embed("x"), limit=1)
    micrometrics.uninstrument()
    with pytest.raises(ValueError) as uninstrumented:
        qdrant.query_points("missing", query=embed("x"), limit=1)
    assert str(raised.value) == str(uninstrumented.value)
    span = telemetry.span("retrieval missing")
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.ERROR_TYPE] == "ValueError"
