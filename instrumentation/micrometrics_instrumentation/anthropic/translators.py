"""Anthropic Messages requests and responses -> call records. Translation only: no OpenTelemetry here."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any, Iterable

from opentelemetry import trace

from micrometrics.records import InferenceRecord, blob_part, list_items, raw_parsed, text_part, tool_definition, tool_definitions, uri_part
from micrometrics.reading import field, given, is_stream, json_or_text, server
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

#: Anthropic stop reasons -> the conventions' finish reasons (others pass through as sent).
_FINISH = {
    "end_turn": V.FINISH_STOP,
    "stop_sequence": V.FINISH_STOP,
    "pause_turn": V.FINISH_STOP,
    "max_tokens": V.FINISH_LENGTH,
    "model_context_window_exceeded": V.FINISH_LENGTH,
    "tool_use": V.FINISH_TOOL_CALL,
    "refusal": V.FINISH_CONTENT_FILTER,
}

#: Client classes that predate ``_gen_ai_provider_name``, by name.
_CLASS_PROVIDERS = {
    "AnthropicBedrock": V.PROVIDER_AWS_BEDROCK,
    "AsyncAnthropicBedrock": V.PROVIDER_AWS_BEDROCK,
    "AnthropicBedrockMantle": V.PROVIDER_AWS_BEDROCK,
    "AsyncAnthropicBedrockMantle": V.PROVIDER_AWS_BEDROCK,
    "AnthropicVertex": V.PROVIDER_GCP_VERTEX_AI,
    "AsyncAnthropicVertex": V.PROVIDER_GCP_VERTEX_AI,
}

#: The span current when this context's call was translated: the runtime makes our span current
#: right after, so the instrumentor tells our span (any other one) from the caller's (the same one).
starting: ContextVar[Any] = ContextVar("micrometrics_anthropic_starting", default=None)


def endpoint(client: Any) -> tuple[str, str | None, int | None]:
    """(provider name, server.address, server.port) of an Anthropic, Bedrock or Vertex client."""
    provider = _CLASS_PROVIDERS.get(type(client).__name__) or getattr(client, "_gen_ai_provider_name", None) or V.PROVIDER_ANTHROPIC
    host, port = server(getattr(client, "base_url", None))
    return str(provider), host, port


def finish_reason(reason: Any) -> str:
    return _FINISH.get(reason, reason) if isinstance(reason, str) and reason else V.FINISH_ERROR


def _tool_result_response(content: Any) -> Any:
    """A tool_result's content: a string, or the text of its blocks."""
    if isinstance(content, str) or content is None:
        return content
    texts = [field(b, "text") for b in content if field(b, "type") == "text"] if isinstance(content, Iterable) else []
    return "".join(t for t in texts if isinstance(t, str)) if texts else str(content)


def block_part(block: Any) -> dict[str, Any] | None:
    """One content block (request param or response model) -> a conventions' part."""
    kind = field(block, "type")
    if kind == "text":
        return text_part(field(block, "text") or "")
    if kind == "tool_use":
        return {"type": "tool_call", "id": field(block, "id"), "name": field(block, "name"), "arguments": field(block, "input")}
    if kind == "tool_result":
        return {"type": "tool_call_response", "id": field(block, "tool_use_id"), "response": _tool_result_response(field(block, "content"))}
    if kind == "thinking":
        return {"type": "reasoning", "content": field(block, "thinking") or ""}
    if kind == "redacted_thinking":
        return {"type": "reasoning", "content": ""}  # encrypted by the provider: nothing readable
    if kind == "server_tool_use":
        name = field(block, "name")
        return {"type": "server_tool_call", "id": field(block, "id"), "name": name or "",
                "server_tool_call": {"type": name or "server_tool_use", "input": field(block, "input")}}
    if kind in ("image", "document"):
        source = field(block, "source")
        modality = "image" if kind == "image" else "document"
        source_type = field(source, "type")
        if source_type == "url":
            return uri_part(field(source, "url"), kind=modality)
        if source_type == "base64" and isinstance(field(source, "data"), str):
            return blob_part(field(source, "media_type"), field(source, "data"), modality)
        if source_type == "file" and isinstance(field(source, "file_id"), str):
            return {"type": "file", "modality": modality, "file_id": field(source, "file_id")}
        return {"type": str(kind), "modality": modality, "mime_type": field(source, "media_type")}  # file ids, text sources
    if isinstance(kind, str) and kind.endswith("_tool_result"):
        return {"type": "server_tool_call_response", "id": field(block, "tool_use_id"), "server_tool_call_response": {"type": kind}}
    return {"type": str(kind)} if kind else None


def content_parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts = []
    for block in content if isinstance(content, Iterable) else ():
        part = block_part(block)
        if part is not None:
            parts.append(part)
    return parts


def input_messages(messages: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in list_items(messages):
        role = field(m, "role") or "user"
        content = field(m, "content")
        if type(content) is str:  # the common case, kept cheap: long conversations are translated every call
            out.append({"role": role, "parts": [text_part(content)]})
            continue
        parts = content_parts(content)
        # Tool results travel in user turns; the conventions give them the tool role.
        if parts and all(p["type"] == "tool_call_response" for p in parts):
            role = "tool"
        out.append({"role": role, "parts": parts})
    return out


def system_parts(system: Any) -> list[dict[str, Any]]:
    if not given(system):
        return []
    if isinstance(system, str):
        return [text_part(system)] if system else []
    return [text_part(field(b, "text") or "") for b in list_items(system) if field(b, "type", "text") == "text"]


def anthropic_tool(tool: Any) -> dict[str, Any] | None:
    """A client tool (``input_schema``; type absent or ``custom``) is a function; a server tool keeps its versioned type."""
    kind = field(tool, "type")
    if field(tool, "input_schema") is not None or kind in (None, "custom"):
        return tool_definition("function", field(tool, "name"), field(tool, "description"), field(tool, "input_schema"))
    return tool_definition(kind, field(tool, "name"))  # web search, code execution, ...


def _output_type(kwargs: dict) -> str | None:
    if given(kwargs.get("output_format")):
        return "json"
    formats = (field(field(kwargs.get("output_config"), "format"), "type"),)
    return "json" if "json_schema" in formats else None


def _effort(kwargs: dict) -> str | None:
    """``output_config.effort``, the level sent; a thinking budget is a token count, not a level."""
    effort = field(kwargs.get("output_config"), "effort")
    return effort if isinstance(effort, str) and effort else None


def apply_usage(record: InferenceRecord, usage: Any) -> None:
    """Anthropic reports cached input apart; the conventions' input tokens include it."""
    if usage is None:
        return
    uncached = field(usage, "input_tokens")
    read = field(usage, "cache_read_input_tokens")
    created = field(usage, "cache_creation_input_tokens")
    if isinstance(uncached, int):
        record.input_tokens = uncached + (read or 0) + (created or 0)
    if isinstance(read, int):
        record.cache_read_tokens = read
    if isinstance(created, int):
        record.cache_creation_tokens = created
    output = field(usage, "output_tokens")
    if isinstance(output, int):
        record.output_tokens = output
    thinking = field(field(usage, "output_tokens_details"), "thinking_tokens")
    if isinstance(thinking, int):
        record.reasoning_tokens = thinking


class MessagesTranslator(Translator):
    """``messages.create`` / ``.parse`` (and their beta twins)."""

    #: ``messages.stream()`` always streams, whatever its arguments say.
    always_streams = False

    def request(self, instance: Any, args: tuple, kwargs: dict) -> InferenceRecord:
        provider, host, port = endpoint(getattr(instance, "_client", None))
        params: dict[str, Any] = {}
        for key, attr in (
            ("max_tokens", A.GEN_AI_REQUEST_MAX_TOKENS),
            ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
            ("top_p", A.GEN_AI_REQUEST_TOP_P),
            ("top_k", A.GEN_AI_REQUEST_TOP_K),
        ):
            if given(kwargs.get(key)):
                params[attr] = kwargs[key]
        stop = kwargs.get("stop_sequences")
        if given(stop):
            params[A.GEN_AI_REQUEST_STOP_SEQUENCES] = (stop,) if isinstance(stop, str) else tuple(stop) if isinstance(stop, (list, tuple)) else None
        model = kwargs.get("model")
        record = InferenceRecord(
            operation=V.OPERATION_CHAT,
            provider=provider,
            model=model if given(model) else None,
            server_address=host,
            server_port=port,
            params=params,
            stream=self.always_streams or kwargs.get("stream") is True,
            input_messages=input_messages(kwargs.get("messages")),
            system_instructions=system_parts(kwargs.get("system")),
            tool_definitions=tool_definitions(kwargs.get("tools"), anthropic_tool),
            output_type=_output_type(kwargs),
            reasoning_level=_effort(kwargs),
        )
        starting.set(trace.get_current_span())
        return record

    def response(self, record: InferenceRecord, response: Any) -> None:
        message = raw_parsed(response)
        if message is not None:
            apply_message(record, message)

    def accumulator(self, record: InferenceRecord, stream: Any) -> "MessageAccumulator | None":
        # Not a raw or streaming-response wrapper: we do not read its body.
        return MessageAccumulator(record) if is_stream(stream) else None

    def with_instruction(self, kwargs: dict, instruction: str) -> dict:
        """The request with ``instruction`` appended to its system prompt, the Anthropic way."""
        system = kwargs.get("system")
        if isinstance(system, str) and system:
            merged: Any = f"{system}\n\n{instruction}"
        elif isinstance(system, (list, tuple)):
            merged = [*system, {"type": "text", "text": instruction}]
        else:
            merged = instruction
        return {**kwargs, "system": merged}


class StreamHelperTranslator(MessagesTranslator):
    """``messages.stream()``: the raw event stream under the helper's ``MessageStream``."""

    always_streams = True


def apply_message(record: InferenceRecord, message: Any) -> None:
    record.response_id = field(message, "id")
    record.response_model = field(message, "model")
    reason = finish_reason(field(message, "stop_reason"))
    record.output_messages = [{"role": "assistant", "parts": content_parts(field(message, "content")), "finish_reason": reason}]
    record.finish_reasons = [reason]
    apply_usage(record, field(message, "usage"))


class _Block:
    __slots__ = ("kind", "pieces", "id", "name")

    def __init__(self, kind: str, id: str | None = None, name: str | None = None) -> None:
        self.kind = kind
        self.pieces: list[str] = []
        self.id = id
        self.name = name


#: The field of each content-block delta type that carries its piece.
_DELTA_FIELDS = {"text_delta": "text", "input_json_delta": "partial_json", "thinking_delta": "thinking"}


def _block_index(event: Any) -> int:
    index = getattr(event, "index", None)
    return index if type(index) is int else 0


class MessageAccumulator:
    """Folds raw Messages stream events into the record; cheap per event."""

    __slots__ = ("record", "blocks", "texts", "id", "model", "usage", "stop_reason", "non_text")

    def __init__(self, record: InferenceRecord) -> None:
        self.record = record
        self.blocks: dict[int, _Block] = {}
        self.texts: list[str] = []  # every text delta, in order: what the reader reads
        self.id: str | None = None
        self.model: str | None = None
        self.usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.non_text = False

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def _usage(self, usage: Any) -> None:
        if usage is None:
            return
        for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens", "output_tokens_details"):
            value = getattr(usage, key, None)
            if value is not None:
                self.usage[key] = value

    def add(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            delta = getattr(event, "delta", None)
            dtype = getattr(delta, "type", None)
            field = _DELTA_FIELDS.get(dtype) if type(dtype) is str else None
            if field is None:
                return
            piece = getattr(delta, field, None)
            if not piece or type(piece) is not str:  # null or malformed on the wire: nothing to read
                piece = None
            block = self.blocks.get(_block_index(event))
            if dtype == "text_delta":
                if piece is not None:
                    self.texts.append(piece)
            else:
                self.non_text = True  # tool input or thinking: output a text guard cannot judge
            if piece is not None and block is not None:
                block.pieces.append(piece)
        elif kind == "content_block_start":
            cb = getattr(event, "content_block", None)
            ctype = getattr(cb, "type", None)
            if type(ctype) is not str:
                return
            block = self.blocks[_block_index(event)] = _Block(ctype, getattr(cb, "id", None), getattr(cb, "name", None))
            if ctype != "text":
                self.non_text = True
                return
            initial = getattr(cb, "text", None)
            if initial and type(initial) is str:
                block.pieces.append(initial)
                self.texts.append(initial)
        elif kind == "message_start":
            message = getattr(event, "message", None)
            self.id = getattr(message, "id", None)
            self.model = getattr(message, "model", None)
            self._usage(getattr(message, "usage", None))
        elif kind == "message_delta":
            self.stop_reason = getattr(getattr(event, "delta", None), "stop_reason", None) or self.stop_reason
            self._usage(getattr(event, "usage", None))

    def apply(self) -> None:
        record = self.record
        record.response_id = self.id
        record.response_model = self.model
        parts: list[dict[str, Any]] = []
        for _, block in sorted(self.blocks.items()):
            joined = "".join(block.pieces)
            if block.kind == "text":
                parts.append(text_part(joined))
            elif block.kind == "tool_use":
                parts.append({"type": "tool_call", "id": block.id, "name": block.name, "arguments": json_or_text(joined) if joined else {}})
            elif block.kind == "thinking":
                parts.append({"type": "reasoning", "content": joined})
            elif block.kind == "server_tool_use":
                parts.append({"type": "server_tool_call", "id": block.id, "name": block.name})
            else:
                parts.append({"type": block.kind})
        if self.stop_reason:
            reason = finish_reason(self.stop_reason)
            record.finish_reasons = [reason]
        else:
            reason = V.FINISH_ERROR  # the stream ended before message_delta
        if parts or self.id:
            record.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": reason}]
        apply_usage(record, self.usage or None)
