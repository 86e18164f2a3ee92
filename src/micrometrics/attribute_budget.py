"""The span attribute budget: the SDK's SpanLimits never cost the core gen_ai.* attributes.

An SDK span keeps at most ``max_span_attributes`` (128 by default) and evicts the
OLDEST attribute to make room, which would be ``gen_ai.operation.name`` and the other
core attributes set at span start. So the lower-priority attributes (the app's extra
context attributes, content, micro-metric results) are only set as far as they fit,
leaving room for the response's core attributes; what is left out is counted in
``micrometrics.attributes.dropped``. Before a span ends, core attributes that something
else evicted anyway are put back.
"""

from __future__ import annotations

from typing import Any, Mapping

from micrometrics_semconv import attributes as A

#: Slots kept for the response's core attributes (id, model, finish reasons, usage, error.type, ...).
RESERVE = 16
#: Slots a metric result usually takes (label, score, passed and a few details).
PER_RESULT = 8
#: Content attributes a call may carry (input, output, system instructions, tool definitions, items left out).
CONTENT = 5


def _positive(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def log_attribute_length(logger: Any) -> int | None:
    """The length limit an SDK logger puts on each string of a log record attribute (None: none, or not an SDK logger)."""
    limits = getattr(logger, "_log_record_limits", None)
    return _positive(getattr(limits, "max_log_record_attribute_length", None))


class Budget:
    """The limits of one tracer's spans; no limits known (a non-SDK tracer): no budgeting."""

    __slots__ = ("max_attributes", "max_length")

    def __init__(self, tracer: Any) -> None:
        # SDK tracers keep their provider's SpanLimits (there is no public accessor).
        limits = getattr(tracer, "_span_limits", None)
        self.max_attributes = _positive(getattr(limits, "max_span_attributes", None))
        self.max_length = _positive(getattr(limits, "max_span_attribute_length", None))

    def start(self, core: dict[str, Any], extra: Mapping[str, Any], reserve: int) -> dict[str, Any]:
        """Span-start attributes: all core ones, the app's extra ones as far as ``reserve`` more slots stay free."""
        if not extra:
            return core
        attrs = dict(core)
        room = None if self.max_attributes is None else self.max_attributes - RESERVE - reserve - len(core)
        left_out = 0
        for key, value in extra.items():
            if key in attrs:
                continue
            if room is not None and room <= 0:
                left_out += 1
                continue
            attrs[key] = value
            if room is not None:
                room -= 1
        if left_out:
            attrs[A.MICROMETRICS_ATTRIBUTES_DROPPED] = left_out
        return attrs

    def add(self, span: Any, attrs: Mapping[str, Any], *, before_response: bool = False) -> None:
        """Set lower-priority attributes, as many as fit (keeping room for the response's core ones if still to come)."""
        if self.max_attributes is None:
            span.set_attributes(attrs)
            return
        present = span.attributes
        room = self.max_attributes - len(present) - (RESERVE if before_response else 1)
        fitting: dict[str, Any] = {}
        left_out = 0
        for key, value in attrs.items():
            if key in present:
                fitting[key] = value
            elif room > 0:
                fitting[key] = value
                room -= 1
            else:
                left_out += 1
        span.set_attributes(fitting)
        if left_out:
            span.set_attribute(A.MICROMETRICS_ATTRIBUTES_DROPPED, int(present.get(A.MICROMETRICS_ATTRIBUTES_DROPPED) or 0) + left_out)

    @staticmethod
    def seal(span: Any, core: Mapping[str, Any]) -> None:
        """Before the span ends: put back core attributes that something evicted anyway."""
        if not getattr(span, "dropped_attributes", 0):
            return
        present = span.attributes
        kept = {k: v for k, v in core.items() if k in present}
        lost = {k: v for k, v in core.items() if k not in present}
        if lost:
            span.set_attributes(kept)  # now the newest: the evictions below take older, non-core ones
            span.set_attributes(lost)
