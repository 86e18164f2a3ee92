"""OpenAI requests and responses -> call records. Translation only: no OpenTelemetry here."""

from __future__ import annotations

from types import MemberDescriptorType
from typing import Any, Iterable, Mapping

from micrometrics.records import EmbeddingsRecord, InferenceRecord, list_items, raw_parsed, text_part, tool_definition, tool_definitions, uri_part
from micrometrics.reading import field, given, is_stream, json_or_text, per_client, provider_for_host, server
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

_FINISH = {"tool_calls": V.FINISH_TOOL_CALL, "function_call": V.FINISH_TOOL_CALL}
#: The providers that are OpenAI's own service (direct or on Azure): the ones whose calls carry ``openai.*``
#: attributes. A compatible API of another provider (DeepSeek, Groq...) is that provider's, as the
#: conventions' ``gen_ai.provider.name`` discriminator asks.
_OPENAI_SERVICE = (V.PROVIDER_OPENAI, V.PROVIDER_AZURE_OPENAI)


@per_client
def endpoint(client: Any) -> tuple[str, str | None, int | None]:
    """(provider name, server.address, server.port) of a client: Azure by its class, compatible APIs by their host."""
    host, port = server(getattr(client, "base_url", None))
    if type(client).__name__ in ("AzureOpenAI", "AsyncAzureOpenAI"):
        return V.PROVIDER_AZURE_OPENAI, host, port
    return provider_for_host(host, V.PROVIDER_OPENAI, port=port), host, port


def openai_tool(tool: Any) -> dict[str, Any] | None:
    """A chat tool (``{"type": "function", "function": {...}}``) or a Responses tool (flat) -> the conventions' definition.

    Built-in tools (web search, file search, MCP, ...) are named by their type, or their MCP server label.
    """
    kind = field(tool, "type")
    if kind in ("function", "custom"):
        spec = field(tool, kind) or tool  # chat nests the definition under its type; Responses does not
        parameters = field(spec, "parameters") if kind == "function" else None
        return tool_definition(kind, field(spec, "name"), field(spec, "description"), parameters)
    return tool_definition(kind, field(tool, "name") or field(tool, "server_label") or kind)


def finish_reason(reason: Any) -> str:
    return _FINISH.get(reason, reason) if isinstance(reason, str) else "error"


def content_parts(content: Any) -> list[dict[str, Any]]:
    """OpenAI message content (str or list of parts) -> conventions' parts."""
    if content is None:
        return []
    if isinstance(content, str):
        return [text_part(content)]
    parts: list[dict[str, Any]] = []
    for item in content if isinstance(content, Iterable) else ():
        kind = field(item, "type")
        if kind in ("text", "input_text", "output_text"):
            parts.append(text_part(field(item, "text") or ""))
        elif kind == "refusal":
            parts.append({"type": "refusal", "content": field(item, "refusal") or ""})
        elif kind in ("image_url", "input_image"):
            image = field(item, "image_url")
            uri = field(image, "url") if not isinstance(image, str) else image
            parts.append(uri_part(uri, kind="image"))  # a data: URL is a blob part
        elif kind:
            parts.append({"type": str(kind)})
    return parts


def _tool_call_part(call: Any) -> dict[str, Any]:
    fn = field(call, "function")
    return {"type": "tool_call", "id": field(call, "id"), "name": field(fn, "name"), "arguments": json_or_text(field(fn, "arguments"))}


def chat_messages(messages: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for m in list_items(messages):
        role = field(m, "role") or "user"
        if role == "tool":
            out.append({"role": "tool", "parts": [{"type": "tool_call_response", "id": field(m, "tool_call_id"), "response": field(m, "content")}]})
            continue
        parts = content_parts(field(m, "content"))
        for call in list_items(field(m, "tool_calls")):
            parts.append(_tool_call_part(call))
        out.append({"role": "system" if role == "developer" else role, "parts": parts})
    return out


def _set(params: dict[str, Any], key: str, value: Any) -> None:
    if given(value):
        params[key] = value


def _stop(value: Any) -> Any:
    if isinstance(value, str):
        return (value,)
    return tuple(value) if isinstance(value, (list, tuple)) else None


def _sampling_params(kwargs: dict, max_tokens: Any, penalties: bool) -> dict[str, Any]:
    """The request attributes chat and legacy completions share (``penalties``: chat's frequency and presence)."""
    params: dict[str, Any] = {}
    _set(params, A.GEN_AI_REQUEST_MAX_TOKENS, max_tokens)
    _set(params, A.GEN_AI_REQUEST_TEMPERATURE, kwargs.get("temperature"))
    _set(params, A.GEN_AI_REQUEST_TOP_P, kwargs.get("top_p"))
    _set(params, A.GEN_AI_REQUEST_SEED, kwargs.get("seed"))
    if penalties:
        _set(params, A.GEN_AI_REQUEST_FREQUENCY_PENALTY, kwargs.get("frequency_penalty"))
        _set(params, A.GEN_AI_REQUEST_PRESENCE_PENALTY, kwargs.get("presence_penalty"))
    _set(params, A.GEN_AI_REQUEST_STOP_SEQUENCES, _stop(kwargs.get("stop")))
    n = kwargs.get("n")
    if given(n) and n != 1:
        params[A.GEN_AI_REQUEST_CHOICE_COUNT] = n
    return params


def _output_type(response_format: Any) -> str | None:
    kind = field(response_format, "type")
    if kind in ("json_object", "json_schema"):
        return "json"
    if kind == "text":
        return "text"
    if isinstance(response_format, type):  # parse(response_format=PydanticModel)
        return "json"
    return None


def _usage(record: Any, usage: Any, input_key: str, output_key: str, input_details: str, output_details: str) -> None:
    if usage is None:
        return
    record.input_tokens = field(usage, input_key)
    record.output_tokens = field(usage, output_key)
    record.cache_read_tokens = field(field(usage, input_details), "cached_tokens")
    record.reasoning_tokens = field(field(usage, output_details), "reasoning_tokens")


def _text(value: Any) -> str | None:
    """A string request field as sent; anything else (absent, NOT_GIVEN, malformed) is not one."""
    return value if isinstance(value, str) and value else None


def _instance_client(instance: Any) -> Any:
    return getattr(instance, "_client", None)


class OpenAITranslator(Translator):
    """The base of the translators of the OpenAI wire format, this SDK's and others' (groq, mistralai)."""

    def endpoint(self, instance: Any) -> tuple[str, str | None, int | None]:
        """(provider name, server.address, server.port) of the resource ``instance``'s client."""
        return endpoint(_instance_client(instance))


def _record(cls: type, translator: OpenAITranslator, instance: Any, kwargs: dict, operation: str, params: dict[str, Any], api: str | None = None, **fields: Any) -> Any:
    """A record with what every OpenAI method shares: provider, model, server, stream flag; on OpenAI's
    own service, the ``api`` (``openai.api.type``) and the service tier the request asked for."""
    provider, host, port = translator.endpoint(instance)
    if api is not None and provider in _OPENAI_SERVICE:
        params[A.OPENAI_API_TYPE] = api
        tier = requested_tier(kwargs)
        if tier is not None:
            params[A.OPENAI_REQUEST_SERVICE_TIER] = tier
    model = kwargs.get("model")
    return cls(
        operation=operation,
        provider=provider,
        model=model if given(model) else None,
        server_address=host,
        server_port=port,
        params=params,
        stream=kwargs.get("stream") is True,
        **fields,
    )


def requested_tier(kwargs: dict) -> str | None:
    """``service_tier=`` or, as older SDKs pass it, ``extra_body={"service_tier": ...}``."""
    tier = kwargs.get("service_tier")
    if not given(tier):
        extra = kwargs.get("extra_body")
        tier = extra.get("service_tier") if isinstance(extra, Mapping) else None
    return tier if isinstance(tier, str) and tier else None


def apply_service(record: Any, response: Any, with_fingerprint: bool = True) -> None:
    """``openai.response.service_tier`` and ``.system_fingerprint`` (chat and legacy completions) on OpenAI's own service."""
    if record.provider not in _OPENAI_SERVICE:
        return
    tier = field(response, "service_tier")
    if isinstance(tier, str) and tier:
        record.response_params[A.OPENAI_RESPONSE_SERVICE_TIER] = tier
    if with_fingerprint:
        fingerprint = field(response, "system_fingerprint")
        if isinstance(fingerprint, str) and fingerprint:
            record.response_params[A.OPENAI_RESPONSE_SYSTEM_FINGERPRINT] = fingerprint


def _append_system(messages: Any, instruction: str) -> list[Any]:
    return [*list_items(messages), {"role": "system", "content": instruction}]


def _message_parts(choice: Any) -> list[dict[str, Any]]:
    """A chat choice's message: text, refusal and tool calls as the conventions' parts."""
    message = field(choice, "message")
    parts = content_parts(field(message, "content"))
    refusal = field(message, "refusal")
    if refusal:
        parts.append({"type": "refusal", "content": refusal})
    for call in list_items(field(message, "tool_calls")):
        parts.append(_tool_call_part(call))
    return parts


def apply_choices(record: InferenceRecord, response: Any, parts_of: Any) -> None:
    """Chat and legacy completions: id, model, one output message per choice, usage."""
    record.response_id = field(response, "id")
    record.response_model = field(response, "model")
    outputs, reasons = [], []
    for choice in list_items(field(response, "choices")):
        reason = finish_reason(field(choice, "finish_reason"))
        reasons.append(reason)
        outputs.append({"role": "assistant", "parts": parts_of(choice), "finish_reason": reason})
    record.output_messages = outputs
    record.finish_reasons = reasons
    _usage(record, field(response, "usage"), "prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")
    apply_service(record, response)


class ChatTranslator(OpenAITranslator):
    """``chat.completions.create`` and ``.parse``."""

    operation = V.OPERATION_CHAT

    def request(self, instance: Any, args: tuple, kwargs: dict) -> InferenceRecord:
        max_tokens = kwargs.get("max_completion_tokens")
        params = _sampling_params(kwargs, max_tokens if given(max_tokens) else kwargs.get("max_tokens"), penalties=True)
        return _record(
            InferenceRecord, self, instance, kwargs, V.OPERATION_CHAT, params, V.OPENAI_API_CHAT_COMPLETIONS,
            input_messages=chat_messages(kwargs.get("messages")),
            tool_definitions=tool_definitions(kwargs.get("tools"), openai_tool),
            output_type=_output_type(kwargs.get("response_format")),
            reasoning_level=_text(kwargs.get("reasoning_effort")),
        )

    def response(self, record: InferenceRecord, response: Any) -> None:
        apply_choices(record, raw_parsed(response), _message_parts)

    def accumulator(self, record: InferenceRecord, stream: Any) -> "ChatAccumulator | None":
        return ChatAccumulator(record) if is_stream(stream) else None

    def with_instruction(self, kwargs: dict, instruction: str) -> dict:
        return {**kwargs, "messages": _append_system(kwargs.get("messages"), instruction)}


class _Choice:
    __slots__ = ("text", "refusal", "tools", "reason")

    def __init__(self) -> None:
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.tools: dict[int, list] = {}
        self.reason: str | None = None


def _index(value: Any) -> int:
    """A choice's (or tool call's) index; a malformed one counts as the first."""
    return value if type(value) is int else 0


_REASONING_FIELDS = ("reasoning_content", "reasoning")
#: Delta class -> whether it is a pydantic model declaring no reasoning attribute (the openai types).
_PLAIN_DELTA: dict[type, bool] = {}


def _has_reasoning(delta: Any) -> bool:
    """The delta carries reasoning text. On the openai types (no reasoning field declared) both names are
    looked up in the instance dict and the extras directly: two dict reads per chunk, no call per name."""
    cls = type(delta)
    plain = _PLAIN_DELTA.get(cls)
    if plain is None:
        plain = _PLAIN_DELTA[cls] = isinstance(getattr(cls, "__pydantic_extra__", None), MemberDescriptorType) and not any(
            hasattr(cls, n) for n in _REASONING_FIELDS
        )
    if not plain:
        return any(type(value := getattr(delta, name, None)) is str and value for name in _REASONING_FIELDS)
    fields = delta.__dict__
    extra = delta.__pydantic_extra__
    for name in _REASONING_FIELDS:
        value = fields.get(name)
        if value is None and extra and type(extra) is dict:
            value = extra.get(name)
        if type(value) is str and value:
            return True
    return False


class ChatAccumulator:
    """Folds ``ChatCompletionChunk``s into the record; cheap per chunk."""

    __slots__ = ("record", "choices", "usage", "id", "model", "non_text", "head", "last")

    def __init__(self, record: InferenceRecord) -> None:
        self.record = record
        self.choices: dict[int, _Choice] = {}
        self.usage: Any = None
        self.id: str | None = None
        self.model: str | None = None
        self.non_text = False  # output other than text (tool calls, reasoning) began: see streams.Accumulator
        # Every chunk repeats service_tier and system_fingerprint: read at the end from the last chunk
        # (the first when the last lacks them), a reference per chunk rather than two reads.
        self.head: Any = None
        self.last: Any = None

    @property
    def text(self) -> str:
        first = self.choices.get(0)
        return "".join(first.text) if first else ""

    def add(self, chunk: Any) -> None:
        if self.id is None:
            self.id = getattr(chunk, "id", None)
            self.model = getattr(chunk, "model", None)
            if self.head is None:
                self.head = chunk
        self.last = chunk
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.usage = usage
        choices = getattr(chunk, "choices", None)
        if type(choices) is not list:  # absent, or malformed on the wire
            return
        for c in choices:
            index = _index(getattr(c, "index", None))
            state = self.choices.get(index)
            if state is None:
                state = self.choices[index] = _Choice()
            # Tool-call deltas or reasoning: output other than text began (see streams.Accumulator).
            if self._fold(c, state) and not self.non_text:
                self.non_text = True
            reason = getattr(c, "finish_reason", None)
            if reason:
                state.reason = reason

    @staticmethod
    def _fold(c: Any, state: _Choice) -> bool:
        """Folds one choice's delta into its state; True when it carried output other than text (tool-call
        deltas, reasoning), read from the delta once."""
        delta = getattr(c, "delta", None)
        if delta is None:
            return False
        content = getattr(delta, "content", None)
        if content and type(content) is str:
            state.text.append(content)
        refusal = getattr(delta, "refusal", None)
        if refusal and type(refusal) is str:
            state.refusal.append(refusal)
        tool_calls = getattr(delta, "tool_calls", None)
        if not tool_calls:
            return _has_reasoning(delta)
        if type(tool_calls) is list:
            for tc in tool_calls:
                index = _index(getattr(tc, "index", None))
                slot = state.tools.get(index)
                if slot is None:
                    slot = state.tools[index] = [None, None, []]
                if getattr(tc, "id", None):
                    slot[0] = tc.id
                fn = getattr(tc, "function", None)
                if fn is not None:
                    if getattr(fn, "name", None):
                        slot[1] = fn.name
                    arguments = getattr(fn, "arguments", None)
                    if arguments and type(arguments) is str:
                        slot[2].append(arguments)
        return True

    def apply(self) -> None:
        record = self.record
        record.response_id = self.id
        record.response_model = self.model
        outputs, reasons = [], []
        for index in sorted(self.choices):
            state = self.choices[index]
            parts: list[dict[str, Any]] = [text_part("".join(state.text))] if state.text else []
            if state.refusal:
                parts.append({"type": "refusal", "content": "".join(state.refusal)})
            for _, (call_id, name, pieces) in sorted(state.tools.items()):
                parts.append({"type": "tool_call", "id": call_id, "name": name, "arguments": json_or_text("".join(pieces))})
            reason = finish_reason(state.reason) if state.reason else None
            if reason:
                reasons.append(reason)
            outputs.append({"role": "assistant", "parts": parts, "finish_reason": reason or "error"})
        record.output_messages = outputs
        record.finish_reasons = reasons
        _usage(record, self.usage, "prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details")
        apply_service(record, self.head)
        if self.last is not self.head:
            apply_service(record, self.last)


def responses_input(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "parts": [text_part(value)]}]
    out: list[dict[str, Any]] = []
    for item in list_items(value):
        kind = field(item, "type")
        if kind == "function_call_output":
            out.append({"role": "tool", "parts": [{"type": "tool_call_response", "id": field(item, "call_id"), "response": field(item, "output")}]})
        elif kind == "function_call":
            out.append({"role": "assistant", "parts": [{"type": "tool_call", "id": field(item, "call_id"), "name": field(item, "name"), "arguments": json_or_text(field(item, "arguments"))}]})
        else:
            role = field(item, "role") or "user"
            out.append({"role": "system" if role == "developer" else role, "parts": content_parts(field(item, "content"))})
    return out


class ResponsesTranslator(OpenAITranslator):
    """``responses.create``."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> InferenceRecord:
        params: dict[str, Any] = {}
        _set(params, A.GEN_AI_REQUEST_MAX_TOKENS, kwargs.get("max_output_tokens"))
        _set(params, A.GEN_AI_REQUEST_TEMPERATURE, kwargs.get("temperature"))
        _set(params, A.GEN_AI_REQUEST_TOP_P, kwargs.get("top_p"))
        instructions = kwargs.get("instructions")
        text_format = field(field(kwargs.get("text"), "format"), "type")
        prompt = kwargs.get("prompt")
        return _record(
            InferenceRecord, self, instance, kwargs, V.OPERATION_CHAT, params, V.OPENAI_API_RESPONSES,
            input_messages=responses_input(kwargs.get("input")),
            system_instructions=[text_part(instructions)] if isinstance(instructions, str) and instructions else [],
            tool_definitions=tool_definitions(kwargs.get("tools"), openai_tool),
            output_type="json" if text_format in ("json_object", "json_schema") else None,
            reasoning_level=_text(field(kwargs.get("reasoning"), "effort")),
            previous_response_id=_text(kwargs.get("previous_response_id")),
            prompt_name=_text(field(prompt, "id")),
            prompt_version=_text(field(prompt, "version")),
        )

    def response(self, record: InferenceRecord, response: Any) -> None:
        apply_response(record, raw_parsed(response))

    def accumulator(self, record: InferenceRecord, stream: Any) -> "ResponsesAccumulator | None":
        return ResponsesAccumulator(record) if is_stream(stream) else None

    def with_instruction(self, kwargs: dict, instruction: str) -> dict:
        current = kwargs.get("instructions")
        merged = f"{current}\n\n{instruction}" if isinstance(current, str) and current else instruction
        return {**kwargs, "instructions": merged}


def apply_response(record: InferenceRecord, response: Any) -> None:
    record.response_id = field(response, "id")
    record.response_model = field(response, "model")
    parts: list[dict[str, Any]] = []
    tool_called = False
    for item in list_items(field(response, "output")):
        kind = field(item, "type")
        if kind == "message":
            parts.extend(content_parts(field(item, "content")))
        elif kind == "function_call":
            tool_called = True
            parts.append({"type": "tool_call", "id": field(item, "call_id"), "name": field(item, "name"), "arguments": json_or_text(field(item, "arguments"))})
    status = field(response, "status")
    if tool_called:
        reason = V.FINISH_TOOL_CALL
    elif status == "incomplete":
        why = field(field(response, "incomplete_details"), "reason")
        reason = V.FINISH_LENGTH if why == "max_output_tokens" else V.FINISH_CONTENT_FILTER if why == "content_filter" else "error"
    elif status in ("failed", "cancelled"):
        reason = "error"
    else:
        reason = V.FINISH_STOP
    record.output_messages = [{"role": "assistant", "parts": parts, "finish_reason": reason}]
    record.finish_reasons = [reason]
    _usage(record, field(response, "usage"), "input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details")
    apply_service(record, response, with_fingerprint=False)  # the Responses API has no system fingerprint


class ResponsesAccumulator:
    """Folds Responses API stream events; the final ``response.completed`` carries everything."""

    __slots__ = ("record", "pieces", "final", "id", "model", "non_text")

    def __init__(self, record: InferenceRecord) -> None:
        self.record = record
        self.pieces: list[str] = []
        self.final: Any = None
        self.id: str | None = None
        self.model: str | None = None
        self.non_text = False  # output other than text (tool calls, reasoning) began: see streams.Accumulator

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    def add(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if type(kind) is not str:
            return
        if kind == "response.output_text.delta":
            delta = getattr(event, "delta", None)
            if delta and type(delta) is str:  # null or malformed on the wire: nothing to read
                self.pieces.append(delta)
        elif kind.endswith(".delta"):
            self.non_text = True  # function-call arguments, reasoning, refusal...: output a text guard cannot judge
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            self.final = getattr(event, "response", None)
        elif kind == "response.created":
            response = getattr(event, "response", None)
            self.id = getattr(response, "id", None)
            self.model = getattr(response, "model", None)

    def apply(self) -> None:
        if self.final is not None:
            apply_response(self.record, self.final)
            if not self.record.output_text and self.pieces:
                self.record.output_messages = [{"role": "assistant", "parts": [text_part(self.text)], "finish_reason": self.record.finish_reasons[0]}]
            return
        self.record.response_id = self.id
        self.record.response_model = self.model
        if self.pieces:
            self.record.output_messages = [{"role": "assistant", "parts": [text_part(self.text)], "finish_reason": "error"}]


class EmbeddingsTranslator(OpenAITranslator):
    """``embeddings.create``."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> EmbeddingsRecord:
        raw = kwargs.get("input")
        if isinstance(raw, str):
            inputs = [raw]
        elif isinstance(raw, list) and all(isinstance(x, str) for x in raw):
            inputs = raw
        else:
            inputs = []  # token arrays: not text
        params: dict[str, Any] = {}
        fmt = kwargs.get("encoding_format")
        if given(fmt):
            params[A.GEN_AI_REQUEST_ENCODING_FORMATS] = (fmt,)
        count = len(raw) if isinstance(raw, list) else 1
        dimensions = kwargs.get("dimensions")
        return _record(
            EmbeddingsRecord, self, instance, kwargs, V.OPERATION_EMBEDDINGS, params,
            input_count=count,
            inputs=list(inputs),
            dimension_count=dimensions if type(dimensions) is int else None,
        )

    def response(self, record: EmbeddingsRecord, response: Any) -> None:
        response = raw_parsed(response)
        record.response_id = field(response, "id")  # OpenAI sends none; compatible servers (vLLM) do
        record.response_model = field(response, "model")
        data = field(response, "data")
        if record.dimension_count is None and isinstance(data, list) and data:
            first = field(data[0], "embedding")
            if isinstance(first, list):
                record.dimension_count = len(first)
        usage = field(response, "usage")
        record.input_tokens = field(usage, "prompt_tokens")


class CompletionsTranslator(OpenAITranslator):
    """Legacy ``completions.create`` (text completion)."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> InferenceRecord:
        params = _sampling_params(kwargs, kwargs.get("max_tokens"), penalties=False)
        prompt = kwargs.get("prompt")
        prompts = [prompt] if isinstance(prompt, str) else [p for p in list_items(prompt) if isinstance(p, str)]
        return _record(
            InferenceRecord, self, instance, kwargs, V.OPERATION_TEXT_COMPLETION, params,
            input_messages=[{"role": "user", "parts": [text_part(p)]} for p in prompts],
        )

    def response(self, record: InferenceRecord, response: Any) -> None:
        apply_choices(record, raw_parsed(response), lambda choice: [text_part(field(choice, "text") or "")])

    def accumulator(self, record: InferenceRecord, stream: Any) -> "CompletionsAccumulator | None":
        return CompletionsAccumulator(record) if is_stream(stream) else None

    def with_instruction(self, kwargs: dict, instruction: str) -> dict:
        if not isinstance(kwargs.get("prompt"), str):
            return kwargs
        return {**kwargs, "prompt": f"{instruction}\n\n{kwargs['prompt']}"}


class CompletionsAccumulator(ChatAccumulator):
    """Legacy completion chunks carry ``choices[].text`` instead of a delta."""

    __slots__ = ()

    @staticmethod
    def _fold(c: Any, state: _Choice) -> bool:
        text = getattr(c, "text", None)
        if text and type(text) is str:
            state.text.append(text)
        return False
