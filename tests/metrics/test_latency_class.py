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
