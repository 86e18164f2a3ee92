"""A user's own retriever: ``@micrometrics.retriever`` and ``micrometrics.record_retrieval``."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest
from opentelemetry.trace import StatusCode

import micrometrics
from corpus import CORPUS, SHIPPING_QUESTION
from micrometrics.metrics import RetrievalPrecision
from micrometrics_semconv import attributes as A
from provider_contract import assert_retrieval_call


def documents_of(span) -> list[dict]:
    return json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])


@micrometrics.retriever(data_source="kb")
def search(query: str, k: int = 2) -> list[dict]:
    hits = [
        {"id": slug, "score": round(1.0 - i * 0.1, 2), "content": text}
        for i, (slug, text) in enumerate(t for t in CORPUS.items() if any(w in t[1].lower() for w in query.lower().split()))
    ]
    return hits[:k]


@dataclass
class Hit:
    id: int
    score: float
    title: str  # not content: the judge has only the distances


class Index:
    def __init__(self) -> None:
        self.calls = 0

    @micrometrics.retriever(data_source="faq", score_kind="distance", db_system="pgvector")
    async def lookup(self, question: str, limit: int = 3) -> list[Hit]:
        self.calls += 1
        return [Hit(id=i, score=0.1 * i, title=text[:10]) for i, text in enumerate(CORPUS.values(), start=1)][:limit]


def test_decorated_function_is_a_retrieval_span(telemetry):
    telemetry.instrument(capture_content=True, metrics=[RetrievalPrecision()])
    hits = search("shipping germany")
    assert [h["id"] for h in hits] == ["shipping-germany", "shipping-costs"]

    span = assert_retrieval_call(
        telemetry, provider="custom", db_system=None, data_source="kb", top_k=2,  # the parameter's default
        score_kind="similarity", documents=[{"id": "shipping-germany", "score": 1.0}, {"id": "shipping-costs", "score": 0.9}],
        capture=True, query_text="shipping germany",
    )
    assert span.attributes["micrometrics.retrieval_precision.label"] == "pass"


def test_async_method_with_objects_keyword_arguments_and_distances(telemetry):
    telemetry.instrument(capture_content=True, metrics=[RetrievalPrecision(min_score=0.25)])
    index = Index()
    hits = asyncio.run(index.lookup(question="anything", limit=4))
    assert len(hits) == 4 and index.calls == 1
    attrs = telemetry.span("retrieval faq").attributes
    assert attrs[A.DB_SYSTEM_NAME] == "pgvector"
    assert attrs[A.GEN_AI_PROVIDER_NAME] == "pgvector"
    assert attrs[A.GEN_AI_REQUEST_TOP_K] == 4
    assert attrs[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == "distance"
    # A distance is no relevance score: under our own key, `score` left out.
    assert documents_of(telemetry.span()) == [{"id": str(i), A.MICROMETRICS_DISTANCE: pytest.approx(0.1 * i)} for i in range(1, 5)]
    # Text-less hits: judged by distance, at most 0.25 is relevant (0.1 and 0.2).
    assert attrs["micrometrics.retrieval_precision.judged_by"] == "score"
    assert attrs["micrometrics.retrieval_precision.precision_at_k"] == 0.5


def test_pairs_strings_and_the_default_data_source(telemetry):
    telemetry.instrument(capture_content=True, metrics=[])

    @micrometrics.retriever
    def similar(text):
        return [("first", 0.9), ({"id": "b", "text": "second"}, 0.5), "third"]

    assert similar("x")[2] == "third"
    # Null fields are left out, and an item with neither an id nor a score is no item.
    assert documents_of(telemetry.span("retrieval similar")) == [{"score": 0.9}, {"id": "b", "score": 0.5}]


def test_the_callers_exceptions_and_results_are_untouched(telemetry):
    telemetry.instrument(metrics=[RetrievalPrecision()])

    @micrometrics.retriever(data_source="broken")
    def broken(query):
        raise KeyError(query)

    @micrometrics.retriever(data_source="lazy")
    def lazy(query):
        yield {"id": "x"}

    with pytest.raises(KeyError, match="q"):
        broken("q")
    generator = lazy("q")
    assert next(generator) == {"id": "x"}  # not drained by us
    broken_span = telemetry.span("retrieval broken")
    assert broken_span.status.status_code == StatusCode.ERROR
    assert broken_span.attributes[A.ERROR_TYPE] == "KeyError"
    assert A.GEN_AI_RETRIEVAL_DOCUMENTS not in telemetry.span("retrieval lazy").attributes  # nothing retrieved yet


def test_not_instrumented_the_function_just_runs(telemetry):
    assert [h["id"] for h in search("warranty", k=1)] == ["warranty"]
    micrometrics.record_retrieval(query="warranty", documents=[{"id": "warranty"}], data_source="kb")
    assert telemetry.spans() == []


def test_record_retrieval(telemetry):
    telemetry.instrument(capture_content=False, metrics=[RetrievalPrecision()])
    with micrometrics.context(relevant_document_ids=["refund-policy"]):
        micrometrics.record_retrieval(
            query="refund",
            documents=[{"id": "refund-policy", "score": 0.8, "content": CORPUS["refund-policy"]}, {"id": "warranty", "score": 0.4}],
            data_source="manual-kb",
            top_k=2,
        )
    span = telemetry.span("retrieval manual-kb")
    assert span.attributes[A.GEN_AI_REQUEST_TOP_K] == 2
    # Ids and scores are opt-in content by the conventions: not there with capture off.
    assert A.GEN_AI_RETRIEVAL_DOCUMENTS not in span.attributes
    assert A.GEN_AI_RETRIEVAL_QUERY_TEXT not in span.attributes
    # The metric reads the record, not the attributes: it still judges the documents.
    assert span.attributes["micrometrics.retrieval_precision.precision_at_k"] == 0.5


def test_record_retrieval_with_capture_shows_ids_and_scores(telemetry):
    telemetry.instrument(capture_content=True, metrics=[RetrievalPrecision()])
    micrometrics.record_retrieval(
        query="refund", documents=[{"id": "refund-policy", "score": 0.8}, {"id": "warranty", "score": 0.4}], data_source="manual-kb",
    )
    span = telemetry.span("retrieval manual-kb")
    assert documents_of(span) == [{"id": "refund-policy", "score": 0.8}, {"id": "warranty", "score": 0.4}]


def test_wrong_options_say_what_to_do():
    with pytest.raises(ValueError, match="'similarity'.*'distance'"):
        micrometrics.retriever(score_kind="cosine")
    with pytest.raises(ValueError, match="score_kind"):
        micrometrics.record_retrieval(documents=[], score_kind="cosine")
    with pytest.raises(TypeError, match="data_source"):
        micrometrics.retriever(data_source=3)


def test_a_decorated_retriever_over_chroma_is_the_parent(telemetry, kb):
    telemetry.instrument(metrics=[])

    @micrometrics.retriever(data_source="support")
    def support(query: str) -> list[dict]:
        result = kb.query(query_texts=[query], n_results=1)
        return [{"id": i} for i in result["ids"][0]]

    support(SHIPPING_QUESTION)
    spans = {s.name: s for s in telemetry.spans()}
    assert spans[f"retrieval {kb.name}"].parent.span_id == spans["retrieval support"].context.span_id
