"""Google Gen AI (``google-genai``) requests and responses -> call records. Translation only."""

from __future__ import annotations

from typing import Any

from micrometrics.records import EmbeddingsRecord, InferenceRecord, InlineBytes, blob_part, list_items, text_part, tool_definition, uri_part
from micrometrics.reading import field, is_stream, per_client, server
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

#: Gemini finish reasons -> the conventions' finish reasons.
_FINISH = {
    "STOP": V.FINISH_STOP,
    "MAX_TOKENS": V.FINISH_LENGTH,
    "SAFETY": V.FINISH_CONTENT_FILTER,
    "RECITATION": V.FINISH_CONTENT_FILTER,
    "BLOCKLIST": V.FINISH_CONTENT_FILTER,
    "PROHIBITED_CONTENT": V.FINISH_CONTENT_FILTER,
    "SPII": V.FINISH_CONTENT_FILTER,
    "IMAGE_SAFETY": V.FINISH_CONTENT_FILTER,
    "IMAGE_PROHIBITED_CONTENT": V.FINISH_CONTENT_FILTER,
    "IMAGE_RECITATION": V.FINISH_CONTENT_FILTER,
    "MODEL_ARMOR": V.FINISH_CONTENT_FILTER,
    "JAILBREAK": V.FINISH_CONTENT_FILTER,
}

#: Request config fields -> request attributes.
_PARAMS = (
    ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", A.GEN_AI_REQUEST_TOP_P),
    ("top_k", A.GEN_AI_REQUEST_TOP_K),
    ("max_output_tokens", A.GEN_AI_REQUEST_MAX_TOKENS),
    ("seed", A.GEN_AI_REQUEST_SEED),
    ("presence_penalty", A.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("frequency_penalty", A.GEN_AI_REQUEST_FREQUENCY_PENALTY),
)


def _enum_name(value: Any) -> str | None:
    if value is None:
        return None
    name = getattr(value, "value", value)
    return name if isinstance(name, str) else str(name)


def provider_of(api_client: Any) -> str:
    """Vertex AI (``vertexai=True``) or the Gemini Developer API (the default backend); ``gcp.gen_ai`` when unknown."""
    if api_client is None or not hasattr(api_client, "vertexai"):
        return V.PROVIDER_GCP_GEN_AI
    return V.PROVIDER_GCP_VERTEX_AI if api_client.vertexai else V.PROVIDER_GCP_GEMINI


@per_client
def endpoint(api_client: Any) -> tuple[str, str | None, int | None]:
    """(provider name, server.address, server.port) of a ``BaseApiClient``."""
    provider = provider_of(api_client)
    base_url = field(getattr(api_client, "_http_options", None), "base_url")
    return (provider, *server(base_url if isinstance(base_url, str) else None))


def model_name(model: Any) -> str | None:
    """``models/gemini-x`` and ``projects/.../publishers/google/models/gemini-x`` -> ``gemini-x``."""
    if not isinstance(model, str) or not model:
        return None
    return model.rsplit("models/", 1)[-1] if "models/" in model and not model.startswith("tunedModels/") else model


def part_of(part: Any) -> dict[str, Any] | None:
    """A Gemini part (``types.Part``, its dict form, or a str) -> a conventions' part."""
    if isinstance(part, str):
        return text_part(part)
    text = field(part, "text")
    if isinstance(text, str):
        return {"type": "reasoning", "content": text} if field(part, "thought") else text_part(text)
    call = field(part, "function_call")
    if call is not None:
        return {"type": "tool_call", "id": field(call, "id"), "name": field(call, "name"), "arguments": field(call, "args")}
    response = field(part, "function_response")
    if response is not None:
        return {"type": "tool_call_response", "id": field(response, "id"), "response": field(response, "response")}
    data = field(part, "file_data")
    if data is not None:
        return uri_part(field(data, "file_uri"), field(data, "mime_type"))
    blob = field(part, "inline_data")
    if blob is not None:  # content (exported only with capture): the conventions' blob carries the base64 text
        raw = field(blob, "data")
        content = InlineBytes(raw) if isinstance(raw, (bytes, bytearray)) else raw if isinstance(raw, str) else ""
        return blob_part(field(blob, "mime_type"), content)
    if field(part, "executable_code") is not None:
        return {"type": "executable_code"}
    if field(part, "code_execution_result") is not None:
        return {"type": "code_execution_result"}
    if hasattr(part, "uri") and hasattr(part, "mime_type"):  # a types.File
        return uri_part(part.uri, part.mime_type)
    return None


def _parts(parts: Any) -> list[dict[str, Any]]:
    out = []
    for p in parts or ():
        converted = part_of(p)
        if converted is not None:
            out.append(converted)
    return out


def _is_content(item: Any) -> bool:
    if type(item) is str:
        return False
    return field(item, "parts") is not None or field(item, "role") is not None


def _message(role: Any, parts: list[dict[str, Any]]) -> dict[str, Any]:
    role = "assistant" if role == "model" else (role or "user")
    # Function responses travel in user turns; the conventions give them the tool role.
    if role == "user" and parts and all(p["type"] == "tool_call_response" for p in parts):
        role = "tool"
    return {"role": role, "parts": parts}


def contents_messages(contents: Any) -> list[dict[str, Any]]:
    """``contents`` in any form the SDK accepts -> conventions' messages.

    Loose parts next to each other make one user turn, as the SDK sends them.
    """
    if contents is None:
        return []
    items = contents if isinstance(contents, list) else [contents]
    out: list[dict[str, Any]] = []
    loose: list[dict[str, Any]] = []
    for item in items:
        if _is_content(item):
            if loose:
                out.append(_message("user", loose))
                loose = []
            out.append(_message(field(item, "role"), _parts(field(item, "parts"))))
        else:
            converted = part_of(item)
            if converted is not None:
                loose.append(converted)
    if loose:
        # A lone function call is the model's turn, as the SDK sends it.
        out.append(_message("model" if all(p["type"] == "tool_call" for p in loose) else "user", loose))
    return out


def system_parts(instruction: Any) -> list[dict[str, Any]]:
    if instruction is None:
        return []
    if isinstance(instruction, str):
        return [text_part(instruction)] if instruction else []
    if _is_content(instruction):
        return [p for p in _parts(field(instruction, "parts")) if p["type"] == "text"]
    items = instruction if isinstance(instruction, list) else [instruction]
    return [p for p in (part_of(i) for i in items) if p is not None and p["type"] == "text"]


def tool_definitions(tools: Any) -> list[dict[str, Any]] | None:
    """Function declarations (and Python functions for automatic calling) as functions; other tools
    (Google Search, code execution, ...) named by their kind."""
    if not isinstance(tools, (list, tuple)):
        return None
    out: list[dict[str, Any] | None] = []
    for tool in tools:
        if callable(tool) and not hasattr(tool, "function_declarations"):
            doc = getattr(tool, "__doc__", None)
            out.append(tool_definition("function", getattr(tool, "__name__", None), doc.strip() if isinstance(doc, str) else None))
            continue
        for d in list_items(field(tool, "function_declarations")):
            params = field(d, "parameters_json_schema") or field(d, "parameters")
            if hasattr(params, "model_dump"):
                params = params.model_dump(exclude_none=True, mode="json")
            out.append(tool_definition("function", field(d, "name"), field(d, "description"), params))
        fields = tool.model_dump(exclude_none=True) if hasattr(tool, "model_dump") else tool if isinstance(tool, dict) else {}
        for kind in fields:
            if kind != "function_declarations":
                out.append(tool_definition(kind, kind))
    return [d for d in out if d is not None] or None


def _output_type(config: Any) -> str | None:
    mime = field(config, "response_mime_type")
    if mime == "application/json" or field(config, "response_schema") is not None or field(config, "response_json_schema") is not None:
        return "json"
    if isinstance(mime, str) and mime.startswith("text/"):
        return "text"
    return None


def _thinking_level(config: Any) -> str | None:
    """``thinking_config.thinking_level`` as the SDK sends it (``LOW``, from ``ThinkingLevel.LOW`` or ``"low"``)."""
    level = field(field(config, "thinking_config"), "thinking_level")
    level = getattr(level, "value", level)
    return level.upper() if isinstance(level, str) and level and level.upper() != "THINKING_LEVEL_UNSPECIFIED" else None


def finish_reason(reason: Any, parts: list[dict[str, Any]]) -> str:
    name = _enum_name(reason)
    if name == "STOP" and any(p["type"] == "tool_call" for p in parts):
        return V.FINISH_TOOL_CALL  # Gemini says STOP when it calls a function
    return _FINISH.get(name or "", V.FINISH_ERROR)


def apply_usage(record: InferenceRecord, usage: Any) -> None:
    if usage is None:
        return
    prompt = field(usage, "prompt_token_count")
    tool_prompt = field(usage, "tool_use_prompt_token_count")
    if isinstance(prompt, int):
        record.input_tokens = prompt + (tool_prompt or 0)
    candidates = field(usage, "candidates_token_count")
    thoughts = field(usage, "thoughts_token_count")
    if isinstance(candidates, int) or isinstance(thoughts, int):
        # The conventions' output tokens include reasoning; Gemini counts thoughts apart.
        record.output_tokens = (candidates or 0) + (thoughts or 0)
    if isinstance(thoughts, int):
        record.reasoning_tokens = thoughts
    cached = field(usage, "cached_content_token_count")
    if isinstance(cached, int):
        record.cache_read_tokens = cached


def apply_response(record: InferenceRecord, response: Any) -> None:
    record.response_id = field(response, "response_id")
    record.response_model = field(response, "model_version")
    outputs, reasons = [], []
    for candidate in field(response, "candidates") or ():
        parts = _parts(field(field(candidate, "content"), "parts"))
        reason = finish_reason(field(candidate, "finish_reason"), parts)
        reasons.append(reason)
        outputs.append({"role": "assistant", "parts": parts, "finish_reason": reason})
    if not outputs and field(field(response, "prompt_feedback"), "block_reason") is not None:
        reasons = [V.FINISH_CONTENT_FILTER]  # the prompt itself was blocked
    record.output_messages = outputs
    record.finish_reasons = reasons
    apply_usage(record, field(response, "usage_metadata"))


class GenerateContentTranslator(Translator):
    """``models.generate_content`` (and, with ``streams``, ``generate_content_stream``)."""

    def __init__(self, streams: bool = False) -> None:
        self.streams = streams

    def request(self, instance: Any, args: tuple, kwargs: dict) -> InferenceRecord:
        provider, host, port = endpoint(getattr(instance, "_api_client", None))
        config = kwargs.get("config")
        params: dict[str, Any] = {}
        for key, attr in _PARAMS:
            value = field(config, key)
            if value is not None:
                params[attr] = value
        stop = field(config, "stop_sequences")
        if stop:
            params[A.GEN_AI_REQUEST_STOP_SEQUENCES] = tuple(stop)
        count = field(config, "candidate_count")
        if isinstance(count, int) and count != 1:
            params[A.GEN_AI_REQUEST_CHOICE_COUNT] = count
        return InferenceRecord(
            operation=V.OPERATION_GENERATE_CONTENT,
            provider=provider,
            model=model_name(kwargs.get("model")),
            server_address=host,
            server_port=port,
            params=params,
            stream=self.streams,
            input_messages=contents_messages(kwargs.get("contents")),
            system_instructions=system_parts(field(config, "system_instruction")),
            tool_definitions=tool_definitions(field(config, "tools")),
            output_type=_output_type(config),
            reasoning_level=_thinking_level(config),
        )

    def response(self, record: InferenceRecord, response: Any) -> None:
        apply_response(record, response)

    def accumulator(self, record: InferenceRecord, stream: Any) -> "ContentAccumulator | None":
        return ContentAccumulator(record) if is_stream(stream) else None

    def with_instruction(self, kwargs: dict, instruction: str) -> dict:
        """The request with ``instruction`` added to ``config.system_instruction``, the Gemini way."""
        config = kwargs.get("config")
        current = field(config, "system_instruction")
        if current is None:
            merged: Any = instruction
        elif isinstance(current, str):
            merged = f"{current}\n\n{instruction}" if current else instruction
        else:
            merged = [*(p["content"] for p in system_parts(current)), instruction]
        if config is None:
            new_config: Any = {"system_instruction": merged}
        elif isinstance(config, dict):
            new_config = {**config, "system_instruction": merged}
        elif hasattr(config, "model_copy"):
            new_config = config.model_copy(update={"system_instruction": merged})
        else:  # not a config google-genai takes: retry the request as it was
            return kwargs
        return {**kwargs, "config": new_config}


class _Candidate:
    __slots__ = ("texts", "parts", "reason")

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.parts: list[dict[str, Any]] = []  # everything but answer text, in order
        self.reason: Any = None


class ContentAccumulator:
    """Folds streamed ``GenerateContentResponse`` chunks into the record; cheap per chunk."""

    __slots__ = ("record", "candidates", "id", "model", "usage", "blocked", "non_text")

    def __init__(self, record: InferenceRecord) -> None:
        self.record = record
        self.candidates: dict[int, _Candidate] = {}
        self.id: str | None = None
        self.model: str | None = None
        self.usage: Any = None
        self.blocked = False
        self.non_text = False  # output other than text (function calls, thoughts) began: see streams.Accumulator

    @property
    def text(self) -> str:
        first = self.candidates.get(0)
        return "".join(first.texts) if first else ""

    def add(self, chunk: Any) -> None:
        if self.id is None:
            self.id = getattr(chunk, "response_id", None)
            self.model = getattr(chunk, "model_version", None)
        usage = getattr(chunk, "usage_metadata", None)
        if usage is not None:
            self.usage = usage
        candidates = getattr(chunk, "candidates", None)
        if not candidates:
            feedback = getattr(chunk, "prompt_feedback", None)
            if feedback is not None and getattr(feedback, "block_reason", None) is not None:
                self.blocked = True
            return
        for position, c in enumerate(candidates):
            index = c.index if c.index is not None else position
            state = self.candidates.get(index)
            if state is None:
                state = self.candidates[index] = _Candidate()
            content = c.content
            for part in (content.parts if content is not None else None) or ():
                if part is None:
                    continue
                text = part.text
                if text is not None and not part.thought:
                    state.texts.append(text)
                else:
                    converted = part_of(part)
                    if converted is not None:
                        state.parts.append(converted)
                        self.non_text = True
            if c.finish_reason is not None:
                state.reason = c.finish_reason

    def apply(self) -> None:
        record = self.record
        record.response_id = self.id
        record.response_model = self.model
        outputs, reasons = [], []
        for index in sorted(self.candidates):
            state = self.candidates[index]
            parts = ([text_part("".join(state.texts))] if state.texts else []) + state.parts
            reason = finish_reason(state.reason, parts) if state.reason is not None else None
            if reason:
                reasons.append(reason)
            outputs.append({"role": "assistant", "parts": parts, "finish_reason": reason or V.FINISH_ERROR})
        if not outputs and self.blocked:
            reasons = [V.FINISH_CONTENT_FILTER]
        record.output_messages = outputs
        record.finish_reasons = reasons
        apply_usage(record, self.usage)


class EmbedContentTranslator(Translator):
    """``models.embed_content``."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> EmbeddingsRecord:
        provider, host, port = endpoint(getattr(instance, "_api_client", None))
        contents = kwargs.get("contents")
        dimensions = field(kwargs.get("config"), "output_dimensionality")
        items = contents if isinstance(contents, list) else [contents] if contents is not None else []
        inputs: list[str] = []
        for item in items:
            parts = field(item, "parts") if _is_content(item) else [item]
            texts = [p["content"] for p in _parts(parts) if p["type"] == "text"]
            if texts:
                inputs.append("\n".join(texts))
        return EmbeddingsRecord(
            operation=V.OPERATION_EMBEDDINGS,
            provider=provider,
            model=model_name(kwargs.get("model")),
            server_address=host,
            server_port=port,
            input_count=len(items),
            inputs=inputs,
            dimension_count=dimensions if type(dimensions) is int else None,
        )

    def response(self, record: EmbeddingsRecord, response: Any) -> None:
        embeddings = field(response, "embeddings") or ()
        if embeddings and record.dimension_count is None:
            values = field(embeddings[0], "values")
            if isinstance(values, list):
                record.dimension_count = len(values)
        tokens = field(field(response, "usage_metadata"), "prompt_token_count")
        if not isinstance(tokens, int):
            counts = [field(field(e, "statistics"), "token_count") for e in embeddings]
            tokens = int(sum(counts)) if counts and all(isinstance(c, (int, float)) for c in counts) else None
        record.input_tokens = tokens
