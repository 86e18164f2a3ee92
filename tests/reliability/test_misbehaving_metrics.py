"""Metrics that raise, hang or pile up: the application's calls go on, unchanged, across providers.

No timings are asserted: a monitor blocked on an event that is only released after
the calls returned proves the calls never waited for it.
"""

from __future__ import annotations

import threading
import time

import pytest

import micrometrics
from micrometrics import internal_errors
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
    expected = {(lib, mode): lib.run(demo, mode) for lib in INFERENCE for mode in ("sync", "async-stream") if lib.runs(mode)}
    gate = threading.Event()
    telemetry.instrument(instrumentations=sorted({lib.instrumentation for lib in INFERENCE}), metrics=[Gated(gate)], evaluation_deadline_s=0.2)
    got = {(lib, mode): lib.run(demo, mode) for lib, mode in expected}
    assert not gate.is_set()  # every call returned while the monitor was still blocked
    assert got == expected
    spans = telemetry.spans()
    gate.set()
    assert len(spans) == len(expected)
    labels = [s.attributes["micrometrics.gated.label"] for s in spans]
    # The first call times out; the metric is then quarantined: the later ones say 'error'.
    assert "timeout" in labels and set(labels) <= {"timeout", "error"}


def test_a_full_evaluation_queue_drops_counts_and_still_exports_every_span(demo, telemetry):
    gate = threading.Event()
    telemetry.instrument(instrumentations=sorted({lib.instrumentation for lib in INFERENCE}), metrics=[Gated(gate)], max_queue=2)
    calls = [(lib, mode) for lib in INFERENCE for mode in MODES if lib.runs(mode)]
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
    modes = [m for m in ("sync", "async") if lib.runs(m)]
    expected = {mode: lib.run(demo, mode) for mode in modes}
    telemetry.instrument(instrumentations=[lib.instrumentation], metrics=[metric])
    assert {mode: lib.run(demo, mode) for mode in modes} == expected
    spans = telemetry.spans()
    assert len(spans) == len(modes)  # no retry: an error or a timeout is not a verdict
    label = "error" if isinstance(metric, Raising) else "timeout"
    assert {s.attributes[f"micrometrics.{metric.name}.label"] for s in spans} == {label}
    if isinstance(metric, Raising):
        assert internal_errors.totals == {"evaluation": len(modes)}


class HangsForever(MicroMetric):
    """Blocks on an event nobody sets: the thread evaluating it never comes back."""

    name = "hangs_forever"

    def __init__(self) -> None:
        super().__init__()
        self.never = threading.Event()

    def evaluate(self, call: CallView) -> Result:
        self.never.wait()
        return Result("pass")


class Counts(MicroMetric):
    name = "counts"

    def evaluate(self, call: CallView) -> Result:
        return Result("pass", details={"chars": len(call.output_text)})


def _monitor_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name == "micrometrics-monitors")


def test_a_monitor_that_hangs_forever_is_quarantined_and_leaks_at_most_one_thread(demo, telemetry, caplog):
    lib = INFERENCE[0]
    baseline = threading.active_count()
    hung = HangsForever()
    try:
        telemetry.instrument(instrumentations=[lib.instrumentation], metrics=[hung, Counts()], evaluation_deadline_s=0.2)
        with caplog.at_level("WARNING", logger="micrometrics"):
            for _ in range(40):
                lib.run(demo, "sync")
            spans = telemetry.spans()
        assert len(spans) == 40
        # The worker, its watchdog and the one thread stuck in the metric: never one per call.
        assert threading.active_count() <= baseline + 3 and _monitor_threads() <= 2
        first, *later = sorted(spans, key=lambda s: s.start_time)
        assert first.attributes["micrometrics.hangs_forever.label"] == "timeout"
        assert {s.attributes["micrometrics.hangs_forever.label"] for s in later} == {"error"}
        explanations = {e.attributes["gen_ai.evaluation.explanation"] for s in later for e in s.events if e.attributes["gen_ai.evaluation.name"] == "hangs_forever"}
        assert len(explanations) == 1 and explanations.pop().startswith("quarantined: it did not finish within 0.2s")
        assert {s.attributes["micrometrics.counts.label"] for s in later} == {"pass"}  # the others go on
        warnings = [r for r in caplog.records if "quarantined" in r.getMessage()]
        assert len(warnings) == 1  # reported once
        quarantined = [p for p in telemetry.metrics()[M.MICROMETRICS_INTERNAL_ERRORS] if p.attributes["error.type"] == "MetricQuarantined"]
        assert sum(p.value for p in quarantined) == 1
        micrometrics.uninstrument()
        # What is left: at most the one daemon thread still stuck inside the metric (Python cannot stop it).
        deadline = time.monotonic() + 5
        while _monitor_threads() > 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _monitor_threads() <= 1
        assert threading.active_count() <= baseline + 1
    finally:
        hung.never.set()
