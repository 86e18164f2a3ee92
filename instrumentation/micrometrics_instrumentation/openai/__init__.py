"""micrometrics instrumentation for the ``openai`` client library.

Wraps ``chat.completions.create`` / ``.parse``, ``responses.create``,
``embeddings.create`` and the legacy ``completions.create`` of the sync and async
clients (``OpenAI``, ``AsyncOpenAI``, ``AzureOpenAI``, ``AsyncAzureOpenAI``).
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.pipeline import async_wrapper, sync_wrapper
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
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


class OpenAIInstrumentor(LibraryInstrumentor):
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
        )
