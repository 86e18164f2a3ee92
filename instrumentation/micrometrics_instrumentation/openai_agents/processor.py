"""The tracing processor the Agents SDK reports its spans to: agent and function spans become ``invoke_agent`` and
``execute_tool`` spans; a model call (generation, response) becomes one inference span, the instrumented SDK's
below it when there is one (``operations.begin_inference``), else ours, after the fact.

Parents: each Agents span's OpenTelemetry parent is the span we opened for its nearest mapped Agents ancestor
(``parent=``, explicit), or the context current when its trace started. The SDK calls ``on_span_start`` and
``on_span_end`` synchronously where it starts and ends the span (before it sets, and before it resets, its own
current span), so for the agent, function and model spans we also make ours current there, for the code inside
(the OpenAI call, the tool's body), and put the previous context back at the end only from the same task and
thread (a token is valid only in the context that made it; an abandoned stream is closed from elsewhere).

Every callback is caught (internal_errors): a failure here never reaches the agent run. The state kept per
open span is dropped when the span ends, and whatever a trace left open is ended with the trace.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import context as otel_context

from micrometrics import callcontext, internal_errors, operations
from micrometrics.spans import Spans
from micrometrics_instrumentation.openai_agents import translators as T


class SpanError(Exception):
    """An Agents span that ended with an error but no exception in flight (the SDK caught it: a tool's error
    sent back to the model, a guardrail's tripwire): ``error.type`` ``agents.SpanError``."""


SpanError.__module__ = "agents"


@dataclass(eq=False)
class _Open:
    """One open Agents span: what we opened for it, the context its children start in, our token to put back."""

    trace_id: Any
    context: Any
    run: operations.Run | None = None
    pending: operations.PendingInference | None = None
    token: Any = None
    owner: Any = None
    #: Agent spans of a trace with a ``group_id``: the ``micrometrics.context(conversation_id=...)`` block entered.
    conversation: Any = None
    agent: "_Open | None" = None
    #: Agent spans: a guardrail of this agent tripped (the run raises the SDK's tripwire exception).
    tripped: bool = False
    #: Agent spans: the first model call's input and the last answer under it (the agent's conversation and answer).
    exchange: list[list[dict[str, Any]]] = field(default_factory=lambda: [[], []])


def _conversation(trace: Any) -> str | None:
    group = getattr(trace, "group_id", None)
    return group if isinstance(group, str) and group else None


def _owner() -> tuple[int, Any]:
    try:
        task = asyncio.current_task()
    except RuntimeError:
        task = None
    return threading.get_ident(), task


class MicrometricsProcessor:
    """An Agents SDK ``TracingProcessor`` (duck-typed: registered after the application imported the SDK)."""

    def __init__(self) -> None:
        self.active = True
        self._lock = threading.Lock()
        self._spans: dict[Any, _Open] = {}
        self._traces: dict[Any, Any] = {}

    # ---- traces ----------------------------------------------------------------------------

    def on_trace_start(self, trace: Any) -> None:
        if not self.active:
            return
        try:
            with self._lock:
                self._traces[trace.trace_id] = (otel_context.get_current(), _conversation(trace))
        except Exception as exc:
            internal_errors.report("request", exc)

    def on_trace_end(self, trace: Any) -> None:
        try:
            trace_id = getattr(trace, "trace_id", None)
            with self._lock:
                self._traces.pop(trace_id, None)
                left = [(k, o) for k, o in self._spans.items() if o.trace_id == trace_id]
                for key, _ in left:
                    del self._spans[key]
            for _, state in reversed(left):  # a span the SDK never ended (a run cut short): ended with its trace
                if state.run is not None:
                    state.run.end()
        except Exception as exc:
            internal_errors.report("finish", exc)

    # ---- spans -----------------------------------------------------------------------------

    def on_span_start(self, span: Any) -> None:
        if not self.active:
            return
        try:
            self._start(span)
        except Exception as exc:
            internal_errors.report("request", exc)

    def _start(self, span: Any) -> None:
        data = span.span_data
        kind = T.kind(data)
        with self._lock:
            parent = self._spans.get(span.parent_id) if span.parent_id else None
            root, conversation = self._traces.get(span.trace_id) or (None, None)
        if parent is not None:
            parent_ctx, agent = parent.context, parent.agent
        else:
            parent_ctx, agent = (root if root is not None else otel_context.get_current()), None
        state = _Open(trace_id=span.trace_id, context=parent_ctx, agent=agent)
        # Translated first: nothing below raises (begin reports its own failures) once the conversation block is entered.
        record = T.agent_record(data) if kind == T.AGENT else T.tool_record(data) if kind == T.FUNCTION else None
        if kind == T.AGENT and conversation is not None and "conversation_id" not in callcontext.current():
            # The run's group id (a chat thread's id) is its conversation: on its spans and the model calls inside.
            state.conversation, state.owner = callcontext.context(conversation_id=conversation), _owner()
            state.conversation.__enter__()
        if record is not None:
            state.run = operations.begin(record, parent=parent_ctx)
            if kind == T.AGENT:
                state.agent = state
        elif kind in (T.GENERATION, T.RESPONSE):
            state.pending = operations.begin_inference(parent=parent_ctx)
        if state.run is not None:
            state.context = state.run.context
        if state.pending is not None:
            state.context = state.pending.context
        if state.run is not None or state.pending is not None:
            state.token, state.owner = otel_context.attach(state.context), _owner()
        with self._lock:
            self._spans[span.span_id] = state

    def on_span_end(self, span: Any) -> None:
        try:
            with self._lock:
                state = self._spans.pop(span.span_id, None)
            if state is None:
                return
            same_task = state.owner == _owner()
            if state.token is not None and same_task:
                Spans.detach(state.token)
            if state.conversation is not None and same_task:
                state.conversation.__exit__(None, None, None)
            self._end(span, state)
        except Exception as exc:
            internal_errors.report("finish", exc)

    def _end(self, span: Any, state: _Open) -> None:
        data = span.span_data
        error = _failure(span, unwrap=T.kind(data) == T.FUNCTION)
        if state.pending is not None:
            if state.agent is not None:
                asked, answer = T.model_exchange(data)
                if not state.agent.exchange[0]:
                    state.agent.exchange[0] = asked
                if T.answered(answer):
                    state.agent.exchange[1] = answer
            record = None if state.pending.taken else T.inference_record(data)
            if record is not None:
                state.pending.fail(record, error) if error is not None else state.pending.end(record)
            return
        run = state.run
        if run is None:
            if T.kind(data) == T.GUARDRAIL and getattr(data, "triggered", False) is True and state.agent is not None:
                state.agent.tripped = True
            return
        if T.kind(data) == T.FUNCTION:
            T.fill_tool(run.record, data)
        elif T.kind(data) == T.AGENT:
            run.record.input_messages, run.record.output_messages = state.exchange
            if error is None and state.tripped:
                error = _tripwire()
        run.fail(error) if error is not None else run.end()

    # ---- the rest of the TracingProcessor interface ------------------------------------------------

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass


def _tripwire() -> BaseException:
    """The exception a run whose guardrail tripped raises: the SDK's, in flight as it ends the agent span."""
    in_flight = sys.exc_info()[1]
    if in_flight is not None and type(in_flight).__name__.endswith("TripwireTriggered"):
        return in_flight
    return SpanError("a guardrail's tripwire was triggered")


def _failure(span: Any, unwrap: bool = False) -> BaseException | None:
    """The exception an Agents span ended with: the one in flight when the SDK marked it failed, else a SpanError.
    ``unwrap``: a tool's own exception, not the SDK's error that carries it (``raise UserError(...) from exc``)."""
    error = getattr(span, "error", None)
    if not error:
        return None
    in_flight = sys.exc_info()[1]
    if in_flight is not None:
        cause = in_flight.__cause__
        if unwrap and cause is not None and type(in_flight).__module__.split(".")[0] == "agents":
            return cause
        return in_flight
    return SpanError("the Agents SDK reported an error on this span")
