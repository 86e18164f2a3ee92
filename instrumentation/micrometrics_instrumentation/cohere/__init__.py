"""micrometrics instrumentation for the ``cohere`` client library (API v2).

Wraps ``chat``, ``chat_stream`` and ``embed`` of ``ClientV2`` and ``AsyncClientV2`` (and of
``client.v2``). ``AsyncClientV2.chat_stream`` is an async generator method: it returns its
stream without being awaited, and so does the wrapped one. The v1 API (``Client.chat``) is
not traced.
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.calls import async_iterator_wrapper, async_wrapper, sync_wrapper
from micrometrics_instrumentation.cohere.translators import ChatTranslator, EmbedTranslator
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target

__all__ = ["CohereInstrumentor"]

_V2 = "cohere.v2.client"


class CohereInstrumentor(LibraryInstrumentor):
    library = "cohere"
    instruments = ("cohere >= 5.9",)

    def targets(self) -> Iterable[Target]:
        plain, streamed, embed = ChatTranslator(), ChatTranslator(streams=True), EmbedTranslator()
        return (
            (_V2, "V2Client", "chat", sync_wrapper(plain)),
            (_V2, "V2Client", "chat_stream", sync_wrapper(streamed)),
            (_V2, "V2Client", "embed", sync_wrapper(embed)),
            (_V2, "AsyncV2Client", "chat", async_wrapper(plain)),
            (_V2, "AsyncV2Client", "chat_stream", async_iterator_wrapper(streamed)),
            (_V2, "AsyncV2Client", "embed", async_wrapper(embed)),
        )
