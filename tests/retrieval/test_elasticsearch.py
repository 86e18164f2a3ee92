"""A user instruments an app that runs kNN searches on Elasticsearch (sync and async clients, against a loopback
server speaking Elasticsearch's search JSON): what their backend shows. Only kNN searches are retrieval spans."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("elasticsearch", reason="elasticsearch is not installed (extra micrometrics[elasticsearch])")

from elasticsearch import AsyncElasticsearch, Elasticsearch, NotFoundError  # noqa: E402

import micrometrics  # noqa: E402
from micrometrics.metrics import RetrievalPrecision  # noqa: E402
from micrometrics_instrumentation.elasticsearch import ElasticsearchInstrumentor  # noqa: E402
from micrometrics_semconv import attributes as A  # noqa: E402
from provider_contract import assert_failed_call, assert_retrieval_call, retrieved_documents  # noqa: E402
from store_instrumentation import instrument_store, is_wrapped  # noqa: E402
from store_scenario import DOCUMENTS, EXPECTED_IDS, QUERY_VECTOR, RELEVANT_IDS, TOP_K, assert_scenario, cosine  # noqa: E402
from store_servers import StoreServer  # noqa: E402

TEXTS = [text for _, text, _ in DOCUMENTS]
KNN = {"field": "vector", "query_vector": QUERY_VECTOR, "k": TOP_K, "num_candidates": 10}


@pytest.fixture(scope="module")
def server():
    srv = StoreServer("elasticsearch")
    yield srv
    srv.close()


@pytest.fixture
def es(server):
    server.reset()
    client = Elasticsearch(server.url, max_retries=0)
    yield client
    client.close()


def instrument(telemetry, request, **options):
    return instrument_store(telemetry, request, ElasticsearchInstrumentor, **options)


def test_the_shared_scenario_scores_the_same_on_elasticsearch(telemetry, request, es):
    instrument(telemetry, request, metrics=[RetrievalPrecision()])
    with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
        response = es.search(index="kb", knn=KNN)
    assert [h["_id"] for h in response["hits"]["hits"]] == EXPECTED_IDS
    attrs = assert_scenario(telemetry.span("retrieval kb"), data_source="kb", db_system="elasticsearch", score_kind="similarity")
    assert attrs[A.DB_OPERATION_NAME] == "search"


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_a_knn_query_is_one_retrieval_span_with_ids_and_scores(telemetry, request, es, server, capture):
    instrument(telemetry, request, capture_content=capture)
    # The knn query form (in `query`), capped by size.
    response = es.search(index="kb", query={"knn": {"field": "vector", "query_vector": QUERY_VECTOR, "k": 5}}, size=2)
    hits = response["hits"]["hits"]
    assert [h["_score"] for h in hits] == pytest.approx([(1 + cosine(QUERY_VECTOR, v)) / 2 for _, _, v in DOCUMENTS[:2]])
    assert server.requests[-1].headers.get("accept", "").startswith("application/vnd.elasticsearch+json")
    assert_retrieval_call(
        telemetry, provider="elasticsearch", db_system="elasticsearch", data_source="kb", top_k=2, score_kind="similarity",
        db_collection="kb", db_operation="search", server=("127.0.0.1", server.port),
        documents=[{"id": h["_id"], "score": pytest.approx(h["_score"])} for h in hits],
        capture=capture, query_text=None, first_document={"id": "1", "content": TEXTS[0]}, hidden=TEXTS,
    )


def test_searches_without_knn_are_not_retrieval_spans(telemetry, request, es):
    """The rule (docs/retrieval.md): a full-text or filter search is any search of the cluster, not a retrieval."""
    instrument(telemetry, request)
    response = es.search(index="kb", query={"match": {"text": "refund"}})
    es.search(index="kb", query={"bool": {"must": [{"match": {"text": "refund"}}]}})
    assert len(response["hits"]["hits"]) == 4
    assert telemetry.spans() == []
    # A hybrid bool query with a knn clause is a vector search.
    es.search(index="kb", query={"bool": {"should": [{"match": {"text": "refund"}}, {"knn": {"field": "vector", "query_vector": QUERY_VECTOR, "k": 3}}]}}, size=3)
    assert [s.name for s in telemetry.spans()] == ["retrieval kb"]


def test_a_query_vector_builder_records_the_text_under_capture(telemetry, request, es):
    instrument(telemetry, request, capture_content=True)
    knn = {"field": "vector", "k": 3, "num_candidates": 10,
           "query_vector_builder": {"text_embedding": {"model_id": "e5", "model_text": "How do refunds work?"}}}
    es.search(index=["kb", "kb2"], knn=knn)
    span = telemetry.span("retrieval kb,kb2")
    assert span.attributes[A.GEN_AI_RETRIEVAL_QUERY_TEXT] == "How do refunds work?"
    assert span.attributes[A.GEN_AI_REQUEST_TOP_K] == 3.0


def test_async_client_knn_search(telemetry, request, server):
    server.reset()
    instrument(telemetry, request, capture_content=True, metrics=[RetrievalPrecision()])

    async def search():
        client = AsyncElasticsearch(server.url, max_retries=0)
        try:
            with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
                hit = await client.search(index="kb", knn=KNN)
            await client.search(index="kb", query={"match_all": {}})  # untouched
            return hit
        finally:
            await client.close()

    response = asyncio.run(search())
    assert [h["_id"] for h in response["hits"]["hits"]] == EXPECTED_IDS
    (span,) = telemetry.spans()
    assert_scenario(span, data_source="kb", db_system="elasticsearch", score_kind="similarity")
    assert (span.attributes[A.SERVER_ADDRESS], span.attributes[A.SERVER_PORT]) == ("127.0.0.1", server.port)


def test_a_failing_search_raises_the_same_exception_and_marks_the_span(telemetry, request, es):
    instrument(telemetry, request)
    with pytest.raises(NotFoundError) as raised:
        es.search(index="missing-kb", knn=KNN)
    ElasticsearchInstrumentor().uninstrument()
    micrometrics.uninstrument()
    assert not is_wrapped(Elasticsearch, "search")
    with pytest.raises(NotFoundError) as uninstrumented:
        es.search(index="missing-kb", knn=KNN)
    assert str(raised.value) == str(uninstrumented.value)
    assert_failed_call(telemetry, "retrieval missing-kb", provider="elasticsearch", error_type="404")


def test_hits_with_null_or_missing_fields(telemetry, request, es, server):
    """A proxy or plugin answering with null ids and scores, no _source, or no hits at all: the app gets it as is."""
    instrument(telemetry, request, capture_content=True)
    odd = {"hits": {"hits": [{"_id": None, "_score": None}, {"_id": "2", "_score": "high", "_source": None}, "garbage", {"_id": "3"}]}}
    server.enqueue(200, odd)
    assert es.search(index="kb", knn=KNN).body == odd
    server.enqueue(200, {"hits": None})
    assert es.search(index="kb2", knn=KNN).body == {"hits": None}
    server.enqueue(200, {})
    assert es.search(index="kb3", knn=KNN).body == {}
    assert retrieved_documents(telemetry.span("retrieval kb")) == [{"id": "2"}, {"id": "3"}]
    for name in ("retrieval kb2", "retrieval kb3"):
        span = telemetry.span(name)
        assert A.GEN_AI_RETRIEVAL_DOCUMENTS not in span.attributes and span.status.is_ok


def _own_tracing_to(telemetry, client) -> None:
    """The client's own tracing (elasticsearch 8.13+, on by default) into the test's backend, as the global provider would."""
    client._otel.tracer = telemetry.tracer_provider.get_tracer("elasticsearch-api")
    client._otel.enabled = True


def test_the_clients_own_span_is_skipped_for_a_knn_search_we_trace_and_kept_for_others(telemetry, request, es):
    """The client traces itself: one span per kNN search (ours, with the hits), its own span for the searches we leave."""
    pytest.importorskip("elasticsearch._otel", reason="this elasticsearch release does not trace itself")
    _own_tracing_to(telemetry, es)
    instrument(telemetry, request)
    es.search(index="kb", knn=KNN)
    spans = telemetry.spans()
    assert [s.name for s in spans] == ["retrieval kb"], [s.name for s in spans]
    assert spans[0].attributes[A.DB_SYSTEM_NAME] == "elasticsearch"
    es.search(index="kb", query={"match": {"text": "refund"}})
    assert sorted(s.name for s in telemetry.spans()) == ["retrieval kb", "search"]  # not a retrieval: the client's own span stays


def test_the_async_clients_own_span_is_skipped_for_a_knn_search_we_trace(telemetry, request, server):
    pytest.importorskip("elasticsearch._otel", reason="this elasticsearch release does not trace itself")
    instrument(telemetry, request)

    async def run():
        client = AsyncElasticsearch(server.url, max_retries=0)
        _own_tracing_to(telemetry, client)
        try:
            await client.search(index="kb", knn=KNN)
            await client.search(index="kb", query={"match": {"text": "refund"}})
        finally:
            await client.close()

    asyncio.run(run())
    assert sorted(s.name for s in telemetry.spans()) == ["retrieval kb", "search"]  # ours ends on the monitor thread


def test_when_our_span_cannot_start_the_client_keeps_its_own(telemetry, request, es):
    """A kNN search whose telemetry failed to start (reported) runs as if we were not there: the client's span stays."""
    from micrometrics_instrumentation.elasticsearch import translators

    _own_tracing_to(telemetry, es)
    instrument(telemetry, request)
    broken = pytest.MonkeyPatch()
    broken.setattr(translators.SearchTranslator, "request", lambda *a, **k: 1 / 0)
    request.addfinalizer(broken.undo)
    response = es.search(index="kb", knn=KNN)
    assert len(response["hits"]["hits"]) == TOP_K
    assert [s.name for s in telemetry.spans()] == ["search"]


def test_uninstrument_restores_the_clients_own_tracing(telemetry, request, es):
    from elasticsearch._otel import OpenTelemetry

    instrument(telemetry, request)
    assert is_wrapped(OpenTelemetry, "span")
    ElasticsearchInstrumentor().uninstrument()
    micrometrics.uninstrument()
    assert not is_wrapped(OpenTelemetry, "span")
    _own_tracing_to(telemetry, es)
    es.search(index="kb", knn=KNN)
    assert [s.name for s in telemetry.spans()] == ["search"]
