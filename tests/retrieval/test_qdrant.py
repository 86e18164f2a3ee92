"""A user instruments an app that queries Qdrant (sync and async clients): what their backend shows."""

from __future__ import annotations

import json

import pytest
from qdrant_client import AsyncQdrantClient, models

import micrometrics
from conftest import qdrant_points
from corpus import CORPUS
from micrometrics.metrics import RetrievalPrecision
from micrometrics_semconv import attributes as A
from provider_contract import assert_failed_call, assert_retrieval_call
from vectors import embed


def documents_of(span) -> list[dict]:
    return json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_query_points_is_one_retrieval_span_with_ids_and_similarities(telemetry, qdrant, capture):
    telemetry.instrument(capture_content=capture, metrics=[RetrievalPrecision()])
    response = qdrant.query_points("kb", query=embed("shipping to Germany"), limit=3)

    span = assert_retrieval_call(
        telemetry, provider="qdrant", db_system="qdrant", data_source="kb", top_k=3, score_kind="similarity",
        db_collection="kb", db_operation="query_points",
        server=None,  # local mode: no server
        documents=[{"id": str(p.id), "score": pytest.approx(p.score)} for p in response.points],
        capture=capture, query_text=None,  # a vector query has no text
        first_document={"id": "2", "content": CORPUS["shipping-germany"]}, hidden=list(CORPUS.values()),
    )
    assert response.points[0].payload["slug"] == "shipping-germany"
    # A vector query has no text: nothing to judge by without labels or min_score.
    assert span.attributes["micrometrics.retrieval_precision.label"] == "undetermined"


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
    assert_failed_call(telemetry, "retrieval missing", provider="qdrant", error_type="ValueError")
