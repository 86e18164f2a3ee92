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

The gate is written once, as steps that yield the I/O they need (next chunk, close, call)
to a driver: ``drive`` performs it, ``adrive`` awaits it. A stream the application closes
or drops before its last chunk ends as an error (``micrometrics.stream.abandoned``).
"""

from __future__ import annotations

import inspect
from time import perf_counter
from typing import Any, Callable, Generator, Protocol

import wrapt

from micrometrics import internal_errors
from micrometrics.guards import RETURN, GuardError, GuardVerdict, mark_failed_retry
from micrometrics.runtime import Runtime
from micrometrics.metric import CallView
from micrometrics.records import Call
from micrometrics.spans import abandoned
from micrometrics_semconv import values as V


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

    def __init__(self, call: Call, prefix: str) -> None:
        super().__init__(call.record, call)
        self._prefix = prefix

    @property
    def output_text(self) -> str:
        return self._prefix


#: A stream held this many chunks without any text is not one a text guard can judge.
TEXTLESS_CHUNKS = 16

# The I/O a step generator asks its driver for: the only thing the sync and async paths do
# differently. (NEXT, stream) -> the next chunk or _END; (CLOSE, stream); (CALL, fn, args, kwargs).
NEXT, CLOSE, CALL = 0, 1, 2
_END = object()  # the stream is exhausted
_LIVE = object()  # the gate holds nothing more: read the stream itself

Steps = Generator[tuple, Any, Any]


def _perform(op: tuple) -> Any:
    if op[0] == CALL:
        return op[1](*op[2], **op[3])
    if op[0] == NEXT:
        try:
            return op[1].__next__()
        except StopIteration:
            return _END
    return op[1].close()


async def _aperform(op: tuple) -> Any:
    if op[0] == CALL:
        result = op[1](*op[2], **op[3])
        # An async generator method (cohere's chat_stream) hands back its stream unawaited.
        return await result if inspect.isawaitable(result) else result
    if op[0] == NEXT:
        try:
            return await op[1].__anext__()
        except StopAsyncIteration:
            return _END
    return await _aclose(op[1])


def drive(steps: Steps) -> Any:
    """Run a step generator, performing its I/O synchronously; its return value or exception."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        value = error = None
        try:
            value = _perform(op)
        except BaseException as exc:
            error = exc


async def adrive(steps: Steps) -> Any:
    """Run a step generator, awaiting its I/O."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            op = steps.send(value) if error is None else steps.throw(error)
        except StopIteration as stop:
            return stop.value
        value = error = None
        try:
            value = await _aperform(op)
        except BaseException as exc:
            error = exc


async def _aclose(stream: Any) -> None:
    close = getattr(stream, "close", None) or getattr(stream, "aclose", None)
    if close is None:
        return
    result = close()
    if hasattr(result, "__await__"):
        await result


class _Attempt:
    """One attempt of a streamed call: its call, accumulator, stream, and ending it once."""

    __slots__ = ("runtime", "call", "acc", "done", "times", "stream", "broken", "late_guards")

    def __init__(self, runtime: Runtime, call: Call, acc: Accumulator, stream: Any) -> None:
        self.runtime = runtime
        self.call = call
        self.acc = acc
        self.stream = stream
        self.done = False
        # Arrival time of each chunk, the call's own list: emission turns them into time_per_output_chunk
        # points off the caller's path, so a chunk costs the caller a clock read and an append (about
        # 65 ns; a float per chunk, as the accumulator already keeps a text piece per chunk).
        self.times: list[float] | None = None
        self.broken = False
        self.late_guards = False  # released undecided: the streaming guards report on the whole stream at its end

    def chunk(self, chunk: Any, _clock: Any = perf_counter) -> None:
        times = self.times
        if times is not None:
            times.append(_clock())  # the clock as a local: this line is the caller's whole per-chunk cost of the metric
        else:
            now = _clock()
            self.times = self.call.chunk_times = [now]
            self.call.record.time_to_first_chunk = now - self.call.start_perf
        if self.broken:
            return
        try:
            self.acc.add(chunk)
        except Exception as exc:
            # One report per stream, not per chunk: the accumulator stops being fed.
            self.broken = True
            internal_errors.report("stream_chunk", exc)

    def end(self, *, report_guards: bool = True, monitors: bool = True, abandoned: bool = False) -> None:
        """End the attempt's span once, recording what was received; ``abandoned``: the
        application closed or dropped it, which is an error unless its last chunk had come."""
        if self.done:
            return
        self.done = True
        try:
            self.acc.apply()
        except Exception as exc:
            internal_errors.report("response", exc)
        try:
            if abandoned and not getattr(self.call.record, "finish_reasons", None):
                _mark_abandoned(self.call)
            self.runtime.finish_stream(self.call, report_guards=report_guards, monitors=monitors, prefix_judged=not self.late_guards)
        except Exception as exc:
            internal_errors.report("finish", exc)
            end_quietly(self.call)

    def error(self, exc: BaseException) -> None:
        if self.done:
            return
        self.done = True
        try:
            self.acc.apply()
            self.runtime.fail(self.call, exc)
        except Exception as inner:
            internal_errors.report("finish", inner)
            end_quietly(self.call)


def _mark_abandoned(call: Call) -> None:
    """``error.type`` (span and metric points) on a stream left before its end; spans.py sets the span's status."""
    call.record.error_type = V.ERROR_TYPE_STREAM_ABANDONED
    abandoned(call)


def end_quietly(call: Call) -> None:
    """The last resort when ending a call failed: end its span, whatever is on it."""
    try:
        call.span.end()
    except Exception:
        pass


def _drop(attempt: _Attempt) -> Steps:
    """Close an attempt a guard rejected: its span ends without monitors."""
    try:
        yield (CLOSE, attempt.stream)
    except Exception:
        pass
    attempt.end(report_guards=False, monitors=False)


def decide_prefix(attempt: _Attempt, guards: tuple) -> GuardVerdict:
    runtime, call = attempt.runtime, attempt.call
    try:
        return runtime.run_guards(call, guards, view=_PrefixView(call, attempt.acc.text))
    except Exception as exc:
        internal_errors.report("evaluation", exc)
        return RETURN


def guard_error(verdict: GuardVerdict, response: Any) -> GuardError:
    """The GuardError of a guard still failing after its last retry, carrying the last response."""
    failed = ", ".join(name for name, r in verdict.results if r.passed is False)
    return GuardError(f"micrometrics guard failed after the last retry: {failed}", response=response, results=dict(verdict.results))


def prefix_needed(guards: tuple) -> int:
    return max(g.stream_prefix_chars or 0 for g in guards) if guards else 0


# What the gate does next with an attempt's stream.
_MORE, _DECIDE, _PASS, _ENDED = "more", "decide", "pass", "ended"

#: Makes the next attempt of a guarded stream: steps returning it, or None when it cannot be made.
Restart = Callable[[GuardVerdict, _Attempt], Steps]


class _Held:
    """An attempt the gate held back: its chunks so far, whether its stream ended, the guards' verdict."""

    __slots__ = ("attempt", "chunks", "ended", "verdict")

    def __init__(self, attempt: _Attempt, chunks: list, ended: bool, verdict: GuardVerdict) -> None:
        self.attempt, self.chunks, self.ended, self.verdict = attempt, chunks, ended, verdict


class PrefixGate:
    """The streaming guards' hold on one proxied stream, written once for both proxies.

    ``fill()`` holds chunks until the guards decide on the prefix (retrying, falling back,
    raising), yielding the I/O it needs to the proxy's driver; then ``release()`` hands out
    the held chunks.
    """

    __slots__ = ("guards", "need", "restart", "attempt", "held", "ended", "undecided", "replaced")

    def __init__(self, attempt: _Attempt, guards: tuple, restart: Restart | None) -> None:
        self.guards = guards
        self.need = prefix_needed(guards)
        self.restart = restart
        self.attempt = attempt  # the attempt the caller reads (changes on a restart)
        self.held: list = []
        self.ended = False  # the given attempt's stream ended while held
        self.undecided = True
        # The attempt a guard restart replaces, kept open until the new one decides: a restart
        # that fails before the caller saw any of it gives the caller this one.
        self.replaced: _Held | None = None

    def release(self) -> Any:
        """The next held chunk, _END when the held stream ended, or _LIVE."""
        if self.held:
            return self.held.pop(0)
        return _END if self.ended else _LIVE

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

    def decide(self, attempt: _Attempt, status: str) -> GuardVerdict:
        if status == _PASS:
            attempt.late_guards = not attempt.broken  # what a broken accumulator recorded is no base for a verdict
            return RETURN
        return decide_prefix(attempt, self.guards)

    def fill(self) -> Steps:
        """Hold chunks until the guards can decide on the prefix, retrying on failure."""
        while True:
            attempt = self.attempt
            held: list = []
            status = self.status(attempt, held)
            try:
                while status == _MORE:
                    chunk = yield (NEXT, attempt.stream)
                    if chunk is _END:
                        status = _ENDED
                        break
                    attempt.chunk(chunk)
                    held.append(chunk)
                    status = self.status(attempt, held)
            except Exception as exc:
                back = self._fall_back(attempt, exc)
                if back is None:
                    raise
                self._resume(back, exc)
                return
            except BaseException as exc:
                attempt.error(exc)
                yield from self._release_replaced()
                raise
            verdict = self.decide(attempt, status)
            if verdict.action == "retry" and self.restart is not None:
                try:
                    restarted = yield from self.restart(verdict, attempt)
                except Exception as exc:
                    # The retry call failed (the restart marked and ended its span): the caller gets this attempt.
                    restarted = None
                    if verdict.on_fail == "raise":
                        yield from self._release_replaced()
                        attempt.end(report_guards=False)
                        raise guard_error(verdict, attempt.stream) from exc
                except BaseException:
                    yield from self._release_replaced()
                    yield from _drop(attempt)
                    raise
                if restarted is not None:
                    yield from self._release_replaced()
                    self.replaced = _Held(attempt, held, status == _ENDED, verdict)
                    self.attempt = restarted
                    continue
                # No next attempt could be made: the caller gets this one.
            yield from self._release_replaced()
            if verdict.action == "raise":
                attempt.end(report_guards=False)
                raise guard_error(verdict, attempt.stream)
            self._give(attempt, held, status == _ENDED)
            return

    def _fall_back(self, failed: _Attempt, exc: Exception) -> _Held | None:
        """The restarted attempt failed before the caller saw it: the attempt it replaced, or None."""
        replaced, self.replaced = self.replaced, None
        if replaced is not None:
            mark_failed_retry(failed.call, replaced.verdict.on_fail)
        failed.error(exc)
        return replaced

    def _resume(self, back: _Held, exc: Exception) -> None:
        if back.verdict.on_fail == "raise":
            back.attempt.end(report_guards=False)  # as after a last failing retry: the error carries the stream, open
            raise guard_error(back.verdict, back.attempt.stream) from exc
        self._give(back.attempt, back.chunks, back.ended)

    def _give(self, attempt: _Attempt, held: list, ended: bool) -> None:
        self.attempt, self.held, self.undecided = attempt, held, False
        if ended:
            self.ended = True
            attempt.end(report_guards=False)

    def _release_replaced(self) -> Steps:
        replaced, self.replaced = self.replaced, None
        if replaced is not None:
            yield from _drop(replaced.attempt)


class _Proxy(wrapt.ObjectProxy):
    """What the sync and async proxies share: the attempt the caller reads, the gate, the end on collection."""

    def __init__(self, stream: Any, attempt: _Attempt, guards: tuple = (), restart: Restart | None = None) -> None:
        super().__init__(stream)
        self._self_attempt = attempt
        self._self_gate = PrefixGate(attempt, guards, restart) if guards else None

    def _self_follow(self) -> None:
        """After the gate ran (or raised): the caller reads the attempt it chose."""
        self._self_attempt = self._self_gate.attempt
        self.__wrapped__ = self._self_attempt.stream

    def _self_given(self) -> Any:
        """A held chunk, _END when the held stream ended, or _LIVE: read the stream itself from now on."""
        given = self._self_gate.release()
        if given is _LIVE:
            self._self_gate = None
        return given

    def __del__(self) -> None:
        try:
            self._self_attempt.end(abandoned=True)
        except Exception:
            pass


class StreamProxy(_Proxy):
    """Proxy of a synchronous stream (iterator, context manager, ``close()``)."""

    def __iter__(self) -> "StreamProxy":
        return self

    def __next__(self) -> Any:
        if self._self_gate is not None:
            if self._self_gate.undecided:
                try:
                    drive(self._self_gate.fill())
                finally:
                    self._self_follow()
            given = self._self_given()
            if given is _END:
                raise StopIteration
            if given is not _LIVE:
                return given
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
            self._self_attempt.end(abandoned=True)

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_attempt.end(abandoned=True)


class AsyncStreamProxy(_Proxy):
    """Proxy of an asynchronous stream (async iterator, async context manager, ``close()``)."""

    def __aiter__(self) -> "AsyncStreamProxy":
        return self

    async def __anext__(self) -> Any:
        if self._self_gate is not None:
            if self._self_gate.undecided:
                try:
                    await adrive(self._self_gate.fill())
                finally:
                    self._self_follow()
            given = self._self_given()
            if given is _END:
                raise StopAsyncIteration
            if given is not _LIVE:
                return given
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
            self._self_attempt.end(abandoned=True)

    async def close(self) -> None:
        try:
            await _aclose(self.__wrapped__)
        finally:
            self._self_attempt.end(abandoned=True)

    async def aclose(self) -> None:
        await self.close()
