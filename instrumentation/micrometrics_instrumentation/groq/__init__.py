"""micrometrics instrumentation for the ``groq`` client library.

Wraps ``chat.completions.create`` and ``embeddings.create`` of ``Groq`` and ``AsyncGroq``.
Groq's SDK speaks the OpenAI wire format, so its calls go through the OpenAI translators,
with the provider name ``groq``.
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.groq.translators import ChatTranslator, EmbeddingsTranslator
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES

__all__ = ["GroqInstrumentor"]

_CHAT = "groq.resources.chat.completions"
_EMBEDDINGS = "groq.resources.embeddings"


class GroqInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["groq"]
    instruments = ("groq >= 0.9",)
    #: The Stainless SDK caches these per resource, holding the methods bound when first touched.
    bound_views = ("with_raw_response", "with_streaming_response")

    def targets(self) -> Iterable[Target]:
        chat, embeddings = ChatTranslator(), EmbeddingsTranslator()
        return (
            (_CHAT, "Completions", "create", sync_wrapper(chat)),
            (_CHAT, "AsyncCompletions", "create", async_wrapper(chat)),
            (_EMBEDDINGS, "Embeddings", "create", sync_wrapper(embeddings)),
            (_EMBEDDINGS, "AsyncEmbeddings", "create", async_wrapper(embeddings)),
        )
