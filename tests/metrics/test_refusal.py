"""Refusal: the model declined, in seven languages; proven on a labelled dataset and through a real client."""

from __future__ import annotations

import time

import openai
import pytest

from micrometrics.metric import CallView
from micrometrics.metrics import Refusal
from micrometrics.metrics.refusal import LANGUAGES, find_refusal
from micrometrics.records import InferenceRecord, text_part
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M

from fidelity import rows, score
from retrieval.corpus import chat_completion

GERMAN = [{"role": "user", "content": "Können Sie mir bei meiner Steuererklärung helfen?"}]


def _refused(result) -> bool:
    return result is not None and result.label == "refused"


def test_precision_and_recall_on_the_labelled_dataset():
    data = rows("refusal")
    assert len(data) >= 150
    assert {t for r in data for t in r.tags} >= set(LANGUAGES) | {"hard_negative", "holdout"}
    tuned = [r for r in data if "holdout" not in r.tags]
    holdout = [r for r in data if "holdout" in r.tags]
    every, dev, held = (score(Refusal(), part, "refused", _refused) for part in (data, tuned, holdout))
    print(f"\nrefusal, all {len(data)} cases: {every}\n  written with the patterns ({len(tuned)}): {dev}\n  held out, never tuned on ({len(holdout)}): {held}")
    print("  " + "; ".join(every.misses))
    # Measured: all 188 cases P 0.979 R 0.959; the 150 the patterns were written with P 1.0 R 1.0; the 38 held out P 0.882 R 0.789.
    assert every.precision >= 0.97 and every.recall >= 0.95
    assert held.precision >= 0.88 and held.recall >= 0.78


@pytest.mark.parametrize(
    "text",
    [
        "I can't wait to help you plan your trip!",
        "I can't help but notice your order ships free.",
        'A typical refusal reads "I\'m sorry, but I can\'t help with that." and we detect it.',
        "If I can't help with your question, a colleague will. Your parcel arrives tomorrow.",
        "```\nassert reply != \"I cannot assist with that\"\n```",
        "> Dabei kann ich Ihnen leider nicht helfen.\nDiese Antwort haben wir abgeschafft.",
    ],
)
def test_hard_negatives_are_answers(text):
    assert find_refusal(text) is None


def _view(text: str, finish: str = "stop", parts=None) -> CallView:
    parts = parts if parts is not None else [text_part(text)]
    return CallView(InferenceRecord(operation="chat", provider="x", model="m", finish_reasons=[finish],
                                    output_messages=[{"role": "assistant", "parts": parts, "finish_reason": finish}]))


def test_a_refusal_later_in_a_long_answer_is_partial_and_the_opening_decides():
    long_answer = "Here is how to set it up. Open Settings. Choose Security. Scan the code. I can't see your screen, though."
    r = Refusal().evaluate(_view(long_answer))
    assert (r.label, r.passed, r.details["partial"]) == ("answered", True, True)
    r = Refusal().evaluate(_view("Vielen Dank. Leider kann ich Ihnen bei der Steuererklärung nicht weiterhelfen."))
    assert (r.label, r.passed, r.score, r.details["language"]) == ("refused", False, 1.0, "de")


def test_languages_restrict_the_patterns_and_bad_options_are_refused():
    assert Refusal(languages=["en"]).evaluate(_view("Dabei kann ich Ihnen leider nicht helfen.")).label == "answered"
    with pytest.raises(ValueError, match=r"languages contains 'xx'.*en, de, fr, es, it, nl, pt"):
        Refusal(languages=["xx"])
    with pytest.raises(ValueError, match=r"languages=\(\) is empty"):
        Refusal(languages=[])
    with pytest.raises(TypeError, match="languages=5 must be a list"):
        Refusal(languages=5)
    with pytest.raises(ValueError, match=r"sample_rate=2 must be a number between 0 and 1"):
        Refusal(sample_rate=2)
    assert Refusal().latency_class == "realtime"


def test_huge_and_odd_answers_are_bounded_and_never_raise():
    huge = "Sure, here you go. " + "word " * 2_000_000 + "I cannot help with that."
    t0 = time.thread_time()
    r = Refusal().evaluate(_view(huge))
    assert time.thread_time() - t0 < 1.0  # thread CPU; reads the first 20,000 characters only
    assert r.label == "answered"
    assert Refusal().evaluate(_view("   \n")).label == "undetermined"
    # Non-text content (a number, None, an image part) is not text: nothing to judge, no exception.
    odd = [{"type": "text", "content": 42}, {"type": "text", "content": None}, {"type": "blob", "modality": "image"}]
    assert Refusal().evaluate(_view("", parts=odd)).label == "undetermined"


def test_a_refusal_is_on_the_span_the_log_and_the_metric_points(demo, telemetry):
    telemetry.instrument(metrics=[Refusal()])
    demo.enqueue(json=chat_completion("Es tut mir leid, aber bei Steuerfragen kann ich Ihnen leider nicht helfen."))
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=GERMAN).choices[0].message.content
    assert answer.startswith("Es tut mir leid")  # the monitor never changes what the user gets
    span = telemetry.span()
    a = span.attributes
    assert a["micrometrics.refusal.label"] == "refused"
    assert a["micrometrics.refusal.passed"] is False
    assert a["micrometrics.refusal.score"] == 1.0
    assert (a["micrometrics.refusal.source"], a["micrometrics.refusal.language"], a["micrometrics.refusal.partial"]) == ("text", "de", False)
    event = next(e for e in span.events if e.name == E.MICROMETRICS_EVALUATION_EVENT)
    assert event.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL] == "refused"
    log = next(r for r in telemetry.logs() if r.event_name == E.GEN_AI_EVALUATION_RESULT)
    assert log.attributes[A.GEN_AI_EVALUATION_NAME] == "refusal"
    assert "Steuer" not in log.attributes.get(A.GEN_AI_EVALUATION_EXPLANATION, "")  # the answer's words never leave
    points = telemetry.metrics()[M.MICROMETRICS_EVALUATIONS]
    assert [(p.attributes[A.GEN_AI_EVALUATION_NAME], p.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL], p.value) for p in points] == [("refusal", "refused", 1)]


def test_the_providers_own_refusal_and_the_content_filter_count(demo, telemetry):
    telemetry.instrument(metrics=[Refusal()])
    body = chat_completion("")
    body["choices"][0]["message"] = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    demo.enqueue(json=body)
    filtered = chat_completion("Here is the first part of the")
    filtered["choices"][0]["finish_reason"] = "content_filter"
    demo.enqueue(json=filtered)
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=GERMAN)
    client.chat.completions.create(model="gpt-4o-mini", messages=GERMAN)
    first, second = telemetry.spans()
    assert (first.attributes["micrometrics.refusal.label"], first.attributes["micrometrics.refusal.source"]) == ("refused", "provider")
    assert (second.attributes["micrometrics.refusal.label"], second.attributes["micrometrics.refusal.source"]) == ("refused", "content_filter")


def test_as_a_guard_a_refusal_is_retried_and_the_user_reads_the_answer(demo, telemetry):
    telemetry.instrument(metrics=[Refusal(mode="guard", max_retries=1)])
    demo.enqueue(json=chat_completion("I'm sorry, but I can't help with that."))
    demo.enqueue(json=chat_completion("Your parcel left our warehouse today and arrives on Friday."))
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Where is my parcel?"}]).choices[0].message.content
    assert answer.startswith("Your parcel")
    first, second = telemetry.spans()
    assert first.attributes["micrometrics.refusal.label"] == "refused"
    assert second.attributes[A.MICROMETRICS_ATTEMPT] == 2 and second.attributes["micrometrics.refusal.label"] == "answered"
    retries = telemetry.metrics()[M.MICROMETRICS_GUARD_RETRIES]
    assert [(p.attributes[A.GEN_AI_EVALUATION_NAME], p.value) for p in retries] == [("refusal", 1)]


def test_on_a_stream_the_monitor_judges_the_whole_answer(demo, telemetry):
    telemetry.instrument(metrics=[Refusal()])
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=GERMAN, stream=True)
    text = "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
    assert text  # proxied, not drained
    assert telemetry.span().attributes["micrometrics.refusal.label"] == "answered"
