"""AnswerConsistency against a scripted loopback model, through a real instrumented OpenAI client: a consistent
model and an inconsistent one, the re-asks as children of the judged call with their cost charged to it and
evaluated by no metric, sampling, the call and USD caps, failures."""

from __future__ import annotations

import openai
import pytest

import micrometrics
from micrometrics.metrics import AnswerConsistency, LanguageMatch, ResponseLength, openai_ask
from micrometrics.metrics.consistency import lexical_similarity, numbers_differ
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M

from retrieval.corpus import chat_completion

MODEL = "gpt-4.1-nano"
SYSTEM = "You are the support assistant of a shop. Answer in one sentence."
QUESTION = "When do I get my refund after I send the item back?"
ANSWER = "Refunds are issued within 14 days of receiving the returned item."
P = "micrometrics.answer_consistency."


def _client(demo) -> openai.OpenAI:
    return openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)


def _ask_app(demo, **ctx) -> str:
    with micrometrics.context(**ctx):
        r = _client(demo).chat.completions.create(
            model=MODEL, temperature=0.2, messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}],
        )
    return r.choices[0].message.content


def _script(demo, original: str, *reasks: str) -> None:
    demo.enqueue(json=chat_completion(original, model=MODEL))
    for text in reasks:
        demo.enqueue(json=chat_completion(text, model=MODEL))


def _by_role(telemetry):
    """(the judged call's span, the re-asks' spans): the judged one carries the metric's result."""
    spans = [s for s in telemetry.spans() if s.attributes.get(A.GEN_AI_REQUEST_MODEL) == MODEL]
    judged = [s for s in spans if P + "label" in s.attributes]
    return judged, [s for s in spans if s not in judged]


def test_a_consistent_model_the_reasks_are_children_charged_to_the_judged_call_and_evaluated_by_no_metric(demo, telemetry):
    metric = AnswerConsistency(openai_ask(_client(demo)), sample_rate=1.0)
    telemetry.instrument(metrics=[LanguageMatch(), ResponseLength(), metric])
    _script(demo, ANSWER, ANSWER, "Refunds are issued within 14 days after we receive the returned item.", ANSWER)
    assert _ask_app(demo) == ANSWER  # the app's answer, untouched
    (judged,), reasks = _by_role(telemetry)
    a = judged.attributes
    assert (a[P + "label"], a[P + "passed"], a[P + "n"], a[P + "calls"]) == ("consistent", True, 4, 3)
    assert a[P + "agreement"] == a[P + "score"] > 0.9 and a[P + "min_pairwise"] > 0.7 and a[P + "numbers_differ"] == 0
    assert (a[P + "temperature"], a[P + "other_temperature"], a[P + "similarity"]) == (0.2, 1.0, "lexical")
    # The re-asks: the same request, at the request's temperature twice, then at the other one; the judged model.
    bodies = [r.body for r in demo.requests[1:]]
    assert [b.get("temperature") for b in bodies] == [0.2, 0.2, 1.0] and {b["model"] for b in bodies} == {MODEL}
    assert all(b["messages"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}] for b in bodies)
    # Children of the judged call's span (the monitor thread started them in its context), in its trace.
    assert len(reasks) == 3
    assert {s.parent.span_id for s in reasks} == {judged.context.span_id}
    assert {s.context.trace_id for s in reasks} == {judged.context.trace_id}
    # Evaluated by no metric: neither this one nor LanguageMatch or ResponseLength, which evaluate the app's call.
    assert "micrometrics.language_match.label" in a and "micrometrics.response_length.label" in a
    assert not any(k.startswith("micrometrics.") and k.endswith(".label") for s in reasks for k in s.attributes)
    # Priced, and their cost charged to the metric, on the judged call.
    costs = [s.attributes[A.GEN_AI_USAGE_COST_AMOUNT] for s in reasks]
    assert a[P + "cost"] == pytest.approx(sum(costs)) and all(c > 0 for c in costs)
    points = [p for p in telemetry.metrics()[M.MICROMETRICS_COST] if p.attributes.get(A.GEN_AI_EVALUATION_NAME) == "answer_consistency"]
    assert sum(p.value for p in points) == pytest.approx(sum(costs))


def test_an_inconsistent_model_is_caught_by_its_numbers_and_its_words(demo, telemetry):
    telemetry.instrument(metrics=[AnswerConsistency(openai_ask(_client(demo)), sample_rate=1.0)])
    _script(demo, ANSWER, "Refunds are issued within 30 days of receiving the returned item.", ANSWER,
            "Please contact our store manager, who decides each case individually.")
    _ask_app(demo)
    (judged,), _ = _by_role(telemetry)
    a = judged.attributes
    assert (a[P + "label"], a[P + "passed"]) == ("inconsistent", False)
    assert a[P + "agreement"] < 0.5 and a[P + "min_pairwise"] == 0.0
    # "30 days" against each of the three others; the off-topic one, without a number, against the two saying 14 days.
    assert a[P + "numbers_differ"] == 5
    assert a[P + "least_agreeing"] in ("request_temperature", "other_temperature")
    assert a[P + "agreement_at_other_temperature"] < 0.3  # the off-topic answer came at the other temperature
    assert a[P + "agreement_with_original"] < 0.6


def test_the_other_temperature_is_named_when_it_disagrees(demo, telemetry):
    telemetry.instrument(metrics=[AnswerConsistency(openai_ask(_client(demo)), sample_rate=1.0)])
    _script(demo, ANSWER, ANSWER, ANSWER, "Refunds are issued within 30 days of receiving the returned item.")
    _ask_app(demo)
    a = _by_role(telemetry)[0][0].attributes
    assert a[P + "least_agreeing"] == "other_temperature" and a[P + "agreement_at_request_temperature"] == 1.0
    assert a[P + "agreement_at_other_temperature"] == 0.0 and a[P + "label"] == "consistent"  # 3 pairs of 6 at 1.0: mean 0.5
    assert a[P + "min_pairwise"] == 0.0


def test_sampling_skips_calls_without_a_result_or_a_reask(demo, telemetry):
    telemetry.instrument(metrics=[AnswerConsistency(openai_ask(_client(demo)), sample_rate=0.0)])
    _ask_app(demo)
    assert not any(k.startswith(P) for k in telemetry.span().attributes)
    assert len(demo.requests) == 1
    assert AnswerConsistency(lambda m, t, model: "x").sample_rate == 0.05  # sampled by default


def test_over_the_call_budget_the_model_is_not_asked(demo, telemetry):
    telemetry.instrument(metrics=[AnswerConsistency(openai_ask(_client(demo)), sample_rate=1.0, max_calls_per_minute=3)])
    _script(demo, ANSWER, ANSWER, ANSWER, ANSWER)
    _script(demo, ANSWER)
    _ask_app(demo)
    _ask_app(demo)
    judged, _ = _by_role(telemetry)
    assert [s.attributes[P + "label"] for s in judged] == ["consistent", "undetermined"]
    second = judged[1].attributes
    assert second[P + "budget_exhausted"] is True and second[P + "calls"] == 0 and P + "cost" not in second
    assert len(demo.requests) == 5  # two app calls, three re-asks


def test_over_the_usd_budget_the_model_is_not_asked(demo, telemetry):
    # The first evaluation's three re-asks cost ~1.6e-5 USD: past the day's cap, the next call is not re-asked.
    telemetry.instrument(metrics=[AnswerConsistency(openai_ask(_client(demo)), sample_rate=1.0, max_usd_per_day=0.00001)])
    _script(demo, ANSWER, ANSWER, ANSWER, ANSWER)
    _script(demo, ANSWER)
    _ask_app(demo)
    _ask_app(demo)
    judged, _ = _by_role(telemetry)
    first, second = (s.attributes for s in judged)
    assert first[P + "label"] == "consistent" and first[P + "cost"] > 0.00001
    assert second[P + "label"] == "undetermined" and second[P + "budget_exhausted"] is True
    assert len(demo.requests) == 5


def test_a_failing_reask_is_an_error_of_the_metric_and_the_app_call_is_unaffected(demo, telemetry):
    telemetry.instrument(metrics=[AnswerConsistency(openai_ask(_client(demo)), sample_rate=1.0, n=1, n_other=0)])
    _script(demo, ANSWER)
    demo.enqueue(status=429)
    assert _ask_app(demo) == ANSWER
    a = _by_role(telemetry)[0][0].attributes
    assert a[P + "label"] == "error" and a[A.GEN_AI_USAGE_COST_AMOUNT] > 0


def test_a_request_with_a_tool_result_is_not_reasked(demo, telemetry):
    telemetry.instrument(metrics=[AnswerConsistency(openai_ask(_client(demo)), sample_rate=1.0)])
    _script(demo, "Your order ships tomorrow.")
    _client(demo).chat.completions.create(model=MODEL, messages=[
        {"role": "user", "content": "Where is my order?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "track", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "shipping tomorrow"},
    ])
    assert not any(k.startswith(P) for k in telemetry.span().attributes)
    assert len(demo.requests) == 1


def test_empty_reasks_leave_too_little_to_compare(demo, telemetry):
    telemetry.instrument(metrics=[AnswerConsistency(lambda messages, t, model: "  ", sample_rate=1.0)])
    _script(demo, ANSWER)
    _ask_app(demo)
    a = telemetry.span().attributes
    assert (a[P + "label"], a[P + "empty_answers"], a[P + "n"]) == ("undetermined", 3, 1)


def test_a_plugged_similarity_decides_and_numbers_still_count(demo, telemetry):
    def same_meaning(a, b):
        return 1.0

    telemetry.instrument(metrics=[AnswerConsistency(lambda messages, t, model: "Within 30 days.", similarity=same_meaning, sample_rate=1.0, n=1, n_other=0)])
    _script(demo, ANSWER)
    _ask_app(demo)
    a = telemetry.span().attributes
    assert (a[P + "label"], a[P + "similarity"], a[P + "numbers_differ"]) == ("inconsistent", "same_meaning", 1)


def test_options_are_checked_and_it_cannot_guard(demo):
    ask = lambda messages, t, model: "x"  # noqa: E731
    with pytest.raises(ValueError, match=r"mode='guard' needs a realtime metric; latency_class='async'"):
        AnswerConsistency(ask, mode="guard")
    with pytest.raises(TypeError, match=r"ask=None must be a function"):
        AnswerConsistency(None)
    with pytest.raises(ValueError, match=r"n=0 and n_other=0 ask nothing"):
        AnswerConsistency(ask, n=0, n_other=0)
    with pytest.raises(ValueError, match=r"other_temperature=5 must be a number from 0 to 2"):
        AnswerConsistency(ask, other_temperature=5)
    with pytest.raises(ValueError, match=r"min_agreement=1.5 must be a number between 0 and 1"):
        AnswerConsistency(ask, min_agreement=1.5)
    with pytest.raises(ValueError, match=r"max_usd_per_day=-1 must be a positive number of USD"):
        AnswerConsistency(ask, max_usd_per_day=-1)
    with pytest.raises(ValueError, match=r"max_calls_per_day=0 must be an int >= 1"):
        AnswerConsistency(ask, max_calls_per_day=0)
    with pytest.raises(TypeError, match=r"has no chat.completions.create"):
        openai_ask(object())
    with pytest.raises(TypeError, match=r"is asynchronous"):
        openai_ask(openai.AsyncOpenAI(base_url=demo.openai_base_url, api_key="sk-test"))


def test_agreement_of_two_answers():
    assert numbers_differ("within 14 days", "in 30 days") and not numbers_differ("14 days", "fourteen... 14 days")
    assert not numbers_differ("costs 1.299,00 EUR", "costs 1,299.00 EUR")  # one price, two ways of writing it
    assert not numbers_differ("no numbers", "none here either")
    assert numbers_differ("two weeks", "14 days")  # a number word is a number: a known false disagreement
    assert lexical_similarity(ANSWER, ANSWER) == pytest.approx(1.0)
    assert lexical_similarity(ANSWER, "Please contact the store manager.") < 0.3


def test_micrometrics_eval_measures_it_against_labels(demo, tmp_path):
    """The documented way to measure its agreement with human labels: tagged rows, a metrics file, the "by tag" table."""
    import json

    from micrometrics import cli

    rows = [
        {"id": "stable", "messages": [{"role": "user", "content": QUESTION}], "response": ANSWER, "tags": ["stable"]},
        {"id": "unstable", "messages": [{"role": "user", "content": QUESTION}], "response": ANSWER, "tags": ["unstable"]},
    ]
    (tmp_path / "labelled.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "consistency_metrics.py").write_text(
        "import openai\n"
        "from micrometrics.metrics import AnswerConsistency, openai_ask\n"
        f"client = openai.OpenAI(base_url={demo.openai_base_url!r}, api_key='sk-test', max_retries=0)\n"
        "METRICS = [AnswerConsistency(openai_ask(client, model='gpt-4.1-nano'), n=1, n_other=1)]\n"
    )
    for text in (ANSWER, ANSWER, "Refunds are issued within 30 days of receiving the returned item.", "We do not offer refunds."):
        demo.enqueue(json=chat_completion(text, model=MODEL))
    report = tmp_path / "report.json"
    args = ["eval", str(tmp_path / "labelled.jsonl"), "--metrics", str(tmp_path / "consistency_metrics.py"), "--json", str(report), "--no-progress"]
    assert cli.main(args) == 0
    by_tag = json.loads(report.read_text())["summary"]["answer_consistency"]["by_tag"]
    assert (by_tag["unstable"]["failed"], by_tag["stable"]["failed"]) == (1, 0)
    assert len(demo.requests) == 4  # every row re-asked: no sampling offline


def test_a_slow_model_has_its_own_deadline_not_the_cpu_metrics_one(demo, telemetry):
    # Three re-asks of 0.3 s each outlast evaluation_deadline_s=0.5 (the CPU metrics'): the metric's own deadline_s applies.
    telemetry.instrument(metrics=[LanguageMatch(), AnswerConsistency(openai_ask(_client(demo)), sample_rate=1.0)], evaluation_deadline_s=0.5)
    demo.enqueue(json=chat_completion(ANSWER, model=MODEL))
    for _ in range(3):
        demo.enqueue(json=chat_completion(ANSWER, model=MODEL), delay=0.3)
    _ask_app(demo)
    (judged,), reasks = _by_role(telemetry)
    assert judged.attributes[P + "label"] == "consistent" and len(reasks) == 3
    assert "micrometrics.language_match.label" in judged.attributes


def test_past_its_own_deadline_it_times_out(demo, telemetry):
    telemetry.instrument(metrics=[AnswerConsistency(openai_ask(_client(demo)), sample_rate=1.0, n=1, n_other=0, deadline_s=0.2)], evaluation_deadline_s=0.1)
    demo.enqueue(json=chat_completion(ANSWER, model=MODEL))
    demo.enqueue(json=chat_completion(ANSWER, model=MODEL), delay=0.6)
    _ask_app(demo)
    (judged,) = [s for s in telemetry.spans() if P + "label" in s.attributes]
    assert judged.attributes[P + "label"] == "timeout"
    with pytest.raises(ValueError, match=r"deadline_s=0 must be a positive number of seconds"):
        AnswerConsistency(openai_ask(_client(demo)), deadline_s=0)
