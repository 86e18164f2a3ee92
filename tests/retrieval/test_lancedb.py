"""A user instruments an app that searches an embedded LanceDB table (sync and async APIs): what their backend
shows for each executed vector query (the builder is lazy: the span is the ``to_*`` that runs it)."""

from __future__ import annotations

import asyncio

import pytest

pytest.importorskip("lancedb", reason="lancedb is not installed (extra micrometrics[lancedb])")

import lancedb  # noqa: E402
import pyarrow as pa  # noqa: E402

import micrometrics  # noqa: E402
from micrometrics.metrics import RetrievalPrecision  # noqa: E402
from micrometrics_instrumentation.lancedb import LanceDBInstrumentor  # noqa: E402
from micrometrics_instrumentation.lancedb.translators import VectorQueryTranslator  # noqa: E402
from micrometrics_semconv import attributes as A  # noqa: E402
from provider_contract import assert_failed_call, assert_retrieval_call, retrieved_documents  # noqa: E402
from store_instrumentation import instrument_store, is_wrapped  # noqa: E402
from store_scenario import DOCUMENTS, EXPECTED_IDS, QUERY_VECTOR, RELEVANT_IDS, TOP_K, assert_scenario, cosine  # noqa: E402

TEXTS = [text for _, text, _ in DOCUMENTS]


@pytest.fixture
def db_path(tmp_path):
    db = lancedb.connect(str(tmp_path))
    db.create_table("kb", data=[{"id": i, "vector": v, "text": t} for i, t, v in DOCUMENTS])
    return str(tmp_path)


@pytest.fixture
def table(db_path):
    return lancedb.connect(db_path).open_table("kb")


def instrument(telemetry, request, **options):
    return instrument_store(telemetry, request, LanceDBInstrumentor, **options)


def test_the_shared_scenario_scores_the_same_on_lancedb(telemetry, request, table):
    instrument(telemetry, request, metrics=[RetrievalPrecision()])
    with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
        rows = table.search(QUERY_VECTOR).distance_type("cosine").limit(TOP_K).to_list()
    assert [r["id"] for r in rows] == EXPECTED_IDS
    attrs = assert_scenario(telemetry.span("retrieval kb"), data_source="kb", db_system="lancedb", score_kind="similarity")
    assert attrs[A.DB_OPERATION_NAME] == "vector_search"


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_a_cosine_query_is_one_span_with_ids_and_similarities(telemetry, request, table, capture):
    instrument(telemetry, request, capture_content=capture)
    rows = table.search(QUERY_VECTOR).distance_type("cosine").limit(3).to_list()
    # LanceDB's cosine _distance is 1 - cosine: recorded as the similarity.
    assert [1 - r["_distance"] for r in rows] == pytest.approx([cosine(QUERY_VECTOR, v) for _, _, v in DOCUMENTS[:3]], abs=1e-5)
    assert_retrieval_call(
        telemetry, provider="lancedb", db_system="lancedb", data_source="kb", top_k=3, score_kind="similarity",
        db_collection="kb", db_operation="vector_search", server=None,  # embedded
        documents=[{"id": r["id"], "score": pytest.approx(1 - r["_distance"])} for r in rows],
        capture=capture, query_text=None, first_document={"id": "1", "content": TEXTS[0]}, hidden=TEXTS,
    )


@pytest.mark.parametrize("to", ["to_pandas", "to_arrow", "to_list", "to_pydantic"])
def test_every_way_to_run_the_query_is_one_span(telemetry, request, table, to):
    instrument(telemetry, request, capture_content=True)
    query = table.search(QUERY_VECTOR).limit(2)
    assert telemetry.spans() == []  # building the query runs nothing
    if to == "to_pydantic":
        from lancedb.pydantic import LanceModel

        class Row(LanceModel):
            id: str
            text: str

        getattr(query, to)(Row)
    else:
        getattr(query, to)()
    (span,) = telemetry.spans()
    # The default distance type, l2: a distance, under our own key.
    assert span.attributes[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == "distance"
    assert [d["id"] for d in retrieved_documents(span)] == ["1", "2"]
    assert A.MICROMETRICS_DISTANCE in retrieved_documents(span)[0]


def test_full_text_and_plain_scans_are_not_retrieval_spans(telemetry, request, table):
    instrument(telemetry, request)
    table.search().limit(2).to_list()  # a plain scan
    table.to_arrow()
    assert telemetry.spans() == []


def test_full_text_is_no_span_and_a_hybrid_query_shows_its_vector_half(telemetry, request, table):
    """The documented rule: full-text search is not a vector search; a sync hybrid query runs its vector half
    through the vector builder's to_arrow (on a worker thread), which is one vector search span."""
    import warnings

    instrument(telemetry, request)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_fts_index is deprecated in favour of create_index(config=FTS())
        table.create_fts_index("text", replace=True)
    assert table.search("refund", query_type="fts").limit(2).to_list()
    assert telemetry.spans() == []
    table.search(query_type="hybrid").vector(QUERY_VECTOR).text("refund").limit(2).to_list()
    (span,) = telemetry.spans()
    assert span.name == "retrieval kb" and span.attributes[A.DB_OPERATION_NAME] == "vector_search"


def test_async_vector_query(telemetry, request, db_path):
    instrument(telemetry, request, capture_content=True, metrics=[RetrievalPrecision()])

    async def search():
        db = await lancedb.connect_async(db_path)
        table = await db.open_table("kb")
        with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
            first = await (await table.search(QUERY_VECTOR)).distance_type("cosine").limit(TOP_K).to_list()
        # A plain async scan goes through the same to_arrow of the base class: no span.
        await table.query().limit(2).to_list()
        return first

    rows = asyncio.run(search())
    assert [r["id"] for r in rows] == EXPECTED_IDS
    (span,) = telemetry.spans()
    assert_scenario(span, data_source="kb", db_system="lancedb", score_kind="similarity")
    assert [d["score"] for d in retrieved_documents(span)] == pytest.approx([1 - r["_distance"] for r in rows])


def test_a_failing_query_raises_the_same_exception_and_marks_the_span(telemetry, request, table):
    instrument(telemetry, request)
    with pytest.raises(ValueError) as raised:  # raised by the execution: the builder does not check the filter
        table.search(QUERY_VECTOR).where("no_such_column > 1").limit(1).to_list()
    LanceDBInstrumentor().uninstrument()
    micrometrics.uninstrument()
    from lancedb.query import AsyncVectorQuery, LanceVectorQueryBuilder

    assert not is_wrapped(LanceVectorQueryBuilder, "to_arrow") and not is_wrapped(AsyncVectorQuery, "to_arrow")
    with pytest.raises(ValueError) as uninstrumented:
        table.search(QUERY_VECTOR).where("no_such_column > 1").limit(1).to_list()
    assert str(raised.value) == str(uninstrumented.value)
    assert_failed_call(telemetry, "retrieval kb", provider="lancedb", error_type="ValueError")


def test_results_with_null_or_missing_columns_are_recorded_as_far_as_they_go():
    """A table without an id or text column, null ids and distances, NaN: the rows are still counted, in order."""
    translator = VectorQueryTranslator()
    record = translator.request(object(), (), {})
    assert (record.data_source, record.top_k, record.score_kind) == (None, 10, "distance")
    result = pa.table({"id": ["a", None, "c"], "_distance": [0.5, None, float("nan")]})
    translator.response(record, result)
    assert [(d.id, d.score, d.content) for d in record.documents] == [("a", 0.5, None), (None, None, None), ("c", None, None)]
    translator.response(record, pa.table({"other": [1, 2]}))
    assert [(d.id, d.score) for d in record.documents] == [(None, None), (None, None)]
    # A reranked query: its relevance score (higher is better) replaces the distance.
    translator.response(record, pa.table({"id": ["b", "a"], "_distance": [0.4, 0.1], "_relevance_score": [0.9, 0.2]}))
    assert [(d.id, d.score) for d in record.documents] == [("b", 0.9), ("a", 0.2)] and record.score_kind == "similarity"
    for garbage in (None, "garbage", [1, 2]):
        translator.response(record, garbage)
        assert record.documents == []
