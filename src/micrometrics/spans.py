"""The span of a call: start (linked to the attempt a retry replaces), timing, fail, seal, end once.

Knows OpenTelemetry's trace API and the attribute budget; what the results and the response
add to the span is emission.py's.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from micrometrics import internal_errors, nesting
from micrometrics.attribute_budget import CONTENT, PER_RESULT, Budget
from micrometrics.attributes import (
    ContentPolicy,
    error_text,
    error_type,
    extra_attributes,
    qualified_name,
    request_attributes,
    response_attributes,
    span_name,
)
from micrometrics.evaluation import MetricSuite
from micrometrics.records import AgentRecord, Call, ToolRecord
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E

#: OTLP carries integer points as int64: one larger value would fail the whole metrics batch (the app's points too).
_INT64_MAX = 2**63 - 1
_TOKEN_COUNTS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens")


class Spans:
    """One runtime's tracer and attribute budget, and the lifecycle of each call's span."""

    def __init__(
        self, tracer: Any, budget: Budget, suite: MetricSuite, *, capture_spans: bool, content_policy: ContentPolicy, latest: bool = False
    ) -> None:
        self.tracer = tracer
        self.budget = budget
        self.suite = suite
        self.capture_spans = capture_spans
        self.content_policy = content_policy
        #: The GenAI conventions after v1.41 (conventions.py), else v1.41.
        self.latest = latest

    def start(self, call: Call, replaces: Call | None = None, guard: str | None = None, parent: Any = None) -> Any:
        """The call's span, started (``call.context`` already set: it holds the app's extra attributes).

        ``replaces``: the attempt a guard retry replaces (``guard`` asked for it); the new span
        links to it, so attempts stay connected when the app has no parent span.
        """
        record = call.record
        attrs = request_attributes(record, call, extra=False, latest=self.latest)
        extra = extra_attributes(call)
        if extra:
            # The app's extra attributes leave room for the response, content and results.
            op = record.operation
            reserve = PER_RESULT * (len(self.suite.guards(op)) + len(self.suite.monitors(op))) + (CONTENT if self.capture_spans else 0)
            attrs = self.budget.start(attrs, extra, reserve)
        links = _retry_links(replaces, guard) if replaces is not None else None
        span = self.tracer.start_span(span_name(record), kind=span_kind(record), attributes=attrs, links=links, start_time=call.start_time_ns, context=parent)
        call.span = span
        return span

    @staticmethod
    def attach(span: Any, scope: nesting.Scope | None = None) -> Any:
        """The span becomes current, with the call's nesting scope (nesting.py); the token is what ``detach`` takes."""
        return otel_context.attach(nesting.enter(trace.set_span_in_context(span), scope))

    @staticmethod
    def evaluating(call: Call) -> Any:
        """While the monitor thread evaluates ``call``: its span is current, without a nesting scope, so the calls
        a metric makes (a judge's, a re-ask) open spans of their own, children of it. ``detach`` takes the token."""
        return otel_context.attach(trace.set_span_in_context(call.span))

    @staticmethod
    def detach(token: Any) -> None:
        try:
            otel_context.detach(token)
        except Exception as exc:  # pragma: no cover - a foreign context manager misbehaved
            internal_errors.report("context", exc)

    def fail(self, call: Call, exc: BaseException) -> None:
        """The call raised: error status, error.type, the exception (its text only with capture on, redacted)."""
        record = call.record
        record.error_type = error_type(exc)
        span = call.span
        if span.is_recording():
            span.set_attributes(response_attributes(record, self.latest))
            span.set_attribute(A.ERROR_TYPE, record.error_type)
            # Providers quote the input in their errors: the text leaves only with capture on, redacted.
            cls = type(exc)
            qualified = qualified_name(cls)
            event: dict[str, Any] = {A.EXCEPTION_TYPE: qualified}
            message = error_text(str(exc), self.capture_spans, self.content_policy)
            stack = error_text("".join(traceback.format_exception(exc)), self.capture_spans, self.content_policy) if message is not None else None
            if message is not None and stack is not None:
                event[A.EXCEPTION_MESSAGE] = message
                event[A.EXCEPTION_STACKTRACE] = stack
                description = f"{cls.__name__}: {message}"[:300]
            else:
                description = cls.__name__ if record.error_type == qualified else f"{cls.__name__} ({record.error_type})"
            span.add_event(E.EXCEPTION, event)
            span.set_status(Status(StatusCode.ERROR, description))

    def seal(self, call: Call) -> None:
        """Before the span ends: core attributes evicted under the SDK's attribute limit are put back."""
        span, record = call.span, call.record
        try:
            if getattr(span, "dropped_attributes", 0) and span.is_recording():
                core = {**request_attributes(record, call, extra=False, latest=self.latest), **response_attributes(record, self.latest)}
                if record.error_type:
                    core[A.ERROR_TYPE] = record.error_type
                self.budget.seal(span, core)
        except Exception as exc:
            internal_errors.report("finish", exc)

    def end(self, call: Call) -> None:
        """Seal, then end the span at the call's end time (not when its results were written)."""
        self.seal(call)
        call.span.end(end_time=call.end_time_ns)


def span_kind(record: Any) -> SpanKind:
    """CLIENT for a call to a model or store; INTERNAL for a tool run and an agent or workflow in this process;
    a tool called across processes (MCP) is CLIENT on the caller's side and SERVER on the side that runs it."""
    if isinstance(record, ToolRecord) and record.remote in ("client", "server"):
        return SpanKind.SERVER if record.remote == "server" else SpanKind.CLIENT
    if isinstance(record, ToolRecord) or (isinstance(record, AgentRecord) and not record.remote):
        return SpanKind.INTERNAL
    return SpanKind.CLIENT


def abandoned(call: Call) -> None:
    """A stream left before its end: its ``error.type`` on the span, error status."""
    span = call.span
    if span.is_recording():
        span.set_attribute(A.ERROR_TYPE, call.record.error_type)
        span.set_status(Status(StatusCode.ERROR, "stream closed before its end"))


def ended(call: Call) -> None:
    """The call is over: its end time and duration; provider token counts that are not counts dropped."""
    call.end_time_ns = time.time_ns()
    call.duration = time.perf_counter() - call.start_perf
    call.dimensions = None  # computed before the end (a stream's prefix guards): the response may change them
    record = call.record
    # Provider data is untrusted: a token count that is not a count is dropped, not exported.
    for name in _TOKEN_COUNTS:
        value = getattr(record, name)
        if value is not None and (type(value) is not int or value < 0 or value > _INT64_MAX):
            setattr(record, name, None)
            if type(value) is int and value > _INT64_MAX:
                internal_errors.report("response", OverflowError(f"{name} out of the int64 range OTLP carries"))


def _retry_links(replaces: Call, guard: str | None) -> list[Link] | None:
    context = getattr(replaces.span, "get_span_context", None)
    if context is None:
        return None
    attrs: dict[str, Any] = {A.MICROMETRICS_RETRY_OF: replaces.attempt}
    if guard:
        attrs[A.GEN_AI_EVALUATION_NAME] = guard
    return [Link(context(), attrs)]
