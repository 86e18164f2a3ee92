"""Agent, workflow and tool runs: the spans frameworks report through callbacks, and the decorators
``@micrometrics.workflow``, ``@micrometrics.agent`` and ``@micrometrics.tool`` for code no framework covers.

A framework integration (LangChain callbacks, LlamaIndex events, the Agents SDK's tracing processor, MCP)
calls ``begin(record, parent=...)`` when a run starts, fills the record, and ``Run.end()`` or
``Run.fail(exc)`` when it ends. A model call a framework reports goes through ``begin_inference``: the
call's one inference span is the instrumented SDK call below it when there is one (its guards can retry);
the framework's span is opened, after the fact, only when no SDK span took the call (nesting.Pending).

Runs are spans like any call's: content only with capture, metrics that ``applies_to`` their operation
(``invoke_agent``, ``invoke_workflow``, ``execute_tool``) evaluated on them, no ``gen_ai.client.*``
metric points (the model calls inside carry them). Guards on a run report (a decorated function raises
``GuardError`` for ``on_fail="raise"``); the model call under it is what a guard retries.
"""

from __future__ import annotations

import functools
import inspect
import time
from typing import Any, Callable

from opentelemetry import context as otel_context
from opentelemetry import trace

from micrometrics import internal_errors, nesting
from micrometrics.calls import run_async, run_sync
from micrometrics.records import AgentRecord, Call, CallRecord, InferenceRecord, ToolRecord, text_part
from micrometrics.runtime import current as current_runtime
from micrometrics.spans import Spans
from micrometrics.streams import end_quietly
from micrometrics_semconv import values as V

__all__ = ["Run", "begin", "begin_inference", "workflow", "agent", "tool", "messages_of"]


class Run:
    """One run's span, opened by ``begin``: the context its children start in, and its end (once)."""

    __slots__ = ("call", "context", "_runtime", "_ended")

    def __init__(self, runtime: Any, call: Call, context: Any) -> None:
        self.call, self.context, self._runtime, self._ended = call, context, runtime, False

    @property
    def record(self) -> CallRecord:
        return self.call.record

    @property
    def span(self) -> Any:
        return self.call.span

    def attach(self) -> Any:
        """Make the run's span current (children nest under it); give the token back to ``detach``."""
        return otel_context.attach(self.context)

    @staticmethod
    def detach(token: Any) -> None:
        Spans.detach(token)

    def end(self, response: Any = None) -> None:
        """The run returned (its record filled): metrics that apply to it run, the span ends. Idempotent."""
        if self._ended:
            return
        self._ended = True
        try:
            self._runtime.finish(self.call, guards="report_all")
        except Exception as exc:
            internal_errors.report("finish", exc)
            end_quietly(self.call)

    def fail(self, exc: BaseException) -> None:
        """The run raised ``exc``: error status and ``error.type``; the span ends. Idempotent."""
        if self._ended:
            return
        self._ended = True
        try:
            self._runtime.fail(self.call, exc)
        except Exception as inner:
            internal_errors.report("finish", inner)
            end_quietly(self.call)


def begin(record: CallRecord, *, parent: Any = None, start_time_ns: int | None = None) -> Run | None:
    """Open a run's span (not current: ``Run.attach`` or ``Run.context`` for that); None when micrometrics is
    not instrumented or fails (reported). ``parent``: the OpenTelemetry context it starts in (None: current).
    ``start_time_ns``: when the run began, for a span reported after the fact."""
    runtime = current_runtime()
    if runtime is None:
        return None
    try:
        call = Call(record=record, start_time_ns=start_time_ns)
        span = runtime.open(call, parent=parent)
        ctx = trace.set_span_in_context(span, parent)
        return Run(runtime, call, nesting.enter(ctx, nesting.scope_for(record)))
    except Exception as exc:
        internal_errors.report("request", exc)
        return None


class PendingInference:
    """A model call a framework reports: the context to run it in, and, at its end, the framework's span
    only if no instrumented SDK call below opened the call's inference span."""

    __slots__ = ("context", "pending", "start_time_ns", "parent")

    def __init__(self, context: Any, pending: nesting.Pending, parent: Any) -> None:
        self.context, self.pending, self.parent = context, pending, parent
        self.start_time_ns = time.time_ns()

    @property
    def taken(self) -> bool:
        """Whether an instrumented SDK call below opened the call's inference span."""
        return self.pending.taken

    def defer(self) -> None:
        """The framework returned a stream whose SDK call runs when the app consumes it, in this context: pending here too
        (nesting.defer), so that it is still one span. Call it in the context the framework's call returned in."""
        nesting.defer(self.pending)

    def end(self, record: CallRecord) -> None:
        """The framework's model call returned: its span, after the fact, unless an SDK span took the call."""
        if self.pending.taken:
            return
        self.pending.taken = True  # ended: inert for later SDK calls in a context it was deferred to
        run = begin(record, parent=self.parent, start_time_ns=self.start_time_ns)
        if run is not None:
            run.end()

    def fail(self, record: CallRecord, exc: BaseException) -> None:
        if self.pending.taken:
            return
        self.pending.taken = True
        run = begin(record, parent=self.parent, start_time_ns=self.start_time_ns)
        if run is not None:
            run.fail(exc)


def begin_inference(family: type = InferenceRecord, *, parent: Any = None) -> PendingInference | None:
    """A framework's model call is starting: the context the framework should run it in (``.context``) marks it
    pending, so that an instrumented SDK call below takes it (one inference span, with its guards); ``end``
    then opens the framework's span only if none did. None when micrometrics is not instrumented."""
    if current_runtime() is None:
        return None
    try:
        base = parent if parent is not None else otel_context.get_current()
        ctx, pending = nesting.pend(base, family)
        return PendingInference(ctx, pending, base)
    except Exception as exc:
        internal_errors.report("request", exc)
        return None


# ---- decorators -------------------------------------------------------------------------------


def messages_of(value: Any, role: str = "user") -> list[dict[str, Any]]:
    """A run's input or output as the conventions' messages: text, a list of ``{"role", "content"}`` dicts
    (OpenAI style) or of the conventions' messages; anything else is no message (metrics see none)."""
    if isinstance(value, str):
        return [{"role": role, "parts": [text_part(value)]}]
    if not isinstance(value, (list, tuple)):
        return []
    out = []
    for item in value:
        if not isinstance(item, dict):
            continue
        if isinstance(item.get("parts"), list):
            out.append({"role": item.get("role") or role, "parts": item["parts"]})
        elif isinstance(item.get("content"), str):
            out.append({"role": item.get("role") or role, "parts": [text_part(item["content"])]})
    return out


def _first_argument(fn: Callable) -> Callable[[tuple, dict], Any]:
    """The run's input: the first parameter that is not self/cls, positional or by keyword."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p for p in params if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    index = 1 if positional and positional[0].name in ("self", "cls") else 0
    first = positional[index] if len(positional) > index else None

    def read(args: tuple, kwargs: dict) -> Any:
        if first is None:
            return None
        if first.name in kwargs:
            return kwargs[first.name]
        return args[index] if len(args) > index else None

    return read


def _tool_arguments(fn: Callable) -> Callable[[tuple, dict], Any]:
    """A tool's arguments by parameter name (what a model sends), ``self``/``cls`` left out."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return lambda args, kwargs: dict(kwargs) or (list(args) if args else None)

    def read(args: tuple, kwargs: dict) -> Any:
        try:
            bound = sig.bind_partial(*args, **kwargs)
        except TypeError:
            return dict(kwargs) or None
        return {k: v for k, v in bound.arguments.items() if k not in ("self", "cls")} or None

    return read


class _RunTranslator:
    """A decorated function's call -> a run record; its return value -> the record's result."""

    nested = None

    def __init__(self, make: Callable[[tuple, dict], CallRecord], fill: Callable[[CallRecord, Any], None]) -> None:
        self.make, self.fill = make, fill

    def request(self, instance: Any, args: tuple, kwargs: dict) -> CallRecord:
        return self.make(args, kwargs)

    def response(self, record: CallRecord, response: Any) -> None:
        self.fill(record, response)

    def accumulator(self, record: CallRecord, stream: Any) -> None:
        return None

    def retry(self, args: tuple, kwargs: dict, instruction: str | None) -> None:
        return None  # a run is not replayed (its tools have side effects): the model call inside is what a guard retries


def _begin_run(translator: _RunTranslator, args: tuple, kwargs: dict) -> Run | None:
    try:
        return begin(translator.request(None, args, kwargs))
    except Exception as exc:
        internal_errors.report("request", exc)
        return None


def _generator(translator: _RunTranslator, f: Callable) -> Callable:
    """A generator function's run spans its iteration: each step runs in the run's context."""

    @functools.wraps(f)
    def run_generator(*args: Any, **kwargs: Any) -> Any:
        run = _begin_run(translator, args, kwargs)
        gen = f(*args, **kwargs)
        if run is None:
            return (yield from gen)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            token = run.attach()
            try:
                item = gen.throw(thrown) if thrown is not None else gen.send(sent)
            except StopIteration as stop:
                run.end()
                return stop.value
            except BaseException as exc:
                run.fail(exc)
                raise
            finally:
                run.detach(token)
            try:
                sent, thrown = (yield item), None
            except GeneratorExit:
                gen.close()
                run.end()
                raise
            except BaseException as exc:  # thrown into us: passed on to the function
                sent, thrown = None, exc

    return run_generator


def _async_generator(translator: _RunTranslator, f: Callable) -> Callable:
    @functools.wraps(f)
    async def run_async_generator(*args: Any, **kwargs: Any) -> Any:
        run = _begin_run(translator, args, kwargs)
        gen = f(*args, **kwargs)
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            token = run.attach() if run is not None else None
            try:
                item = await (gen.athrow(thrown) if thrown is not None else gen.asend(sent))
            except StopAsyncIteration:
                if run is not None:
                    run.end()
                return
            except BaseException as exc:
                if run is not None:
                    run.fail(exc)
                raise
            finally:
                if token is not None:
                    run.detach(token)
            try:
                sent, thrown = (yield item), None
            except GeneratorExit:
                await gen.aclose()
                if run is not None:
                    run.end()
                raise
            except BaseException as exc:
                sent, thrown = None, exc

    return run_async_generator


def _decorate(kind: str, translator_for: Callable[[Callable], _RunTranslator], fn: Callable | None) -> Any:
    def decorate(f: Callable) -> Callable:
        if not callable(f):
            raise TypeError(f"@micrometrics.{kind} decorates a function, got {f!r}")
        translator = translator_for(f)
        if inspect.isasyncgenfunction(f):
            return _async_generator(translator, f)
        if inspect.isgeneratorfunction(f):
            return _generator(translator, f)
        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def run_coroutine(*args: Any, **kwargs: Any) -> Any:
                return await run_async(translator, f, None, args, kwargs)

            return run_coroutine

        @functools.wraps(f)
        def run_function(*args: Any, **kwargs: Any) -> Any:
            return run_sync(translator, f, None, args, kwargs)

        return run_function

    return decorate(fn) if fn is not None else decorate


def _check_name(kind: str, name: Any) -> None:
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"@micrometrics.{kind}(name={name!r}): name must be a non-empty str, such as 'support_agent'")


def workflow(fn: Callable | None = None, *, name: str | None = None) -> Any:
    """Make every call of a function an ``invoke_workflow {name}`` span (INTERNAL) that the agent, model, tool
    and retrieval spans made inside it are children of. Sync, ``async``, generators and async generators."""
    _check_name("workflow", name)

    def translator_for(f: Callable) -> _RunTranslator:
        wf_name = name or f.__name__
        read_input = _first_argument(f)

        def make(args: tuple, kwargs: dict) -> CallRecord:
            return AgentRecord(
                operation=V.OPERATION_INVOKE_WORKFLOW, provider=V.PROVIDER_CUSTOM, workflow_name=wf_name,
                input_messages=messages_of(read_input(args, kwargs)),
            )

        return _RunTranslator(make, _fill_answer)

    return _decorate("workflow", translator_for, fn)


def agent(
    fn: Callable | None = None, *, name: str | None = None, description: str | None = None, agent_id: str | None = None,
    version: str | None = None, provider: str | None = None, model: str | None = None,
) -> Any:
    """Make every call of a function an ``invoke_agent {name}`` span (INTERNAL). Its first argument, text or a
    list of ``{"role", "content"}`` messages, is the agent's input; a text (or message list) it returns is its
    answer: a metric with ``applies_to=["invoke_agent"]`` judges the answer against the whole conversation."""
    _check_name("agent", name)
    for key, value in (("description", description), ("agent_id", agent_id), ("version", version), ("provider", provider), ("model", model)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"@micrometrics.agent({key}={value!r}): {key} must be a str")

    def translator_for(f: Callable) -> _RunTranslator:
        agent_name = name or f.__name__
        read_input = _first_argument(f)

        def make(args: tuple, kwargs: dict) -> CallRecord:
            return AgentRecord(
                operation=V.OPERATION_INVOKE_AGENT, provider=provider or V.PROVIDER_CUSTOM, model=model,
                agent_name=agent_name, agent_description=description, agent_id=agent_id, agent_version=version,
                input_messages=messages_of(read_input(args, kwargs)),
            )

        return _RunTranslator(make, _fill_answer)

    return _decorate("agent", translator_for, fn)


def _fill_answer(record: CallRecord, response: Any) -> None:
    if isinstance(record, AgentRecord):
        # The conventions' output message: the agent's answer, ended as a model's answer ends.
        record.output_messages = [dict(m, role="assistant", finish_reason="stop") for m in messages_of(response, "assistant")[-1:]]


def tool(
    fn: Callable | None = None, *, name: str | None = None, description: str | None = None, tool_type: str = V.TOOL_TYPE_FUNCTION,
) -> Any:
    """Make every call of a function an ``execute_tool {name}`` span (INTERNAL): ``gen_ai.tool.name``,
    ``gen_ai.tool.type``, ``gen_ai.tool.description`` (default: the docstring's first line); its arguments and
    result are content, exported only with capture on."""
    _check_name("tool", name)
    if description is not None and not isinstance(description, str):
        raise TypeError(f"@micrometrics.tool(description={description!r}): description must be a str")
    if tool_type not in (V.TOOL_TYPE_FUNCTION, V.TOOL_TYPE_EXTENSION, V.TOOL_TYPE_DATASTORE):
        raise ValueError(f"@micrometrics.tool(tool_type={tool_type!r}): allowed: 'function', 'extension', 'datastore'")

    def translator_for(f: Callable) -> _RunTranslator:
        tool_name = name or f.__name__
        doc = description if description is not None else ((inspect.getdoc(f) or "").strip().splitlines() or [None])[0]
        read_arguments = _tool_arguments(f)

        def make(args: tuple, kwargs: dict) -> CallRecord:
            return ToolRecord(
                operation=V.OPERATION_EXECUTE_TOOL, tool_name=tool_name, tool_type=tool_type, tool_description=doc,
                arguments=read_arguments(args, kwargs),
            )

        def fill(record: CallRecord, response: Any) -> None:
            if isinstance(record, ToolRecord):
                record.result = response

        return _RunTranslator(make, fill)

    return _decorate("tool", translator_for, fn)
