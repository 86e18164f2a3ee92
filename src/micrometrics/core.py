"""The core: turns call records into OpenTelemetry spans, metric points and log records.

It knows OpenTelemetry and nothing about any client library; instrumentations hand
it records through ``start`` / ``finish`` / ``fail``.
"""

from __future__ import annotations

import threading
import time
import traceback
import weakref
from dataclasses import dataclass
from typing import Any, Sequence

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from micrometrics import internal_errors
from micrometrics.attributes import (
    ContentPolicy,
    capture_targets,
    content_attributes,
    error_text,
    error_type,
    extra_attributes,
    metric_attributes,
    request_attributes,
    response_attributes,
    span_name,
)
from micrometrics.attribute_budget import CONTENT, PER_RESULT, Budget
from micrometrics.callcontext import RETRIEVED_KEY, TraceDocuments, current as current_context
from micrometrics.engine import MetricSuite, MonitorWorker, evaluate, sampled
from micrometrics.metric import RESERVED_DETAIL_KEYS, CallView, DetailKeyDropped, MicroMetric, Result, yield_point
from micrometrics.records import CallRecord, InferenceRecord, RetrievalRecord
from micrometrics_semconv import SCHEMA_URL
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M
from micrometrics_semconv import values as V

_VERSION = "0.1.0"
_SCOPE = "micrometrics"


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
#: OTLP carries integer points as int64: one larger value would fail the whole metrics batch (the app's points too).
_INT64_MAX = 2**63 - 1
#: Calls ended unevaluated at shutdown between two pushes of the span processor (its queue holds 2,048).
_SKIP_CHUNK = 512
_TOKEN_COUNTS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_creation_tokens", "reasoning_tokens")


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


class EvaluationTally:
    """``micrometrics.evaluations``, counted here and reported by an observable counter.

    A synchronous ``Counter.add`` costs about 20 µs in the SDK (attribute cleaning, hashing,
    aggregation, exemplar sampling) and runs on the monitor thread twice per call with the
    default metrics; an increment here is a dictionary update. The exported data is the same
    monotonic sum with the same dimensions, collected when the reader collects.
    """

    __slots__ = ("_counts", "_lock", "__weakref__")

    def __init__(self) -> None:
        self._counts: dict[frozenset, int] = {}
        self._lock = threading.Lock()

    def add(self, attributes: dict[str, Any]) -> None:
        key = frozenset(attributes.items())
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + 1

    def observe(self, options: CallbackOptions) -> list[Observation]:
        with self._lock:
            counted = list(self._counts.items())
        return [Observation(n, dict(key)) for key, n in counted]


#: Observable counter -> its tally. A meter hands out an instrument once per name: a later
#: ``instrument()`` on the same meter provider gets the same counter and keeps counting on the
#: tally its callback reads (a cumulative sum never goes back).
_tallies: "weakref.WeakKeyDictionary[Any, EvaluationTally]" = weakref.WeakKeyDictionary()


def evaluation_tally(meter: Any) -> EvaluationTally:
    tally = EvaluationTally()
    counter = meter.create_observable_counter(
        M.MICROMETRICS_EVALUATIONS, callbacks=[tally.observe], unit="{evaluation}", description="Micro-metric evaluations by label."
    )
    try:
        return _tallies.setdefault(counter, tally)
    except TypeError:  # an API implementation whose instruments cannot be weakly referenced
        return tally


class Runtime:
    """Everything one ``instrument()`` call set up: instruments, metrics, the worker."""

    def __init__(
        self,
        *,
        tracer_provider: Any,
        meter_provider: Any,
        logger_provider: Any,
        metrics: Sequence[MicroMetric] = (),
        capture_content: bool | str = False,
        content_policy: ContentPolicy | None = None,
        max_queue: int = 10_000,
        deadline_s: float = 2.0,
        evaluator: str = "thread",
    ) -> None:
        self.tracer = tracer_provider.get_tracer(_SCOPE, _VERSION, schema_url=SCHEMA_URL)
        self.budget = Budget(self.tracer)
        meter = meter_provider.get_meter(_SCOPE, _VERSION, schema_url=SCHEMA_URL)
        self.logger = logger_provider.get_logger(_SCOPE, _VERSION, schema_url=SCHEMA_URL) if logger_provider else None
        # Where content may go: spans (attributes, exception text, explanations) and events (log records).
        self.capture_spans, self.capture_events = capture_targets(capture_content)
        self.capture_content = self.capture_spans or self.capture_events
        self.content_policy = content_policy or ContentPolicy()
        self.suite = MetricSuite(metrics)
        self.trace_documents = TraceDocuments()
        # Retrieved documents are remembered only for a metric that reads them (ContextUtilization).
        self.keeps_documents = any(getattr(m, "reads_retrieved_documents", True) for m in self.suite.metrics)
        self.worker = MonitorWorker(self, max_queue=max_queue, deadline_s=deadline_s, evaluator=evaluator)

        self.duration = meter.create_histogram(
            M.GEN_AI_CLIENT_OPERATION_DURATION, unit="s", description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=list(M.DURATION_BUCKETS),
        )
        self.tokens = meter.create_histogram(
            M.GEN_AI_CLIENT_TOKEN_USAGE, unit="{token}", description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=list(M.TOKEN_BUCKETS),
        )
        self.ttfc = meter.create_histogram(
            M.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK, unit="s", description="Time to receive the first chunk of a streamed response.",
            explicit_bucket_boundaries_advisory=list(M.DURATION_BUCKETS),
        )
        self.evaluations = evaluation_tally(meter)
        self.scores = meter.create_histogram(
            M.MICROMETRICS_SCORE_HISTOGRAM, unit="1", description="Micro-metric scores.",
            explicit_bucket_boundaries_advisory=list(M.SCORE_BUCKETS),
        )
        self.eval_duration = meter.create_histogram(
            M.MICROMETRICS_EVALUATION_DURATION, unit="s", description="Time to evaluate one micro metric on one call.",
            explicit_bucket_boundaries_advisory=list(M.EVALUATION_DURATION_BUCKETS),
        )
        self.dropped = meter.create_counter(M.MICROMETRICS_EVALUATIONS_DROPPED, unit="{call}", description="Calls whose monitors were not run because the queue was full.")
        self.retries = meter.create_counter(M.MICROMETRICS_GUARD_RETRIES, unit="{retry}", description="Calls retried by a failing guard.")
        self.failure_cost = meter.create_counter(M.MICROMETRICS_FAILURE_COST, unit="1", description="What the failures of each micro metric cost, in the metric's currency.")
        internal_errors.bind_counter(meter.create_counter(M.MICROMETRICS_INTERNAL_ERRORS, unit="{error}", description="Exceptions caught inside micrometrics, by pipeline stage."))

    # ---- span lifecycle ------------------------------------------------------------

    def start(self, record: CallRecord, replaces: CallRecord | None = None, guard: str | None = None) -> Any:
        """Start the call's span; returns the context token the wrapper detaches after the call.

        ``replaces``: the attempt a guard retry replaces (``guard`` asked for it); the new span
        links to it, so attempts stay connected when the app has no parent span.
        """
        record.context = current_context()
        attrs = request_attributes(record, extra=False)
        extra = extra_attributes(record)
        if extra:
            # The app's extra attributes leave room for the response, content and results.
            op = record.operation
            reserve = PER_RESULT * (len(self.suite.guards(op)) + len(self.suite.monitors(op))) + (CONTENT if self.capture_spans else 0)
            attrs = self.budget.start(attrs, extra, reserve)
        links = _retry_links(replaces, guard) if replaces is not None else None
        span = self.tracer.start_span(span_name(record), kind=SpanKind.CLIENT, attributes=attrs, links=links)
        record.span = span
        if isinstance(record, InferenceRecord) and self.keeps_documents:
            record.retrieved_documents = self._recall_documents(record)
        record.start_perf = time.perf_counter()
        return otel_context.attach(trace.set_span_in_context(span))

    @staticmethod
    def detach(token: Any) -> None:
        try:
            otel_context.detach(token)
        except Exception as exc:  # pragma: no cover - a foreign context manager misbehaved
            internal_errors.report("context", exc)

    def _ended(self, record: CallRecord) -> None:
        record.end_time_ns = time.time_ns()
        record.duration = time.perf_counter() - record.start_perf
        # Provider data is untrusted: a token count that is not a count is dropped, not exported.
        for name in _TOKEN_COUNTS:
            value = getattr(record, name)
            if value is not None and (type(value) is not int or value < 0 or value > _INT64_MAX):
                setattr(record, name, None)
                if type(value) is int and value > _INT64_MAX:
                    internal_errors.report("response", OverflowError(f"{name} out of the int64 range OTLP carries"))

    def fail(self, record: CallRecord, exc: BaseException) -> None:
        """The call raised: error status, error.type, the exception, metrics; the span ends now."""
        self._ended(record)
        record.error_type = error_type(exc)
        span = record.span
        if span.is_recording():
            span.set_attributes(response_attributes(record))
            span.set_attribute(A.ERROR_TYPE, record.error_type)
            # Providers quote the input in their errors: the text leaves only with capture on, redacted.
            cls = type(exc)
            qualified = cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
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
        self.duration.record(record.duration, metric_attributes(record))
        self.seal(record)
        span.end(end_time=record.end_time_ns)

    def finish(self, record: CallRecord, *, guards: str = "act", monitors: bool = True) -> GuardVerdict:
        """The response is in the record: run guards now, hand the rest to the worker.

        ``guards``: "act" (may ask for a retry), "report" (streams: the guards that did
        not decide on the prefix only report), "report_all" (streams no prefix guard could
        judge: every guard only reports), "skip". The worker writes the response
        attributes and metric points, runs the monitors and ends the span at the call's
        end time, so the caller pays an enqueue; with the queue full or closed, all of it
        happens here.
        """
        self._ended(record)
        if isinstance(record, RetrievalRecord) and self.keeps_documents:
            self._remember_documents(record)  # the trace's next call reads it: now, not later

        verdict = RETURN
        if guards != "skip":
            chosen_guards = self.suite.guards(record.operation)
            if guards == "report":
                chosen_guards = tuple(g for g in chosen_guards if not g.stream_prefix_chars)
            if chosen_guards:
                try:
                    verdict = self.run_guards(record, sampled(chosen_guards), can_retry=guards == "act")
                except (KeyboardInterrupt, SystemExit):
                    # A guard passed on the user's Ctrl-C or exit: it goes to the caller, and the span still ends.
                    try:
                        self.write(record)
                        self.seal(record)
                        record.span.end(end_time=record.end_time_ns)
                    except Exception as exc:
                        internal_errors.report("finish", exc)
                    raise
        configured = self.suite.monitors(record.operation) if monitors else ()
        chosen = sampled(configured) if configured else []
        if self.worker.submit(record, chosen):
            return verdict  # the worker writes the response and ends the span
        if chosen:
            reason = V.DROP_REASON_SHUTDOWN if self.worker.closed else V.DROP_REASON_QUEUE_FULL
            self.dropped.add(1, {**metric_attributes(record), A.MICROMETRICS_DROP_REASON: reason})
        self.write(record)
        self.seal(record)
        record.span.end(end_time=record.end_time_ns)
        return verdict

    def write(self, record: CallRecord) -> None:
        """Response attributes, duration and token metric points, the details event."""
        span = record.span
        if span.is_recording():
            span.set_attributes(response_attributes(record))
            if self.capture_spans:
                self.budget.add(span, content_attributes(record, self.content_policy, self.budget.max_length))
            yield_point()
        dims = metric_attributes(record)
        # Exemplars link to the call's span, whichever thread records the point.
        ctx = trace.set_span_in_context(span)
        self.duration.record(record.duration, dims, context=ctx)
        if record.time_to_first_chunk is not None:
            self.ttfc.record(record.time_to_first_chunk, dims, context=ctx)
        if record.input_tokens is not None:
            self.tokens.record(record.input_tokens, {**dims, A.GEN_AI_TOKEN_TYPE: V.TOKEN_TYPE_INPUT}, context=ctx)
        if record.output_tokens is not None:
            self.tokens.record(record.output_tokens, {**dims, A.GEN_AI_TOKEN_TYPE: V.TOKEN_TYPE_OUTPUT}, context=ctx)
        if self.capture_events and self.logger is not None and isinstance(record, InferenceRecord):
            self._details_event(record)

    # ---- guards ----------------------------------------------------------------------

    def finish_stream(self, record: CallRecord, *, report_guards: bool = True, monitors: bool = True, prefix_judged: bool = True) -> None:
        guards = ("report" if prefix_judged else "report_all") if report_guards else "skip"
        self.finish(record, guards=guards, monitors=monitors)

    def stream_guards(self, operation: str) -> tuple[MicroMetric, ...]:
        """The guards that decide on a stream's prefix, before the caller sees a chunk."""
        return tuple(g for g in sampled(self.suite.guards(operation)) if g.stream_prefix_chars)

    def run_guards(
        self, record: CallRecord, guards: Sequence[MicroMetric], view: CallView | None = None, can_retry: bool = True
    ) -> GuardVerdict:
        """Evaluate guards now, on the caller's thread; decide retry / raise / return."""
        view = view or CallView(record)
        evaluated = []
        for g in guards:
            result, took = evaluate(g, view)
            if result is None:
                continue
            if took > g.budget_s and result.label not in ("error",):
                result = Result("timeout", explanation=f"guard took {took * 1000:.1f} ms, over its {g.budget_s * 1000:.0f} ms budget")
            evaluated.append((g, result, took))
        self.emit(record, evaluated, written=False)
        failing = [(g, r) for g, r, _ in evaluated if r.passed is False]
        results = tuple((m.name, res) for m, res, _ in evaluated)
        if not failing:
            return GuardVerdict("return", results=results)
        g, r = failing[0]
        if not can_retry:
            return GuardVerdict("return", results=results)
        if record.attempt <= g.max_retries:
            self.retries.add(1, {**retry_dimensions(record), A.MICROMETRICS_METRIC_NAME: g.name})
            return GuardVerdict("retry", g.corrective_instruction(view, r), results, g.name, g.on_fail)
        if record.span.is_recording():
            record.span.set_attribute(A.MICROMETRICS_GUARD_FAILED, True)
        return GuardVerdict("raise" if g.on_fail == "raise" else "return", results=results)

    # ---- monitors ----------------------------------------------------------------------

    def complete_monitored(self, record: CallRecord, results: list[tuple[MicroMetric, Result, float]]) -> None:
        """Worker callback: write the response and the monitors' results, then end the span at the call's end time."""
        try:
            try:
                self.write(record)
            except Exception as exc:
                internal_errors.report("finish", exc)
            yield_point()
            self.emit(record, results)
        except Exception as exc:
            internal_errors.report("emission", exc)
        finally:
            self.seal(record)
            record.span.end(end_time=record.end_time_ns)

    def complete_skipped(self, record: CallRecord, results: list[tuple[MicroMetric, Result, float]], skipped: Sequence[MicroMetric]) -> None:
        """Shutdown left no time to evaluate: the response, the results so far, ``skipped`` for the rest; the span ends."""
        try:
            try:
                self.write(record)
            except Exception as exc:
                internal_errors.report("finish", exc)
            if results:
                self.emit(record, results)
            if skipped:
                span = record.span
                if span.is_recording():
                    self.budget.add(span, {f"{A.MICROMETRIC_ATTRIBUTE_PREFIX}{m.name}.{A.RESULT_LABEL}": V.LABEL_SKIPPED for m in skipped})
                self.dropped.add(1, {**metric_attributes(record), A.MICROMETRICS_DROP_REASON: V.DROP_REASON_SHUTDOWN})
        except Exception as exc:
            internal_errors.report("emission", exc)
        finally:
            self.seal(record)
            record.span.end(end_time=record.end_time_ns)

    def seal(self, record: CallRecord) -> None:
        """Before the span ends: core attributes evicted under the SDK's attribute limit are put back."""
        span = record.span
        try:
            if getattr(span, "dropped_attributes", 0) and span.is_recording():
                core = {**request_attributes(record, extra=False), **response_attributes(record)}
                if record.error_type:
                    core[A.ERROR_TYPE] = record.error_type
                self.budget.seal(span, core)
        except Exception as exc:
            internal_errors.report("finish", exc)

    # ---- emission ----------------------------------------------------------------------

    def emit(self, record: CallRecord, results: Sequence[tuple[MicroMetric, Result, float]], *, written: bool = True) -> None:
        """Results as span attributes, span events, log records and metric points.

        ``written=False``: the response's attributes are still to come (guards): room is kept for them.
        """
        span = record.span
        recording = span.is_recording()
        dims = metric_attributes(record)
        span_ctx = trace.set_span_in_context(span) if self.logger is not None else None
        # Stamped at the call's end: the span ends then, and an event after its span's end is out of order.
        stamp = record.end_time_ns
        for metric, result, took in results:
            yield_point()
            name = metric.name
            record.results[name] = result
            prefix = f"{A.MICROMETRIC_ATTRIBUTE_PREFIX}{name}."
            if recording:
                attrs: dict[str, Any] = {prefix + A.RESULT_LABEL: result.label}
                if result.score is not None:
                    attrs[prefix + A.RESULT_SCORE] = result.score
                if result.passed is not None:
                    attrs[prefix + A.RESULT_PASSED] = result.passed
                if result.details:
                    for k, v in result.details.items():
                        if not isinstance(k, str) or not k or k in RESERVED_DETAIL_KEYS:
                            # Mutated after Result() checked it: never lets a detail overwrite the verdict.
                            internal_errors.report("emission", DetailKeyDropped(f"{name}: details key {k!r} dropped"))
                            continue
                        if v is not None:
                            attrs[prefix + k] = v if isinstance(v, (str, bool, int, float)) else str(v)
                self.budget.add(span, attrs, before_response=not written)
                event = {A.GEN_AI_EVALUATION_NAME: name, A.GEN_AI_EVALUATION_SCORE_LABEL: result.label, A.MICROMETRICS_METRIC_MODE: metric.mode}
                if result.score is not None:
                    event[A.GEN_AI_EVALUATION_SCORE_VALUE] = result.score
                explanation = self._explanation(result, self.capture_spans)
                if explanation:
                    event[A.GEN_AI_EVALUATION_EXPLANATION] = explanation
                span.add_event(E.MICROMETRICS_EVALUATION_EVENT, event, timestamp=stamp)
                yield_point()
            if self.logger is not None:
                log_attrs: dict[str, Any] = {
                    A.GEN_AI_EVALUATION_NAME: name,
                    A.GEN_AI_EVALUATION_SCORE_LABEL: result.label,
                    A.GEN_AI_OPERATION_NAME: record.operation,
                    A.GEN_AI_PROVIDER_NAME: record.provider,
                }
                if result.score is not None:
                    log_attrs[A.GEN_AI_EVALUATION_SCORE_VALUE] = result.score
                explanation = self._explanation(result, self.capture_events)
                if explanation:
                    log_attrs[A.GEN_AI_EVALUATION_EXPLANATION] = explanation
                if record.response_id:
                    log_attrs[A.GEN_AI_RESPONSE_ID] = record.response_id
                self.logger.emit(event_name=E.GEN_AI_EVALUATION_RESULT, attributes=log_attrs, context=span_ctx, timestamp=stamp)
                yield_point()
            point = {**dims, A.MICROMETRICS_METRIC_NAME: name, A.MICROMETRICS_LABEL: result.label}
            self.evaluations.add(point)
            self.eval_duration.record(took, {**dims, A.MICROMETRICS_METRIC_NAME: name})
            if result.score is not None:
                self.scores.record(result.score, {**dims, A.MICROMETRICS_METRIC_NAME: name})
            if result.passed is False and metric.cost_per_failure:
                self.failure_cost.add(metric.cost_per_failure, {**dims, A.MICROMETRICS_METRIC_NAME: name, A.MICROMETRICS_COST_CURRENCY: metric.currency})

    def _explanation(self, result: Result, capture: bool) -> str | None:
        """A metric's exception text (which may quote content) joins its explanation only with capture on, redacted."""
        if not result.error_message:
            return result.explanation
        message = error_text(result.error_message, capture, self.content_policy)
        return f"{result.explanation}: {message}" if message is not None else result.explanation

    def _details_event(self, record: InferenceRecord) -> None:
        attrs = {**request_attributes(record), **response_attributes(record), **content_attributes(record, self.content_policy)}
        self.logger.emit(
            event_name=E.GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS,
            attributes=attrs,
            context=trace.set_span_in_context(record.span),
        )

    def _remember_documents(self, record: RetrievalRecord) -> None:
        if not record.documents:
            return
        memory = record.context.get(RETRIEVED_KEY)
        if memory is not None:
            memory.add(record.documents)
        span = record.span
        # A root retrieval span ends its own trace: nothing later can recall by its id.
        if getattr(span, "parent", True) is not None:
            trace_id = span.get_span_context().trace_id
            if trace_id:
                self.trace_documents.remember(trace_id, record.documents)

    def _recall_documents(self, record: InferenceRecord) -> tuple:
        """What the context block and the trace retrieved so far, each document once."""
        memory = record.context.get(RETRIEVED_KEY)
        block = memory.items if memory is not None else ()
        found = block + self.trace_documents.recall(record.span.get_span_context().trace_id)
        if not found:
            return ()
        seen: set = set()
        out = []
        for doc in found:
            key = doc.id if doc.id is not None else doc.content
            if key not in seen:
                seen.add(key)
                out.append(doc)
        return tuple(out)

    # ---- lifecycle -----------------------------------------------------------------------

    def flush(self, timeout_s: float) -> bool:
        return self.worker.flush(timeout_s)

    def shutdown(self, timeout_s: float, push: Any = None) -> bool:
        """Evaluate what is queued for up to ``timeout_s``, then end every remaining call's span unevaluated
        (``skipped``, counted in ``micrometrics.evaluations.dropped``); True when nothing was skipped.

        ``push`` (no arguments) runs between chunks of ended spans, so that the span processor's bounded queue keeps up.
        """
        worker = self.worker
        ok = worker.flush(timeout_s)
        worker.close()
        for _ in range(3):
            while worker.skip_pending(_SKIP_CHUNK):
                if push is not None:
                    push()
            worker.skip_busy()
            # A call the monitor thread took just before close() is either finished or busy by now.
            if worker.flush(0.02):
                break
        worker.stop()
        return ok


def retry_dimensions(record: CallRecord) -> dict[str, Any]:
    """A retry is decided before the response model or an error is known on some paths (a stream's prefix):
    leaving both out keeps one series per guard."""
    dims = metric_attributes(record)
    dims.pop(A.GEN_AI_RESPONSE_MODEL, None)
    dims.pop(A.ERROR_TYPE, None)
    return dims


def _retry_links(replaces: CallRecord, guard: str | None) -> list[Link] | None:
    context = getattr(replaces.span, "get_span_context", None)
    if context is None:
        return None
    attrs: dict[str, Any] = {A.MICROMETRICS_RETRY_OF: replaces.attempt}
    if guard:
        attrs[A.MICROMETRICS_METRIC_NAME] = guard
    return [Link(context(), attrs)]


def mark_failed_retry(record: CallRecord, on_fail: str) -> None:
    """On a guard retry's span that failed itself: what the application got instead."""
    try:
        if record.span.is_recording():
            fallback = V.GUARD_FALLBACK_ERROR if on_fail == "raise" else V.GUARD_FALLBACK_PREVIOUS
            record.span.set_attribute(A.MICROMETRICS_GUARD_FALLBACK, fallback)
    except Exception as exc:
        internal_errors.report("finish", exc)


_current: Runtime | None = None


def current() -> Runtime | None:
    return _current


def set_current(runtime: Runtime | None) -> None:
    global _current
    _current = runtime
