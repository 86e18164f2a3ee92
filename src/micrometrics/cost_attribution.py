"""Which metric the LLM calls made right now are charged to: the one being evaluated (an LLM judge).

``evaluation`` opens a ``Tab`` around each ``metric.evaluate(call)``, in a context variable, so an
instrumented call the metric makes (on the monitor thread, on the caller's thread for a guard, in
an event loop it starts) finds it: the runtime adds the call's cost to the tab and charges the call
to the metric (``gen_ai.evaluation.name`` on its ``micrometrics.cost`` point); the metric's result
carries the total to the evaluated call's span (``micrometrics.<metric>.cost``).

The calls made while a tab is open are the metric's own: they are traced and priced, and never
evaluated by any metric (``inside_evaluation``; the runtime chooses no guard nor monitor for them).

It imports nothing of micrometrics: the metrics read their tab (a USD budget) without an import cycle.
"""

from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from decimal import Context, Decimal
from typing import Iterator

#: Exact sums whatever the thread's decimal context (the precision pricing.py computes in).
_EXACT = Context(prec=34)

_open: contextvars.ContextVar["Tab | None"] = contextvars.ContextVar("micrometrics_cost_tab", default=None)


class Tab:
    """What one evaluation of one metric spent on LLM calls, in USD (None: no priced call)."""

    __slots__ = ("metric", "total", "_lock")

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.total: Decimal | None = None
        # A metric may fan its calls out to threads that copied the context: one tab, added to from each.
        self._lock = threading.Lock()

    def add(self, usd: Decimal) -> None:
        with self._lock:
            self.total = usd if self.total is None else _EXACT.add(self.total, usd)


@contextmanager
def charged_to(metric: str) -> Iterator[Tab]:
    """The calls made inside are charged to ``metric``; nested evaluations open their own tab."""
    tab = Tab(metric)
    token = _open.set(tab)
    try:
        yield tab
    finally:
        _open.reset(token)


def current() -> Tab | None:
    """The tab of the metric being evaluated here, if any."""
    return _open.get()


def inside_evaluation() -> bool:
    """Whether a metric is being evaluated here: a call made now is its own (a judge's, a re-ask), never evaluated."""
    return _open.get() is not None
