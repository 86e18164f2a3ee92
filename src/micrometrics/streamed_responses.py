"""A streamed call whose raw HTTP response the application holds: ``with_streaming_response.create(stream=True)``
on the Stainless SDKs (openai, anthropic). (``with_raw_response`` with ``stream=True`` is not followed: its
response has no ``close()`` to end on; its span ends at return with what the request said, as before.)

The SDK returns the response before reading its body; the application then parses the event stream out of it
(``parse()``), reads the raw bytes itself (``iter_lines()`` ...), or reads nothing, and closes it (the ``with``
block's exit). We never read the body. The call's span stays open until:
- the stream ``parse()`` returned ends: that stream is proxied as the application reads it (streams.py, the
  translator's accumulator), so the span gets the response, time to first chunk, the guards and the monitors;
  a streaming guard holds and restarts it as on any stream, the restart being a new call parsed the same way;
- the response is closed (or collected) before that: the span ends as a stream left early
  (``micrometrics.stream.abandoned``) unless the application read the whole body itself, in which case it ends
  with what the request said (raw bytes are the application's; we do not parse them).
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

import wrapt

from micrometrics import internal_errors
from micrometrics.reading import is_stream
from micrometrics.records import Call
from micrometrics.runtime import Runtime
from micrometrics.streams import AsyncStreamProxy, Unwatched, _Attempt


def followable(response: Any, proxy: type) -> bool:
    """A raw response whose body nobody has read yet, with a ``parse()`` and ``close()`` of the proxy's kind."""
    http = getattr(response, "http_response", None)
    parse, close = getattr(type(response), "parse", None), getattr(type(response), "close", None)
    if http is None or not callable(parse) or not callable(close):
        return False
    if getattr(http, "is_stream_consumed", True) is not False or getattr(http, "is_closed", True) is not False:
        return False
    asynchronous = proxy is AsyncStreamProxy
    return inspect.iscoroutinefunction(parse) is asynchronous and inspect.iscoroutinefunction(close) is asynchronous


def reparsed(wrapped: Callable, proxy: type) -> Callable:
    """A guard's restart: the call again, and the stream parsed out of its response (closed if parsing fails)."""
    if proxy is AsyncStreamProxy:

        async def acall(*args: Any, **kwargs: Any) -> Any:
            response = await wrapped(*args, **kwargs)
            try:
                return await response.parse()
            except BaseException:
                await response.close()
                raise

        return acall

    def call(*args: Any, **kwargs: Any) -> Any:
        response = wrapped(*args, **kwargs)
        try:
            return response.parse()
        except BaseException:
            response.close()
            raise

    return call


class _Watch:
    """One raw response's call: how to watch the stream parsed out of it, and that stream once parsed."""

    __slots__ = ("runtime", "call", "attempt_for", "proxy", "guards", "restart", "idle", "parsed", "stream")

    def __init__(self, runtime: Runtime, call: Call, attempt_for: Callable, proxy: type, guards: tuple, restart: Any, response: Any) -> None:
        self.runtime, self.call, self.attempt_for, self.proxy = runtime, call, attempt_for, proxy
        self.guards, self.restart = guards, restart
        self.idle = _Attempt(runtime, call, Unwatched(), response)  # ends the span if no stream is ever parsed
        self.parsed: Any = None  # the SDK's stream, as parse() returned it
        self.stream: Any = None  # our proxy of it

    def follow(self, parsed: Any) -> Any:
        """What the application gets from parse(): our proxy of the stream (the same one each time)."""
        if self.stream is not None:
            return self.stream if parsed is self.parsed else parsed
        if self.idle.done or not is_stream(parsed):
            return parsed
        try:
            attempt = self.attempt_for(parsed)
            if attempt is None:
                return parsed
            self.stream = self.proxy(parsed, attempt, self.guards, self.restart)
            self.parsed = parsed
            self.idle.done = True  # the stream's attempt ends the span from now on
            return self.stream
        except Exception as exc:
            internal_errors.report("stream_start", exc)
            return parsed

    def closed(self, response: Any) -> None:
        """The response was closed (or dropped) with no stream parsed: the span ends; abandoned unless the app read it all."""
        if self.idle.done:
            return
        http = getattr(response, "http_response", None)
        self.idle.end(abandoned=getattr(http, "is_stream_consumed", False) is not True)


class StreamedResponse(wrapt.ObjectProxy):
    """A synchronous raw response: ``parse()`` gives our stream proxy, ``close()`` ends the span."""

    def __init__(self, response: Any, watch: _Watch) -> None:
        super().__init__(response)
        self._self_watch = watch

    def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_watch.follow(self.__wrapped__.parse(*args, **kwargs))

    def close(self) -> None:
        try:
            self.__wrapped__.close()
        finally:
            self._self_end()

    def _self_end(self) -> None:
        watch = self._self_watch
        try:
            if watch.stream is not None:
                watch.stream.close()  # the stream a guard restart made is closed too; a finished one ends nothing
            else:
                watch.closed(self.__wrapped__)
        except Exception as exc:
            internal_errors.report("finish", exc)

    def __del__(self) -> None:
        try:
            watch = self._self_watch
            if watch.stream is None:
                watch.closed(self.__wrapped__)  # a parsed stream ends itself (its own proxy's collection)
        except Exception:
            pass


class AsyncStreamedResponse(StreamedResponse):
    """An asynchronous raw response: ``await parse()``, ``await close()``."""

    async def parse(self, *args: Any, **kwargs: Any) -> Any:
        return self._self_watch.follow(await self.__wrapped__.parse(*args, **kwargs))

    async def close(self) -> None:
        try:
            await self.__wrapped__.close()
        finally:
            await self._self_aend()

    async def _self_aend(self) -> None:
        watch = self._self_watch
        try:
            if watch.stream is not None:
                await watch.stream.close()
            else:
                watch.closed(self.__wrapped__)
        except Exception as exc:
            internal_errors.report("finish", exc)


def follow(response: Any, proxy: type, runtime: Runtime, call: Call, attempt_for: Callable, guards: tuple, restart: Any) -> Any | None:
    """The application's raw response, proxied until its stream ends or it is closed; None when it is not one we follow."""
    if not followable(response, proxy):
        return None
    watch = _Watch(runtime, call, attempt_for, proxy, guards, restart, response)
    return (AsyncStreamedResponse if proxy is AsyncStreamProxy else StreamedResponse)(response, watch)
