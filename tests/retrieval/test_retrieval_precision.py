"""RetrievalPrecision on retrieval spans: labels (binary and graded), the relevance function, the
lexical judge, the retriever's scores, and what happens when it cannot judge or breaks."""

from __future__ import annotations

import math

import pytest

import micrometrics
from corpus import CORPUS, SHIPPING_QUESTION
from micrometrics.metrics import RetrievalPrecision
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M

PREFIX = "micrometrics.retrieval_precision."


def precision_of(telemetry, name: str = "retrieval kb") -> dict:
    attrs = telemetry.span(name).attributes
    return {k[len(PREFIX):]: v for k, v in attrs.items() if k.startswith(PREFIX)}


def retrieve(ids, query=None, **kw):
    micrometrics.record_retrieval(query=query, documents=[{"id": i, **kw} for i in ids], data_source="kb")


def test_binary_labels_precision_recall_mrr_ndcg(telemetry):
    telemetry.instrument(metrics=[RetrievalPrecision()])
    with micrometrics.context(relevant_document_ids=["b", "d", "x"]):
        retrieve(["a", "b", "c", "d"])
    result = precision_of(telemetry)
    # Relevant at ranks 2 and 4; three relevant documents exist, one was not retrieved.
    dcg = 1 / math.log2(3) + 1 / math.log2(5)  # 0.63093 + 0.43068
    idcg = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # 1 + 0.63093 + 0.5
    assert result == {
        "label": "pass",
        "score": 0.5,
        "passed": True,
        "precision_at_k": 0.5,
        "recall_at_k": pytest.approx(2 / 3, abs=1e-4),
        "mrr": 0.5,
        "ndcg_at_k": pytest.approx(0.4982, abs=1e-4),
        "k": 4,
        "relevant_retrieved": 2,
        "judged_by": "labels",
    }
    assert result["ndcg_at_k"] == pytest.approx(dcg / idcg, abs=1e-4)


def test_graded_labels_ndcg_by_hand(telemetry):
    telemetry.instrument(metrics=[RetrievalPrecision()])
    with micrometrics.context(relevance_grades={"a": 3, "c": 1, "e": 2, "f": 0}):
        retrieve(["a", "b", "c", "d"])
    result = precision_of(telemetry)
    # Gains by rank: 3, 0, 1, 0 -> DCG = 3/1 + 1/log2(4) = 3.5.
    # Ideal: 3, 2, 1 -> IDCG = 3 + 2/log2(3) + 1/2 = 4.76186. NDCG = 0.73501.
    assert result["ndcg_at_k"] == pytest.approx(0.7350, abs=1e-4)
    assert result["precision_at_k"] == 0.5
    assert result["recall_at_k"] == pytest.approx(0.6667, abs=1e-4)
    assert result["mrr"] == 1.0


def test_cut_off_k_and_min_precision(telemetry):
    telemetry.instrument(metrics=[RetrievalPrecision(k=2, min_precision=0.75)])
    with micrometrics.context(relevant_document_ids=["a", "c"]):
        retrieve(["a", "b", "c"])
    result = precision_of(telemetry)
    assert result["k"] == 2
    assert result["precision_at_k"] == 0.5
    assert result["recall_at_k"] == 0.5
    assert result["label"] == "fail" and result["passed"] is False
    assert telemetry.spans()[0].events[0].attributes[A.GEN_AI_EVALUATION_EXPLANATION] == (
        "1 of 2 retrieved documents relevant (precision 0.50 < 0.75)"
    )


def test_no_relevant_document_retrieved(telemetry):
    telemetry.instrument(metrics=[RetrievalPrecision()])
    with micrometrics.context(relevant_document_ids=["z"]):
        retrieve(["a", "b"])
    result = precision_of(telemetry)
    assert result["label"] == "fail"
    assert (result["precision_at_k"], result["recall_at_k"], result["mrr"], result["ndcg_at_k"]) == (0.0, 0.0, 0.0, 0.0)


def test_lexical_judge_on_crafted_documents(telemetry):
    telemetry.instrument(metrics=[RetrievalPrecision()])
    micrometrics.record_retrieval(
        query=SHIPPING_QUESTION,
        documents=[
            {"id": "shipping-germany", "content": CORPUS["shipping-germany"]},  # shipping, germany, takes: relevant
            {"id": "shipping-costs", "content": CORPUS["shipping-costs"]},  # only "shipping": not enough
            {"id": "office-berlin", "content": CORPUS["office-berlin"]},  # nothing in common
            {"id": "germany-stores", "content": "We have stores all over Germany; shipping is free there."},  # relevant
        ],
        data_source="kb",
    )
    result = precision_of(telemetry)
    assert result["judged_by"] == "lexical"
    assert result["relevant_retrieved"] == 2
    assert result["precision_at_k"] == 0.5
    assert result["label"] == "pass"


def test_relevance_function_bool_and_float(telemetry):
    seen = []

    def relevance(query, document):
        seen.append((query, document.id, document.content))
        return {"a": True, "b": 0.9, "c": 0.2, "d": False}[document.id]

    telemetry.instrument(capture_content=False, metrics=[RetrievalPrecision(relevance=relevance)])
    retrieve(["a", "b", "c", "d"], query="refund", content="text")
    result = precision_of(telemetry)
    assert result["judged_by"] == "relevance"
    assert result["relevant_retrieved"] == 2  # True, and 0.9 >= 0.5
    # The metric sees the content even when it is not exported.
    assert seen[0] == ("refund", "a", "text")


def test_min_score_for_similarities(telemetry):
    telemetry.instrument(metrics=[RetrievalPrecision(min_score=0.7)])
    micrometrics.record_retrieval(documents=[{"id": "a", "score": 0.9}, {"id": "b", "score": 0.6}, {"id": "c"}], data_source="kb")
    result = precision_of(telemetry)
    assert result["judged_by"] == "score"
    assert result["relevant_retrieved"] == 1


@pytest.mark.parametrize(
    "documents, explanation",
    [
        ([], "no documents retrieved"),
        ([{"id": "a", "score": 0.9}], "nothing to judge relevance by"),
    ],
    ids=["no-documents", "nothing-to-judge"],
)
def test_undetermined(telemetry, documents, explanation):
    telemetry.instrument(metrics=[RetrievalPrecision()])
    micrometrics.record_retrieval(documents=documents, data_source="kb")
    span = telemetry.span("retrieval kb")
    assert span.attributes[PREFIX + "label"] == "undetermined"
    assert PREFIX + "passed" not in span.attributes
    assert span.events[0].attributes[A.GEN_AI_EVALUATION_EXPLANATION].startswith(explanation)


@pytest.mark.parametrize("mode", ["async", "guard"])
def test_a_broken_metric_never_breaks_the_retrieval(telemetry, kb, mode):
    def relevance(query, document):
        raise RuntimeError("judge down")

    telemetry.instrument(metrics=[RetrievalPrecision(relevance=relevance, mode=mode)])
    result = kb.query(query_texts=[SHIPPING_QUESTION], n_results=2)
    assert result["ids"][0][0] == "shipping-germany"
    span = telemetry.span(f"retrieval {kb.name}")
    assert span.attributes[PREFIX + "label"] == "error"
    # Capture off: the exception's type, never its text (which may quote content; issue 14).
    explanation = span.events[0].attributes[A.GEN_AI_EVALUATION_EXPLANATION]
    assert explanation.endswith("raised RuntimeError") and "judge down" not in explanation
    evaluations = telemetry.metrics()[M.MICROMETRICS_EVALUATIONS]
    assert [p.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL] for p in evaluations] == ["error"]


def test_bad_labels_are_an_error_result_not_an_exception(telemetry):
    telemetry.instrument(metrics=[RetrievalPrecision()])
    with micrometrics.context(relevance_grades={"a": "high"}):
        retrieve(["a"])
    span = telemetry.span("retrieval kb")
    assert span.attributes[PREFIX + "label"] == "error"
    assert "grade 'high'" in span.events[0].attributes[A.GEN_AI_EVALUATION_EXPLANATION]


@pytest.mark.parametrize(
    "bad", [{"k": 0}, {"min_precision": 2}, {"relevance": "yes"}], ids=["k", "min_precision", "relevance"]
)
def test_invalid_configuration_is_refused_in_the_constructor(bad):
    """Where the mistake is made (issue 14), not later at instrument()."""
    with pytest.raises((ValueError, TypeError), match="RetrievalPrecision"):
        RetrievalPrecision(**bad)
