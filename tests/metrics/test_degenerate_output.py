"""DegenerateOutput: empty, truncated, looping, wrong-script or template-leaking answers; on a dataset and a real client."""

from __future__ import annotations

import time

import openai
import pytest

import micrometrics
from micrometrics.metric import CallView
from micrometrics.metrics import DegenerateOutput
from micrometrics.metrics.degenerate import CHECKS
from micrometrics.records import InferenceRecord, text_part
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M

from fidelity import Score, count_kinds, result_of, rows
from retrieval.corpus import chat_completion


def _problems(result) -> set[str]:
    return {p for p in (result.details or {}).get("problems", "").split(",") if p}


def _score(data) -> tuple[Score, dict[str, Score]]:
    metric = DegenerateOutput()
    overall, per = Score(), {c: Score() for c in CHECKS}
    for row in data:
        truth = {t.split(":", 1)[1] for t in row.tags if t.startswith("problem:")}
        found = _problems(result_of(metric, row))
        count_kinds(per, found, truth)
        overall.add(row.id, bool(truth), bool(found))
    return overall, per


def test_precision_and_recall_on_the_labelled_dataset():
    data = rows("degenerate_output")
    assert len(data) >= 125
    assert {"en", "de", "fr", "es", "it", "nl", "pt", "ru", "ja", "hard_negative", "holdout"} <= {t for r in data for t in r.tags}
    held_rows = [r for r in data if "holdout" in r.tags]
    (every, per), (held, _) = _score(data), _score(held_rows)
    print(f"\ndegenerate_output, all {len(data)} answers: {every}\n  held out ({len(held_rows)}), never tuned on: {held}")
    for check, s in per.items():
        print(f"  {check:13s} {s}")
    print("  " + "; ".join(every.misses))
    # Measured: all 128 answers P 0.986 R 0.986; held out (25) P 0.923 R 0.923; the misses: a 10-word loop under
    # min_loop_words, and Latin brand names over 30% of a short Russian answer.
    assert every.precision >= 0.98 and every.recall >= 0.98
    assert held.precision >= 0.92 and held.recall >= 0.92
    assert per["empty"].precision == per["empty"].recall == 1.0
    assert per["truncated"].precision == per["truncated"].recall == 1.0
    assert per["leaked_syntax"].precision == 1.0 and per["leaked_syntax"].recall == 1.0
    assert per["repetition"].precision == 1.0 and per["repetition"].recall >= 0.95
    assert per["script"].precision >= 0.94 and per["script"].recall == 1.0


def _view(text, finish="stop", parts=None, context=None, user="Wo ist meine Bestellung?") -> CallView:
    from micrometrics.records import Call

    parts = parts if parts is not None else [text_part(text)]
    rec = InferenceRecord(operation="chat", provider="x", model="m", finish_reasons=[finish],
                          input_messages=[{"role": "user", "parts": [text_part(user)]}],
                          output_messages=[{"role": "assistant", "parts": parts, "finish_reason": finish}])
    return CallView(rec, Call(record=rec, context=context or {}))


def test_the_expected_script_comes_from_context_then_configuration_then_the_user():
    mixed = "Ваш заказ отправлен сегодня и прибудет в пятницу утром, спасибо."
    r = DegenerateOutput().evaluate(_view(mixed))  # the user wrote German (Latin script)
    assert (r.details["problems"], r.details["script_expected"], r.details["script_expected_source"], r.details["script_found"]) == ("script", "latin", "inferred", "cyrillic")
    assert DegenerateOutput().evaluate(_view(mixed, context={"expected_language": "ru"})).label == "pass"
    assert DegenerateOutput(expected_language="ru").evaluate(_view(mixed)).label == "pass"


def test_bad_options_name_the_value_and_the_allowed_ones():
    with pytest.raises(ValueError, match=r"checks contains 'loops'; the checks are empty, truncated, repetition, script, leaked_syntax"):
        DegenerateOutput(checks=["loops"])
    with pytest.raises(ValueError, match=r"expected_language='klingon' has no known script"):
        DegenerateOutput(expected_language="klingon")
    with pytest.raises(ValueError, match=r"min_repeats=1 must be an int >= 2"):
        DegenerateOutput(min_repeats=1)
    with pytest.raises(ValueError, match=r"max_foreign_script_share=1.5"):
        DegenerateOutput(max_foreign_script_share=1.5)
    with pytest.raises(TypeError, match=r"checks=3 must be a list"):
        DegenerateOutput(checks=3)
    only = DegenerateOutput(checks=["truncated"])
    assert only.evaluate(_view("no no no no no no no no no no no no no no no no")).label == "pass"


def test_huge_and_odd_answers_are_bounded_and_never_raise():
    huge = "word " * 2_000_000
    t0 = time.thread_time()
    r = DegenerateOutput().evaluate(_view(huge))
    took = time.thread_time() - t0
    assert took < 1.0, took  # reads the first 20,000 characters
    assert r.details["problems"] == "repetition" and r.details["truncated_scan"] is True
    distinct = " ".join(f"w{i}" for i in range(400_000))  # no loop anywhere: the worst case of the loop search
    t0 = time.thread_time()
    assert DegenerateOutput().evaluate(_view(distinct)).label == "pass"
    assert time.thread_time() - t0 < 1.0
    t0 = time.thread_time()
    assert DegenerateOutput().evaluate(_view("1 " * 200_000)).label == "pass"  # numbers never loop; once quadratic
    assert time.thread_time() - t0 < 1.0
    odd = [{"type": "text", "content": 42}, {"type": "tool_call", "name": "lookup", "arguments": {"id": 1}}]
    assert DegenerateOutput().evaluate(_view("", finish="tool_call", parts=odd)).label == "pass"


def test_a_truncated_answer_with_leaked_syntax_on_the_span_the_log_and_the_points(demo, telemetry):
    telemetry.instrument(metrics=[DegenerateOutput()])
    body = chat_completion("Your order ships on Friday.<|im_end|>\n<|im_start|>user\nand the")
    body["choices"][0]["finish_reason"] = "length"
    demo.enqueue(json=body)
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Where is my order?"}], max_tokens=20)
    span = telemetry.span()
    a = span.attributes
    assert (a["micrometrics.degenerate_output.label"], a["micrometrics.degenerate_output.passed"]) == ("fail", False)
    assert a["micrometrics.degenerate_output.problems"] == "truncated,leaked_syntax"
    assert a["micrometrics.degenerate_output.leaked"] == "chat_template"
    assert a["micrometrics.degenerate_output.score"] == 2.0
    event = next(e for e in span.events if e.name == E.MICROMETRICS_EVALUATION_EVENT)
    assert event.attributes[A.GEN_AI_EVALUATION_EXPLANATION] == "degenerate answer: truncated, leaked_syntax"
    log = next(r for r in telemetry.logs() if r.event_name == E.GEN_AI_EVALUATION_RESULT)
    assert log.attributes[A.GEN_AI_EVALUATION_NAME] == "degenerate_output"
    points = telemetry.metrics()[M.MICROMETRICS_EVALUATIONS]
    assert [(p.attributes[A.GEN_AI_EVALUATION_NAME], p.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL]) for p in points] == [("degenerate_output", "fail")]


def test_cyrillic_in_a_german_conversation_fails_the_script_check(demo, telemetry):
    telemetry.instrument(metrics=[DegenerateOutput()])
    demo.enqueue(json=chat_completion("Ihre Bestellung wurde versandt. Ваш заказ будет доставлен в пятницу, спасибо."))
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    with micrometrics.context(expected_language="de"):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Wo ist mein Paket?"}])
    a = telemetry.span().attributes
    assert (a["micrometrics.degenerate_output.problems"], a["micrometrics.degenerate_output.script_found"]) == ("script", "cyrillic")
    assert a["micrometrics.degenerate_output.script_expected_source"] == "context"


def test_a_tool_call_without_text_is_no_empty_answer(demo, telemetry):
    telemetry.instrument(metrics=[DegenerateOutput()])
    body = chat_completion("")
    body["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": "{\"id\": 48213}"}}]}
    body["choices"][0]["finish_reason"] = "tool_calls"
    demo.enqueue(json=body)
    demo.enqueue(json=chat_completion("   "))
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Where is order 48213?"}])
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Where is order 48213?"}])
    tool, blank = telemetry.spans()
    assert tool.attributes["micrometrics.degenerate_output.label"] == "pass"
    assert blank.attributes["micrometrics.degenerate_output.problems"] == "empty"


def test_as_a_guard_a_loop_is_retried(demo, telemetry):
    telemetry.instrument(metrics=[DegenerateOutput(mode="guard", max_retries=1)])
    demo.enqueue(json=chat_completion("I will check your order now. " * 6))
    demo.enqueue(json=chat_completion("Your order ships on Friday."))
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Where is my order?"}])
    assert answer.choices[0].message.content == "Your order ships on Friday."
    first, second = telemetry.spans()
    assert (first.attributes["micrometrics.degenerate_output.problems"], first.attributes["micrometrics.degenerate_output.loop_repeats"]) == ("repetition", 6)
    assert second.attributes[A.MICROMETRICS_ATTEMPT] == 2 and second.attributes["micrometrics.degenerate_output.label"] == "pass"


def test_on_a_stream_the_monitor_judges_the_whole_answer(demo, telemetry):
    telemetry.instrument(metrics=[DegenerateOutput()])
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Where is my order?"}], stream=True)
    assert "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
    assert telemetry.span().attributes["micrometrics.degenerate_output.label"] == "pass"
