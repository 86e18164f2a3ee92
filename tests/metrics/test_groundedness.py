"""Groundedness: how much of the answer the documents retrieved before it support; on a dataset and a real client."""

from __future__ import annotations

import time

import openai
import pytest

import micrometrics
from micrometrics.metric import CallView
from micrometrics.metrics import Groundedness
from micrometrics.metrics.groundedness import numbers, readings
from micrometrics.records import Call, Document, InferenceRecord, text_part
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M

from fidelity import rows, score
from retrieval.corpus import CORPUS, SHIPPING_QUESTION, chat_completion


def test_precision_and_recall_on_the_labelled_dataset():
    data = rows("groundedness")
    assert len(data) >= 125
    assert {"en", "de", "fr", "es", "it", "nl", "hard_negative", "holdout"} <= {t for r in data for t in r.tags}
    failed = lambda r: r is not None and r.label == "fail"  # noqa: E731
    held_rows = [r for r in data if "holdout" in r.tags]
    every, held = score(Groundedness(), data, "ungrounded", failed), score(Groundedness(), held_rows, "ungrounded", failed)
    print(f"\ngroundedness, all {len(data)} answers (ungrounded found): {every}\n  held out ({len(held_rows)}): {held}\n  " + "; ".join(every.misses))
    # Measured: all 125 answers P 1.0 R 0.952; held out (25) P 1.0 R 0.833. The misses recombine the
    # documents' own words and numbers ("a five year warranty" where "5" is a shipping time): lexical support.
    assert every.precision == 1.0 and every.recall >= 0.95
    assert held.precision == 1.0 and held.recall >= 0.83


def test_numbers_are_compared_by_value():
    assert readings("4,90") == readings("4.90") == {"4.9"}
    assert readings("1.299,00") == readings("1,299.00") == {"1299"}
    assert readings("1.299") == {"1299", "1.299"}
    assert numbers("five days, 1. not a list\n1. a list item") == {"5", "1"}


def _view(answer: str, documents: list[str], user: str = "How long does shipping take?") -> CallView:
    rec = InferenceRecord(operation="chat", provider="x", model="m", input_messages=[{"role": "user", "parts": [text_part(user)]}],
                          output_messages=[{"role": "assistant", "parts": [text_part(answer)]}])
    docs = tuple(Document(id=f"d{i}", content=c) for i, c in enumerate(documents))
    return CallView(rec, Call(record=rec, retrieved_documents=docs))


def test_details_count_unsupported_numbers_and_names_never_the_values():
    r = Groundedness().evaluate(_view("Shipping takes 3 to 5 business days with DHL. Express with FedEx costs 19.90 euros.", [CORPUS["shipping-germany"]]))
    assert (r.label, r.details["sentences"], r.details["supported"], r.details["unsupported_numbers"], r.details["unsupported_entities"]) == ("fail", 2, 1, 1, 1)
    assert r.explanation == "1 of 2 sentences unsupported by the 1 retrieved documents; 1 number(s) in no document; 1 name(s) in no document"
    assert "19" not in r.explanation and "FedEx" not in r.explanation
    ok = Groundedness(fail_on_entities=False, min_supported=0.5).evaluate(_view("Shipping takes 3 to 5 business days with DHL. Express costs extra, ask FedEx.", [CORPUS["shipping-germany"]]))
    assert ok.label == "pass" and ok.score == 0.5


def test_only_questions_and_pleasantries_are_undetermined_and_options_are_checked():
    assert Groundedness().evaluate(_view("Thanks! Anything else?", [CORPUS["refund-policy"]])).label == "undetermined"
    assert Groundedness().applies(_view("x", [])) is False
    with pytest.raises(ValueError, match=r"min_supported=2 must be a number between 0 and 1"):
        Groundedness(min_supported=2)
    with pytest.raises(ValueError, match=r"min_topic_words=0 must be an int >= 1"):
        Groundedness(min_topic_words=0)
    with pytest.raises(TypeError, match=r"fail_on_entities='no' must be True or False"):
        Groundedness(fail_on_entities="no")


def test_huge_answers_and_documents_are_bounded():
    huge_doc = "Shipping to Germany takes 3 to 5 business days with DHL. " * 100_000
    huge_answer = "Shipping to Germany takes 3 to 5 business days with DHL. " * 100_000
    t0 = time.thread_time()
    r = Groundedness().evaluate(_view(huge_answer, [huge_doc] * 5))  # each read to its first 50,000 characters
    assert time.thread_time() - t0 < 2.0
    assert r.label == "pass" and r.details["sentences"] == 200
    for hostile in ("\n" * 200_000, " '" * 100_000, "1 " * 200_000):  # blank lines once took minutes (a \s* regex)
        t0 = time.thread_time()
        Groundedness().evaluate(_view(hostile, [hostile[:100_000]] * 3))
        assert time.thread_time() - t0 < 3.0


def client(demo) -> openai.OpenAI:
    return openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)


def test_an_invented_price_on_the_chat_span_after_a_retrieval(demo, telemetry):
    telemetry.instrument(metrics=[Groundedness()])
    docs = [{"id": k, "content": CORPUS[k]} for k in ("shipping-germany", "shipping-costs")]
    for answer in ("Shipping to Germany takes 3 to 5 business days with DHL; orders over 50 euros ship free.",
                   "Shipping to Germany takes 3 to 5 business days and costs 6.90 euros."):
        demo.enqueue(json=chat_completion(answer))
        with micrometrics.context():
            micrometrics.record_retrieval(query=SHIPPING_QUESTION, documents=docs, data_source="kb")
            client(demo).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": SHIPPING_QUESTION}])
    grounded, invented = [s for s in telemetry.spans() if s.name == "chat gpt-4o-mini"]
    a = grounded.attributes
    assert (a["micrometrics.groundedness.label"], a["micrometrics.groundedness.fraction"], a["micrometrics.groundedness.documents"]) == ("pass", 1.0, 2)
    b = invented.attributes
    assert (b["micrometrics.groundedness.label"], b["micrometrics.groundedness.passed"], b["micrometrics.groundedness.unsupported_numbers"]) == ("fail", False, 1)
    event = next(e for e in invented.events if e.name == E.MICROMETRICS_EVALUATION_EVENT)
    assert event.attributes[A.GEN_AI_EVALUATION_EXPLANATION] == "1 of 1 sentences unsupported by the 2 retrieved documents; 1 number(s) in no document"
    labels = [r.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL] for r in telemetry.logs() if r.event_name == E.GEN_AI_EVALUATION_RESULT]
    assert labels == ["pass", "fail"]
    points = {p.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL]: p.value for p in telemetry.metrics()[M.MICROMETRICS_EVALUATIONS]}
    assert points == {"pass": 1, "fail": 1}


def test_a_chat_call_without_retrieval_gets_no_result_and_streams_are_judged_whole(demo, telemetry):
    telemetry.instrument(metrics=[Groundedness()])
    client(demo).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}])
    with micrometrics.context():
        micrometrics.record_retrieval(documents=[{"id": "x", "content": "Our support team answers within one business day."}], data_source="kb")
        stream = client(demo).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}], stream=True)
        assert "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
    plain, streamed = [s for s in telemetry.spans() if s.name == "chat gpt-4o-mini"]
    assert not any(k.startswith("micrometrics.groundedness.") for k in plain.attributes)
    assert streamed.attributes["micrometrics.groundedness.label"] in ("pass", "fail")  # the demo's generic answer, judged
    assert streamed.attributes["micrometrics.groundedness.documents"] == 1
