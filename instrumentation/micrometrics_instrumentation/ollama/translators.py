"""Ollama chat, generate and embed requests and responses -> call records. Translation only: no OpenTelemetry here.

Ollama's chat messages are OpenAI-shaped (roles, text, tool calls), so they are read with the
OpenAI translators' message reader. Its responses carry no id; the last chunk of a stream
(``done``) carries the finish reason and the token counts.
"""

from __future__ import annotations

from typing import Any

from micrometrics.reading import field, given, is_stream, per_client, server
from micrometrics import records
from micrometrics.records import EmbeddingsRecord, InferenceRecord, list_items, text_part
from micrometrics_instrumentation.openai.translators import chat_messages, openai_tool
from micrometrics_instrumentation.translator import Translator, with_leading_system
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

#: Ollama's done reasons -> the conventions' finish reasons (a call with tool calls: ``tool_call``).
_FINISH = {"stop": V.FINISH_STOP, "length": V.FINISH_LENGTH}

#: ``options`` key -> attribute (``num_predict`` is the maximum number of tokens to generate).
_OPTIONS = (
    ("num_predict", A.GEN_AI_REQUEST_MAX_TOKENS),
    ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", A.GEN_AI_REQUEST_TOP_P),
    ("top_k", A.GEN_AI_REQUEST_TOP_K),
    ("seed", A.GEN_AI_REQUEST_SEED),
    ("frequency_penalty", A.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", A.GEN_AI_REQUEST_PRESENCE_PENALTY),
)


@per_client
def endpoint(client: Any) -> tuple[str, str | None, int | None]:
    """(provider name, server.address, server.port) of a ``Client``/``AsyncClient``: its httpx client's base URL."""
    host, port = server(getattr(getattr(client, "_client", None), "base_url", None))
    return V.PROVIDER_OLLAMA, host, port


def finish_reason(reason: Any, tool_called: bool) -> str:
    if tool_called:
        return V.FINISH_TOOL_CALL
    return _FINISH.get(reason, reason) if isinstance(reason, str) and reason else V.FINISH_ERROR


def _params(options: Any) -> dict[str, Any]:
    params = {attr: field(options, key) for key, attr in _OPTIONS if given(field(options, key))}
    stop = field(options, "stop")
    if isinstance(stop, (list, tuple)):
        params[A.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stop)
    return params


def _output_type(fmt: Any) -> str | None:
    return "json" if fmt == "json" or isinstance(fmt, dict) else None


def tool_definitions(tools: Any) -> list[Any] | None:
    """Tools (OpenAI's shape) as the conventions' definitions; a Python function (which the SDK turns into a schema) by its name."""
    return records.tool_definitions(tools, _tool)


def _tool(tool: Any) -> dict[str, Any] | None:
    if callable(tool):
        return records.tool_definition("function", getattr(tool, "__name__", None))
    return openai_tool(tool)


def _tool_call_parts(message: Any) -> list[dict[str, Any]]:
    parts = []
    for call in list_items(field(message, "tool_calls")):
        fn = field(call, "function")
        parts.append({"type": "tool_call", "id": field(call, "id"), "name": field(fn, "name"), "arguments": field(fn, "arguments")})
    return parts


def _apply_counts(record: Any, response: Any) -> None:
    """``prompt_eval_count`` and ``eval_count``: the tokens read and generated."""
    for key, attr in (("prompt_eval_count", "input_tokens"), ("eval_count", "output_tokens")):
        value = field(response, key)
        if type(value) is int:
            setattr(record, attr, value)


class _Ollama(Translator):
    #: The method's positional parameters, in order: Ollama's methods take the model (and more) positionally.
    positional: tuple[str, ...] = ("model",)

    def named(self, args: tuple, kwargs: dict) -> dict:
        """The call's arguments by name."""
        return {**dict(zip(self.positional, args)), **kwargs}

    def retry(self, args: tuple, kwargs: dict, instruction: str | None) -> tuple[tuple, dict]:
        if not instruction:
            return args, kwargs
        return (), self.with_instruction(self.named(args, kwargs), instruction)

    def _record(self, cls: type, instance: Any, named: dict, operation: str, **fields: Any) -> Any:
        provider, host, port = endpoint(instance)
        model = named.get("model")
        return cls(
            operation=operation,
            provider=provider,
            model=model if isinstance(model, str) and model else None,
            server_address=host,
            server_port=port,
            **fields,
        )


class ChatTranslator(_Ollama):
    """``chat`` of ``Client``/``AsyncClient`` (and ``ollama.chat``)."""

    positional = ("model", "messages")

    def request(self, instance: Any, args: tuple, kwargs: dict) -> InferenceRecord:
        named = self.named(args, kwargs)
        return self._record(
            InferenceRecord, instance, named, V.OPERATION_CHAT,
            params=_params(named.get("options")),
            stream=named.get("stream") is True,
            input_messages=chat_messages(named.get("messages")),
            tool_definitions=tool_definitions(named.get("tools")),
            output_type=_output_type(named.get("format")),
        )

    def response(self, record: InferenceRecord, response: Any) -> None:
        record.response_model = field(response, "model")
        message = field(response, "message")
        parts: list[dict[str, Any]] = []
        thinking = field(message, "thinking")
        if isinstance(thinking, str) and thinking:
            parts.append({"type": "reasoning", "content": thinking})
        content = field(message, "content")
        if isinstance(content, str) and content:
            parts.append(text_part(content))
        calls = _tool_call_parts(message)
        reason = finish_reason(field(response, "done_reason"), bool(calls))
        record.output_messages = [{"role": "assistant", "parts": parts + calls, "finish_reason": reason}]
        record.finish_reasons = [reason]
        _apply_counts(record, response)

    def accumulator(self, record: InferenceRecord, stream: Any) -> "Accumulator | None":
        return Accumulator(record, "chat") if is_stream(stream) else None

    def with_instruction(self, kwargs: dict, instruction: str) -> dict:
        return {**kwargs, "messages": with_leading_system(kwargs.get("messages"), instruction)}


class GenerateTranslator(_Ollama):
    """``generate`` of ``Client``/``AsyncClient`` (and ``ollama.generate``): a text completion."""

    positional = ("model", "prompt", "suffix")

    def request(self, instance: Any, args: tuple, kwargs: dict) -> InferenceRecord:
        named = self.named(args, kwargs)
        prompt, system = named.get("prompt"), named.get("system")
        return self._record(
            InferenceRecord, instance, named, V.OPERATION_TEXT_COMPLETION,
            params=_params(named.get("options")),
            stream=named.get("stream") is True,
            input_messages=[{"role": "user", "parts": [text_part(prompt)]}] if isinstance(prompt, str) and prompt else [],
            system_instructions=[text_part(system)] if isinstance(system, str) and system else [],
            output_type=_output_type(named.get("format")),
        )

    def response(self, record: InferenceRecord, response: Any) -> None:
        record.response_model = field(response, "model")
        parts: list[dict[str, Any]] = []
        thinking = field(response, "thinking")
        if isinstance(thinking, str) and thinking:
            parts.append({"type": "reasoning", "content": thinking})
        text = field(response, "response")
        if isinstance(text, str):
            parts.append(text_part(text))
        reason = finish_reason(field(response, "done_reason"), False)
        record.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": reason}]
        record.finish_reasons = [reason]
        _apply_counts(record, response)

    def accumulator(self, record: InferenceRecord, stream: Any) -> "Accumulator | None":
        return Accumulator(record, "generate") if is_stream(stream) else None

    def with_instruction(self, kwargs: dict, instruction: str) -> dict:
        system = kwargs.get("system")
        return {**kwargs, "system": f"{system}\n\n{instruction}" if isinstance(system, str) and system else instruction}


class Accumulator:
    """Folds the ``ChatResponse``/``GenerateResponse`` chunks of a stream; the ``done`` one ends it with the counts."""

    __slots__ = ("record", "kind", "texts", "thinking", "tools", "final", "model", "non_text")

    def __init__(self, record: InferenceRecord, kind: str) -> None:
        self.record = record
        self.kind = kind  # "chat" (text in message.content) or "generate" (text in response)
        self.texts: list[str] = []
        self.thinking: list[str] = []
        self.tools: list[dict[str, Any]] = []
        self.final: Any = None
        self.model: Any = None
        self.non_text = False  # output other than text (tool calls, thinking) began: see streams.Accumulator

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def add(self, chunk: Any) -> None:
        if self.model is None:
            self.model = getattr(chunk, "model", None)
        source = getattr(chunk, "message", None) if self.kind == "chat" else chunk
        text = getattr(source, "content" if self.kind == "chat" else "response", None)
        if text and type(text) is str:
            self.texts.append(text)
        thinking = getattr(source, "thinking", None)
        if thinking and type(thinking) is str:
            self.thinking.append(thinking)
            self.non_text = True
        if self.kind == "chat" and getattr(source, "tool_calls", None):
            self.tools.extend(_tool_call_parts(source))
            self.non_text = True
        if getattr(chunk, "done", None) is True:
            self.final = chunk

    def apply(self) -> None:
        record = self.record
        record.response_model = self.model if isinstance(self.model, str) else None
        parts: list[dict[str, Any]] = [{"type": "reasoning", "content": "".join(self.thinking)}] if self.thinking else []
        if self.texts:
            parts.append(text_part(self.text))
        parts += self.tools
        if self.final is not None:
            reason = finish_reason(getattr(self.final, "done_reason", None), bool(self.tools))
            record.finish_reasons = [reason]
            _apply_counts(record, self.final)
        else:
            reason = V.FINISH_ERROR  # the stream ended before its last (done) chunk
        if parts or self.final is not None:
            record.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": reason}]


class EmbedTranslator(_Ollama):
    """``embed`` of ``Client``/``AsyncClient`` (and ``ollama.embed``)."""

    positional = ("model", "input", "truncate", "options", "keep_alive", "dimensions")

    def request(self, instance: Any, args: tuple, kwargs: dict) -> EmbeddingsRecord:
        named = self.named(args, kwargs)
        raw = named.get("input")
        inputs = [raw] if isinstance(raw, str) else [t for t in list_items(raw) if isinstance(t, str)]
        return self._record(
            EmbeddingsRecord, instance, named, V.OPERATION_EMBEDDINGS,
            input_count=len(raw) if isinstance(raw, (list, tuple)) else 1,
            inputs=inputs,
        )

    def response(self, record: EmbeddingsRecord, response: Any) -> None:
        record.response_model = field(response, "model")
        vectors = field(response, "embeddings")
        if isinstance(vectors, (list, tuple)) and vectors and isinstance(vectors[0], (list, tuple)):
            record.dimension_count = len(vectors[0])
        count = field(response, "prompt_eval_count")
        if type(count) is int:
            record.input_tokens = count
