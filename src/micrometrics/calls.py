"""The one call path every instrumented method goes through, sync and async.

request -> record -> span -> original call -> response (or stream proxy) -> finish,
with guard retries. The path is written once, as steps that yield the original call to a
driver (``streams.drive`` calls it, ``streams.adrive`` awaits it). Anything of ours that
fails is reported and the call goes on as if we were not there; the user's own exceptions
propagate unchanged.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from opentelemetry import context as otel_context

from micrometrics import internal_errors, nesting
from micrometrics.arguments import one_shot_inside, readable
from micrometrics.guards import RETURN, GuardVerdict, mark_failed_retry
from micrometrics.runtime import Runtime, current as current_runtime
from micrometrics.records import Call, CallRecord
from micrometrics.streamed_responses import follow, reparsed
from micrometrics.streams import (
    CALL,
    Accumulator,
    AsyncStreamProxy,
    Steps,
    StreamProxy,
    Unwatched,
    _Attempt,
    adrive,
    drive,
    end_quietly,
    guard_error,
)


class Translator(Protocol):
    """What an instrumentation supplies for one method: translate only."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> CallRecord: ...

    def response(self, record: CallRecord, response: Any) -> None: ...

    def accumulator(self, record: CallRecord, stream: Any) -> Accumulator | None: ...

    def retry(self, args: tuple, kwargs: dict, instruction: str | None) -> tuple[tuple, dict]: ...

    #: Optional: what a nested instrumented call of the same family does (nesting.SUPPRESS, the default, or CHILD).
    nested: str | None


def _begin(
    runtime: Runtime, translator: Translator, instance: Any, args: tuple, kwargs: dict, attempt: int,
    replaces: Call | None = None, guard: str | None = None,
) -> tuple[Call, Any] | None:
    try:
        record = translator.request(instance, *(readable(args, kwargs) or (args, kwargs)))
        if nesting.suppressed(record):
            return None  # an instrumented call around this one already has the call's span (nesting.py)
        nesting.take(record)  # a framework's model call above this one opens no span of its own
        scope = nesting.scope_for(record, getattr(translator, "nested", None))
        call = Call(record=record, attempt=attempt)
        return call, runtime.start(call, replaces, guard, scope)
    except Exception as exc:
        internal_errors.report("request", exc)
        return BROKEN


#: ``_begin`` failed (reported): the call runs as if we were not there, and so do the instrumented calls it makes.
BROKEN: Any = object()


def _untraced(wrapped: Callable, args: tuple, kwargs: dict) -> Steps:
    """The original call, in a context where nested instrumented calls open no span (nesting.BROKEN)."""
    token = otel_context.attach(nesting.broken(otel_context.get_current()))
    try:
        return (yield (CALL, wrapped, args, kwargs))
    finally:
        Runtime.detach(token)


def _failed(runtime: Runtime, call: Call, token: Any, exc: BaseException) -> None:
    runtime.detach(token)
    try:
        runtime.fail(call, exc)
    except Exception as inner:
        internal_errors.report("finish", inner)
        end_quietly(call)


def _complete(runtime: Runtime, translator: Translator, call: Call, response: Any) -> GuardVerdict:
    try:
        translator.response(call.record, response)
    except Exception as exc:
        internal_errors.report("response", exc)
    try:
        return runtime.finish(call)
    except Exception as exc:
        internal_errors.report("finish", exc)
        end_quietly(call)
        return RETURN


def _retry_args(translator: Translator, args: tuple, kwargs: dict, instruction: str | None) -> tuple[tuple, dict] | None:
    if one_shot_inside(args, kwargs):
        return None  # the first attempt consumed a one-shot iterator (at any depth): there is nothing to replay
    try:
        return translator.retry(args, kwargs, instruction)
    except Exception as exc:
        internal_errors.report("retry", exc)
        return None


def _fallback(replaced: _Replaced, exc: Exception) -> Any:
    """What the application gets when a guard retry failed itself: the response it replaced
    (``on_fail="return"``), or a GuardError carrying that response, raised from ``exc``."""
    if replaced.verdict.on_fail == "raise":
        raise guard_error(replaced.verdict, replaced.response) from exc
    return replaced.response


class _Replaced:
    """The attempt a guard retry replaces: its call, verdict and response."""

    __slots__ = ("call", "verdict", "response")

    def __init__(self, call: Call, verdict: GuardVerdict, response: Any) -> None:
        self.call, self.verdict, self.response = call, verdict, response


def _after_guards(translator: Translator, args: tuple, kwargs: dict, verdict: GuardVerdict, response: Any) -> tuple[tuple, dict] | None:
    """The next attempt's arguments when a guard asks for a retry; None returns the response; may raise GuardError."""
    if verdict.action == "retry":
        return _retry_args(translator, args, kwargs, verdict.instruction)
    if verdict.action == "raise":
        raise guard_error(verdict, response)
    return None


def _call(
    runtime: Runtime, translator: Translator, wrapped: Callable, instance: Any, args: tuple, kwargs: dict, proxy: type
) -> Steps:
    """One instrumented call, guard retries included; yields the original call to its driver."""
    attempt = 1
    replaced: _Replaced | None = None  # the attempt a guard retry replaces
    while True:
        if replaced is None:
            begun = _begin(runtime, translator, instance, args, kwargs, attempt)
        else:
            begun = _begin(runtime, translator, instance, args, kwargs, attempt, replaced.call, replaced.verdict.guard)
        if begun is None:
            return (yield (CALL, wrapped, args, kwargs))
        if begun is BROKEN:
            return (yield from _untraced(wrapped, args, kwargs))
        call, token = begun
        try:
            response = yield (CALL, wrapped, args, kwargs)
        except BaseException as exc:
            if replaced is None or not isinstance(exc, Exception):
                _failed(runtime, call, token, exc)
                raise
            # A guard retry failed itself (429, timeout): without us the app had the replaced response.
            mark_failed_retry(call, replaced.verdict.on_fail)
            _failed(runtime, call, token, exc)
            return _fallback(replaced, exc)
        runtime.detach(token)
        if call.record.stream:
            return _proxy(proxy, runtime, translator, wrapped, instance, args, kwargs, call, response)
        verdict = _complete(runtime, translator, call, response)
        retried = _after_guards(translator, args, kwargs, verdict, response)
        if retried is None:
            return response
        args, kwargs = retried
        replaced = _Replaced(call, verdict, response)
        attempt += 1


def run_sync(translator: Translator, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    runtime = current_runtime()
    if runtime is None:
        return wrapped(*args, **kwargs)
    return drive(_call(runtime, translator, wrapped, instance, args, kwargs, StreamProxy))


async def run_async(translator: Translator, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    runtime = current_runtime()
    if runtime is None:
        return await wrapped(*args, **kwargs)
    return await adrive(_call(runtime, translator, wrapped, instance, args, kwargs, AsyncStreamProxy))


def _attempt_for(runtime: Runtime, translator: Translator, call: Call, stream: Any) -> _Attempt | None:
    acc = translator.accumulator(call.record, stream)
    return _Attempt(runtime, call, acc, stream) if acc is not None else None


def _next_attempt(runtime: Runtime, translator: Translator, call: Call, stream: Any) -> _Attempt:
    """The restarted stream's attempt; one we cannot watch is still ended (with what we know)."""
    try:
        attempt = _attempt_for(runtime, translator, call, stream)
    except Exception as exc:
        internal_errors.report("stream_start", exc)
        attempt = None
    return attempt if attempt is not None else _Attempt(runtime, call, Unwatched(), stream)


class _Restarts:
    """A guarded streamed call's next attempts: retried arguments, a started call, the original call."""

    __slots__ = ("runtime", "translator", "wrapped", "instance", "args", "kwargs", "attempt")

    def __init__(self, runtime: Runtime, translator: Translator, wrapped: Callable, instance: Any, args: tuple, kwargs: dict, attempt: int) -> None:
        self.runtime, self.translator, self.wrapped, self.instance = runtime, translator, wrapped, instance
        self.args, self.kwargs, self.attempt = args, kwargs, attempt

    def __call__(self, verdict: GuardVerdict, replaces: _Attempt) -> Steps:
        """Steps returning the next attempt, or None when it cannot be made (reported): the caller
        keeps the current stream. Raises what the retry call raised; the proxy decides what the caller gets."""
        retried = _retry_args(self.translator, self.args, self.kwargs, verdict.instruction)
        if retried is None:
            return None
        a, k = retried
        begun = _begin(self.runtime, self.translator, self.instance, a, k, self.attempt + 1, replaces.call, verdict.guard)
        if begun is None or begun is BROKEN:
            return None
        self.args, self.kwargs = a, k
        self.attempt += 1
        call, token = begun
        try:
            stream = yield (CALL, self.wrapped, a, k)
        except BaseException as exc:
            if isinstance(exc, Exception):
                mark_failed_retry(call, verdict.on_fail)
            _failed(self.runtime, call, token, exc)
            raise
        self.runtime.detach(token)
        return _next_attempt(self.runtime, self.translator, call, stream)


def _proxy(proxy: type, runtime: Runtime, translator: Translator, wrapped: Callable, instance: Any, args: tuple, kwargs: dict, call: Call, response: Any) -> Any:
    try:
        attempt = _attempt_for(runtime, translator, call, response)
        guards = runtime.stream_guards(call.record.operation)
        if attempt is None:
            # A raw response whose stream the app parses later (with_streaming_response): followed until then.
            restart = _Restarts(runtime, translator, reparsed(wrapped, proxy), instance, args, kwargs, call.attempt) if guards else None
            watched = follow(response, proxy, runtime, call, lambda stream: _attempt_for(runtime, translator, call, stream), guards, restart)
            if watched is not None:
                return watched
            # Not a stream we can watch: end with what we know.
            runtime.finish(call, guards="report")
            return response
        restart = _Restarts(runtime, translator, wrapped, instance, args, kwargs, call.attempt) if guards else None
        return proxy(response, attempt, guards, restart)
    except Exception as exc:
        internal_errors.report("stream_start", exc)
        end_quietly(call)
        return response


def sync_wrapper(translator: Translator) -> Callable:
    """A wrapt wrapper for a synchronous method."""

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return run_sync(translator, wrapped, instance, args, kwargs)

    wrapper.opens_span = True  # type: ignore[attr-defined]  # the instrumentor keeps another GenAI layer above it
    return wrapper


def async_wrapper(translator: Translator) -> Callable:
    """A wrapt wrapper for a coroutine method."""

    async def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return await run_async(translator, wrapped, instance, args, kwargs)

    wrapper.opens_span = True  # type: ignore[attr-defined]
    return wrapper


def async_iterator_wrapper(translator: Translator) -> Callable:
    """A wrapt wrapper for a method that returns an async iterator without being awaited (an ``async def``
    with ``yield``): the call is made at once, its chunks (and a guard's restart) are awaited by the proxy."""

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        runtime = current_runtime()
        if runtime is None:
            return wrapped(*args, **kwargs)
        return drive(_call(runtime, translator, wrapped, instance, args, kwargs, AsyncStreamProxy))

    return wrapper
