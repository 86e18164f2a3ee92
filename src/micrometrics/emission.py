"""Emission: a call's response data and metric results -> span attributes, span events, log records, metric points.

Each is computed once per call, on the monitor thread (or the caller's, when the queue is
full or closed, and for guards); content and exception text leave only where capture allows,
redacted once per string.
"""

from __future__ import annotations

import threading
import traceback
import weakref
from decimal import Decimal
from typing import Any, Sequence

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.metrics import CallbackOptions, Observation

from micrometrics import internal_errors
from micrometrics.attribute_budget import Budget, log_attribute_length
from micrometrics.attributes import (
    ContentPolicy,
    captured_content,
    dimensions,
    error_text,
    event_content,
    exportable,
    qualified_name,
    request_attributes,
    response_attributes,
    span_content,
)
from micrometrics.metric import RESERVED_DETAIL_KEYS, DetailKeyDropped, MicroMetric, Result, yield_point
from micrometrics.records import AgentRecord, Call, EmbeddingsRecord, InferenceRecord, ToolRecord
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M
from micrometrics_semconv import values as V


#: Agent, workflow and tool runs: spans and evaluations, no gen_ai.client.* points (their model calls have them).
_RUN_RECORDS = (AgentRecord, ToolRecord)


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

    def add(self, attributes: dict[str, Any], amount: int | Decimal = 1) -> None:
        key = frozenset(attributes.items())
        with self._lock:
            self._counts[key] = self._counts.get(key, 0) + amount

    def observe(self, options: CallbackOptions) -> list[Observation]:
        with self._lock:
            counted = list(self._counts.items())
        # Sums of USD are kept exact (Decimal) and read as floats.
        return [Observation(n if type(n) is int else float(n), dict(key)) for key, n in counted]


#: Observable counter -> its tally. A meter hands out an instrument once per name: a later
#: ``instrument()`` on the same meter provider gets the same counter and keeps counting on the
#: tally its callback reads (a cumulative sum never goes back).
_tallies: "weakref.WeakKeyDictionary[Any, EvaluationTally]" = weakref.WeakKeyDictionary()


def evaluation_tally(meter: Any) -> EvaluationTally:
    return _observed_tally(meter, M.MICROMETRICS_EVALUATIONS, "{evaluation}", "Micro-metric evaluations by label.")


def cost_tally(meter: Any) -> EvaluationTally:
    """``micrometrics.cost``: once per priced call on the monitor thread, a tally like the evaluations'.
    UCUM has no currency unit: ``{USD}`` is an annotation, as the conventions write ``{token}``."""
    return _observed_tally(meter, M.MICROMETRICS_COST, "{USD}", "USD spent on LLM calls, from the price table (docs/cost.md).")


def _observed_tally(meter: Any, name: str, unit: str, description: str) -> EvaluationTally:
    tally = EvaluationTally()
    counter = meter.create_observable_counter(name, callbacks=[tally.observe], unit=unit, description=description)
    try:
        return _tallies.setdefault(counter, tally)
    except TypeError:  # an API implementation whose instruments cannot be weakly referenced
        return tally


#: ``micrometrics.cost`` is by provider, model and operation (and the metric that caused the call): spend, not traffic.
_COST_DIMENSIONS = (A.GEN_AI_OPERATION_NAME, A.GEN_AI_PROVIDER_NAME, A.GEN_AI_REQUEST_MODEL, A.GEN_AI_RESPONSE_MODEL)


def cost_dimensions(call: Call) -> dict[str, Any]:
    dims = dimensions(call)
    out = {k: dims[k] for k in _COST_DIMENSIONS if k in dims}
    if call.charged_to:
        out[A.GEN_AI_EVALUATION_NAME] = call.charged_to
    return out
def service_tier(record: Any) -> str | None:
    """The ``openai.response.service_tier`` the response reported, as a metric dimension (a non-empty str)."""
    tier = record.response_params.get(A.OPENAI_RESPONSE_SERVICE_TIER) if record.response_params else None
    return tier if isinstance(tier, str) and tier else None


def evaluation_error_type(result: Result) -> str | None:
    """``error.type`` of an evaluation that did not complete (label ``timeout`` or ``error``), else None:
    what the metric raised, ``timeout``, or ``_OTHER`` when nothing more is known."""
    if result.label == "timeout":
        return V.ERROR_TYPE_TIMEOUT
    if result.label == "error":
        return result.error_type or V.ERROR_TYPE_OTHER
    return None


class Emitter:
    """The instruments of one runtime, and what a call's data and results become on them."""

    def __init__(
        self,
        meter: Any,
        logger: Any,
        budget: Budget,
        *,
        capture_spans: bool,
        capture_events: bool,
        content_policy: ContentPolicy,
        latest: bool = False,
        evaluation_sink: Any = None,
    ) -> None:
        self.logger = logger
        #: ``sink(call, results)``: a second destination of each call's results (Datadog's evaluation API), an enqueue.
        self.evaluation_sink = evaluation_sink
        self.budget = budget
        # The SDK cuts each string of a log attribute at its length limit, silently: we cut first, with the marker.
        self.log_max_length = log_attribute_length(logger)
        self.capture_spans = capture_spans
        self.capture_events = capture_events
        self.content_policy = content_policy
        #: The GenAI conventions after v1.41 (conventions.py), else v1.41.
        self.latest = latest
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
        self.tpoc = meter.create_histogram(
            M.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK, unit="s",
            description="Time per output chunk after the first, from the end of the previous chunk to the end of this one.",
            explicit_bucket_boundaries_advisory=list(M.DURATION_BUCKETS),
        )
        self.evaluations = evaluation_tally(meter)
        self.costs = cost_tally(meter)
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
        # An amount of money in the currency its micrometrics.cost.currency names (see micrometrics_semconv.metrics).
        self.failure_cost = meter.create_counter(
            M.MICROMETRICS_FAILURE_COST, unit="{currency}", description="What the failures of each micro metric cost, in the currency micrometrics.cost.currency names."
        )
        internal_errors.bind_counter(meter.create_counter(M.MICROMETRICS_INTERNAL_ERRORS, unit="{error}", description="Exceptions caught inside micrometrics, by pipeline stage."))
        self.latest_points = LatestClientMetrics(meter, self.duration) if latest else None
        if latest:
            self.tpoc = self.latest_points.tpoc  # renamed under the newer conventions (#521)

    def write(self, call: Call) -> None:
        """Response attributes, duration and token metric points, the details event."""
        span, record = call.span, call.record
        recording = span.is_recording()
        details = self.capture_events and self.logger is not None and isinstance(record, InferenceRecord) and not isinstance(record, AgentRecord)
        # Redacted once for both targets: the user's redact runs once per string, however many targets.
        content = captured_content(record, self.content_policy, self.latest) if details or (self.capture_spans and recording) else None
        if recording:
            span.set_attributes(response_attributes(record, self.latest))
            if self.capture_spans and content:
                self.budget.add(span, span_content(content, self.budget.max_length))
            yield_point()
        if details:
            self._details_event(call, content or {})
        if isinstance(record, _RUN_RECORDS):
            return  # agent and tool runs: the conventions' client metrics measure model calls (their tokens are counted there)
        dims = dimensions(call)
        # Exemplars link to the call's span, whichever thread records the point.
        ctx = trace.set_span_in_context(span)
        # The conventions' OpenAI refinement adds the service tier to duration and token usage only.
        tier = service_tier(record)
        usage_dims = {**dims, A.OPENAI_RESPONSE_SERVICE_TIER: tier} if tier else dims
        if self.latest_points is not None:
            self.latest_points.write(call, usage_dims, ctx)
            if call.chunk_times is not None:
                self._chunk_intervals(call.chunk_times, dims)
            return
        self.duration.record(call.duration, usage_dims, context=ctx)
        if A.ERROR_TYPE in dims:  # an abandoned stream: the conventions define error.type on the duration only
            dims = {k: v for k, v in dims.items() if k != A.ERROR_TYPE}
            usage_dims = {k: v for k, v in usage_dims.items() if k != A.ERROR_TYPE}
        if record.time_to_first_chunk is not None:
            self.ttfc.record(record.time_to_first_chunk, dims, context=ctx)
        if call.chunk_times is not None:
            self._chunk_intervals(call.chunk_times, dims)
        if record.input_tokens is not None:
            self.tokens.record(record.input_tokens, {**usage_dims, A.GEN_AI_TOKEN_TYPE: V.TOKEN_TYPE_INPUT}, context=ctx)
        if record.output_tokens is not None:
            self.tokens.record(record.output_tokens, {**usage_dims, A.GEN_AI_TOKEN_TYPE: V.TOKEN_TYPE_OUTPUT}, context=ctx)

    def charge(self, call: Call) -> None:
        """What the call cost: ``gen_ai.usage.cost.*`` on its span and a ``micrometrics.cost`` point, charged to the
        metric that caused it (a guard's retry, an LLM judge's call); on a guarded call's last attempt, its retries' total.

        Called after the results: under a tight attribute limit they outrank the span's cost attributes (the point is
        recorded whatever fits)."""
        cost, guard_cost = call.cost, call.guard_cost
        if cost is None and guard_cost is None:
            return
        span = call.span
        if span.is_recording():
            attrs: dict[str, Any] = {}
            if cost is not None:
                attrs[A.GEN_AI_USAGE_COST_AMOUNT] = float(cost)
                attrs[A.GEN_AI_USAGE_COST_CURRENCY] = V.COST_CURRENCY_USD
                attrs[A.GEN_AI_USAGE_COST_SOURCE] = V.COST_SOURCE_LOCAL
            if guard_cost is not None:
                attrs[A.MICROMETRICS_GUARD_COST] = float(guard_cost)
            self.budget.add(span, attrs)
        if cost is not None:
            self.costs.add(cost_dimensions(call), cost)

    def _chunk_intervals(self, times: Sequence[float], dims: dict[str, Any]) -> None:
        """``gen_ai.client.operation.time_per_output_chunk``: one point per chunk after the first, recorded
        here (off the caller's path) from the arrival times the stream kept; a held or restarted stream's
        chunks are timed when they arrived from the provider. Without ``error.type``: the conventions
        define this metric's attributes without it (a failed stream's chunks still arrived)."""
        if A.ERROR_TYPE in dims:
            dims = {k: v for k, v in dims.items() if k != A.ERROR_TYPE}
        record = self.tpoc.record
        previous = times[0]
        for i in range(1, len(times)):
            now = times[i]
            record(now - previous, dims)
            previous = now
            if i % 8 == 0:  # a point costs the SDK 5-10 µs: the callers get the lock back within the monitor's slice
                yield_point()

    def failed(self, call: Call, exc: BaseException) -> None:
        """The call raised: its duration point and stream chunk timings (the span carries the error), and
        a ``gen_ai.client.operation.exception`` log record."""
        dims = dimensions(call)
        if isinstance(call.record, _RUN_RECORDS):
            pass
        elif self.latest_points is not None:
            self.latest_points.failed(call, dims)
        else:
            self.duration.record(call.duration, dims)
        if call.chunk_times is not None:
            self._chunk_intervals(call.chunk_times, dims)
        if self.logger is not None:
            try:
                self._exception_event(call, exc)
            except Exception as inner:  # a logger or redact that fails: the span still ends as it should
                internal_errors.report("emission", inner)

    def _exception_event(self, call: Call, exc: BaseException) -> None:
        """Severity WARN, parented to the call's span. Providers quote the input in their errors: the
        message and stacktrace leave only with capture on events, redacted (never ``exception=exc``,
        from which the SDK would copy both)."""
        attrs: dict[str, Any] = {A.EXCEPTION_TYPE: qualified_name(type(exc))}
        message = error_text(str(exc), self.capture_events, self.content_policy)
        stack = error_text("".join(traceback.format_exception(exc)), True, self.content_policy) if message is not None else None
        if message is not None and stack is not None:
            attrs[A.EXCEPTION_MESSAGE] = message
            attrs[A.EXCEPTION_STACKTRACE] = stack
        self.logger.emit(
            event_name=E.GEN_AI_CLIENT_OPERATION_EXCEPTION,
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            attributes=attrs,
            context=trace.set_span_in_context(call.span),
            timestamp=call.end_time_ns,
        )

    def dropped_call(self, call: Call, reason: str) -> None:
        """Monitors not run (queue full, shutdown): counted in ``micrometrics.evaluations.dropped``."""
        self.dropped.add(1, {**dimensions(call), A.MICROMETRICS_DROP_REASON: reason})

    def skipped(self, call: Call, skipped: Sequence[MicroMetric]) -> None:
        """Monitors shutdown left no time for: ``skipped`` on the span, the call counted as dropped."""
        span = call.span
        if span.is_recording():
            self.budget.add(span, {f"{A.MICROMETRIC_ATTRIBUTE_PREFIX}{m.name}.{A.RESULT_LABEL}": V.LABEL_SKIPPED for m in skipped})
        self.dropped_call(call, V.DROP_REASON_SHUTDOWN)

    def emit(self, call: Call, results: Sequence[tuple[MicroMetric, Result, float]], *, written: bool = True) -> None:
        """Results as span attributes, span events, log records and metric points.

        ``written=False``: the response's attributes are still to come (guards): room is kept for them.
        """
        span, record = call.span, call.record
        recording = span.is_recording()
        dims = dimensions(call)
        span_ctx = trace.set_span_in_context(span) if self.logger is not None else None
        # Stamped at the call's end: the span ends then, and an event after its span's end is out of order.
        stamp = call.end_time_ns
        same_capture = self.capture_spans == self.capture_events
        for metric, result, took in results:
            yield_point()
            name = metric.name
            call.results[name] = result
            prefix = f"{A.MICROMETRIC_ATTRIBUTE_PREFIX}{name}."
            explanation = None
            if recording:
                attrs: dict[str, Any] = {prefix + A.RESULT_LABEL: result.label}
                if result.score is not None:
                    attrs[prefix + A.RESULT_SCORE] = result.score
                if result.passed is not None:
                    attrs[prefix + A.RESULT_PASSED] = result.passed
                if result.cost is not None:
                    attrs[prefix + A.RESULT_COST] = result.cost
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
                failure = evaluation_error_type(result)
                if failure is not None:
                    event[A.ERROR_TYPE] = failure
                explanation = self._explanation(result, self.capture_spans)
                if explanation:
                    event[A.GEN_AI_EVALUATION_EXPLANATION] = explanation
                span.add_event(E.MICROMETRICS_EVALUATION_EVENT, event, timestamp=stamp)
                yield_point()
            if self.logger is not None:
                log_attrs: dict[str, Any] = {
                    A.GEN_AI_EVALUATION_NAME: name,
                    A.GEN_AI_EVALUATION_SCORE_LABEL: result.label,
                    # Beyond the event's definition (documented): log backends filter evaluations by these.
                    A.GEN_AI_OPERATION_NAME: record.operation,
                }
                if record.provider:  # a tool run has none (attributes._endpoint_attributes)
                    log_attrs[A.GEN_AI_PROVIDER_NAME] = record.provider
                if result.score is not None:
                    log_attrs[A.GEN_AI_EVALUATION_SCORE_VALUE] = result.score
                failure = evaluation_error_type(result)
                if failure is not None:
                    log_attrs[A.ERROR_TYPE] = failure
                # Redacted once: the span's explanation when both targets capture alike.
                if not (recording and same_capture):
                    explanation = self._explanation(result, self.capture_events)
                if explanation:
                    log_attrs[A.GEN_AI_EVALUATION_EXPLANATION] = explanation
                if isinstance(record.response_id, str) and record.response_id:  # a malformed response's id is no string
                    log_attrs[A.GEN_AI_RESPONSE_ID] = exportable(record.response_id)
                self.logger.emit(event_name=E.GEN_AI_EVALUATION_RESULT, attributes=log_attrs, context=span_ctx, timestamp=stamp)
                yield_point()
            named = {**dims, A.GEN_AI_EVALUATION_NAME: name}
            self.evaluations.add({**named, A.GEN_AI_EVALUATION_SCORE_LABEL: result.label})
            self.eval_duration.record(took, named)
            if result.score is not None:
                self.scores.record(result.score, named)
            if result.passed is False and metric.cost_per_failure:
                self.failure_cost.add(metric.cost_per_failure, {**named, A.MICROMETRICS_COST_CURRENCY: metric.currency})
        if self.evaluation_sink is not None and results:
            try:
                self.evaluation_sink(call, results)
            except Exception as exc:  # the span, events and points are written: a failing sink takes nothing else
                internal_errors.report("emission", exc)

    def _explanation(self, result: Result, capture: bool) -> str | None:
        """A metric's exception text (which may quote content) joins its explanation only with capture on, redacted."""
        if not result.error_message:
            return result.explanation
        message = error_text(result.error_message, capture, self.content_policy)
        return f"{result.explanation}: {message}" if message is not None else result.explanation

    def _details_event(self, call: Call, content: dict[str, Any]) -> None:
        """``gen_ai.client.inference.operation.details``: content as structured values (the conventions' MUST on events)."""
        record = call.record
        latest = self.latest
        attrs = {**request_attributes(record, call, latest=latest), **response_attributes(record, latest), **event_content(content, self.log_max_length)}
        self.logger.emit(
            event_name=E.GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS,
            attributes=attrs,
            context=trace.set_span_in_context(call.span),
        )


class LatestClientMetrics:
    """The ``gen_ai.client.*`` metric points of the conventions after v1.41 (conventions.py;
    semantic-conventions-genai: client-inference.md, client-embeddings.md, gen-ai-token-metrics.md).

    Inference and embeddings each get their own duration; token histograms are one per direction
    (no ``gen_ai.token.type``); inference token counters, by ``gen_ai.token.modality``, add up spend
    (cache and reasoning ones are subsets of the input and output ones). Other operations (retrieval)
    stay on ``gen_ai.client.operation.duration``.
    """

    __slots__ = ("operation_duration", "inference_duration", "embeddings_duration", "ttfc", "tpoc",
                 "input_tokens", "output_tokens", "embeddings_tokens", "usage")

    def __init__(self, meter: Any, operation_duration: Any) -> None:
        def histogram(name: str, unit: str, description: str, buckets: Sequence[float]) -> Any:
            return meter.create_histogram(name, unit=unit, description=description, explicit_bucket_boundaries_advisory=list(buckets))

        def counter(name: str, description: str) -> Any:
            return meter.create_counter(name, unit="{token}", description=description)

        self.operation_duration = operation_duration
        self.inference_duration = histogram(M.GEN_AI_CLIENT_INFERENCE_DURATION, "s", "GenAI client inference operation duration.", M.DURATION_BUCKETS)
        self.embeddings_duration = histogram(M.GEN_AI_CLIENT_EMBEDDINGS_DURATION, "s", "GenAI client embeddings operation duration.", M.DURATION_BUCKETS)
        self.ttfc = histogram(
            M.GEN_AI_CLIENT_INFERENCE_TIME_TO_FIRST_CHUNK, "s", "Time to receive the first chunk of a streamed response.", M.DURATION_BUCKETS
        )
        self.tpoc = histogram(
            M.GEN_AI_CLIENT_INFERENCE_TIME_PER_OUTPUT_CHUNK, "s",
            "Time per output chunk after the first, from the end of the previous chunk to the end of this one.", M.DURATION_BUCKETS,
        )
        self.input_tokens = histogram(
            M.GEN_AI_CLIENT_INFERENCE_OPERATION_INPUT_TOKENS, "{token}", "Input tokens used per inference operation.", M.TOKEN_BUCKETS
        )
        self.output_tokens = histogram(
            M.GEN_AI_CLIENT_INFERENCE_OPERATION_OUTPUT_TOKENS, "{token}", "Output tokens used per inference operation.", M.TOKEN_BUCKETS
        )
        self.embeddings_tokens = histogram(
            M.GEN_AI_CLIENT_EMBEDDINGS_OPERATION_INPUT_TOKENS, "{token}", "Input tokens used per embeddings operation.", M.TOKEN_BUCKETS
        )
        #: (record field, counter): the counters a call's usage adds to.
        self.usage = (
            ("input_tokens", counter(M.GEN_AI_CLIENT_INFERENCE_USAGE_INPUT_TOKENS, "Input tokens used, including cached tokens.")),
            ("output_tokens", counter(M.GEN_AI_CLIENT_INFERENCE_USAGE_OUTPUT_TOKENS, "Output tokens used, including reasoning tokens.")),
            ("cache_read_tokens", counter(M.GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_READ_INPUT_TOKENS, "Input tokens served from a provider-managed cache.")),
            ("cache_creation_tokens", counter(M.GEN_AI_CLIENT_INFERENCE_USAGE_CACHE_WRITE_INPUT_TOKENS, "Input tokens written to a provider-managed cache.")),
            ("reasoning_tokens", counter(M.GEN_AI_CLIENT_INFERENCE_USAGE_REASONING_OUTPUT_TOKENS, "Output tokens used for reasoning.")),
        )

    def _duration(self, record: Any) -> Any:
        if isinstance(record, InferenceRecord):
            return self.inference_duration
        if isinstance(record, EmbeddingsRecord):
            return self.embeddings_duration
        return self.operation_duration

    def write(self, call: Call, dims: dict[str, Any], ctx: Any) -> None:
        record = call.record
        self._duration(record).record(call.duration, dims, context=ctx)
        if isinstance(record, InferenceRecord):
            if record.time_to_first_chunk is not None:
                self.ttfc.record(record.time_to_first_chunk, dims, context=ctx)
            if record.input_tokens is not None:
                self.input_tokens.record(record.input_tokens, dims, context=ctx)
            if record.output_tokens is not None:
                self.output_tokens.record(record.output_tokens, dims, context=ctx)
            self._usage(record, dims, ctx)
        elif isinstance(record, EmbeddingsRecord) and record.input_tokens is not None:
            self.embeddings_tokens.record(record.input_tokens, dims, context=ctx)

    def failed(self, call: Call, dims: dict[str, Any]) -> None:
        """The call raised: its duration; tokens it reported before failing still count as spent (not per operation)."""
        record = call.record
        self._duration(record).record(call.duration, dims)
        if isinstance(record, InferenceRecord):
            self._usage(record, dims, None)

    def _usage(self, record: InferenceRecord, dims: dict[str, Any], ctx: Any) -> None:
        # The counters' dimensions: no error.type; providers do not break usage down by modality here.
        point = {k: v for k, v in dims.items() if k != A.ERROR_TYPE}
        point[A.GEN_AI_TOKEN_MODALITY] = V.TOKEN_MODALITY_UNKNOWN
        for name, counter in self.usage:
            value = getattr(record, name)
            if value is not None:
                counter.add(value, point, context=ctx)
