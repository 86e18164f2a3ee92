"""The one call path every instrumented method goes through, sync and async.

request -> record -> span -> original call -> response (or stream proxy) -> finish,
with guard retries. Anything of ours that fails is reported and the call goes on as
if we were not there; the user's own exceptions propagate unchanged.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from micrometrics import internal_errors
from micrometrics.arguments import one_shot_inside, readable
from micrometrics.guards import RETURN, GuardError, GuardVerdict, mark_failed_retry
from micrometrics.runtime import Runtime, current as current_runtime
from micrometrics.records import CallRecord
from micrometrics.streams import Accumulator, AsyncStreamProxy, StreamProxy, Unwatched, _Attempt, _Decision


class Translator(Protocol):
    """What an instrumentation supplies for one method: translate only."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> CallRecord: ...

    def response(self, record: CallRecord, response: Any) -> None: ...

    def accumulator(self, record: CallRecord, stream: Any) -> Accumulator | None: ...

    def retry(self, args: tuple, kwargs: dict, instruction: str | None) -> tuple[tuple, dict]: ...


def _begin(
    runtime: Runtime, translator: Translator, instance: Any, args: tuple, kwargs: dict, attempt: int,
    replaces: CallRecord | None = None, guard: str | None = None,
) -> tuple[CallRecord, Any] | None:
    try:
        record = translator.request(instance, *(readable(args, kwargs) or (args, kwargs)))
        record.attempt = attempt
        return record, runtime.start(record, replaces, guard)
    except Exception as exc:
        internal_errors.report("request", exc)
        return None


def _failed(runtime: Runtime, record: CallRecord, token: Any, exc: BaseException) -> None:
    runtime.detach(token)
    try:
        runtime.fail(record, exc)
    except Exception as inner:
        internal_errors.report("finish", inner)
        _end(record)


def _end(record: CallRecord) -> None:
    try:
        record.span.end()
    except Exception:
        pass


def _complete(runtime: Runtime, translator: Translator, record: CallRecord, response: Any) -> GuardVerdict:
    try:
        translator.response(record, response)
    except Exception as exc:
        internal_errors.report("response", exc)
    try:
        return runtime.finish(record)
    except Exception as exc:
        internal_errors.report("finish", exc)
        _end(record)
        return RETURN


def _retry_args(translator: Translator, args: tuple, kwargs: dict, instruction: str | None) -> tuple[tuple, dict] | None:
    if one_shot_inside(args, kwargs):
        return None  # the first attempt consumed a one-shot iterator (at any depth): there is nothing to replay
    try:
        return translator.retry(args, kwargs, instruction)
    except Exception as exc:
        internal_errors.report("retry", exc)
        return None


def _raise_guard(verdict: GuardVerdict, response: Any) -> GuardError:
    failed = ", ".join(name for name, r in verdict.results if r.passed is False)
    return GuardError(f"micrometrics guard failed after the last retry: {failed}", response=response, results=dict(verdict.results))


def _fallback(replaced: _Replaced, exc: Exception) -> Any:
    """What the application gets when a guard retry failed itself: the response it replaced
    (``on_fail="return"``), or a GuardError carrying that response, raised from ``exc``."""
    if replaced.verdict.on_fail == "raise":
        raise _raise_guard(replaced.verdict, replaced.response) from exc
    return replaced.response


class _Replaced:
    """The attempt a guard retry replaces: its record, verdict and response."""

    __slots__ = ("record", "verdict", "response")

    def __init__(self, record: CallRecord, verdict: GuardVerdict, response: Any) -> None:
        self.record, self.verdict, self.response = record, verdict, response


def _after_guards(translator: Translator, args: tuple, kwargs: dict, verdict: GuardVerdict, response: Any) -> tuple[tuple, dict] | None:
    """The next attempt's arguments when a guard asks for a retry; None returns the response; may raise GuardError."""
    if verdict.action == "retry":
        return _retry_args(translator, args, kwargs, verdict.instruction)
    if verdict.action == "raise":
        raise _raise_guard(verdict, response)
    return None


def run_sync(translator: Translator, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    runtime = current_runtime()
    if runtime is None:
        return wrapped(*args, **kwargs)
    attempt = 1
    replaced: _Replaced | None = None  # the attempt a guard retry replaces
    while True:
        if replaced is None:
            begun = _begin(runtime, translator, instance, args, kwargs, attempt)
        else:
            begun = _begin(runtime, translator, instance, args, kwargs, attempt, replaced.record, replaced.verdict.guard)
        if begun is None:
            return wrapped(*args, **kwargs)
        record, token = begun
        try:
            response = wrapped(*args, **kwargs)
        except BaseException as exc:
            if replaced is None or not isinstance(exc, Exception):
                _failed(runtime, record, token, exc)
                raise
            # A guard retry failed itself (429, timeout): without us the app had the replaced response.
            mark_failed_retry(record, replaced.verdict.on_fail)
            _failed(runtime, record, token, exc)
            return _fallback(replaced, exc)
        runtime.detach(token)
        if record.stream:
            return _proxy_sync(runtime, translator, wrapped, instance, args, kwargs, record, response)
        verdict = _complete(runtime, translator, record, response)
        retried = _after_guards(translator, args, kwargs, verdict, response)
        if retried is None:
            return response
        args, kwargs = retried
        replaced = _Replaced(record, verdict, response)
        attempt += 1


async def run_async(translator: Translator, wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    runtime = current_runtime()
    if runtime is None:
        return await wrapped(*args, **kwargs)
    attempt = 1
    replaced: _Replaced | None = None  # the attempt a guard retry replaces
    while True:
        if replaced is None:
            begun = _begin(runtime, translator, instance, args, kwargs, attempt)
        else:
            begun = _begin(runtime, translator, instance, args, kwargs, attempt, replaced.record, replaced.verdict.guard)
        if begun is None:
            return await wrapped(*args, **kwargs)
        record, token = begun
        try:
            response = await wrapped(*args, **kwargs)
        except BaseException as exc:
            if replaced is None or not isinstance(exc, Exception):
                _failed(runtime, record, token, exc)
                raise
            # A guard retry failed itself (429, timeout): without us the app had the replaced response.
            mark_failed_retry(record, replaced.verdict.on_fail)
            _failed(runtime, record, token, exc)
            return _fallback(replaced, exc)
        runtime.detach(token)
        if record.stream:
            return _proxy_async(runtime, translator, wrapped, instance, args, kwargs, record, response)
        verdict = _complete(runtime, translator, record, response)
        retried = _after_guards(translator, args, kwargs, verdict, response)
        if retried is None:
            return response
        args, kwargs = retried
        replaced = _Replaced(record, verdict, response)
        attempt += 1


def _attempt_for(runtime: Runtime, translator: Translator, record: CallRecord, stream: Any) -> _Attempt | None:
    acc = translator.accumulator(record, stream)
    return _Attempt(runtime, record, acc, stream) if acc is not None else None


def _next_attempt(runtime: Runtime, translator: Translator, record: CallRecord, stream: Any) -> _Attempt:
    """The restarted stream's attempt; one we cannot watch is still ended (with what we know)."""
    try:
        attempt = _attempt_for(runtime, translator, record, stream)
    except Exception as exc:
        internal_errors.report("stream_start", exc)
        attempt = None
    return attempt if attempt is not None else _Attempt(runtime, record, Unwatched(), stream)


class _Retries:
    """A streamed call's next attempts: the retried arguments and a started record, for either proxy."""

    __slots__ = ("runtime", "translator", "instance", "args", "kwargs", "attempt")

    def __init__(self, runtime: Any, translator: Any, instance: Any, args: tuple, kwargs: dict, attempt: int) -> None:
        self.runtime, self.translator, self.instance = runtime, translator, instance
        self.args, self.kwargs, self.attempt = args, kwargs, attempt

    def begin(self, decision: _Decision, replaces: CallRecord) -> tuple[tuple, dict, Any, Any] | None:
        """(args, kwargs, record, context token) of the next attempt; None when it cannot be made (reported)."""
        retried = _retry_args(self.translator, self.args, self.kwargs, decision.instruction)
        if retried is None:
            return None
        a, k = retried
        begun = _begin(self.runtime, self.translator, self.instance, a, k, self.attempt + 1, replaces, decision.guard)
        if begun is None:
            return None
        self.args, self.kwargs = a, k
        self.attempt += 1
        rec, token = begun
        return a, k, rec, token


def _proxy_sync(runtime, translator, wrapped, instance, args, kwargs, record, response) -> Any:
    try:
        attempt = _attempt_for(runtime, translator, record, response)
        if attempt is None:
            # Not a stream we can watch (e.g. a raw HTTP response): end with what we know.
            runtime.finish(record, guards="report")
            return response
        guards = runtime.stream_guards(record.operation)
        restart = None
        if guards:
            retries = _Retries(runtime, translator, instance, args, kwargs, record.attempt)

            def restart(decision: _Decision, replaces: _Attempt) -> tuple[Any, _Attempt] | None:
                # None: we cannot make the next attempt (reported); the caller keeps the current stream.
                # Raises what the retry call raised; the proxy decides what the caller gets.
                begun = retries.begin(decision, replaces.record)
                if begun is None:
                    return None
                a, k, rec, token = begun
                try:
                    stream = wrapped(*a, **k)
                except BaseException as exc:
                    if isinstance(exc, Exception):
                        mark_failed_retry(rec, decision.on_fail)
                    _failed(runtime, rec, token, exc)
                    raise
                runtime.detach(token)
                return stream, _next_attempt(runtime, translator, rec, stream)

        return StreamProxy(response, attempt, guards, restart)
    except Exception as exc:
        internal_errors.report("stream_start", exc)
        _end(record)
        return response


def _proxy_async(runtime, translator, wrapped, instance, args, kwargs, record, response) -> Any:
    try:
        attempt = _attempt_for(runtime, translator, record, response)
        if attempt is None:
            runtime.finish(record, guards="report")
            return response
        guards = runtime.stream_guards(record.operation)
        restart = None
        if guards:
            retries = _Retries(runtime, translator, instance, args, kwargs, record.attempt)

            async def restart(decision: _Decision, replaces: _Attempt) -> tuple[Any, _Attempt] | None:
                # None: we cannot make the next attempt (reported); the caller keeps the current stream.
                # Raises what the retry call raised; the proxy decides what the caller gets.
                begun = retries.begin(decision, replaces.record)
                if begun is None:
                    return None
                a, k, rec, token = begun
                try:
                    stream = await wrapped(*a, **k)
                except BaseException as exc:
                    if isinstance(exc, Exception):
                        mark_failed_retry(rec, decision.on_fail)
                    _failed(runtime, rec, token, exc)
                    raise
                runtime.detach(token)
                return stream, _next_attempt(runtime, translator, rec, stream)

        return AsyncStreamProxy(response, attempt, guards, restart)
    except Exception as exc:
        internal_errors.report("stream_start", exc)
        _end(record)
        return response


def sync_wrapper(translator: Translator) -> Callable:
    """A wrapt wrapper for a synchronous method."""

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return run_sync(translator, wrapped, instance, args, kwargs)

    return wrapper


def async_wrapper(translator: Translator) -> Callable:
    """A wrapt wrapper for a coroutine method."""

    async def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return await run_async(translator, wrapped, instance, args, kwargs)

    return wrapper
