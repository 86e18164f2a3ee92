"""LlmJudge against a scripted loopback model: its mechanics (sampling, budget, cost, recursion guard,
both-ways pairwise judgement), through a real instrumented OpenAI client."""

from __future__ import annotations

import openai
import pytest

import micrometrics
from micrometrics.metrics import LlmJudge
from micrometrics.metrics.llm_judge import Budget
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M

from retrieval.corpus import chat_completion

RUBRIC = "The answer says when the refund arrives, correctly and politely."
QUESTION = [{"role": "user", "content": "When do I get my refund?"}]
ANSWER = "Refunds are issued within 14 days of receiving the returned item."


def _client(demo) -> openai.OpenAI:
    return openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)


def _judge(demo):
    client = _client(demo)

    def judge(messages):
        return client.chat.completions.create(model="gpt-4o-mini", messages=list(messages)).choices[0].message.content

    return judge


def _ask(demo, answer: str = ANSWER, **ctx) -> None:
    with micrometrics.context(**ctx):
        _client(demo).chat.completions.create(model="gpt-4.1-nano", messages=QUESTION)


def _spans(telemetry) -> dict:
    out: dict = {}
    for s in telemetry.spans():
        out.setdefault(s.attributes[A.GEN_AI_REQUEST_MODEL], []).append(s.attributes)
    return out


def test_a_rating_lands_on_the_judged_call_with_its_cost_and_the_judge_is_not_judged(demo, telemetry):
    telemetry.instrument(metrics=[LlmJudge(_judge(demo), RUBRIC, sample_rate=1.0)])
    demo.enqueue(json=chat_completion(ANSWER, model="gpt-4.1-nano"))
    demo.enqueue(json=chat_completion("Score: 4"))
    _ask(demo)
    spans = _spans(telemetry)
    (judged,), (judge,) = spans["gpt-4.1-nano"], spans["gpt-4o-mini"]
    assert (judged["micrometrics.llm_judge.label"], judged["micrometrics.llm_judge.rating"], judged["micrometrics.llm_judge.rating_label"]) == ("pass", 4, "helpful")
    assert judged["micrometrics.llm_judge.score"] == 0.75 and judged["micrometrics.llm_judge.answer_words"] == 11
    assert judged["micrometrics.llm_judge.cost"] == judge[A.GEN_AI_USAGE_COST_AMOUNT] > 0  # the judge's call, charged to the judged one
    assert not any(k.startswith("micrometrics.llm_judge.") for k in judge)  # never judged itself
    prompt = demo.requests[-1].body["messages"]
    assert "Rubric: " + RUBRIC in prompt[0]["content"] and "4 = helpful" in prompt[0]["content"] and "not the length" in prompt[0]["content"]
    assert ANSWER in prompt[1]["content"]
    cost_points = [p for p in telemetry.metrics()[M.MICROMETRICS_COST] if p.attributes.get(A.GEN_AI_EVALUATION_NAME) == "llm_judge"]
    assert [p.attributes[A.GEN_AI_REQUEST_MODEL] for p in cost_points] == ["gpt-4o-mini"]


def test_over_budget_the_judge_is_not_called(demo, telemetry):
    telemetry.instrument(metrics=[LlmJudge(_judge(demo), RUBRIC, sample_rate=1.0, max_calls_per_minute=1)])
    demo.enqueue(json=chat_completion(ANSWER, model="gpt-4.1-nano"))
    demo.enqueue(json=chat_completion("Score: 2"))
    demo.enqueue(json=chat_completion(ANSWER, model="gpt-4.1-nano"))
    _ask(demo)
    telemetry.flush()  # the server answers in order: the first call's judge call comes before the second call
    _ask(demo)
    judged = _spans(telemetry)["gpt-4.1-nano"]
    assert [a["micrometrics.llm_judge.label"] for a in judged] == ["fail", "undetermined"]
    assert judged[1]["micrometrics.llm_judge.budget_exhausted"] is True and judged[1]["micrometrics.llm_judge.judge_calls"] == 0
    assert len(demo.requests) == 3  # two judged calls, one judge call
    assert "gpt-4o-mini" in _spans(telemetry)


def test_sampling_skips_calls_without_a_result_or_a_judge_call(demo, telemetry):
    telemetry.instrument(metrics=[LlmJudge(_judge(demo), RUBRIC, sample_rate=0.0)])
    _ask(demo)
    assert not any(k.startswith("micrometrics.llm_judge.") for k in telemetry.span().attributes)
    assert len(demo.requests) == 1
    assert LlmJudge(_judge(demo), RUBRIC).sample_rate == 0.1  # sampled by default


@pytest.mark.parametrize("replies,label,preferred", [
    (("Winner: A", "Winner: A"), "undetermined", "position"),  # prefers the first position either way
    (("Winner: A", "Winner: B"), "pass", "answer"),
    (("Winner: B", "Winner: A"), "fail", "reference"),
])
def test_pairwise_is_asked_both_ways_round(demo, telemetry, replies, label, preferred):
    telemetry.instrument(metrics=[LlmJudge(_judge(demo), RUBRIC, sample_rate=1.0, pairwise=True)])
    demo.enqueue(json=chat_completion(ANSWER, model="gpt-4.1-nano"))
    for reply in replies:
        demo.enqueue(json=chat_completion(reply))
    _ask(demo, reference="You get your money back within two weeks.")
    judged = _spans(telemetry)["gpt-4.1-nano"][0]
    assert (judged["micrometrics.llm_judge.label"], judged["micrometrics.llm_judge.preferred"], judged["micrometrics.llm_judge.judge_calls"]) == (label, preferred, 2)
    first, second = (r.body["messages"][1]["content"] for r in demo.requests[1:])
    assert first.index(ANSWER) < first.index("two weeks") and second.index("two weeks") < second.index(ANSWER)


def test_an_unparseable_reply_and_a_failing_judge(demo, telemetry):
    telemetry.instrument(metrics=[LlmJudge(_judge(demo), RUBRIC, sample_rate=1.0)])
    demo.enqueue(json=chat_completion(ANSWER, model="gpt-4.1-nano"))
    demo.enqueue(json=chat_completion("It is quite good."))
    demo.enqueue(json=chat_completion(ANSWER, model="gpt-4.1-nano"))
    demo.enqueue(status=429)
    _ask(demo)
    telemetry.flush()  # the server answers in order: the first call's judge call comes before the second call
    _ask(demo)
    first, second = _spans(telemetry)["gpt-4.1-nano"]
    assert first["micrometrics.llm_judge.label"] == "undetermined"
    assert second["micrometrics.llm_judge.label"] == "error"  # the judge's 429: an error of the metric, the app's call unaffected


def test_options_are_checked_and_a_judge_cannot_guard():
    judge = lambda messages: "Score: 5"  # noqa: E731
    with pytest.raises(ValueError, match=r"mode='guard' needs a realtime metric; latency_class='async'"):
        LlmJudge(judge, RUBRIC, mode="guard")
    with pytest.raises(ValueError, match=r"pass_at=7 is not a point of the scale; use one of \[1, 2, 3, 4, 5\]"):
        LlmJudge(judge, RUBRIC, pass_at=7)
    with pytest.raises(TypeError, match=r"judge=None must be a function"):
        LlmJudge(None, RUBRIC)
    with pytest.raises(ValueError, match=r"rubric='' must be a non-empty"):
        LlmJudge(judge, "")
    with pytest.raises(ValueError, match=r"max_calls_per_minute=0 must be an int >= 1"):
        LlmJudge(judge, RUBRIC, max_calls_per_minute=0)


def test_the_budget_windows_roll():
    b = Budget(per_minute=2, per_day=3)
    assert b.take(2, now=100_000.0) is None
    assert "max_calls_per_minute=2" in b.take(1, now=100_010.0)
    assert b.take(1, now=100_061.0) is None  # a new minute
    assert "max_calls_per_day=3" in b.take(1, now=100_200.0)
    assert b.take(1, now=100_000.0 + 86_400) is None  # a new day


def test_the_judges_calls_are_children_of_the_judged_span_and_no_metric_evaluates_them(demo, telemetry):
    from micrometrics.metrics import LanguageMatch, ResponseLength, openai_judge

    # openai_judge: the ready-made judge; built before instrument(), its calls are traced all the same.
    judge = openai_judge(_client(demo), "gpt-4o-mini", temperature=0)
    telemetry.instrument(metrics=[LanguageMatch(), ResponseLength(), LlmJudge(judge, RUBRIC, sample_rate=1.0)])
    demo.enqueue(json=chat_completion(ANSWER, model="gpt-4.1-nano"))
    demo.enqueue(json=chat_completion("Score: 5"))
    _ask(demo)
    by_model = {s.attributes[A.GEN_AI_REQUEST_MODEL]: s for s in telemetry.spans()}
    judged, judge_span = by_model["gpt-4.1-nano"], by_model["gpt-4o-mini"]
    assert judge_span.parent is not None and judge_span.parent.span_id == judged.context.span_id
    assert judge_span.context.trace_id == judged.context.trace_id
    assert {"micrometrics.llm_judge.label", "micrometrics.language_match.label", "micrometrics.response_length.label"} <= set(judged.attributes)
    assert not [k for k in judge_span.attributes if k.startswith("micrometrics.")]  # LanguageMatch, ResponseLength: not on the judge's call
    assert demo.requests[-1].body["temperature"] == 0
    evaluated = [p.attributes[A.GEN_AI_REQUEST_MODEL] for p in telemetry.metrics()[M.MICROMETRICS_EVALUATIONS]]
    assert set(evaluated) == {"gpt-4.1-nano"}


def test_a_custom_metric_calling_a_model_is_not_evaluated_either(demo, telemetry):
    from micrometrics import Result, micro_metric
    from micrometrics.metrics import LanguageMatch

    client = _client(demo)

    @micro_metric(name="asks_a_model")
    def asks_a_model(call):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Is this polite? " + call.output_text}])
        return Result("pass")

    telemetry.instrument(metrics=[LanguageMatch(), asks_a_model])
    demo.enqueue(json=chat_completion(ANSWER, model="gpt-4.1-nano"))
    demo.enqueue(json=chat_completion("Yes, it is polite."))
    _ask(demo)
    by_model = {s.attributes[A.GEN_AI_REQUEST_MODEL]: s for s in telemetry.spans()}
    assert by_model["gpt-4.1-nano"].attributes["micrometrics.asks_a_model.label"] == "pass"
    assert by_model["gpt-4.1-nano"].attributes["micrometrics.asks_a_model.cost"] == by_model["gpt-4o-mini"].attributes[A.GEN_AI_USAGE_COST_AMOUNT]
    assert not [k for k in by_model["gpt-4o-mini"].attributes if k.startswith("micrometrics.")]


def test_over_the_usd_budget_the_judge_is_not_called(demo, telemetry):
    # One judge call costs ~6.6e-6 USD: past max_usd_per_day after the first, the second call is not judged.
    telemetry.instrument(metrics=[LlmJudge(_judge(demo), RUBRIC, sample_rate=1.0, max_usd_per_day=0.000001)])
    demo.enqueue(json=chat_completion(ANSWER, model="gpt-4.1-nano"))
    demo.enqueue(json=chat_completion("Score: 4"))
    demo.enqueue(json=chat_completion(ANSWER, model="gpt-4.1-nano"))
    _ask(demo)
    telemetry.flush()  # the server answers in order: the first call's judge call comes before the second call
    _ask(demo)
    first, second = _spans(telemetry)["gpt-4.1-nano"]
    assert first["micrometrics.llm_judge.label"] == "pass" and first["micrometrics.llm_judge.cost"] > 0.000001
    assert second["micrometrics.llm_judge.label"] == "undetermined" and second["micrometrics.llm_judge.budget_exhausted"] is True
    assert len(demo.requests) == 3


def test_the_usd_budget_rolls_with_the_day():
    b = Budget(per_minute=None, per_day=None, usd_per_day=0.5)
    assert b.take(1, now=100_000.0) is None
    b.spend(0.6, now=100_001.0)
    assert "max_usd_per_day=0.5" in b.take(1, now=100_002.0)
    b.spend(None)  # an unpriced call: nothing to add
    assert b.take(1, now=100_000.0 + 86_400) is None  # a new day
    with pytest.raises(ValueError, match=r"max_usd_per_day=0 must be a positive number of USD"):
        LlmJudge(lambda m: "Score: 5", RUBRIC, max_usd_per_day=0)
