"""Guards: the one verdict type, the retry / raise / return decision, and ``GuardError``.

A guard is a metric evaluated on the caller's thread before the response is returned;
its verdict tells the call path (calls.py, streams.py) what to do with the attempt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from micrometrics import internal_errors
from micrometrics.attributes import dimensions
from micrometrics.evaluation import evaluate
from micrometrics.metric import CallView, MicroMetric, Result
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

if TYPE_CHECKING:
    from micrometrics.emission import Emitter
    from micrometrics.records import Call


@dataclass(slots=True)
class GuardVerdict:
    """What the wrapper does after an attempt: return, retry (with an instruction), or raise."""

    action: str  # "return" | "retry" | "raise"
    instruction: str | None = None
    results: tuple[tuple[str, Result], ...] = ()
    #: A retry's: the failing guard's name, and its ``on_fail`` should the retry itself fail (429, timeout...).
    guard: str | None = None
    on_fail: str = "return"


RETURN = GuardVerdict("return")


class GuardError(Exception):
    """Raised when a guard with ``on_fail="raise"`` still fails after its last retry.

    ``response`` is the last response the provider returned; ``results`` maps metric
    name to its ``Result``. When the retry itself failed (429, timeout), ``response`` is
    the answer it was to replace and ``__cause__`` the retry's exception.
    """

    def __init__(self, message: str, response: Any = None, results: dict[str, Result] | None = None) -> None:
        super().__init__(message)
        self.response = response
        self.results = results or {}


def run_guards(
    call: "Call", guards: Sequence[MicroMetric], emitter: "Emitter", view: CallView | None = None, can_retry: bool = True
) -> GuardVerdict:
    """Evaluate guards now, on the caller's thread; emit their results; decide retry / raise / return."""
    view = view or CallView(call.record, call)
    evaluated = []
    for g in guards:
        result, took = evaluate(g, view)
        if result is None:
            continue
        if took > g.budget_s and result.label not in ("error",):
            result = Result("timeout", explanation=f"guard took {took * 1000:.1f} ms, over its {g.budget_s * 1000:.0f} ms budget")
        evaluated.append((g, result, took))
    emitter.emit(call, evaluated, written=False)
    failing = [(g, r) for g, r, _ in evaluated if r.passed is False]
    results = tuple((m.name, res) for m, res, _ in evaluated)
    if not failing:
        return GuardVerdict("return", results=results)
    g, r = failing[0]
    if not can_retry:
        return GuardVerdict("return", results=results)
    if call.attempt <= g.max_retries:
        emitter.retries.add(1, {**retry_dimensions(call), A.GEN_AI_EVALUATION_NAME: g.name})
        return GuardVerdict("retry", g.corrective_instruction(view, r), results, g.name, g.on_fail)
    if call.span.is_recording():
        call.span.set_attribute(A.MICROMETRICS_GUARD_FAILED, True)
    return GuardVerdict("raise" if g.on_fail == "raise" else "return", results=results)


def retry_dimensions(call: "Call") -> dict[str, Any]:
    """A retry is decided before the response model or an error is known on some paths (a stream's prefix):
    leaving both out keeps one series per guard."""
    dims = dict(dimensions(call))
    dims.pop(A.GEN_AI_RESPONSE_MODEL, None)
    dims.pop(A.ERROR_TYPE, None)
    return dims


def mark_failed_retry(call: "Call", on_fail: str) -> None:
    """On a guard retry's span that failed itself: what the application got instead."""
    try:
        if call.span.is_recording():
            fallback = V.GUARD_FALLBACK_ERROR if on_fail == "raise" else V.GUARD_FALLBACK_PREVIOUS
            call.span.set_attribute(A.MICROMETRICS_GUARD_FALLBACK, fallback)
    except Exception as exc:
        internal_errors.report("finish", exc)
