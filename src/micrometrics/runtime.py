"""What one ``instrument()`` built: tracer, attribute budget, emitter, metric suite, monitor worker,
trace memory; and ``current()``, the runtime the call path reports to.

The call path (calls.py, streams.py, retrieval.py) hands records through ``start`` /
``finish`` / ``fail``; this module wires spans.py, guards.py, monitor_worker.py and emission.py.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from micrometrics import active, conventions as semconv_mode, cost_attribution, internal_errors, pricing as pricing_mod, trace_memory
from micrometrics.callcontext import current as current_context
from micrometrics.attribute_budget import Budget
from micrometrics.attributes import ContentPolicy, capture_targets
from micrometrics.emission import Emitter
from micrometrics.evaluation import MetricSuite, sampled
from micrometrics.guards import RETURN, GuardVerdict, run_guards
from micrometrics.metric import CallView, MicroMetric, Result, yield_point
from micrometrics.monitor_worker import MonitorWorker
from micrometrics.records import Call, InferenceRecord, RetrievalRecord
from micrometrics.spans import Spans, ended
from micrometrics_semconv import values as V

_VERSION = "0.1.0"
_SCOPE = "micrometrics"
#: Calls ended unevaluated at shutdown between two pushes of the span processor (its queue holds 2,048).
_SKIP_CHUNK = 512


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
        pricing: pricing_mod.PriceTable | None = None,
        conventions: str = semconv_mode.V1_41,
        evaluation_sink: Any = None,
        suite: MetricSuite | None = None,
    ) -> None:
        schema_url = semconv_mode.schema_url(conventions)
        tracer = tracer_provider.get_tracer(_SCOPE, _VERSION, schema_url=schema_url)
        budget = Budget(tracer)
        meter = meter_provider.get_meter(_SCOPE, _VERSION, schema_url=schema_url)
        logger = logger_provider.get_logger(_SCOPE, _VERSION, schema_url=schema_url) if logger_provider else None
        # Where content may go: spans (attributes, exception text, explanations) and events (log records).
        capture_spans, capture_events = capture_targets(capture_content)
        content_policy = content_policy or ContentPolicy()
        # instrument() builds the suite before it returns (what it reads of the metrics raises there), the rest on its set-up thread.
        self.suite = suite if suite is not None else MetricSuite(metrics)
        self.pricing = pricing if pricing is not None else pricing_mod.packaged()
        self.trace_documents = trace_memory.TraceDocuments()
        self.keeps_documents = self.suite.keeps_documents
        #: The GenAI conventions emitted: conventions.V1_41 or conventions.LATEST (``OTEL_SEMCONV_STABILITY_OPT_IN``).
        self.conventions = conventions
        latest = semconv_mode.is_latest(conventions)
        self.spans = Spans(tracer, budget, self.suite, capture_spans=capture_spans, content_policy=content_policy, latest=latest)
        self.emitter = Emitter(
            meter, logger, budget, capture_spans=capture_spans, capture_events=capture_events, content_policy=content_policy, latest=latest,
            evaluation_sink=evaluation_sink,
        )
        # The worker holds these two weakly: its threads never keep this runtime alive.
        self.worker = MonitorWorker(
            self.complete_monitored, self.complete_skipped, max_queue=max_queue, deadline_s=deadline_s, evaluator=evaluator,
            enter=Spans.evaluating, leave=Spans.detach,
        )

    # ---- the call path's entry points ------------------------------------------------

    def start(self, call: Call, replaces: Call | None = None, guard: str | None = None, scope: Any = None) -> Any:
        """Start the call's span; returns the context token the wrapper detaches after the call.

        ``replaces``: the attempt a guard retry replaces (``guard`` asked for it); the new span
        links to it, so attempts stay connected when the app has no parent span. ``scope``: what
        an instrumented call nested in this one does (``nesting.scope_for``), in the span's context.
        """
        return self.spans.attach(self.open(call, replaces, guard), scope)

    def open(self, call: Call, replaces: Call | None = None, guard: str | None = None, parent: Any = None) -> Any:
        """Start the call's span without making it current (``start`` does); ``parent``: the OpenTelemetry
        context to start it in (None: the current one). A run reported after it began (``call.start_time_ns``)
        is timed from then."""
        call.context = current_context()
        if replaces is not None:
            call.replaces, call.charged_to = replaces, guard  # a guard retry: its cost is the guard's
        span = self.spans.start(call, replaces, guard, parent)
        if isinstance(call.record, InferenceRecord) and self.keeps_documents:
            call.retrieved_documents = trace_memory.recall(self.trace_documents, call)
        call.start_perf = time.perf_counter()
        if call.start_time_ns is not None:
            call.start_perf -= max(0, time.time_ns() - call.start_time_ns) / 1e9
        return span

    @staticmethod
    def detach(token: Any) -> None:
        Spans.detach(token)

    def fail(self, call: Call, exc: BaseException) -> None:
        """The call raised: error status, error.type, the exception (span event and log record), metrics; the span ends now."""
        ended(call)
        self.spans.fail(call, exc)
        self.emitter.failed(call, exc)
        self.settle_retries(call)  # a failed retry ends its call's retries
        self.emitter.charge(call)
        self.spans.end(call)

    def finish(self, call: Call, *, guards: str = "act", monitors: bool = True) -> GuardVerdict:
        """The response is in the record: run guards now, hand the rest to the worker.

        ``guards``: "act" (may ask for a retry), "report" (streams: the guards that did
        not decide on the prefix only report), "report_all" (streams no prefix guard could
        judge: every guard only reports), "skip". The worker writes the response
        attributes and metric points, runs the monitors and ends the span at the call's
        end time, so the caller pays an enqueue; with the queue full or closed, all of it
        happens here.
        """
        ended(call)
        self.price(call)
        if isinstance(call.record, RetrievalRecord) and self.keeps_documents:
            trace_memory.remember(self.trace_documents, call)  # the trace's next call reads it: now, not later

        verdict = RETURN
        # A metric's own call (a judge's, a re-ask) is traced and priced, never evaluated: no metric judges a judge.
        own = cost_attribution.inside_evaluation()
        if guards != "skip" and not own:
            chosen_guards = self.suite.guards(call.record.operation)
            if guards == "report":
                chosen_guards = tuple(g for g in chosen_guards if not g.stream_prefix_chars)
            if chosen_guards:
                try:
                    verdict = self.run_guards(call, sampled(chosen_guards), can_retry=guards == "act")
                except (KeyboardInterrupt, SystemExit):
                    # A guard passed on the user's Ctrl-C or exit: it goes to the caller, and the span still ends.
                    try:
                        self.emitter.write(call)
                        self.emitter.charge(call)
                        self.spans.end(call)
                    except Exception as exc:
                        internal_errors.report("finish", exc)
                    raise
        if monitors and verdict.action != "retry":
            self.settle_retries(call)  # the attempt the application gets (a dropped stream attempt runs no monitors)
        configured = self.suite.monitors(call.record.operation) if monitors and not own else ()
        chosen = sampled(configured) if configured else []
        if self.worker.submit(call, chosen):
            return verdict  # the worker writes the response and ends the span
        if chosen:
            self.emitter.dropped_call(call, V.DROP_REASON_SHUTDOWN if self.worker.closed else V.DROP_REASON_QUEUE_FULL)
        self.emitter.write(call)
        self.emitter.charge(call)
        self.spans.end(call)
        return verdict

    def price(self, call: Call) -> None:
        """The call's cost (now, on the caller's thread: an LLM judge's tab is open only while its metric evaluates)."""
        try:
            call.cost = self.pricing.cost(call.record)
            tab = cost_attribution.current()
            if tab is not None:
                if call.charged_to is None:
                    call.charged_to = tab.metric
                if call.cost is not None:
                    tab.add(call.cost)
        except Exception as exc:
            internal_errors.report("finish", exc)

    @staticmethod
    def settle_retries(call: Call) -> None:
        """On the last attempt of a guarded call: the total of its retries' known costs. The chain is released,
        so that an attempt still open behind it (a held stream the application falls back to) adds no second total."""
        retry = call
        total = None
        while retry.replaces is not None:
            if retry.cost is not None:
                total = pricing_mod.add(total, retry.cost)
            retry.replaces, retry = None, retry.replaces
        if total is not None:
            call.guard_cost = total

    def finish_stream(self, call: Call, *, report_guards: bool = True, monitors: bool = True, prefix_judged: bool = True) -> None:
        guards = ("report" if prefix_judged else "report_all") if report_guards else "skip"
        self.finish(call, guards=guards, monitors=monitors)

    def stream_guards(self, operation: str) -> tuple[MicroMetric, ...]:
        """The guards that decide on a stream's prefix, before the caller sees a chunk."""
        if cost_attribution.inside_evaluation():
            return ()  # a metric's own streamed call
        return tuple(g for g in sampled(self.suite.guards(operation)) if g.stream_prefix_chars)

    def run_guards(
        self, call: Call, guards: Sequence[MicroMetric], view: CallView | None = None, can_retry: bool = True
    ) -> GuardVerdict:
        """Evaluate guards now, on the caller's thread; decide retry / raise / return."""
        return run_guards(call, guards, self.emitter, view, can_retry)

    # ---- the monitor worker's callbacks ----------------------------------------------

    def complete_monitored(self, call: Call, results: list[tuple[MicroMetric, Result, float]], skipped: Sequence[MicroMetric] = ()) -> None:
        """Write the response and the monitors' results (``skipped``: the ones shutdown left no time for),
        then end the span at the call's end time."""
        emitter = self.emitter
        try:
            try:
                emitter.write(call)
            except Exception as exc:
                internal_errors.report("finish", exc)
            yield_point()
            if results:
                emitter.emit(call, results)
            if skipped:
                emitter.skipped(call, skipped)
        except Exception as exc:
            internal_errors.report("emission", exc)
        finally:
            try:
                emitter.charge(call)
            except Exception as exc:
                internal_errors.report("emission", exc)
            self.spans.end(call)

    def complete_skipped(self, call: Call, results: list[tuple[MicroMetric, Result, float]], skipped: Sequence[MicroMetric]) -> None:
        """Shutdown left no time to evaluate: the response, the results so far, ``skipped`` for the rest; the span ends."""
        self.complete_monitored(call, results, skipped)

    # ---- lifecycle -------------------------------------------------------------------

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


# The active runtime lives in ``active`` (light: read before the SDK is imported); the call path imports it from here.
current = active.current
set_current = active.set_current
