"""Groq requests and responses -> call records: the OpenAI wire format, so the OpenAI translators, with
Groq's provider name and the usage Groq streams in ``x_groq``. Translation only: no OpenTelemetry here."""

from __future__ import annotations

from typing import Any

from micrometrics.reading import is_stream, per_client, server
from micrometrics_instrumentation.openai import translators as openai
from micrometrics_semconv import values as V


@per_client
def endpoint(client: Any) -> tuple[str, str | None, int | None]:
    """(provider name, server.address, server.port) of a Groq client: ``groq`` whatever its base URL."""
    host, port = server(getattr(client, "base_url", None))
    return V.PROVIDER_GROQ, host, port


class _Groq(openai.OpenAITranslator):
    def endpoint(self, instance: Any) -> tuple[str, str | None, int | None]:
        return endpoint(getattr(instance, "_client", None))


class ChatTranslator(_Groq, openai.ChatTranslator):
    """``chat.completions.create``."""

    def accumulator(self, record: Any, stream: Any) -> "ChatAccumulator | None":
        return ChatAccumulator(record) if is_stream(stream) else None


class EmbeddingsTranslator(_Groq, openai.EmbeddingsTranslator):
    """``embeddings.create``."""


class ChatAccumulator(openai.ChatAccumulator):
    """Groq's last chunk carries the usage in ``x_groq.usage`` (also without ``stream_options``)."""

    __slots__ = ()

    def add(self, chunk: Any) -> None:
        super().add(chunk)
        extra = getattr(chunk, "x_groq", None)
        usage = getattr(extra, "usage", None) if extra is not None else None
        if usage is not None:
            self.usage = usage
