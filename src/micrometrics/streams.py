"""Stream proxies: the caller keeps the whole stream API; we watch the chunks go by.

A proxy ends its call's span exactly once: on exhaustion, ``close()``, context exit,
an exception, or garbage collection of an abandoned stream. With a streaming guard
(a guard metric with ``stream_prefix_chars``) the proxy holds back the first chunks,
decides on that prefix and, on failure, restarts the stream before anything reached
the caller, who sees one uninterrupted stream.

The hold is released undecided (the chunks pass through, the guards report at the end)
when the guards cannot judge the stream: it starts with tool calls or reasoning, it
carries no text after ``TEXTLESS_CHUNKS`` chunks, or our own accumulator fails. Text
followed by a tool call is decided on at the tool call, not held to the stream's end. A
restart that fails before the caller saw any of it gives the caller the attempt it
replaced (kept open until then), or a ``GuardError`` carrying it with ``on_fail="raise"``.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol

import wrapt

from micrometrics import internal_errors
from micrometrics.guards import GuardError, mark_failed_retry
from micrometrics.runtime import Runtime
from micrometrics.metric import CallView
from micrometrics.records import CallRecord


class Accumulator(Protocol):
    """Translator-supplied: folds chunks into the record."""

    text: str  # text of the first choice received so far
    # Optional: True once output other than text began (a tool call, reasoning), which a
    # streaming guard cannot judge: it decides on the text so far, or passes a stream
    # without text through. Read with getattr.
    # non_text: bool

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


#: A stream held this many chunks without any text is not one a text guard can judge.
TEXTLESS_CHUNKS = 16


class _Attempt:
    """State shared by the sync and async proxies for one attempt of a streamed call."""

    __slots__ = ("runtime", "record", "acc", "done", "first", "stream", "broken", "late_guards")

    def __init__(self, runtime: Runtime, record: CallRecord, acc: Accumulator, stream: Any) -> None:
        self.runtime = runtime
        self.record = record
        self.acc = acc
        self.stream = stream
        self.done = False
        self.first = True
        self.broken = False
        self.late_guards = False  # released undecided: the streaming guards report on the whole stream at its end

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
            internal_errors.report("stream_chunk", exc)

    def end(self, *, report_guards: bool = True, monitors: bool = True) -> None:
        """End the attempt's span once, recording what was received."""
        if self.done:
            return
        self.done = True
        try:
            self.acc.apply()
        except Exception as exc:
            internal_errors.report("response", exc)
        try:
            self.runtime.finish_stream(self.record, report_guards=report_guards, monitors=monitors, prefix_judged=not self.late_guards)
        except Exception as exc:
            internal_errors.report("finish", exc)
            _end_quietly(self.record)

    def error(self, exc: BaseException) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.acc.apply()
            self.runtime.fail(self.record, exc)
        except Exception as inner:
            internal_errors.report("finish", inner)
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

    __slots__ = ("action", "instruction", "results", "guard", "on_fail")

    def __init__(self, action: str, instruction: str | None = None, results: Any = (), guard: str | None = None, on_fail: str = "return") -> None:
        self.action = action
        self.instruction = instruction
        self.results = results
        self.guard = guard
        self.on_fail = on_fail


def decide_prefix(attempt: _Attempt, guards: tuple) -> _Decision:
    runtime, record = attempt.runtime, attempt.record
    try:
        verdict = runtime.run_guards(record, guards, view=_PrefixView(record, attempt.acc.text))
    except Exception as exc:
        internal_errors.report("evaluation", exc)
        return _Decision("return")
    return _Decision(verdict.action, verdict.instruction, verdict.results, verdict.guard, verdict.on_fail)


def _guard_error(decision: _Decision, response: Any) -> GuardError:
    names = ", ".join(n for n, r in decision.results if r.passed is False)
    return GuardError(f"micrometrics guard failed after the last retry: {names}", response=response, results=dict(decision.results))


def prefix_needed(guards: tuple) -> int:
    return max(g.stream_prefix_chars or 0 for g in guards) if guards else 0


# What the gate does next with an attempt's stream.
_MORE, _DECIDE, _PASS, _ENDED = "more", "decide", "pass", "ended"


class _Held:
    """An attempt the gate held back: its chunks so far, whether its stream ended, the guards' decision."""

    __slots__ = ("attempt", "chunks", "ended", "decision")

    def __init__(self, attempt: _Attempt, chunks: list, ended: bool, decision: _Decision) -> None:
        self.attempt, self.chunks, self.ended, self.decision = attempt, chunks, ended, decision


class _Gate:
    """The streaming guards' hold on one proxied stream; what is shared by the sync and async proxies."""

    __slots__ = ("guards", "need", "replaced")

    def __init__(self, guards: tuple) -> None:
        self.guards = guards
        self.need = prefix_needed(guards)
        # The attempt a guard restart replaces, kept open until the new one decides: a restart
        # that fails before the caller saw any of it gives the caller this one.
        self.replaced: _Held | None = None

    def status(self, attempt: _Attempt, held: list) -> str:
        """_MORE, _DECIDE, or _PASS when the guards cannot judge this stream (never raises)."""
        try:
            if attempt.broken:
                return _PASS  # our accumulator failed (reported): stop watching, never hold the caller
            text = attempt.acc.text
            if len(text) >= self.need:
                return _DECIDE
            if getattr(attempt.acc, "non_text", False) is True:
                return _DECIDE if text else _PASS  # the text part is over (tool calls follow), or there is none
            if not text and len(held) >= TEXTLESS_CHUNKS:
                return _PASS
            return _MORE
        except Exception as exc:
            attempt.broken = True
            internal_errors.report("stream_chunk", exc)
            return _PASS

    def decide(self, attempt: _Attempt, status: str) -> _Decision:
        if status == _PASS:
            attempt.late_guards = not attempt.broken  # what a broken accumulator recorded is no base for a verdict
            return _Decision("return")
        return decide_prefix(attempt, self.guards)

    def fall_back(self, failed: _Attempt, exc: Exception) -> _Held | None:
        """The restarted attempt failed before the caller saw it: the attempt it replaced, or None."""
        replaced, self.replaced = self.replaced, None
        if replaced is not None:
            mark_failed_retry(failed.record, replaced.decision.on_fail)
        failed.error(exc)
        return replaced


class StreamProxy(wrapt.ObjectProxy):
    """Proxy of a synchronous stream (iterator, context manager, ``close()``)."""

    def __init__(
        self,
        stream: Any,
        attempt: _Attempt,
        guards: tuple = (),
        restart: Callable[[_Decision, _Attempt], tuple[Any, _Attempt] | None] | None = None,
    ) -> None:
        super().__init__(stream)
        self._self_attempt = attempt
        self._self_gate = _Gate(guards) if guards else None
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
        gate = self._self_gate
        while True:
            attempt = self._self_attempt
            held: list = []
            status = gate.status(attempt, held)
            try:
                while status == _MORE:
                    chunk = attempt.stream.__next__()
                    attempt.chunk(chunk)
                    held.append(chunk)
                    status = gate.status(attempt, held)
            except StopIteration:
                status = _ENDED
            except Exception as exc:
                back = gate.fall_back(attempt, exc)
                if back is None:
                    raise
                self._self_resume(back, exc)
                return
            except BaseException as exc:
                attempt.error(exc)
                self._self_release_replaced()
                raise
            decision = gate.decide(attempt, status)
            if decision.action == "retry" and self._self_restart is not None:
                try:
                    restarted = self._self_restart(decision, attempt)
                except Exception as exc:
                    # The retry call failed (the restart marked and ended its span): the caller gets this attempt.
                    restarted = None
                    if decision.on_fail == "raise":
                        self._self_release_replaced()
                        attempt.end(report_guards=False)
                        raise _guard_error(decision, attempt.stream) from exc
                except BaseException:
                    self._self_release_replaced()
                    _drop(attempt)
                    raise
                if restarted is not None:
                    self._self_release_replaced()
                    gate.replaced = _Held(attempt, held, status == _ENDED, decision)
                    stream, self._self_attempt = restarted
                    self.__wrapped__ = stream
                    continue
                # No next attempt could be made: the caller gets this one.
            self._self_release_replaced()
            if decision.action == "raise":
                attempt.end(report_guards=False)
                raise _guard_error(decision, attempt.stream)
            self._self_give(attempt, held, status == _ENDED)
            return

    def _self_give(self, attempt: _Attempt, held: list, ended: bool) -> None:
        self._self_attempt = attempt
        self.__wrapped__ = attempt.stream
        self._self_held = held
        self._self_undecided = False
        if ended:
            self._self_ended_early = True
            attempt.end(report_guards=False)

    def _self_resume(self, back: _Held, exc: Exception) -> None:
        if back.decision.on_fail == "raise":
            back.attempt.end(report_guards=False)  # as after a last failing retry: the error carries the stream, open
            raise _guard_error(back.decision, back.attempt.stream) from exc
        self._self_give(back.attempt, back.chunks, back.ended)

    def _self_release_replaced(self) -> None:
        replaced, self._self_gate.replaced = self._self_gate.replaced, None
        if replaced is not None:
            _drop(replaced.attempt)

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
        restart: Callable[[_Decision, _Attempt], Any] | None = None,
    ) -> None:
        super().__init__(stream)
        self._self_attempt = attempt
        self._self_gate = _Gate(guards) if guards else None
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
        gate = self._self_gate
        while True:
            attempt = self._self_attempt
            held: list = []
            status = gate.status(attempt, held)
            try:
                while status == _MORE:
                    chunk = await attempt.stream.__anext__()
                    attempt.chunk(chunk)
                    held.append(chunk)
                    status = gate.status(attempt, held)
            except StopAsyncIteration:
                status = _ENDED
            except Exception as exc:
                back = gate.fall_back(attempt, exc)
                if back is None:
                    raise
                self._self_resume(back, exc)
                return
            except BaseException as exc:
                attempt.error(exc)
                await self._self_release_replaced()
                raise
            decision = gate.decide(attempt, status)
            if decision.action == "retry" and self._self_restart is not None:
                try:
                    restarted = await self._self_restart(decision, attempt)
                except Exception as exc:
                    restarted = None
                    if decision.on_fail == "raise":
                        await self._self_release_replaced()
                        attempt.end(report_guards=False)
                        raise _guard_error(decision, attempt.stream) from exc
                except BaseException:
                    await self._self_release_replaced()
                    await _adrop(attempt)
                    raise
                if restarted is not None:
                    await self._self_release_replaced()
                    gate.replaced = _Held(attempt, held, status == _ENDED, decision)
                    stream, self._self_attempt = restarted
                    self.__wrapped__ = stream
                    continue
                # No next attempt could be made: the caller gets this one.
            await self._self_release_replaced()
            if decision.action == "raise":
                attempt.end(report_guards=False)
                raise _guard_error(decision, attempt.stream)
            self._self_give(attempt, held, status == _ENDED)
            return

    def _self_give(self, attempt: _Attempt, held: list, ended: bool) -> None:
        self._self_attempt = attempt
        self.__wrapped__ = attempt.stream
        self._self_held = held
        self._self_undecided = False
        if ended:
            self._self_ended_early = True
            attempt.end(report_guards=False)

    def _self_resume(self, back: _Held, exc: Exception) -> None:
        if back.decision.on_fail == "raise":
            back.attempt.end(report_guards=False)  # as after a last failing retry: the error carries the stream, open
            raise _guard_error(back.decision, back.attempt.stream) from exc
        self._self_give(back.attempt, back.chunks, back.ended)

    async def _self_release_replaced(self) -> None:
        replaced, self._self_gate.replaced = self._self_gate.replaced, None
        if replaced is not None:
            await _adrop(replaced.attempt)

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
