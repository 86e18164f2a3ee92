"""What a model-calling metric (LlmJudge, AnswerConsistency) may spend: calls per minute and per day, USD per day.

The calls are reserved before the metric calls its model; the USD is known only after (the runtime prices
each call as it finishes, on the metric's tab, ``cost_attribution``), so the USD cap stops the next
evaluation once the day's spend reached it: it is exceeded by at most one evaluation's calls.
"""

from __future__ import annotations

import math
import threading
import time
from decimal import Decimal

from micrometrics import cost_attribution


class Budget:
    """Calls allowed per minute and per day, USD per day; thread-safe, windows that roll."""

    def __init__(self, per_minute: int | None, per_day: int | None, usd_per_day: float | None = None, *, owner: str = "judge") -> None:
        self.per_minute, self.per_day, self.usd_per_day = per_minute, per_day, usd_per_day
        self.owner = owner
        self._lock = threading.Lock()
        self._minute = self._day = 0.0
        self.calls_minute = self.calls_day = 0
        self.usd_day = 0.0

    def validate(self, metric: str) -> None:
        for option, v in (("max_calls_per_minute", self.per_minute), ("max_calls_per_day", self.per_day)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"{metric}: {option}={v!r} must be an int >= 1, or None for no cap")
        v = self.usd_per_day
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < math.inf):
            raise ValueError(f"{metric}: max_usd_per_day={v!r} must be a positive number of USD, or None for no cap")

    def _roll(self, now: float) -> None:
        if now - self._minute >= 60:
            self._minute, self.calls_minute = now, 0
        if now - self._day >= 86_400:
            self._day, self.calls_day, self.usd_day = now, 0, 0.0

    def take(self, calls: int, now: float | None = None) -> str | None:
        """Reserve ``calls`` model calls; None when allowed, else why not."""
        now = time.time() if now is None else now
        with self._lock:
            self._roll(now)
            if self.per_minute is not None and self.calls_minute + calls > self.per_minute:
                return f"{self.owner} budget: {self.calls_minute} calls this minute (max_calls_per_minute={self.per_minute})"
            if self.per_day is not None and self.calls_day + calls > self.per_day:
                return f"{self.owner} budget: {self.calls_day} calls today (max_calls_per_day={self.per_day})"
            if self.usd_per_day is not None and self.usd_day >= self.usd_per_day:
                return f"{self.owner} budget: {self.usd_day:.4f} USD spent today (max_usd_per_day={self.usd_per_day:g})"
            self.calls_minute += calls
            self.calls_day += calls
            return None

    def spend(self, usd: float | Decimal | None, now: float | None = None) -> None:
        """Add what the calls cost (None: unpriced calls, which the USD cap cannot see)."""
        if usd is None:
            return
        with self._lock:
            self._roll(time.time() if now is None else now)
            self.usd_day += float(usd)


def check_deadline(metric: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ValueError(f"{metric}: deadline_s={value!r} must be a positive number of seconds its model calls fit in, e.g. 60")


def spent_here() -> Decimal | None:
    """USD the metric being evaluated here has spent so far in this evaluation (its tab), None when unpriced."""
    tab = cost_attribution.current()
    return tab.total if tab is not None else None
