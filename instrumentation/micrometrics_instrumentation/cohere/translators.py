"""Cohere v2 chat and embed requests and responses -> call records. Translation only: no OpenTelemetry here.

Cohere v2 messages are OpenAI-shaped (roles, text parts, tool calls with JSON arguments), so
the requests are read with the OpenAI translators' message reader; the responses, the stream
events and the usage are Cohere's own.
"""

from __future__ import annotations

from typing import Any

from micrometrics.reading import field, given, is_stream, json_or_text, per_client, server
from micrometrics.records import EmbeddingsRecord, InferenceRecord, list_items, text_part, tool_definitions
from micrometrics_instrumentation.openai.translators import chat_messages, openai_tool
from micrometrics_instrumentation.translator import Translator, with_leading_system
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

#: Cohere finish reasons -> the conventions' (others pass through, lower-cased).
_FINISH = {
    "COMPLETE": V.FINISH_STOP,
    "STOP_SEQUENCE": V.FINISH_STOP,
    "MAX_TOKENS": V.FINISH_LENGTH,
    "TOOL_CALL": V.FINISH_TOOL_CALL,
    "ERROR": V.FINISH_ERROR,
    "TIMEOUT": V.FINISH_ERROR,
}

#: Request keyword -> attribute; Cohere names top_p ``p`` and top_k ``k``.
_PARAMS = (
    ("max_tokens", A.GEN_AI_REQUEST_MAX_TOKENS),
    ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
    ("p", A.GEN_AI_REQUEST_TOP_P),
    ("k", A.GEN_AI_REQUEST_TOP_K),
    ("seed", A.GEN_AI_REQUEST_SEED),
    ("frequency_penalty", A.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", A.GEN_AI_REQUEST_PRESENCE_PENALTY),
)


@per_client
def endpoint(client: Any) -> tuple[str, str | None, int | None]:
    """(provider name, server.address, server.port) of a ``ClientV2``/``AsyncClientV2`` (or ``client.v2``)."""
    wrapper = getattr(client, "_client_wrapper", None)
    try:
        url = wrapper.get_base_url() if wrapper is not None else None
    except Exception:  # a wrapper we cannot read: no server attributes
        url = None
    host, port = server(url)
    return V.PROVIDER_COHERE, host, port


def _record(cls: type, instance: Any, kwargs: dict, operation: str, **fields: Any) -> Any:
    """A record with what chat and embed share: provider, model, server."""
    provider, host, port = endpoint(instance)
    model = kwargs.get("model")
    return cls(operation=operation, provider=provider, model=model if given(model) else None, server_address=host, server_port=port, **fields)


def finish_reason(reason: Any) -> str:
    if not isinstance(reason, str) or not reason:
        return V.FINISH_ERROR
    return _FINISH.get(reason, reason.lower())


def _count(value: Any) -> int | None:
    """A token count: Cohere sends them as numbers that may be floats (``12.0``)."""
    if type(value) is int:
        return value
    if type(value) is float and value.is_integer() and value >= 0:
        return int(value)
    return None


def apply_usage(record: Any, usage: Any) -> None:
    """``tokens`` (what the model read and wrote), else ``billed_units``; ``cached_tokens`` of the input."""
    if usage is None:
        return
    counted, billed = field(usage, "tokens"), field(usage, "billed_units")
    for key, attr in (("input_tokens", "input_tokens"), ("output_tokens", "output_tokens")):
        value = _count(field(counted, key))
        if value is None:
            value = _count(field(billed, key))
        if value is not None:
            setattr(record, attr, value)
    cached = _count(field(usage, "cached_tokens"))
    if cached is not None:
        record.cache_read_tokens = cached


def _tool_call_part(call: Any) -> dict[str, Any]:
    fn = field(call, "function")
    return {"type": "tool_call", "id": field(call, "id"), "name": field(fn, "name"), "arguments": json_or_text(field(fn, "arguments"))}


def message_parts(message: Any) -> list[dict[str, Any]]:
    """An assistant message: thinking and the tool plan as reasoning, text, tool calls."""
    parts: list[dict[str, Any]] = []
    plan = field(message, "tool_plan")
    if isinstance(plan, str) and plan:
        parts.append({"type": "reasoning", "content": plan})
    for item in list_items(field(message, "content")):
        kind = field(item, "type")
        if kind == "text":
            text = field(item, "text")
            parts.append(text_part(text if isinstance(text, str) else ""))
        elif kind == "thinking":
            thinking = field(item, "thinking")
            parts.append({"type": "reasoning", "content": thinking if isinstance(thinking, str) else ""})
        elif kind:
            parts.append({"type": str(kind)})
    for call in list_items(field(message, "tool_calls")):
        parts.append(_tool_call_part(call))
    return parts


def _output_type(response_format: Any) -> str | None:
    kind = field(response_format, "type")
    return "json" if kind == "json_object" else "text" if kind == "text" else None


class ChatTranslator(Translator):
    """``chat`` (``streams=False``) and ``chat_stream`` (``streams=True``) of ``ClientV2``/``AsyncClientV2``."""

    def __init__(self, streams: bool = False) -> None:
        self.streams = streams

    def request(self, instance: Any, args: tuple, kwargs: dict) -> InferenceRecord:
        params = {attr: kwargs[key] for key, attr in _PARAMS if given(kwargs.get(key))}
        stop = kwargs.get("stop_sequences")
        if isinstance(stop, (list, tuple)):
            params[A.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stop)
        tools = kwargs.get("tools")
        return _record(
            InferenceRecord, instance, kwargs, V.OPERATION_CHAT,
            params=params,
            stream=self.streams,
            input_messages=chat_messages(kwargs.get("messages")),
            tool_definitions=tool_definitions(tools, openai_tool),  # v2 tools have OpenAI's shape
            output_type=_output_type(kwargs.get("response_format")),
        )

    def response(self, record: InferenceRecord, response: Any) -> None:
        record.response_id = field(response, "id")
        reason = finish_reason(field(response, "finish_reason"))
        record.output_messages = [{"role": "assistant", "parts": message_parts(field(response, "message")), "finish_reason": reason}]
        record.finish_reasons = [reason]
        apply_usage(record, field(response, "usage"))

    def accumulator(self, record: InferenceRecord, stream: Any) -> "ChatAccumulator | None":
        return ChatAccumulator(record) if is_stream(stream) else None

    def with_instruction(self, kwargs: dict, instruction: str) -> dict:
        return {**kwargs, "messages": with_leading_system(kwargs.get("messages"), instruction)}


def _delta_message(event: Any) -> Any:
    return getattr(getattr(event, "delta", None), "message", None)


class ChatAccumulator:
    """Folds Cohere v2 stream events (``message-start`` ... ``message-end``) into the record; cheap per event."""

    __slots__ = ("record", "texts", "reasoning", "tools", "id", "reason", "usage", "non_text")

    def __init__(self, record: InferenceRecord) -> None:
        self.record = record
        self.texts: list[str] = []
        self.reasoning: list[str] = []
        self.tools: dict[int, list] = {}  # index -> [id, name, argument pieces]
        self.id: str | None = None
        self.reason: str | None = None
        self.usage: Any = None
        self.non_text = False  # output other than text (a tool plan, tool calls, thinking) began: see streams.Accumulator

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def add(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "content-delta" or kind == "content-start":
            content = getattr(_delta_message(event), "content", None)
            text = getattr(content, "text", None)
            if text and type(text) is str:
                self.texts.append(text)
            thinking = getattr(content, "thinking", None)
            if thinking and type(thinking) is str:
                self.reasoning.append(thinking)
                self.non_text = True
        elif kind == "tool-plan-delta":
            plan = getattr(_delta_message(event), "tool_plan", None)
            if plan and type(plan) is str:
                self.reasoning.append(plan)
            self.non_text = True
        elif kind == "tool-call-start" or kind == "tool-call-delta":
            self.non_text = True
            call = getattr(_delta_message(event), "tool_calls", None)
            index = getattr(event, "index", None)
            slot = self.tools.setdefault(index if type(index) is int else 0, [None, None, []])
            if kind == "tool-call-start" and getattr(call, "id", None):
                slot[0] = call.id
            fn = getattr(call, "function", None)
            name = getattr(fn, "name", None)
            if name and type(name) is str:
                slot[1] = name
            arguments = getattr(fn, "arguments", None)
            if arguments and type(arguments) is str:
                slot[2].append(arguments)
        elif kind == "message-start":
            self.id = getattr(event, "id", None)
        elif kind == "message-end":
            delta = getattr(event, "delta", None)
            self.reason = getattr(delta, "finish_reason", None) or self.reason
            self.usage = getattr(delta, "usage", None)

    def apply(self) -> None:
        record = self.record
        record.response_id = self.id if isinstance(self.id, str) else None
        parts: list[dict[str, Any]] = []
        if self.reasoning:
            parts.append({"type": "reasoning", "content": "".join(self.reasoning)})
        if self.texts:
            parts.append(text_part(self.text))
        for _, (call_id, name, pieces) in sorted(self.tools.items()):
            parts.append({"type": "tool_call", "id": call_id, "name": name, "arguments": json_or_text("".join(pieces)) if pieces else {}})
        if self.reason:
            reason = finish_reason(self.reason)
            record.finish_reasons = [reason]
        else:
            reason = V.FINISH_ERROR  # the stream ended before message-end
        if parts or self.id:
            record.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": reason}]
        apply_usage(record, self.usage)


def _vectors(embeddings: Any) -> Any:
    """The first list of vectors among the types the response carries (``float`` first)."""
    for key in ("float_", "float", "int8", "uint8", "binary", "ubinary", "base64"):
        vectors = field(embeddings, key)
        if isinstance(vectors, list) and vectors:
            return vectors
    return None


class EmbedTranslator(Translator):
    """``embed`` of ``ClientV2``/``AsyncClientV2``."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> EmbeddingsRecord:
        texts = kwargs.get("texts")
        texts = list(texts) if isinstance(texts, (list, tuple)) else []
        count = len(texts) or len(list_items(kwargs.get("inputs"))) or len(list_items(kwargs.get("images")))
        params: dict[str, Any] = {}
        types = kwargs.get("embedding_types")
        if isinstance(types, (list, tuple)) and types:
            params[A.GEN_AI_REQUEST_ENCODING_FORMATS] = tuple(str(t) for t in types)
        return _record(
            EmbeddingsRecord, instance, kwargs, V.OPERATION_EMBEDDINGS,
            params=params,
            input_count=count,
            inputs=[t for t in texts if isinstance(t, str)],
        )

    def response(self, record: EmbeddingsRecord, response: Any) -> None:
        record.response_id = field(response, "id")
        vectors = _vectors(field(response, "embeddings"))
        if vectors is not None and isinstance(vectors[0], list):
            record.dimension_count = len(vectors[0])
        meta = field(response, "meta")
        counted = _count(field(field(meta, "tokens"), "input_tokens"))
        record.input_tokens = counted if counted is not None else _count(field(field(meta, "billed_units"), "input_tokens"))
