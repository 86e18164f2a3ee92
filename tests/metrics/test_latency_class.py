"""Every metric states its latency class; only a realtime metric may be a guard."""

from __future__ import annotations

import pytest

from micrometrics import MicroMetric, Result
from micrometrics.metric_overrides import builtin_metrics


def test_every_built_in_metric_states_a_valid_latency_class():
    classes = {name: cls.latency_class for name, cls in builtin_metrics().items()}
    assert set(classes.values()) <= {"realtime", "async"}
    assert {"refusal", "pii", "degenerate_output", "tool_call_validity", "formality"} <= set(classes)


def test_an_async_metric_cannot_be_a_guard_and_a_bad_class_is_named():
    class Judge(MicroMetric):
        name = "judge"
        latency_class = "async"

        def evaluate(self, call):
            return Result("pass")

    Judge().validate()  # a monitor: fine
    with pytest.raises(ValueError, match=r"Judge: mode='guard' needs a realtime metric; latency_class='async' runs as mode='async' only"):
        Judge(mode="guard").validate()

    class Odd(Judge):
        latency_class = "sometimes"

    with pytest.raises(ValueError, match=r"Odd: latency_class='sometimes' is not allowed; use one of 'realtime', 'async'"):
        Odd().validate()


def test_the_library_runs_in_the_evaluator_process(demo, telemetry):
    import pickle

    import openai

    from micrometrics.metrics import DegenerateOutput, Formality, Groundedness, PiiInResponse, Refusal, ToolCallValidity

    metrics = [Refusal(), PiiInResponse(allow=["+49 800 1234567"]), DegenerateOutput(), ToolCallValidity(), Formality(expected="formal"), Groundedness()]
    for m in metrics:
        assert m.process_safe and type(pickle.loads(pickle.dumps(m))) is type(m)
    telemetry.instrument(metrics=metrics, evaluator="process")
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hallo, wo ist meine Bestellung?"}])
    a = telemetry.span().attributes
    assert (a["micrometrics.refusal.label"], a["micrometrics.pii.label"], a["micrometrics.degenerate_output.label"]) == ("answered", "pass", "pass")
    assert a["micrometrics.formality.label"] == "match"  # the demo model's German speaks "Sie"
