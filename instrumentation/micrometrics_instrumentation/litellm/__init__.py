"""micrometrics instrumentation for ``litellm``.

Wraps ``litellm.completion`` / ``acompletion``, ``text_completion`` / ``atext_completion``,
``embedding`` / ``aembedding``, ``responses`` / ``aresponses``, and the same endpoints of
``litellm.Router`` (served by its core, ``litellm.router_rust.core.RustCore``).

One inference span per call: the LiteLLM call's span is the outer one, and any instrumented
call of the same family made under it (the OpenAI client's ``post`` on LiteLLM's OpenAI route,
a Router's ``litellm.acompletion`` per deployment) opens none (``micrometrics.nesting``, the
default ``suppress``). LiteLLM's Anthropic and Bedrock routes use its own HTTP client.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

import wrapt
from opentelemetry import context as otel_context
from opentelemetry import trace

from micrometrics import internal_errors, nesting
from micrometrics.calls import run_async, run_sync
from micrometrics.reading import is_stream
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.litellm.translators import (
    ChatTranslator,
    EmbeddingsTranslator,
    ResponsesTranslator,
    TextCompletionTranslator,
)

__all__ = ["LiteLLMInstrumentor"]

_LITELLM = "litellm"
_ROUTER_CORE = "litellm.router_rust.core"


class LiteLLMInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["litellm"]
    instruments = ("litellm >= 1.60",)

    def targets(self) -> Iterable[Target]:
        # The module's functions: the ones applications call, and the ones a Router calls per deployment.
        yield from ((_LITELLM, "", name, wrapper) for name, wrapper in _wrappers(("prompt", "model")))
        # The Router's endpoints; its text completion takes the model first.
        yield from ((_ROUTER_CORE, "RustCore", name, wrapper) for name, wrapper in _wrappers(("model", "prompt")))


def _stand_in() -> Any:
    """Inside our open call: a context whose current span is a non-recording stand-in of ours (None: not inside one).

    LiteLLM's own OpenTelemetry callback (``litellm.callbacks=["otel"]``) writes its attributes, message
    content included, onto the current span when there is one: with the stand-in it writes nothing onto
    ours (our content policy holds), and what it opens itself is still our span's child.
    """
    if nesting.current() is None:
        return None
    try:
        span = trace.get_current_span()
        return trace.set_span_in_context(trace.NonRecordingSpan(span.get_span_context()))
    except Exception as exc:
        internal_errors.report("request", exc)
        return None


class _InCallContext(wrapt.ObjectProxy):
    """A stream LiteLLM returned, read in the call's context (our scope, the stand-in).

    Some routes send the request only when the stream is first read (``text_completion(stream=True)``):
    the ``openai`` client's ``post`` then runs under our call's scope, so it opens no second span, and
    LiteLLM's own callback at the stream's end sees the stand-in. ``isinstance`` holds (an object proxy).
    """

    def __init__(self, stream: Any, ctx: Any) -> None:
        super().__init__(stream)
        self._self_ctx = ctx

    def __iter__(self) -> "_InCallContext":
        return self

    def __next__(self) -> Any:
        token = otel_context.attach(self._self_ctx)
        try:
            return next(self.__wrapped__)
        finally:
            otel_context.detach(token)

    def __aiter__(self) -> "_InCallContext":
        return self

    async def __anext__(self) -> Any:
        token = otel_context.attach(self._self_ctx)
        try:
            return await self.__wrapped__.__anext__()
        finally:
            otel_context.detach(token)


def _in_call_context(result: Any, ctx: Any) -> Any:
    return _InCallContext(result, ctx) if is_stream(result) else result


def _behind_stand_in(call: Callable) -> Callable:
    def run(*args: Any, **kwargs: Any) -> Any:
        ctx = _stand_in()
        if ctx is None:
            return call(*args, **kwargs)
        token = otel_context.attach(ctx)
        try:
            return _in_call_context(call(*args, **kwargs), ctx)
        finally:
            otel_context.detach(token)

    return run


def _behind_stand_in_async(call: Callable) -> Callable:
    async def run(*args: Any, **kwargs: Any) -> Any:
        ctx = _stand_in()
        if ctx is None:
            return await call(*args, **kwargs)
        token = otel_context.attach(ctx)
        try:
            return _in_call_context(await call(*args, **kwargs), ctx)
        finally:
            otel_context.detach(token)

    return run


def sync_wrapper(translator: Any) -> Callable:
    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return run_sync(translator, _behind_stand_in(wrapped), instance, args, kwargs)

    wrapper.opens_span = True  # type: ignore[attr-defined]  # another GenAI layer on the function is kept above it, gated
    return wrapper


def async_wrapper(translator: Any) -> Callable:
    async def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        return await run_async(translator, _behind_stand_in_async(wrapped), instance, args, kwargs)

    wrapper.opens_span = True  # type: ignore[attr-defined]
    return wrapper


def _wrappers(text_positional: tuple[str, str]) -> tuple[tuple[str, Callable], ...]:
    chat, text, embeddings, responses = ChatTranslator(), TextCompletionTranslator(text_positional), EmbeddingsTranslator(), ResponsesTranslator()
    return (
        ("completion", sync_wrapper(chat)), ("acompletion", async_wrapper(chat)),
        ("text_completion", sync_wrapper(text)), ("atext_completion", async_wrapper(text)),
        ("embedding", sync_wrapper(embeddings)), ("aembedding", async_wrapper(embeddings)),
        ("responses", sync_wrapper(responses)), ("aresponses", async_wrapper(responses)),
    )
