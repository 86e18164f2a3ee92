"""Metrics that raise, hang or pile up: the application's calls go on, unchanged, across providers.

No timings are asserted: a monitor blocked on an event that is only released after
the calls returned proves the calls never waited for it.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from micrometrics import safety
from micrometrics.metric import CallView, MicroMetric, Result
from micrometrics_semconv import metrics as M
from reliability_libraries import libraries

INFERENCE = [lib for lib in libraries() if lib.evaluated_by == "LanguageMatch"]
MODES = ["sync", "sync-stream", "async", "async-stream"]


class Gated(MicroMetric):
    """A monitor that blocks until the test opens its gate (a hang, as far as the calls can tell)."""

    name = "gated"

    def __init__(self, gate: threading.Event) -> None:
        super().__init__()
        self.gate = gate

    def evaluate(self, call: CallView) -> Result:
        self.gate.wait(30)
        return Result("pass")


class Raising(MicroMetric):
    name = "raising"
    mode = "guard"

    def evaluate(self, call: CallView) -> Result:
        raise ZeroDivisionError("a bug in the application's own metric")


class Slow(MicroMetric):
    """A guard over its time budget: reported as ``timeout``, never acted on."""

    name = "slow_guard"
    mode = "guard"
    max_retries = 1
    budget_s = 0.001

    def evaluate(self, call: CallView) -> Result:
        threading.Event().wait(0.01)
        return Result("fail")


def test_a_hanging_monitor_never_holds_a_call(demo, telemetry):
    expected = {(lib, mode): lib.run(demo, mode) for lib in INFERENCE for mode in ("sync", "async-stream")}
    gate = threading.Event()
    telemetry.instrument(instrumentations=sorted({lib.instrumentation for lib in INFERENCE}), metrics=[Gated(gate)], evaluation_deadline_s=0.2)
    got = {(lib, mode): lib.run(demo, mode) for lib, mode in expected}
    assert not gate.is_set()  # every call returned while the monitor was still blocked
    assert got == expected
    spans = telemetry.spans()
    gate.set()
    assert len(spans) == len(expected)
    assert {s.attributes["micrometrics.gated.label"] for s in spans} == {"timeout"}


def test_a_full_evaluation_queue_drops_counts_and_still_exports_every_span(demo, telemetry):
    gate = threading.Event()
    telemetry.instrument(instrumentations=sorted({lib.instrumentation for lib in INFERENCE}), metrics=[Gated(gate)], max_queue=2)
    calls = [(lib, mode) for lib in INFERENCE for mode in MODES]
    outcomes = [lib.run(demo, mode) for lib, mode in calls]
    assert not gate.is_set() and all(o.kind != "error" for o in outcomes)
    gate.set()
    spans = telemetry.spans()
    assert len(spans) == len(calls)  # dropped work is the monitors', never the spans
    dropped = sum(p.value for p in telemetry.metrics()[M.MICROMETRICS_EVALUATIONS_DROPPED])
    evaluated = sum(1 for s in spans if "micrometrics.gated.label" in s.attributes)
    assert evaluated + dropped == len(calls) and dropped >= len(calls) - 3


@pytest.mark.parametrize("metric", [Raising(), Slow()], ids=["raising-guard", "over-budget-guard"])
@pytest.mark.parametrize("lib", [pytest.param(lib, id=lib.id) for lib in INFERENCE])
def test_a_broken_guard_never_changes_the_call(lib, metric, demo, telemetry):
    expected = {mode: lib.run(demo, mode) for mode in ("sync", "async")}
    telemetry.instrument(instrumentations=[lib.instrumentation], metrics=[metric])
    assert {mode: lib.run(demo, mode) for mode in ("sync", "async")} == expected
    spans = telemetry.spans()
    assert len(spans) == 2  # no retry: an error or a timeout is not a verdict
    label = "error" if isinstance(metric, Raising) else "timeout"
    assert {s.attributes[f"micrometrics.{metric.name}.label"] for s in spans} == {label}
    if isinstance(metric, Raising):
        assert safety.totals == {"evaluation": 2}
