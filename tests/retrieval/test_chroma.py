"""A user instruments an app that queries Chroma: what their backend shows for each query."""

from __future__ import annotations

import asyncio
import json
import uuid

import chromadb
import pytest

import micrometrics
from corpus import CORPUS, SHIPPING_QUESTION
from micrometrics.metrics import RetrievalPrecision
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M
from provider_contract import assert_failed_call, assert_retrieval_call
from vectors import HashEmbedding, embed


def documents_of(span) -> list[dict]:
    """``gen_ai.retrieval.documents``: opt-in content, there only with capture on."""
    return json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])


def no_content_anywhere(telemetry, texts) -> None:
    """No query or document text in any span attribute, span event or log record."""
    values = []
    for span in telemetry.spans():
        values += [str(v) for v in span.attributes.values()]
        values += [str(v) for e in span.events for v in e.attributes.values()]
    values += [str(v) for r in telemetry.logs() for v in (r.attributes or {}).values()]
    for text in texts:
        assert not any(text in v for v in values), text


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_query_is_one_retrieval_span_with_ids_distances_and_precision(telemetry, kb, capture):
    telemetry.instrument(capture_content=capture, metrics=[RetrievalPrecision()])
    result = kb.query(query_texts=[SHIPPING_QUESTION], n_results=3)

    span = assert_retrieval_call(
        telemetry, provider="chroma", db_system="chroma", data_source=kb.name, top_k=3, score_kind="distance",
        # An l2 collection (Chroma's default): a squared Euclidean distance is no relevance score, so it is
        # recorded under our own key and `score` is left out; in Chroma's order, with capture only.
        db_collection=kb.name, db_operation="query",
        documents=[{"id": i, A.MICROMETRICS_DISTANCE: pytest.approx(d)} for i, d in zip(result["ids"][0], result["distances"][0])],
        capture=capture, query_text=SHIPPING_QUESTION, first_document={"id": "shipping-germany", "content": CORPUS["shipping-germany"]},
        hidden=[SHIPPING_QUESTION, *CORPUS.values()],
    )
    attrs = span.attributes
    assert result["ids"][0][0] == "shipping-germany"
    # No labels: the lexical judge finds one of three documents about shipping to Germany.
    assert attrs["micrometrics.retrieval_precision.label"] == "fail"
    assert attrs["micrometrics.retrieval_precision.judged_by"] == "lexical"
    assert attrs["micrometrics.retrieval_precision.precision_at_k"] == pytest.approx(1 / 3, abs=1e-4)
    assert attrs["micrometrics.retrieval_precision.k"] == 3

    if not capture:
        no_content_anywhere(telemetry, [SHIPPING_QUESTION, *CORPUS.values()])


def test_duration_and_evaluation_metrics_have_low_cardinality_dimensions(telemetry, kb):
    telemetry.instrument(metrics=[RetrievalPrecision()])
    with micrometrics.context(relevant_document_ids=["shipping-germany"]):
        kb.query(query_texts=[SHIPPING_QUESTION], n_results=2)

    metrics = telemetry.metrics()
    (duration,) = metrics[M.GEN_AI_CLIENT_OPERATION_DURATION]
    assert dict(duration.attributes) == {A.GEN_AI_OPERATION_NAME: "retrieval", A.GEN_AI_PROVIDER_NAME: "chroma"}
    (evaluation,) = metrics[M.MICROMETRICS_EVALUATIONS]
    assert evaluation.attributes[A.GEN_AI_EVALUATION_NAME] == "retrieval_precision"
    assert evaluation.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL] == "pass"
    assert evaluation.value == 1
    for points in metrics.values():
        for p in points:
            assert set(p.attributes) <= A.METRIC_DIMENSIONS
    (log,) = [r for r in telemetry.logs() if r.attributes.get(A.GEN_AI_EVALUATION_NAME) == "retrieval_precision"]
    assert log.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL] == "pass"
    assert log.attributes[A.GEN_AI_EVALUATION_SCORE_VALUE] == 0.5


def test_retrieval_precision_is_a_default_metric(telemetry, kb):
    telemetry.instrument()
    kb.query(query_texts=["What is the warranty on a device?"], n_results=1)
    attrs = telemetry.span(f"retrieval {kb.name}").attributes
    assert attrs["micrometrics.retrieval_precision.label"] == "pass"
    assert attrs["micrometrics.retrieval_precision.judged_by"] == "lexical"


def test_positional_arguments_and_embedding_queries(telemetry, kb):
    telemetry.instrument(capture_content=True, metrics=[RetrievalPrecision()])
    result = kb.query([embed(CORPUS["warranty"])], None, None, None, None, 2)
    assert result["ids"][0][0] == "warranty"
    attrs = telemetry.span(f"retrieval {kb.name}").attributes
    assert attrs[A.GEN_AI_REQUEST_TOP_K] == 2
    assert [d["id"] for d in documents_of(telemetry.span())] == result["ids"][0]
    # A vector query has no text to judge by, and no labels were given.
    assert attrs["micrometrics.retrieval_precision.label"] == "undetermined"


def test_a_batch_of_queries_is_one_span_with_the_first_querys_documents(telemetry, kb):
    telemetry.instrument(capture_content=True, metrics=[])
    result = kb.query(query_texts=[SHIPPING_QUESTION, "refund of a returned item"], n_results=2)
    assert len(result["ids"]) == 2
    span = telemetry.span(f"retrieval {kb.name}")
    assert span.attributes[A.GEN_AI_RETRIEVAL_QUERY_TEXT] == SHIPPING_QUESTION
    assert [d["id"] for d in documents_of(span)] == result["ids"][0]


def test_a_failing_query_raises_the_same_exception_and_marks_the_span(telemetry, kb):
    telemetry.instrument(metrics=[RetrievalPrecision()])
    bad_filter = {"topic": {"$unknown": 1}}
    with pytest.raises(ValueError) as raised:
        kb.query(query_texts=[SHIPPING_QUESTION], where=bad_filter)
    micrometrics.uninstrument()
    with pytest.raises(ValueError) as uninstrumented:
        kb.query(query_texts=[SHIPPING_QUESTION], where=bad_filter)
    assert str(raised.value) == str(uninstrumented.value)
    span = assert_failed_call(telemetry, f"retrieval {kb.name}", provider="chroma", error_type="ValueError")
    assert A.GEN_AI_RETRIEVAL_DOCUMENTS not in span.attributes
    # No documents, no judgement: a failed call gets no retrieval_precision.
    assert "micrometrics.retrieval_precision.label" not in span.attributes


def test_uninstrument_restores_the_original_query(telemetry, kb):
    telemetry.instrument(metrics=[])
    micrometrics.uninstrument()
    assert kb.query(query_texts=[SHIPPING_QUESTION], n_results=1)["ids"] == [["shipping-germany"]]
    assert telemetry.spans() == []


def test_http_client_spans_name_the_server(telemetry, chroma_server):
    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_server)
    collection = client.get_or_create_collection("kb-http", embedding_function=HashEmbedding())
    collection.upsert(ids=list(CORPUS), documents=list(CORPUS.values()))
    telemetry.instrument(capture_content=True, metrics=[RetrievalPrecision()])

    result = collection.query(query_texts=[SHIPPING_QUESTION], n_results=2)

    attrs = telemetry.span("retrieval kb-http").attributes
    assert attrs[A.SERVER_ADDRESS] == "127.0.0.1"
    assert attrs[A.SERVER_PORT] == chroma_server
    assert [d["id"] for d in documents_of(telemetry.span())] == result["ids"][0]


def test_async_collection_query(telemetry, chroma_server):
    telemetry.instrument(capture_content=True, metrics=[RetrievalPrecision()])

    async def main():
        client = await chromadb.AsyncHttpClient(host="127.0.0.1", port=chroma_server)
        collection = await client.get_or_create_collection("kb-async", embedding_function=HashEmbedding())
        await collection.upsert(ids=list(CORPUS), documents=list(CORPUS.values()))
        with micrometrics.context(relevant_document_ids=["shipping-germany", "shipping-costs"]):
            return await collection.query(query_texts=[SHIPPING_QUESTION], n_results=2)

    result = asyncio.run(main())
    span = telemetry.span("retrieval kb-async")
    attrs = span.attributes
    assert attrs[A.SERVER_PORT] == chroma_server
    assert attrs[A.GEN_AI_RETRIEVAL_QUERY_TEXT] == SHIPPING_QUESTION
    assert [d["id"] for d in documents_of(span)] == result["ids"][0]
    assert attrs["micrometrics.retrieval_precision.judged_by"] == "labels"
    assert attrs["micrometrics.retrieval_precision.recall_at_k"] == pytest.approx(
        len({"shipping-germany", "shipping-costs"} & set(result["ids"][0])) / 2
    )


@pytest.mark.parametrize(
    "space, options",
    [
        ("cosine", {"metadata": {"hnsw:space": "cosine"}}),  # the older way to choose it
        ("cosine", {"configuration": {"hnsw": {"space": "cosine"}}}),
        ("ip", {"configuration": {"hnsw": {"space": "ip"}}}),
    ],
)
def test_cosine_and_inner_product_distances_become_similarity_scores(telemetry, space, options):
    """Chroma's cosine distance is 1 - cos and its ip distance 1 - a·b: 1 - d is the similarity, a real score."""
    client = chromadb.EphemeralClient()
    collection = client.create_collection(f"kb-{space}-{uuid.uuid4().hex[:8]}", embedding_function=HashEmbedding(), **options)
    collection.add(ids=["east", "north", "diagonal"], embeddings=[[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    try:
        telemetry.instrument(capture_content=True, metrics=[RetrievalPrecision(min_score=0.5)])
        result = collection.query(query_embeddings=[[1.0, 0.0]], n_results=3)
        span = telemetry.span(f"retrieval {collection.name}")
    finally:
        client.delete_collection(collection.name)
    assert result["ids"][0] == ["east", "diagonal", "north"]
    assert documents_of(span) == [
        {"id": "east", "score": pytest.approx(1.0)},
        {"id": "diagonal", "score": pytest.approx(0.6)},  # cos = a·b = 0.6 for unit vectors
        {"id": "north", "score": pytest.approx(0.0)},
    ]
    assert [d["score"] for d in documents_of(span)] == pytest.approx([1 - d for d in result["distances"][0]])
    assert span.attributes[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == "similarity"
    # RetrievalPrecision reads the record: min_score is now a similarity floor (2 of 3 at least 0.5).
    assert span.attributes["micrometrics.retrieval_precision.judged_by"] == "score"
    assert span.attributes["micrometrics.retrieval_precision.precision_at_k"] == pytest.approx(2 / 3, abs=1e-4)
