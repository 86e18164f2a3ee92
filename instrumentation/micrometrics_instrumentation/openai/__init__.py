"""micrometrics instrumentation for the ``openai`` client library.

Wraps ``chat.completions.create`` / ``.parse``, ``responses.create``,
``embeddings.create`` and the legacy ``completions.create`` of the sync and async
clients (``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI``, ``AsyncAzureOpenAI``), and their
low-level ``post`` for the same paths (``low_level.py``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from micrometrics import internal_errors
from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics.streams import AsyncStreamProxy, StreamProxy
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.openai.low_level import async_post_wrapper, post_wrapper
from micrometrics_instrumentation.openai.translators import (
    ChatTranslator,
    CompletionsTranslator,
    EmbeddingsTranslator,
    ResponsesTranslator,
)

__all__ = ["OpenAIInstrumentor"]

_CHAT = "openai.resources.chat.completions"
_RESPONSES = "openai.resources.responses"
_EMBEDDINGS = "openai.resources.embeddings"
_COMPLETIONS = "openai.resources.completions"
_CHAT_HELPER = "openai.lib.streaming.chat._completions"
_RESPONSES_HELPER = "openai.lib.streaming.responses._responses"
_BASE_CLIENT = "openai._base_client"


def _helper_close(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    """The ``.stream()`` helpers close the HTTP response under our proxy directly (on context exit,
    left early): close the proxy too, so the span ends then, with what was received."""
    try:
        return wrapped(*args, **kwargs)
    finally:
        raw = getattr(instance, "_raw_stream", None)
        if isinstance(raw, StreamProxy):
            try:
                raw.close()
            except Exception as exc:
                internal_errors.report("finish", exc)


async def _async_helper_close(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
    try:
        return await wrapped(*args, **kwargs)
    finally:
        raw = getattr(instance, "_raw_stream", None)
        if isinstance(raw, AsyncStreamProxy):
            try:
                await raw.close()
            except Exception as exc:
                internal_errors.report("finish", exc)


class OpenAIInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["openai"]
    instruments = ("openai >= 1.40",)
    #: The Stainless SDK caches these per resource, holding the methods bound when first touched.
    bound_views = ("with_raw_response", "with_streaming_response")

    def targets(self) -> Iterable[Target]:
        chat, responses, embeddings, completions = ChatTranslator(), ResponsesTranslator(), EmbeddingsTranslator(), CompletionsTranslator()
        return (
            (_CHAT, "Completions", "create", sync_wrapper(chat)),
            (_CHAT, "Completions", "parse", sync_wrapper(chat)),
            (_CHAT, "AsyncCompletions", "create", async_wrapper(chat)),
            (_CHAT, "AsyncCompletions", "parse", async_wrapper(chat)),
            (_RESPONSES, "Responses", "create", sync_wrapper(responses)),
            (_RESPONSES, "AsyncResponses", "create", async_wrapper(responses)),
            (_EMBEDDINGS, "Embeddings", "create", sync_wrapper(embeddings)),
            (_EMBEDDINGS, "AsyncEmbeddings", "create", async_wrapper(embeddings)),
            (_COMPLETIONS, "Completions", "create", sync_wrapper(completions)),
            (_COMPLETIONS, "AsyncCompletions", "create", async_wrapper(completions)),
            (_CHAT_HELPER, "ChatCompletionStream", "close", _helper_close),
            (_CHAT_HELPER, "AsyncChatCompletionStream", "close", _async_helper_close),
            (_RESPONSES_HELPER, "ResponseStream", "close", _helper_close),
            (_RESPONSES_HELPER, "AsyncResponseStream", "close", _async_helper_close),
            (_BASE_CLIENT, "SyncAPIClient", "post", post_wrapper()),
            (_BASE_CLIENT, "AsyncAPIClient", "post", async_post_wrapper()),
        )
