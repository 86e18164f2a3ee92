"""micrometrics instrumentation for the ``google-genai`` client library.

Wraps ``models.generate_content``, ``models.generate_content_stream`` and
``models.embed_content`` of ``client.models`` and ``client.aio.models`` (Gemini
Developer API: ``gcp.gemini``; Vertex AI mode: ``gcp.vertex_ai``; ``gcp.gen_ai`` only when the
client's backend cannot be read). Chats go through
``generate_content``, so each turn is a span too. One span per method call: with
automatic function calling, it covers every model round trip of that call.

``generate_content_stream`` keeps its shape: the sync method returns a generator
proxy (the request starts on the first ``next()``), the async one an awaitable of an
async-generator proxy.
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.google_genai.translators import EmbedContentTranslator, GenerateContentTranslator
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES

__all__ = ["GoogleGenAIInstrumentor"]

_MODELS = "google.genai.models"


class GoogleGenAIInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["google_genai"]
    instruments = ("google-genai >= 1.0",)

    def targets(self) -> Iterable[Target]:
        plain, streamed, embed = GenerateContentTranslator(), GenerateContentTranslator(streams=True), EmbedContentTranslator()
        return (
            (_MODELS, "Models", "generate_content", sync_wrapper(plain)),
            (_MODELS, "Models", "generate_content_stream", sync_wrapper(streamed)),
            (_MODELS, "Models", "embed_content", sync_wrapper(embed)),
            (_MODELS, "AsyncModels", "generate_content", async_wrapper(plain)),
            (_MODELS, "AsyncModels", "generate_content_stream", async_wrapper(streamed)),
            (_MODELS, "AsyncModels", "embed_content", async_wrapper(embed)),
        )
