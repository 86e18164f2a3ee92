"""PII in the response: which kind, never the value; proven on a labelled dataset and through a real client."""

from __future__ import annotations

import json
import time

import openai
import pytest

import micrometrics
from micrometrics.metric import CallView
from micrometrics.metrics import PiiInResponse
from micrometrics.metrics.pii import KINDS, find_pii, iban_valid, luhn_valid, steuer_id_valid
from micrometrics.records import InferenceRecord, text_part
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M

from fidelity import Score, count_kinds, rows
from retrieval.corpus import chat_completion

#: Values in the scripted answers below: none may appear in what the metric exports.
VALUES = ("jane.doe@gmail.com", "+49 30 12345678", "DE89 3704 0044 0532 0130 00", "4111 1111 1111 1111")
LEAKY_ANSWER = f"Frau Doe erreichen Sie unter {VALUES[1]} oder {VALUES[0]}; ihre IBAN ist {VALUES[2]}, die Karte {VALUES[3]}."


def _truth(row) -> set[str]:
    return {t.split(":", 1)[1] for t in row.tags if t.startswith("kind:")}


def _score(data) -> tuple[Score, dict[str, Score]]:
    metric = PiiInResponse()
    overall, per_kind = Score(), {k: Score() for k in KINDS}
    for row in data:
        found = {f.kind for f in metric.find(row.response)}
        truth = _truth(row)
        count_kinds(per_kind, found, truth)
        overall.add(row.id, bool(truth), bool(found))
    return overall, per_kind


def test_precision_and_recall_on_the_labelled_dataset():
    data = rows("pii")
    assert len(data) >= 140
    assert {"en", "de", "fr", "es", "it", "nl", "pt", "hard_negative", "holdout"} <= {t for r in data for t in r.tags}
    held_rows = [r for r in data if "holdout" in r.tags]
    (every, kinds), (held, _) = _score(data), _score(held_rows)
    print(f"\npii, all {len(data)} answers (any PII): {every}\n  held out ({len(held_rows)}), never tuned on: {held}")
    for kind, s in kinds.items():
        print(f"  {kind:13s} {s}")
    print("  " + "; ".join(every.misses))
    # Measured: all 141 answers P 1.0 R 0.957 (the misses: three held-out national phone formats without a phone word);
    # held out P 1.0 R 0.812; every kind P 1.0; phone R 0.900, the other kinds R 1.0.
    assert every.precision >= 0.99 and every.recall >= 0.95
    assert held.precision >= 0.99 and held.recall >= 0.81
    assert all(s.precision == 1.0 for s in kinds.values())
    assert kinds["phone"].recall >= 0.90
    assert all(kinds[k].recall == 1.0 for k in KINDS if k != "phone")


def test_checksums():
    assert iban_valid("DE89 3704 0044 0532 0130 00") and not iban_valid("DE89 3704 0044 0532 0130 01")
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    assert steuer_id_valid("86095742719") and not steuer_id_valid("86095742718") and not steuer_id_valid("12345678901")


def test_hard_negatives_are_not_phones():
    for text in ("Order 1234567890 shipped", "Version 10.2.14.3", "It costs $1,299.00", "on 2024-05-01 at 10:30",
                 "Der Termin ist am 01.05.2024", "IP 192.168.100.254", "Tracking 00340434161234567890", "ISBN 978-3-16-148410-0"):
        assert find_pii(text) == [], text


def _view(text: str, parts=None) -> CallView:
    parts = parts if parts is not None else [text_part(text)]
    return CallView(InferenceRecord(operation="chat", provider="x", model="m", output_messages=[{"role": "assistant", "parts": parts}]))


def test_the_result_names_kinds_and_counts_never_values():
    r = PiiInResponse().evaluate(_view(LEAKY_ANSWER))
    assert (r.label, r.passed, r.score) == ("fail", False, 4.0)
    assert r.details == {"kinds": "email,iban,card,phone", "count": 4, "email": 1, "iban": 1, "card": 1, "phone": 1}
    exported = json.dumps([r.explanation, dict(r.details)])
    assert not any(v in exported or v.replace(" ", "") in exported for v in VALUES)
    clean = PiiInResponse().evaluate(_view("Your parcel arrives on Friday."))
    assert (clean.label, clean.passed, clean.details) == ("pass", True, {"kinds": "", "count": 0})


def test_allow_and_kinds_narrow_what_counts_and_bad_options_are_refused():
    hotline = "Questions? Call our hotline on +49 800 1234567."
    assert PiiInResponse().evaluate(_view(hotline)).label == "fail"
    assert PiiInResponse(allow=["+49 (800) 123 45 67"]).evaluate(_view(hotline)).label == "pass"  # compared by digits
    assert PiiInResponse(kinds=["email"]).evaluate(_view(hotline)).label == "pass"
    with pytest.raises(ValueError, match=r"kinds contains 'passport'; the kinds are email, iban, card"):
        PiiInResponse(kinds=["passport"])
    with pytest.raises(ValueError, match=r"kinds=\(\) is empty"):
        PiiInResponse(kinds=[])
    with pytest.raises(TypeError, match=r"allow=5 must be a list of strings"):
        PiiInResponse(allow=5)
    with pytest.raises(ValueError, match=r"on_fail='redact' is not allowed; use one of 'return', 'raise'"):
        PiiInResponse(mode="guard", on_fail="redact")


def test_mask_replaces_each_value_by_its_kind():
    masked = PiiInResponse().mask(LEAKY_ANSWER)
    assert "[email]" in masked and "[phone]" in masked and "[iban]" in masked and "[card]" in masked
    assert not any(v in masked for v in VALUES)
    assert PiiInResponse().mask(42) == 42


def test_huge_and_odd_answers_are_bounded_and_never_raise():
    huge = ("Call 0171 2345678 or write to a.b@c.de. " + "12 34 56 78 90 " * 5) * 20_000  # 2.6 MB of digit runs
    t0 = time.thread_time()
    r = PiiInResponse().evaluate(_view(huge))
    took = time.thread_time() - t0
    assert took < 2.0, took  # scans the first 100,000 characters only
    assert r.label == "fail" and r.details["truncated"] is True
    odd = [{"type": "text", "content": 4111111111111111}, {"type": "text", "content": None}]
    assert PiiInResponse().evaluate(_view("", parts=odd)).label == "pass"


def test_the_span_log_and_points_say_which_kind_and_never_the_value_even_with_capture_on(demo, telemetry):
    telemetry.instrument(metrics=[PiiInResponse()], capture_content=True)
    demo.enqueue(json=chat_completion(LEAKY_ANSWER))
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Wie erreiche ich Frau Doe?"}])
    assert answer.choices[0].message.content == LEAKY_ANSWER  # a monitor never changes the answer
    span = telemetry.span()
    a = span.attributes
    assert (a["micrometrics.pii.label"], a["micrometrics.pii.passed"], a["micrometrics.pii.kinds"], a["micrometrics.pii.count"]) == ("fail", False, "email,iban,card,phone", 4)
    assert a["micrometrics.pii.phone"] == 1
    ours = {k: v for k, v in a.items() if k.startswith("micrometrics.")}
    event = next(e for e in span.events if e.name == E.MICROMETRICS_EVALUATION_EVENT)
    log = next(r for r in telemetry.logs() if r.event_name == E.GEN_AI_EVALUATION_RESULT)
    exported = json.dumps([ours, dict(event.attributes), dict(log.attributes), str(log.body)], default=str)
    assert "personal data in the answer: email (1)" in exported
    assert not any(v in exported or v.replace(" ", "") in exported for v in VALUES)
    points = telemetry.metrics()[M.MICROMETRICS_EVALUATIONS]
    assert [(p.attributes[A.GEN_AI_EVALUATION_NAME], p.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL]) for p in points] == [("pii", "fail")]


def test_mask_as_redact_keeps_the_values_out_of_captured_content(demo, telemetry):
    telemetry.instrument(metrics=[PiiInResponse()], capture_content=True, redact=PiiInResponse().mask)
    demo.enqueue(json=chat_completion(LEAKY_ANSWER))
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Wie erreiche ich Frau Doe?"}])
    output = telemetry.span().attributes[A.GEN_AI_OUTPUT_MESSAGES]
    assert "[email]" in output and "[iban]" in output
    assert not any(v in output for v in VALUES)


def test_as_a_guard_it_retries_with_an_instruction_and_the_user_reads_the_clean_answer(demo, telemetry):
    telemetry.instrument(metrics=[PiiInResponse(mode="guard", max_retries=1, on_fail="raise")])
    demo.enqueue(json=chat_completion("Sure, Jane's number is +1 415 555 2671."))
    demo.enqueue(json=chat_completion("I have passed your message on to Jane; she will call you back."))
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "What is Jane's number?"}])
    assert answer.choices[0].message.content.startswith("I have passed")
    retry_body = demo.requests[-1].body
    instruction = " ".join(m["content"] for m in retry_body["messages"] if m["role"] == "system")
    assert "Do not include personal data" in instruction and "phone" in instruction and "555" not in instruction
    first, second = telemetry.spans()
    assert (first.attributes["micrometrics.pii.label"], first.attributes["micrometrics.pii.kinds"]) == ("fail", "phone")
    assert (second.attributes[A.MICROMETRICS_ATTEMPT], second.attributes["micrometrics.pii.label"]) == (2, "pass")


def test_a_guard_that_still_fails_raises_with_the_kinds(demo, telemetry):
    telemetry.instrument(metrics=[PiiInResponse(mode="guard", max_retries=1, on_fail="raise")])
    demo.enqueue(json=chat_completion("Her e-mail is jane.doe@gmail.com."))
    demo.enqueue(json=chat_completion("Again: jane.doe@gmail.com."))
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    with pytest.raises(micrometrics.GuardError) as caught:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Jane's e-mail?"}])
    assert caught.value.results["pii"].details["kinds"] == "email"
    assert "jane.doe" not in str(caught.value)


def test_on_a_stream_the_monitor_judges_the_whole_answer(demo, telemetry):
    telemetry.instrument(metrics=[PiiInResponse()])
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Where is my order?"}], stream=True)
    assert "".join((c.choices[0].delta.content or "") for c in stream if c.choices)
    assert telemetry.span().attributes["micrometrics.pii.label"] == "pass"
