"""Our own failures: caught, logged once at debug level, and counted; never raised into the app."""

from __future__ import annotations

import logging
import threading
from typing import Any

from micrometrics_semconv import attributes as A

logger = logging.getLogger("micrometrics")

_seen: set[tuple[str, str]] = set()
_lock = threading.Lock()
_counter: Any = None
#: Totals by stage, readable without a metrics pipeline (tests, ``micrometrics.internal_errors()``).
totals: dict[str, int] = {}


def bind_counter(counter: Any) -> None:
    global _counter
    _counter = counter


def report(stage: str, exc: BaseException) -> None:
    """Record an exception raised inside micrometrics at ``stage``."""
    try:
        key = (stage, type(exc).__name__)
        with _lock:
            totals[stage] = totals.get(stage, 0) + 1
            first = key not in _seen
            if first:
                _seen.add(key)
        if first:
            logger.debug("micrometrics: internal error at stage %r (further ones are counted, not logged)", stage, exc_info=exc)
        if _counter is not None:
            _counter.add(1, {A.MICROMETRICS_STAGE: stage, A.ERROR_TYPE: type(exc).__name__})
    except Exception:  # pragma: no cover - the reporter itself must never raise
        pass


def reset_for_tests() -> None:
    with _lock:
        _seen.clear()
        totals.clear()
