"""A user instruments an app that queries a Pinecone index (``pinecone`` client, REST data plane, sync and async,
its ``host=`` pointed at a loopback server speaking Pinecone's ``POST /query``): what their backend shows."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("pinecone", reason="pinecone is not installed (extra micrometrics[pinecone])")

from pinecone import AsyncIndex, Index  # noqa: E402

import micrometrics  # noqa: E402
from micrometrics.metrics import RetrievalPrecision  # noqa: E402
from micrometrics_instrumentation.pinecone import PineconeInstrumentor  # noqa: E402
from micrometrics_instrumentation.pinecone.translators import QueryTranslator, index_endpoint  # noqa: E402
from micrometrics_semconv import attributes as A  # noqa: E402
from provider_contract import assert_failed_call, assert_retrieval_call, retrieved_documents  # noqa: E402
from store_instrumentation import instrument_store, is_wrapped  # noqa: E402
from store_scenario import DOCUMENTS, EXPECTED_IDS, QUERY_VECTOR, RELEVANT_IDS, TOP_K, assert_scenario, cosine  # noqa: E402
from store_servers import StoreServer  # noqa: E402

TEXTS = [text for _, text, _ in DOCUMENTS]
API_KEY = "pcsk-test-secret-key"


@pytest.fixture(scope="module")
def server():
    srv = StoreServer("pinecone")
    yield srv
    srv.close()


@pytest.fixture
def index(server, request):
    """An index client made by the test after instrumenting: the client binds ``query`` per instance when it is
    made (its legacy ``async_req`` support), so an Index made before ``instrument()`` is not traced (docs/retrieval.md)."""
    server.reset()
    made = []

    def make():
        made.append(Index(host=server.url, api_key=API_KEY))
        return made[-1]

    yield make
    for idx in made:
        idx.close()


def instrument(telemetry, request, **options):
    return instrument_store(telemetry, request, PineconeInstrumentor, **options)


def test_the_shared_scenario_scores_the_same_on_pinecone(telemetry, request, index):
    instrument(telemetry, request, metrics=[RetrievalPrecision()])
    index = index()
    with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
        response = index.query(vector=QUERY_VECTOR, top_k=TOP_K)
    assert [m.id for m in response.matches] == EXPECTED_IDS
    # Pinecone Local or a proxy: the host names the source (a *.pinecone.io host names the index).
    attrs = assert_scenario(telemetry.span("retrieval 127.0.0.1"), data_source="127.0.0.1", db_system="pinecone", score_kind="similarity")
    assert attrs[A.DB_OPERATION_NAME] == "query"


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_query_is_one_retrieval_span_with_ids_and_cosine_scores(telemetry, request, index, server, capture):
    instrument(telemetry, request, capture_content=capture)
    response = index().query(vector=QUERY_VECTOR, top_k=3, namespace="faq", include_metadata=True)
    sent = server.requests[-1]
    assert (sent.path, sent.body["topK"], sent.body["namespace"]) == ("/query", 3, "faq")
    assert [m.score for m in response.matches] == pytest.approx([cosine(QUERY_VECTOR, v) for _, _, v in DOCUMENTS[:3]])
    span = assert_retrieval_call(
        telemetry, provider="pinecone", db_system="pinecone", data_source="127.0.0.1", top_k=3, score_kind="similarity",
        db_collection=None, db_operation="query", server=("127.0.0.1", server.port),
        documents=[{"id": m.id, "score": pytest.approx(m.score)} for m in response.matches],
        capture=capture, query_text=None, first_document={"id": "1", "content": TEXTS[0]}, hidden=TEXTS,
    )
    assert sent.headers["api-key"] == API_KEY
    assert not any(API_KEY in str(v) for v in span.attributes.values())  # the key is never telemetry


def test_an_index_host_on_pinecone_io_names_the_index():
    idx = Index(host="kb-docs-abc1234.svc.aped-4627-b74a.pinecone.io", api_key=API_KEY)
    assert index_endpoint(idx) == ("kb-docs", "kb-docs-abc1234.svc.aped-4627-b74a.pinecone.io", 443)
    record = QueryTranslator().request(idx, (), {"top_k": 5, "vector": QUERY_VECTOR})
    assert (record.data_source, record.db_collection, record.top_k) == ("kb-docs", "kb-docs", 5)


def test_a_euclidean_index_records_distances_read_from_the_order(telemetry, request, index, server):
    instrument(telemetry, request, capture_content=True)
    server.enqueue(200, {"matches": [{"id": "1", "score": 0.02}, {"id": "2", "score": 0.3}, {"id": "3", "score": 0.65}], "namespace": ""})
    index().query(vector=QUERY_VECTOR, top_k=3)
    span = telemetry.span("retrieval 127.0.0.1")
    assert span.attributes[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == "distance"
    assert retrieved_documents(span)[0] == {"id": "1", A.MICROMETRICS_DISTANCE: 0.02}


def test_async_index_query(telemetry, request, server):
    server.reset()
    instrument(telemetry, request, capture_content=True, metrics=[RetrievalPrecision()])

    async def query():
        async with AsyncIndex(host=server.url, api_key=API_KEY) as idx:
            with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
                return await idx.query(vector=QUERY_VECTOR, top_k=TOP_K, include_metadata=True)

    response = asyncio.run(query())
    assert [m.id for m in response.matches] == EXPECTED_IDS
    (span,) = telemetry.spans()
    assert_scenario(span, data_source="127.0.0.1", db_system="pinecone", score_kind="similarity")
    assert (span.attributes[A.SERVER_ADDRESS], span.attributes[A.SERVER_PORT]) == ("127.0.0.1", server.port)


def test_a_failing_query_raises_the_same_exception_and_marks_the_span(telemetry, request, index, server):
    instrument(telemetry, request)
    index = index()
    error = {"code": 3, "message": "Vector dimension 4 does not match the dimension of the index 1536", "details": []}
    server.enqueue(400, error)
    with pytest.raises(Exception) as raised:
        index.query(vector=QUERY_VECTOR, top_k=3)
    PineconeInstrumentor().uninstrument()
    micrometrics.uninstrument()
    assert not is_wrapped(Index, "query") and not is_wrapped(AsyncIndex, "query")
    server.enqueue(400, error)
    with pytest.raises(type(raised.value)) as uninstrumented:
        index.query(vector=QUERY_VECTOR, top_k=3)
    assert str(raised.value) == str(uninstrumented.value)
    assert_failed_call(telemetry, "retrieval 127.0.0.1", provider="pinecone", error_type="400")


def test_matches_with_null_or_missing_fields(telemetry, request, index, server):
    """Null metadata and namespace, no matches at all: the app gets what the client decodes, the span what there is."""
    instrument(telemetry, request, capture_content=True)
    index = index()
    server.enqueue(200, {"matches": [{"id": "1", "score": 0.9}, {"id": "2", "score": 0.5, "metadata": None}], "namespace": None})
    response = index.query(vector=QUERY_VECTOR, top_k=2)
    assert [m.id for m in response.matches] == ["1", "2"]
    server.enqueue(200, {"namespace": "x"})
    assert index.query(vector=QUERY_VECTOR, top_k=2).matches == []
    first, second = telemetry.spans()
    assert retrieved_documents(first) == [{"id": "1", "score": 0.9}, {"id": "2", "score": 0.5}]
    assert A.GEN_AI_RETRIEVAL_DOCUMENTS not in second.attributes and second.status.is_ok


def test_a_match_without_a_score_fails_in_the_client_as_it_would_without_us(telemetry, request, index, server):
    from pinecone.errors.exceptions import ResponseParsingError

    instrument(telemetry, request)
    index = index()
    server.enqueue(200, {"matches": [{"id": "1"}]})
    with pytest.raises(ResponseParsingError, match="missing required field `score`"):
        index.query(vector=QUERY_VECTOR, top_k=1)
    span = telemetry.span("retrieval 127.0.0.1")
    assert span.attributes[A.ERROR_TYPE] == "pinecone.errors.exceptions.ResponseParsingError"
