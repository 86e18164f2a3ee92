"""Mistral requests and responses -> call records. Translation only: no OpenTelemetry here.

Mistral's chat and embeddings APIs are the OpenAI wire format with a few differences, so the
OpenAI translators do the work and these classes adapt them: the seed is ``random_seed``,
embeddings take ``inputs``, stream events wrap the chunk in ``data``, content may be a list of
chunks (``thinking`` among them), and ``model_length`` is one more way to run out of tokens.
"""

from __future__ import annotations

from typing import Any

from micrometrics.reading import field, given, is_stream, json_or_text, per_client, server
from micrometrics.records import EmbeddingsRecord, InferenceRecord, list_items, raw_parsed
from micrometrics_instrumentation.openai import translators as openai
from micrometrics_instrumentation.translator import with_leading_system
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

#: Mistral's finish reasons the OpenAI mapping does not know.
_FINISH = {"model_length": V.FINISH_LENGTH}


@per_client
def _configured(config: Any) -> tuple[str | None, int | None]:
    try:
        url, _ = config.get_server_details()
    except Exception:  # a configuration we cannot read: no server attributes
        return None, None
    return server(url)


def endpoint(instance: Any) -> tuple[str, str | None, int | None]:
    """(provider name, server.address, server.port) of a resource's client: ``mistral_ai`` whatever its server."""
    host, port = _configured(getattr(instance, "sdk_configuration", None))
    return V.PROVIDER_MISTRAL_AI, host, port


def _call_server(record: Any, kwargs: dict) -> None:
    """A call's own ``server_url`` overrides the client's."""
    url = kwargs.get("server_url")
    if given(url):
        record.server_address, record.server_port = server(url)


def _remap_finish(record: InferenceRecord) -> None:
    record.finish_reasons = [_FINISH.get(r, r) for r in record.finish_reasons]
    for message in record.output_messages:
        reason = message.get("finish_reason")
        if reason in _FINISH:
            message["finish_reason"] = _FINISH[reason]


def content_parts(content: Any) -> list[dict[str, Any]]:
    """Text, or a list of chunks: ``thinking`` chunks become reasoning parts, the others as OpenAI's."""
    if not isinstance(content, (list, tuple)):
        return openai.content_parts(content)
    parts: list[dict[str, Any]] = []
    for chunk in content:
        if field(chunk, "type") == "thinking":
            texts = [field(t, "text") for t in list_items(field(chunk, "thinking"))]
            parts.append({"type": "reasoning", "content": "".join(t for t in texts if isinstance(t, str))})
        else:
            parts.extend(openai.content_parts([chunk]))
    return parts


def _message_parts(choice: Any) -> list[dict[str, Any]]:
    message = field(choice, "message")
    parts = content_parts(field(message, "content"))
    for call in list_items(field(message, "tool_calls")):
        fn = field(call, "function")
        parts.append({"type": "tool_call", "id": field(call, "id"), "name": field(fn, "name"), "arguments": json_or_text(field(fn, "arguments"))})
    return parts


class ChatTranslator(openai.ChatTranslator):
    """``chat.complete`` / ``complete_async`` (``streams=False``), ``chat.stream`` / ``stream_async`` (``streams=True``)."""

    def __init__(self, streams: bool = False) -> None:
        self.streams = streams

    def endpoint(self, instance: Any) -> tuple[str, str | None, int | None]:
        return endpoint(instance)

    def request(self, instance: Any, args: tuple, kwargs: dict) -> InferenceRecord:
        # The OpenAI names of Mistral's parameters; what the OpenAI request reads and Mistral lacks stays unset.
        openai_kwargs = {**kwargs, "seed": kwargs.get("random_seed"), "stream": self.streams}
        record = super().request(instance, args, openai_kwargs)
        _call_server(record, kwargs)
        if given(kwargs.get("top_k")):
            record.params[A.GEN_AI_REQUEST_TOP_K] = kwargs["top_k"]
        return record

    def response(self, record: InferenceRecord, response: Any) -> None:
        openai.apply_choices(record, raw_parsed(response), _message_parts)
        _remap_finish(record)

    def accumulator(self, record: InferenceRecord, stream: Any) -> "ChatAccumulator | None":
        return ChatAccumulator(record) if is_stream(stream) else None

    def with_instruction(self, kwargs: dict, instruction: str) -> dict:
        # Mistral serves a chat whose last message is the user's or a tool's: the instruction goes first.
        return {**kwargs, "messages": with_leading_system(kwargs.get("messages"), instruction)}


class ChatAccumulator(openai.ChatAccumulator):
    """Folds ``CompletionEvent``s: each wraps an OpenAI-shaped chunk in ``data``, whose content may be chunks."""

    __slots__ = ()

    def add(self, event: Any) -> None:
        chunk = getattr(event, "data", None)
        if chunk is None:
            return
        super().add(chunk)
        choices = getattr(chunk, "choices", None)
        if type(choices) is not list:
            return
        for c in choices:
            content = getattr(getattr(c, "delta", None), "content", None)
            if type(content) is not list:
                continue  # text: the OpenAI fold read it
            index = getattr(c, "index", None)
            state = self.choices.get(index if type(index) is int else 0)
            for piece in content:
                kind = getattr(piece, "type", None)
                text = getattr(piece, "text", None)
                if kind == "text" and type(text) is str and state is not None:
                    state.text.append(text)
                elif kind == "thinking":
                    self.non_text = True

    def apply(self) -> None:
        super().apply()
        _remap_finish(self.record)


class EmbeddingsTranslator(openai.EmbeddingsTranslator):
    """``embeddings.create`` / ``create_async``."""

    def endpoint(self, instance: Any) -> tuple[str, str | None, int | None]:
        return endpoint(instance)

    def request(self, instance: Any, args: tuple, kwargs: dict) -> EmbeddingsRecord:
        record = super().request(instance, args, {**kwargs, "input": kwargs.get("inputs")})
        _call_server(record, kwargs)
        return record
