"""A user instruments an app that searches Milvus (``pymilvus`` against the embedded ``milvus-lite``, sync and
async clients): what their backend shows for each search."""

from __future__ import annotations

import asyncio
import uuid

import pytest

pytest.importorskip("pymilvus", reason="pymilvus is not installed (extra micrometrics[milvus])")
pytest.importorskip("milvus_lite", reason="milvus-lite (the embedded Milvus) is not installed")

from pymilvus import AsyncMilvusClient, MilvusClient  # noqa: E402
from pymilvus.exceptions import MilvusException  # noqa: E402

import micrometrics  # noqa: E402
from micrometrics.metrics import RetrievalPrecision  # noqa: E402
from micrometrics_instrumentation.milvus import MilvusInstrumentor  # noqa: E402
from micrometrics_instrumentation.milvus.translators import SearchTranslator  # noqa: E402
from micrometrics_semconv import attributes as A  # noqa: E402
from provider_contract import assert_failed_call, assert_retrieval_call  # noqa: E402
from store_instrumentation import instrument_store, is_wrapped  # noqa: E402
from store_scenario import DIMENSION, DOCUMENTS, EXPECTED_IDS, QUERY_VECTOR, RELEVANT_IDS, TOP_K, assert_scenario, cosine  # noqa: E402

TEXTS = [text for _, text, _ in DOCUMENTS]


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory):
    """One milvus-lite database for the module (each one starts a local server: ~1 s)."""
    return str(tmp_path_factory.mktemp("milvus") / "kb.db")


@pytest.fixture(scope="module")
def milvus(milvus_uri):
    """Collections ``kb`` (COSINE) and ``kb_l2`` (L2) of the scenario's four documents."""
    client = MilvusClient(milvus_uri)
    rows = [{"id": int(i), "vector": v, "text": t} for i, t, v in DOCUMENTS]
    for name, metric in (("kb", "COSINE"), ("kb_l2", "L2")):
        client.create_collection(name, dimension=DIMENSION, metric_type=metric)
        client.insert(name, rows)
    yield client
    client.close()


def instrument(telemetry, request, **options):
    return instrument_store(telemetry, request, MilvusInstrumentor, **options)


def test_the_shared_scenario_scores_the_same_on_milvus(telemetry, request, milvus):
    instrument(telemetry, request, metrics=[RetrievalPrecision()])
    with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
        hits = milvus.search("kb", data=[QUERY_VECTOR], limit=TOP_K)[0]
    assert [str(h["id"]) for h in hits] == EXPECTED_IDS
    attrs = assert_scenario(telemetry.span("retrieval kb"), data_source="kb", db_system="milvus", score_kind="similarity")
    assert attrs[A.DB_OPERATION_NAME] == "search"


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_search_is_one_retrieval_span_with_ids_and_cosine_similarities(telemetry, request, milvus, capture):
    instrument(telemetry, request, capture_content=capture)
    hits = milvus.search("kb", [QUERY_VECTOR], limit=3, output_fields=["text"])[0]

    # Milvus's COSINE "distance" is the cosine similarity itself, in Milvus's order.
    assert [h["distance"] for h in hits] == pytest.approx([cosine(QUERY_VECTOR, v) for _, _, v in DOCUMENTS[:3]], abs=1e-5)
    host, port = milvus._config.address.rsplit(":", 1)  # milvus-lite's local gRPC server
    assert_retrieval_call(
        telemetry, provider="milvus", db_system="milvus", data_source="kb", top_k=3, score_kind="similarity",
        db_collection="kb", db_operation="search", server=(host, int(port)),
        documents=[{"id": str(h["id"]), "score": pytest.approx(h["distance"])} for h in hits],
        capture=capture, query_text=None,  # a vector search has no text
        first_document={"id": "1", "content": TEXTS[0]}, hidden=TEXTS,
    )


def test_an_l2_collection_records_distances_read_from_the_order(telemetry, request, milvus):
    instrument(telemetry, request, capture_content=True)
    hits = milvus.search("kb_l2", [QUERY_VECTOR], limit=3)[0]
    span = telemetry.span("retrieval kb_l2")
    assert span.attributes[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == "distance"
    from provider_contract import retrieved_documents

    assert retrieved_documents(span) == [{"id": str(h["id"]), A.MICROMETRICS_DISTANCE: pytest.approx(h["distance"])} for h in hits]
    assert [h["id"] for h in hits] == [1, 2, 3]


def test_a_metric_type_in_search_params_decides_the_score_kind(telemetry, request, milvus):
    instrument(telemetry, request)
    milvus.search("kb_l2", [QUERY_VECTOR], limit=1, search_params={"metric_type": "L2"})
    assert telemetry.span("retrieval kb_l2").attributes[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == "distance"


def test_async_client_search(telemetry, request, milvus, milvus_uri):
    instrument(telemetry, request, capture_content=True, metrics=[RetrievalPrecision()])

    async def search():
        client = AsyncMilvusClient(milvus_uri)
        try:
            with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
                return await client.search(collection_name="kb", data=[QUERY_VECTOR], limit=TOP_K, output_fields=["text"])
        finally:
            await client.close()

    hits = asyncio.run(search())[0]
    assert [str(h["id"]) for h in hits] == EXPECTED_IDS
    assert_scenario(telemetry.span("retrieval kb"), data_source="kb", db_system="milvus", score_kind="similarity")


def test_the_orm_collection_search_is_one_span_too(telemetry, request, milvus, milvus_uri):
    import warnings

    from pymilvus import Collection, connections

    instrument(telemetry, request, capture_content=True, metrics=[RetrievalPrecision()])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the ORM is deprecated in pymilvus 3.0
        connections.connect(alias="default", uri=milvus_uri)
        try:
            collection = Collection("kb")
            with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
                result = collection.search([QUERY_VECTOR], "vector", {"metric_type": "COSINE"}, TOP_K, output_fields=["text"])
        finally:
            connections.disconnect("default")
    assert [str(h["id"]) for h in result[0]] == EXPECTED_IDS
    (span,) = telemetry.spans()
    assert_scenario(span, data_source="kb", db_system="milvus", score_kind="similarity")
    assert A.SERVER_ADDRESS not in span.attributes  # the ORM connection does not say where it goes


def test_a_failing_search_raises_the_same_exception_and_marks_the_span(telemetry, request, milvus):
    instrument(telemetry, request)
    missing = f"missing_{uuid.uuid4().hex[:6]}"
    with pytest.raises(MilvusException) as raised:
        milvus.search(missing, [QUERY_VECTOR], limit=1)
    MilvusInstrumentor().uninstrument()
    micrometrics.uninstrument()
    assert not is_wrapped(MilvusClient, "search") and not is_wrapped(AsyncMilvusClient, "search")  # restored
    with pytest.raises(MilvusException) as uninstrumented:
        milvus.search(missing, [QUERY_VECTOR], limit=1)
    assert str(raised.value) == str(uninstrumented.value)
    assert_failed_call(telemetry, f"retrieval {missing}", provider="milvus", error_type="pymilvus.exceptions.MilvusException")


def test_hits_with_null_or_missing_fields_are_recorded_as_far_as_they_go():
    """What a proxy or an older server may return: a hit without id, a null or non-numeric distance, no entity."""
    translator = SearchTranslator()
    record = translator.request(None, ("kb", [QUERY_VECTOR]), {"limit": None})
    assert record.top_k is None and record.server_address is None
    translator.response(record, [[{"id": 7, "distance": None}, {"distance": "0.5", "entity": None}, {"id": "x", "distance": True}, None]])
    assert [(d.id, d.score, d.content) for d in record.documents] == [("7", None, None), (None, None, None), ("x", None, None), (None, None, None)]
    assert record.score_kind is None  # no metric named, no scores to read an order from
    for empty in (None, [], [None], "garbage", [[]]):
        translator.response(record, empty)
        assert record.documents == []
