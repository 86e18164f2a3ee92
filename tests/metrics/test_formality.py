"""Formality: a product speaking "Sie" that suddenly says "du"; on a labelled dataset and through a real client."""

from __future__ import annotations

import openai
import pytest
from demo_server import _DE_REPLIES

import micrometrics
from micrometrics.metric import CallView
from micrometrics.metrics import Formality
from micrometrics.metrics.language import prepare
from micrometrics.records import Call, InferenceRecord, text_part
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M

from fidelity import result_of, rows, score
from retrieval.corpus import chat_completion


@pytest.fixture(autouse=True)
def _profiles_loaded():
    prepare()  # the language profiles: loading them is not what a guard's budget is for


def test_precision_and_recall_on_the_labelled_dataset():
    data = rows("formality")
    assert len(data) >= 125
    assert {"de", "fr", "es", "nl", "it", "hard_negative", "holdout"} <= {t for r in data for t in r.tags}
    mismatch = lambda r: r is not None and r.label == "mismatch"  # noqa: E731
    held_rows = [r for r in data if "holdout" in r.tags]
    every, held = score(Formality(), data, "mismatch", mismatch), score(Formality(), held_rows, "mismatch", mismatch)
    decided = [r for r in data if "undetermined" not in r.tags]
    undetermined = sum(result_of(Formality(), r).label == "undetermined" for r in decided)
    print(f"\nformality, all {len(data)} answers (mismatch found): {every}\n  held out ({len(held_rows)}): {held}")
    print(f"  answers with a register judged undetermined: {undetermined} of {len(decided)}; " + "; ".join(every.misses))
    # Measured: all 132 answers P 1.0 R 1.0; held out (25) P 1.0 R 1.0; 2 of 114 answers that have a register
    # are undetermined (a sentence-initial "Sie ist" and a lower-case Italian "suo"): never a false mismatch.
    assert every.precision == 1.0 and every.recall == 1.0
    assert held.precision == 1.0 and held.recall == 1.0
    assert undetermined <= 2


def _view(answer: str, context=None, history=()) -> CallView:
    msgs = []
    for text in history:
        msgs += [{"role": "user", "parts": [text_part("…")]}, {"role": "assistant", "parts": [text_part(text)]}]
    msgs.append({"role": "user", "parts": [text_part("Und wann kommt es?")]})
    rec = InferenceRecord(operation="chat", provider="x", model="m", input_messages=msgs,
                          output_messages=[{"role": "assistant", "parts": [text_part(answer)]}])
    return CallView(rec, Call(record=rec, context=context or {}))


def test_the_expected_register_comes_from_context_then_configuration_then_the_conversation():
    informal = "Dein Paket kommt morgen, du bekommst noch eine E-Mail von uns."
    r = Formality().evaluate(_view(informal, history=_DE_REPLIES[:3]))
    assert (r.label, r.details["expected"], r.details["expected_source"], r.details["detected"]) == ("mismatch", "formal", "conversation", "informal")
    assert Formality(expected="informal").evaluate(_view(informal, history=_DE_REPLIES[:3])).label == "match"
    assert Formality(expected="formal").evaluate(_view(informal, context={"formality": "informal"})).details["expected_source"] == "context"
    assert Formality().evaluate(_view(informal)).label == "undetermined"  # nothing says what to expect
    bad = Formality().evaluate(_view(informal, context={"formality": "casual"}))
    assert bad.label == "error" and "context(formality='casual') is not allowed" in bad.explanation


def test_bad_options_name_the_value_and_the_allowed_ones():
    with pytest.raises(ValueError, match=r"expected='polite' is not allowed; use one of 'formal', 'informal'"):
        Formality(expected="polite")
    with pytest.raises(ValueError, match=r"min_chars=0 must be an int >= 1"):
        Formality(min_chars=0)


def test_huge_and_odd_answers_are_bounded():
    import time

    huge = "Sie können das gern tun. " * 400_000
    t0 = time.thread_time()
    r = Formality(expected="formal").evaluate(_view(huge))
    assert time.thread_time() - t0 < 1.0 and r.label == "match"
    assert Formality(expected="formal").evaluate(_view("")).label == "undetermined"


def _german(demo):
    return openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)


TURNS = [{"role": "user", "content": "Hallo, ich habe eine Frage zu meiner Bestellung."}]


def test_a_du_in_a_sie_product_is_a_mismatch_on_the_span_log_and_points(demo, telemetry):
    telemetry.instrument(metrics=[Formality()])
    demo.enqueue(json=chat_completion("Klar, ich schaue sofort nach. Hast du deine Bestellnummer zur Hand?"))
    with micrometrics.context(formality="formal"):
        _german(demo).chat.completions.create(model="gpt-4o-mini", messages=TURNS)
        _german(demo).chat.completions.create(model="gpt-4o-mini", messages=TURNS)  # the demo model's own answer: "Sie"
    slipped, kept = telemetry.spans()
    a = slipped.attributes
    assert (a["micrometrics.formality.label"], a["micrometrics.formality.passed"]) == ("mismatch", False)
    assert (a["micrometrics.formality.expected"], a["micrometrics.formality.detected"], a["micrometrics.formality.language"]) == ("formal", "informal", "de")
    assert kept.attributes["micrometrics.formality.label"] == "match"
    event = next(e for e in slipped.events if e.name == E.MICROMETRICS_EVALUATION_EVENT)
    assert event.attributes[A.GEN_AI_EVALUATION_EXPLANATION] == "expected the formal register, the answer is informal (de)"
    assert {r.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL] for r in telemetry.logs() if r.event_name == E.GEN_AI_EVALUATION_RESULT} == {"mismatch", "match"}
    points = {p.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL]: p.value for p in telemetry.metrics()[M.MICROMETRICS_EVALUATIONS]}
    assert points == {"mismatch": 1, "match": 1}


def test_as_a_guard_the_slip_is_retried_with_the_register_named(demo, telemetry):
    telemetry.instrument(metrics=[Formality(mode="guard", max_retries=1)])
    demo.enqueue(json=chat_completion("Klar, ich schaue sofort nach. Hast du deine Bestellnummer zur Hand?"))
    with micrometrics.context(formality="formal"):
        answer = _german(demo).chat.completions.create(model="gpt-4o-mini", messages=TURNS).choices[0].message.content
    assert "Ihnen" in answer  # the retry: the demo model's formal answer
    instruction = " ".join(m["content"] for m in demo.requests[-1].body["messages"] if m["role"] == "system")
    assert instruction == "Address the user in the formal register (\u201cSie\u201d) throughout the answer, as in the rest of this conversation."
    first, second = telemetry.spans()
    assert first.attributes["micrometrics.formality.label"] == "mismatch"
    assert (second.attributes[A.MICROMETRICS_ATTEMPT], second.attributes["micrometrics.formality.label"]) == (2, "match")


def test_on_a_stream_the_monitor_judges_the_whole_answer(demo, telemetry):
    telemetry.instrument(metrics=[Formality(expected="formal")])
    stream = _german(demo).chat.completions.create(model="gpt-4o-mini", messages=TURNS, stream=True)
    assert "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
    assert telemetry.span().attributes["micrometrics.formality.label"] == "match"
