"""micrometrics instrumentation for the ``anthropic`` client library.

Wraps ``messages.create``, ``messages.parse`` and the ``messages.stream()`` helper
(and their ``beta.messages`` twins) of every client the package ships: ``Anthropic``,
``AsyncAnthropic``, the Bedrock, Vertex, AWS, Google Cloud and Foundry clients.

The client's own OpenTelemetry tracing (its ``open_telemetry`` option, on by default
in anthropic 2.x) would start a second inference span for the same call: while we
trace a call, the client's call span is replaced by a non-recording stand-in that
carries our span's context, so the request still propagates a trace context (ours)
and the backend shows one inference span, with our micro metrics on it. Calls we do
not trace (count_tokens, batches, sessions, ...) keep the client's own spans.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Callable, Iterable

from opentelemetry import trace

from micrometrics import internal_errors, runtime
from micrometrics.calls import run_async, run_sync
from micrometrics_instrumentation.anthropic.translators import MessagesTranslator, StreamHelperTranslator, starting
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES

__all__ = ["AnthropicInstrumentor"]

_MESSAGES = "anthropic.resources.messages.messages"
_BETA_MESSAGES = "anthropic.resources.beta.messages.messages"
#: Where the client starts its own call span (looked up there at call time, sync and async).
_BASE_CLIENT = "anthropic._base_client"
_OWN_SPAN = "start_api_call_span"

#: Our span, while the client runs a call that we trace.
_owner: ContextVar[Any] = ContextVar("micrometrics_anthropic_owner", default=None)


def _our_span() -> Any:
    """Our span for the call being made, if our pipeline just started it (and it is current)."""
    before = starting.get()
    if before is None:
        return None
    starting.set(None)  # do not keep the caller's span alive past its call
    span = trace.get_current_span()
    return span if span is not before else None


def _owned(call: Callable) -> Callable:
    """``call`` run with our span marked as the owner of the client's API call."""

    def run(*args: Any, **kwargs: Any) -> Any:
        span = _our_span()
        if span is None:
            return call(*args, **kwargs)
        token = _owner.set(span)
        try:
            return call(*args, **kwargs)
        finally:
            _owner.reset(token)

    return run


async def _await_owned(awaitable: Any) -> Any:
    span = _our_span()
    if span is None:
        return await awaitable
    token = _owner.set(span)
    try:
        return await awaitable
    finally:
        _owner.reset(token)


def _owned_async(call: Callable) -> Callable:
    async def run(*args: Any, **kwargs: Any) -> Any:
        return await _await_owned(call(*args, **kwargs))

    return run


def _defer_to_ours(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """The client's call span, unless we trace the call: then a stand-in with our span's context."""
    span = _owner.get()
    if span is None:
        return wrapped(*args, **kwargs)
    try:
        # Not recording, so the client records nothing and ends nothing; it still propagates our context.
        return trace.NonRecordingSpan(span.get_span_context())
    except Exception as exc:
        internal_errors.report("request", exc)
        return wrapped(*args, **kwargs)


def _sync(translator: MessagesTranslator) -> Callable:
    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return run_sync(translator, _owned(wrapped), instance, args, kwargs)

    wrapper.opens_span = True  # type: ignore[attr-defined]  # another GenAI layer on the method is kept above it, gated
    return wrapper


def _async(translator: MessagesTranslator) -> Callable:
    async def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return await run_async(translator, _owned_async(wrapped), instance, args, kwargs)

    wrapper.opens_span = True  # type: ignore[attr-defined]
    return wrapper


def _request_slot(manager: Any) -> str | None:
    """The manager's private ``__api_request`` attribute (name-mangled per manager class)."""
    try:
        return next((name for name in vars(manager) if name.endswith("__api_request")), None)
    except TypeError:
        return None


def _stream_helper(translator: StreamHelperTranslator) -> Callable:
    """``messages.stream()`` does not go through ``create``: trace the request its manager makes on enter.

    The manager, its ``MessageStream``, ``text_stream``, the event API and
    ``get_final_message()`` stay the SDK's own; only the raw event stream under them
    is our proxy, so there is one span per call and guards can restart the stream.
    """

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        manager = wrapped(*args, **kwargs)
        try:
            slot = _request_slot(manager)
            if slot is None or runtime.current() is None:
                return manager
            pending = [getattr(manager, slot)]

            def open_stream(*a: Any, **k: Any) -> Any:
                # The first attempt uses the manager's own request; a guard retry builds a new one.
                request = pending.pop() if pending else getattr(wrapped(*a, **k), slot)
                return _owned(request)()

            setattr(manager, slot, lambda: run_sync(translator, open_stream, instance, args, kwargs))
        except Exception as exc:
            internal_errors.report("request", exc)
        return manager

    wrapper.opens_span = True  # type: ignore[attr-defined]
    return wrapper


def _async_stream_helper(translator: StreamHelperTranslator) -> Callable:
    """The async manager awaits a request made eagerly: swap it for ours, which awaits it."""

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        manager = wrapped(*args, **kwargs)
        try:
            slot = _request_slot(manager)
            if slot is None or runtime.current() is None:
                return manager
            pending = [getattr(manager, slot)]

            async def open_stream(*a: Any, **k: Any) -> Any:
                request = pending.pop() if pending else getattr(wrapped(*a, **k), slot)
                return await _await_owned(request)

            setattr(manager, slot, run_async(translator, open_stream, instance, args, kwargs))
        except Exception as exc:
            internal_errors.report("request", exc)
        return manager

    wrapper.opens_span = True  # type: ignore[attr-defined]
    return wrapper


class AnthropicInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["anthropic"]
    instruments = ("anthropic >= 0.40",)
    #: The Stainless SDK caches these per resource, holding the methods bound when first touched.
    bound_views = ("with_raw_response", "with_streaming_response")

    def targets(self) -> Iterable[Target]:
        create, helper = MessagesTranslator(), StreamHelperTranslator()
        out: list[Target] = []
        for module in (_MESSAGES, _BETA_MESSAGES):
            out += [
                (module, "Messages", "create", _sync(create)),
                (module, "Messages", "parse", _sync(create)),
                (module, "Messages", "stream", _stream_helper(helper)),
                (module, "AsyncMessages", "create", _async(create)),
                (module, "AsyncMessages", "parse", _async(create)),
                (module, "AsyncMessages", "stream", _async_stream_helper(helper)),
            ]
        # A module-level function; anthropic releases without their own tracing do not have it.
        out.append((_BASE_CLIENT, "", _OWN_SPAN, _defer_to_ours))
        return out

