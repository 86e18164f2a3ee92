"""A user instruments an app that runs k-NN searches on OpenSearch (``opensearch-py``, sync and async clients,
against a loopback server speaking OpenSearch's search JSON): what their backend shows. Only k-NN (and neural)
searches are retrieval spans."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("opensearchpy", reason="opensearch-py is not installed (extra micrometrics[opensearch])")

from opensearchpy import AsyncOpenSearch, NotFoundError, OpenSearch  # noqa: E402

import micrometrics  # noqa: E402
from micrometrics.metrics import RetrievalPrecision  # noqa: E402
from micrometrics_instrumentation.opensearch import OpenSearchInstrumentor  # noqa: E402
from micrometrics_semconv import attributes as A  # noqa: E402
from provider_contract import assert_failed_call, assert_retrieval_call, retrieved_documents  # noqa: E402
from store_instrumentation import instrument_store, is_wrapped  # noqa: E402
from store_scenario import DOCUMENTS, EXPECTED_IDS, QUERY_VECTOR, RELEVANT_IDS, TOP_K, assert_scenario, cosine  # noqa: E402
from store_servers import StoreServer  # noqa: E402

TEXTS = [text for _, text, _ in DOCUMENTS]


def knn_body(k: int = TOP_K, size: int | None = TOP_K) -> dict:
    body = {"query": {"knn": {"vector": {"vector": QUERY_VECTOR, "k": k}}}}
    return {"size": size, **body} if size is not None else body


@pytest.fixture(scope="module")
def server():
    srv = StoreServer("opensearch")
    yield srv
    srv.close()


@pytest.fixture
def client(server):
    server.reset()
    c = OpenSearch(hosts=[{"host": "127.0.0.1", "port": server.port}], max_retries=0)
    yield c
    c.close()


def instrument(telemetry, request, **options):
    return instrument_store(telemetry, request, OpenSearchInstrumentor, **options)


def test_the_shared_scenario_scores_the_same_on_opensearch(telemetry, request, client):
    instrument(telemetry, request, metrics=[RetrievalPrecision()])
    with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
        response = client.search(index="kb", body=knn_body())
    assert [h["_id"] for h in response["hits"]["hits"]] == EXPECTED_IDS
    attrs = assert_scenario(telemetry.span("retrieval kb"), data_source="kb", db_system="opensearch", score_kind="similarity")
    assert attrs[A.DB_OPERATION_NAME] == "search"


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_a_knn_query_is_one_retrieval_span_with_ids_and_scores(telemetry, request, client, server, capture):
    instrument(telemetry, request, capture_content=capture)
    # size as a keyword: the client sends it in the query string, and it caps k.
    response = client.search(index="kb", body=knn_body(k=5, size=None), size=2)
    hits = response["hits"]["hits"]
    assert "size=2" in server.requests[-1].path
    assert [h["_score"] for h in hits] == pytest.approx([(1 + cosine(QUERY_VECTOR, v)) / 2 for _, _, v in DOCUMENTS[:2]])
    assert_retrieval_call(
        telemetry, provider="opensearch", db_system="opensearch", data_source="kb", top_k=2, score_kind="similarity",
        db_collection="kb", db_operation="search", server=("127.0.0.1", server.port),
        documents=[{"id": h["_id"], "score": pytest.approx(h["_score"])} for h in hits],
        capture=capture, query_text=None, first_document={"id": "1", "content": TEXTS[0]}, hidden=TEXTS,
    )


def test_searches_without_knn_are_not_retrieval_spans(telemetry, request, client):
    instrument(telemetry, request)
    response = client.search(index="kb", body={"query": {"match": {"text": "refund"}}})
    client.search(index="kb")  # no body at all
    assert len(response["hits"]["hits"]) == 4
    assert telemetry.spans() == []


def test_a_neural_query_records_its_text_under_capture(telemetry, request, client):
    instrument(telemetry, request, capture_content=True)
    client.search(index="kb", body={"query": {"neural": {"vector": {"query_text": "How do refunds work?", "model_id": "m1", "k": 3}}}},
                  params={"size": "3"})
    span = telemetry.span("retrieval kb")
    assert span.attributes[A.GEN_AI_RETRIEVAL_QUERY_TEXT] == "How do refunds work?"
    assert span.attributes[A.GEN_AI_REQUEST_TOP_K] == 3.0


def test_async_client_knn_search(telemetry, request, server):
    server.reset()
    instrument(telemetry, request, capture_content=True, metrics=[RetrievalPrecision()])

    async def search():
        c = AsyncOpenSearch(hosts=[{"host": "127.0.0.1", "port": server.port}], max_retries=0)
        try:
            with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
                hit = await c.search(index="kb", body=knn_body())
            await c.search(index="kb", body={"query": {"match_all": {}}})  # untouched
            return hit
        finally:
            await c.close()

    response = asyncio.run(search())
    assert [h["_id"] for h in response["hits"]["hits"]] == EXPECTED_IDS
    (span,) = telemetry.spans()
    assert_scenario(span, data_source="kb", db_system="opensearch", score_kind="similarity")
    assert (span.attributes[A.SERVER_ADDRESS], span.attributes[A.SERVER_PORT]) == ("127.0.0.1", server.port)


def test_a_failing_search_raises_the_same_exception_and_marks_the_span(telemetry, request, client):
    instrument(telemetry, request)
    with pytest.raises(NotFoundError) as raised:
        client.search(index="missing-kb", body=knn_body())
    OpenSearchInstrumentor().uninstrument()
    micrometrics.uninstrument()
    assert not is_wrapped(OpenSearch, "search") and not is_wrapped(AsyncOpenSearch, "search")
    with pytest.raises(NotFoundError) as uninstrumented:
        client.search(index="missing-kb", body=knn_body())
    assert str(raised.value) == str(uninstrumented.value)
    assert_failed_call(telemetry, "retrieval missing-kb", provider="opensearch", error_type="404")


def test_hits_with_null_or_missing_fields(telemetry, request, client, server):
    instrument(telemetry, request, capture_content=True)
    odd = {"hits": {"hits": [{"_id": None, "_score": None}, {"_id": 2}, {"_id": "3", "_score": 0.7, "_source": {"text": None}}]}}
    server.enqueue(200, odd)
    assert client.search(index="kb", body=knn_body()) == odd
    server.enqueue(200, {"hits": {"hits": None}})
    assert client.search(index="kb2", body=knn_body()) == {"hits": {"hits": None}}
    assert retrieved_documents(telemetry.span("retrieval kb")) == [{"id": "2"}, {"id": "3", "score": 0.7}]
    assert A.GEN_AI_RETRIEVAL_DOCUMENTS not in telemetry.span("retrieval kb2").attributes
