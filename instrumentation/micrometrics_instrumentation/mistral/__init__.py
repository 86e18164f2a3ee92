"""micrometrics instrumentation for the ``mistralai`` client library.

Wraps ``chat.complete``, ``chat.stream``, ``embeddings.create`` and their ``_async`` twins
of the ``Mistral`` client (``chat.parse`` and ``parse_stream`` call these, so they are
traced too). Mistral's API is the OpenAI wire format with a few differences: the OpenAI
translators do the work, adapted in ``translators.py``.

The client's own OpenTelemetry tracing is off unless the application turns it on
(``MISTRAL_SDK_TELEMETRY`` or the client's ``telemetry`` option).
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.mistral.translators import ChatTranslator, EmbeddingsTranslator

__all__ = ["MistralInstrumentor"]

#: mistralai 2.x and later; 1.x had the same classes one package up.
_MODULES = ("mistralai.client.chat", "mistralai.chat")
_EMBEDDINGS = ("mistralai.client.embeddings", "mistralai.embeddings")


class MistralInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["mistral"]
    instruments = ("mistralai >= 1.0",)

    def targets(self) -> Iterable[Target]:
        plain, streamed, embeddings = ChatTranslator(), ChatTranslator(streams=True), EmbeddingsTranslator()
        out: list[Target] = []
        for module in _MODULES:
            out += [
                (module, "Chat", "complete", sync_wrapper(plain)),
                (module, "Chat", "complete_async", async_wrapper(plain)),
                (module, "Chat", "stream", sync_wrapper(streamed)),
                (module, "Chat", "stream_async", async_wrapper(streamed)),
            ]
        for module in _EMBEDDINGS:
            out += [
                (module, "Embeddings", "create", sync_wrapper(embeddings)),
                (module, "Embeddings", "create_async", async_wrapper(embeddings)),
            ]
        return out
