"""Stream proxies: the caller keeps the whole stream API; we watch the chunks go by.

A proxy ends its call's span exactly once: on exhaustion, ``close()``, context exit,
an exception, or garbage collection of an abandoned stream. With a streaming guard
(a guard metric with ``stream_prefix_chars``) the proxy holds back the first chunks,
decides on that prefix and, on failure, restarts the stream before anything reached
the caller, who sees one uninterrupted stream.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol

import wrapt

from micrometrics import safety
from micrometrics.core import GuardError, Runtime
from micrometrics.metric import CallView
from micrometrics.records import CallRecord


class Accumulator(Protocol):
    """Translator-supplied: folds chunks into the record."""

    text: str  # text of the first choice received so far

    def add(self, chunk: Any) -> None: ...

    def apply(self) -> None: ...


class Unwatched:
    """The accumulator of a stream whose chunks we cannot read: records nothing."""

    text = ""

    def add(self, chunk: Any) -> None:
        pass

    def apply(self) -> None:
        pass


class _PrefixView(CallView):
    """The call as seen by a streaming guard: the output is the prefix received so far."""

    __slots__ = ("_prefix",)

    def __init__(self, record: CallRecord, prefix: str) -> None:
        super().__init__(record)
        self._prefix = prefix

    @property
    def output_text(self) -> str:
        return self._prefix


class _Attempt:
    """State shared by the sync and async proxies for one attempt of a streamed call."""

    __slots__ = ("runtime", "record", "acc", "done", "first", "stream", "broken")

    def __init__(self, runtime: Runtime, record: CallRecord, acc: Accumulator, stream: Any) -> None:
        self.runtime = runtime
        self.record = record
        self.acc = acc
        self.stream = stream
        self.done = False
        self.first = True
        self.broken = False

    def chunk(self, chunk: Any) -> None:
        if self.broken:
            return
        try:
            if self.first:
                self.first = False
                self.record.time_to_first_chunk = time.perf_counter() - self.record.start_perf
            self.acc.add(chunk)
        except Exception as exc:
            # One report per stream, not per chunk: the accumulator stops being fed.
            self.broken = True
            safety.report("stream_chunk", exc)

    def end(self, *, report_guards: bool = True, monitors: bool = True) -> None:
        """End the attempt's span once, recording what was received."""
        if self.done:
            return
        self.done = True
        try:
            self.acc.apply()
        except Exception as exc:
            safety.report("response", exc)
        try:
            self.runtime.finish_stream(self.record, report_guards=report_guards, monitors=monitors)
        except Exception as exc:
            safety.report("finish", exc)
            _end_quietly(self.record)

    def error(self, exc: BaseException) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.acc.apply()
            self.runtime.fail(self.record, exc)
        except Exception as inner:
            safety.report("finish", inner)
            _end_quietly(self.record)


def _drop(attempt: _Attempt) -> None:
    """Close an attempt a guard rejected: its span ends without monitors."""
    try:
        attempt.stream.close()
    except Exception:
        pass
    attempt.end(report_guards=False, monitors=False)


async def _adrop(attempt: _Attempt) -> None:
    try:
        await _aclose(attempt.stream)
    except Exception:
        pass
    attempt.end(report_guards=False, monitors=False)


def _end_quietly(record: CallRecord) -> None:
    try:
        record.span.end()
    except Exception:
        pass


class _Decision:
    """Result of a streaming guard on a prefix."""

    __slots__ = ("action", "instruction", "results")

    def __init__(self, action: str, instruction: str | None = None, results: Any = ()) -> None:
        self.action = action
        self.instruction = instruction
        self.results = results


def decide_prefix(attempt: _Attempt, guards: tuple) -> _Decision:
    runtime, record = attempt.runtime, attempt.record
    try:
        verdict = runtime.run_guards(record, guards, view=_PrefixView(record, attempt.acc.text))
    except Exception as exc:
        safety.report("evaluation", exc)
        return _Decision("return")
    return _Decision(verdict.action, verdict.instruction, verdict.results)


def _guard_error(decision: _Decision, response: Any) -> GuardError:
    names = ", ".join(n for n, r in decision.results if r.passed is False)
    return GuardError(f"micrometrics guard failed after the last retry: {names}", response=response, results=dict(decision.results))


def prefix_needed(guards: tuple) -> int:
    return max(g.stream_prefix_chars or 0 for g in guards) if guards else 0


class StreamProxy(wrapt.ObjectProxy):
    """Proxy of a synchronous stream (iterator, context manager, ``close()``)."""

    def __init__(
        self,
        stream: Any,
        attempt: _Attempt,
        guards: tuple = (),
        restart: Callable[[str | None], tuple[Any, _Attempt] | None] | None = None,
    ) -> None:
        super().__init__(stream)
        self._self_attempt = attempt
        self._self_guards = guards
        self._self_restart = restart
        self._self_held: list = []
        self._self_undecided = bool(guards)
        self._self_ended_early = False

    def __iter__(self) -> "StreamProxy":
        return self

    def __next__(self) -> Any:
        if self._self_undecided:
            self._self_fill()
        held = self._self_held
        if held:
            return held.pop(0)
        if self._self_ended_early:
            raise StopIteration
        attempt = self._self_attempt
        try:
            chunk = attempt.stream.__next__()
        except StopIteration:
            attempt.end()
            raise
        except BaseException as exc:
            attempt.error(exc)
            raise
        attempt.chunk(chunk)
        return chunk

    def _self_fill(self) -> None:
        """Hold chunks until the guards can decide on the prefix, retrying on failure."""
        need = prefix_needed(self._self_guards)
        while True:
            attempt = self._self_attempt
            held: list = []
            ended = False
            try:
                while len(attempt.acc.text) < need:
                    chunk = attempt.stream.__next__()
                    attempt.chunk(chunk)
                    held.append(chunk)
            except StopIteration:
                ended = True
            except BaseException as exc:
                attempt.error(exc)
                raise
            decision = decide_prefix(attempt, self._self_guards)
            if decision.action == "retry" and self._self_restart is not None:
                try:
                    restarted = self._self_restart(decision.instruction)
                except BaseException:
                    _drop(attempt)
                    raise
                if restarted is not None:
                    _drop(attempt)
                    stream, self._self_attempt = restarted
                    self.__wrapped__ = stream
                    continue
                # No next attempt could be made: the caller gets this one.
            if decision.action == "raise":
                attempt.end(report_guards=False)
                raise _guard_error(decision, attempt.stream)
            self._self_held = held
            self._self_undecided = False
            if ended:
                self._self_ended_early = True
                attempt.end(report_guards=False)
            return

    def __enter__(self) -> "StreamProxy":
        enter = getattr(self.__wrapped__, "__enter__", None)
        if enter is not None:
            enter()
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__exit__", None)
            return exit_(exc_type, exc, tb) if exit_ is not None else None
        finally:
            self._self_attempt.end()

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_attempt.end()

    def __del__(self) -> None:
        try:
            self._self_attempt.end()
        except Exception:
            pass


class AsyncStreamProxy(wrapt.ObjectProxy):
    """Proxy of an asynchronous stream (async iterator, async context manager, ``close()``)."""

    def __init__(
        self,
        stream: Any,
        attempt: _Attempt,
        guards: tuple = (),
        restart: Callable[[str | None], Any] | None = None,
    ) -> None:
        super().__init__(stream)
        self._self_attempt = attempt
        self._self_guards = guards
        self._self_restart = restart
        self._self_held: list = []
        self._self_undecided = bool(guards)
        self._self_ended_early = False

    def __aiter__(self) -> "AsyncStreamProxy":
        return self

    async def __anext__(self) -> Any:
        if self._self_undecided:
            await self._self_fill()
        held = self._self_held
        if held:
            return held.pop(0)
        if self._self_ended_early:
            raise StopAsyncIteration
        attempt = self._self_attempt
        try:
            chunk = await attempt.stream.__anext__()
        except StopAsyncIteration:
            attempt.end()
            raise
        except BaseException as exc:
            attempt.error(exc)
            raise
        attempt.chunk(chunk)
        return chunk

    async def _self_fill(self) -> None:
        need = prefix_needed(self._self_guards)
        while True:
            attempt = self._self_attempt
            held: list = []
            ended = False
            try:
                while len(attempt.acc.text) < need:
                    chunk = await attempt.stream.__anext__()
                    attempt.chunk(chunk)
                    held.append(chunk)
            except StopAsyncIteration:
                ended = True
            except BaseException as exc:
                attempt.error(exc)
                raise
            decision = decide_prefix(attempt, self._self_guards)
            if decision.action == "retry" and self._self_restart is not None:
                try:
                    restarted = await self._self_restart(decision.instruction)
                except BaseException:
                    await _adrop(attempt)
                    raise
                if restarted is not None:
                    await _adrop(attempt)
                    stream, self._self_attempt = restarted
                    self.__wrapped__ = stream
                    continue
                # No next attempt could be made: the caller gets this one.
            if decision.action == "raise":
                attempt.end(report_guards=False)
                raise _guard_error(decision, attempt.stream)
            self._self_held = held
            self._self_undecided = False
            if ended:
                self._self_ended_early = True
                attempt.end(report_guards=False)
            return

    async def __aenter__(self) -> "AsyncStreamProxy":
        enter = getattr(self.__wrapped__, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> Any:
        try:
            exit_ = getattr(self.__wrapped__, "__aexit__", None)
            return await exit_(exc_type, exc, tb) if exit_ is not None else None
        finally:
            self._self_attempt.end()

    async def close(self) -> None:
        try:
            await _aclose(self.__wrapped__)
        finally:
            self._self_attempt.end()

    async def aclose(self) -> None:
        await self.close()

    def __del__(self) -> None:
        try:
            self._self_attempt.end()
        except Exception:
            pass


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "close", None) or getattr(stream, "aclose", None)
    if close is None:
        return
    result = close()
    if hasattr(result, "__await__"):
        await result
