"""Evaluating micro metrics: the configured suite, sampling, and ``evaluate`` of one metric on one call.

Pure: no threads, no OpenTelemetry. Guards call it on the caller's thread, the monitor
worker on its own, the evaluator process in its child, the offline runner on dataset rows.
"""

from __future__ import annotations

import dataclasses
import random
import time
from typing import Iterable, Sequence

from micrometrics import cost_attribution, internal_errors
from micrometrics.metric import CallView, MicroMetric, Result, on_monitor_thread

#: Where process-safe monitors run: "thread" (the monitor thread, the default) or "process" (the
#: evaluator process, see evaluator_process.py). Here, not in monitor_worker: settings reads it without
#: importing the worker and the evaluator process (instrument() imports them on its set-up thread).
EVALUATORS = ("thread", "process")


class MetricSuite:
    """The configured metrics, indexed by operation into guards and monitors."""

    def __init__(self, metrics: Sequence[MicroMetric]) -> None:
        self.metrics = tuple(metrics)
        self._guards: dict[str, tuple[MicroMetric, ...]] = {}
        self._monitors: dict[str, tuple[MicroMetric, ...]] = {}
        for m in self.metrics:
            target = self._guards if m.mode == "guard" else self._monitors
            for op in m.applies_to:
                target[op] = target.get(op, ()) + (m,)
        # Retrieved documents are remembered only for a metric that reads them (ContextUtilization).
        self.keeps_documents = any(getattr(m, "reads_retrieved_documents", True) for m in self.metrics)

    def guards(self, operation: str) -> tuple[MicroMetric, ...]:
        return self._guards.get(operation, ())

    def monitors(self, operation: str) -> tuple[MicroMetric, ...]:
        return self._monitors.get(operation, ())


def sampled(metrics: Iterable[MicroMetric]) -> list[MicroMetric]:
    rnd = random.random
    return [m for m in metrics if m.sample_rate >= 1.0 or (m.sample_rate > 0.0 and rnd() < m.sample_rate)]


#: Raised by a metric on an application thread, these are the user's own signal (Ctrl-C, exit):
#: they reach the caller. Anywhere else (the monitor thread, the evaluator process) any
#: exception, BaseException included, is the metric's fault and yields ``error``.
_CALLER_SIGNALS = (KeyboardInterrupt, SystemExit)


def evaluate(metric: MicroMetric, view: CallView) -> tuple[Result | None, float]:
    """Run one metric; a metric that raises or returns garbage yields label ``error``
    (and is counted in ``micrometrics.internal.errors``); one that does not apply to the call yields None."""
    result, took, exc = evaluate_catching(metric, view)
    if exc is not None:
        if isinstance(exc, _CALLER_SIGNALS) and not on_monitor_thread():
            raise exc
        # Counted in micrometrics.internal.errors and logged once, like every fault we catch.
        internal_errors.report("evaluation", exc)
    return result, took


def evaluate_catching(metric: MicroMetric, view: CallView) -> tuple[Result | None, float, BaseException | None]:
    """:func:`evaluate` without the reporting: (result, seconds, the exception the metric raised)."""
    t0 = time.perf_counter()
    exc: BaseException | None = None
    # The instrumented LLM calls the metric makes (an LLM judge) are charged to it.
    with cost_attribution.charged_to(metric.name) as tab:
        try:
            if not metric.applies(view):
                return None, 0.0, None
            result = metric.evaluate(view)
            if not isinstance(result, Result):
                result = Result("error", explanation=f"{type(metric).__name__}.evaluate returned {type(result).__name__}, not micrometrics.Result")
        except BaseException as caught:  # noqa: BLE001 - CancelledError from a metric must not kill the monitor thread
            exc = caught
            # The message may quote the call's content (a parse error of the answer): kept apart, exported only with capture on.
            cls = type(caught)
            result = Result(
                "error",
                explanation=f"{type(metric).__name__}.evaluate raised {cls.__name__}",
                error_message=str(caught)[:500],
                error_type=cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}",
            )
    if tab.total is not None:
        # Spent even when the metric failed afterwards: the result says what the evaluation cost.
        result = dataclasses.replace(result, cost=float(tab.total) + (result.cost or 0.0))
    return result, time.perf_counter() - t0, exc
