"""InvokeModel bodies, one model family each -> call records. Translation only.

InvokeModel sends and returns the model provider's own JSON. The family comes from the model id
(``anthropic.``, ``meta.llama``, ``us.anthropic.`` inference profiles, ARNs: a marker anywhere in
the id) or, for ids that do not say (a provisioned-throughput or imported-model ARN), from the
shape of the JSON itself. A body that is not JSON (or a file, which we never read) gives a record
with what the call itself says.
"""

from __future__ import annotations

import json
from typing import Any

from micrometrics import records
from micrometrics.records import InferenceRecord, text_part
from micrometrics_instrumentation.anthropic import translators as anthropic
from micrometrics_instrumentation.bedrock import converse
from micrometrics_instrumentation.bedrock.converse import count
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V


def parse(body: Any) -> dict | None:
    """A request or response body as JSON; None for anything else (a file-like body is never read)."""
    if isinstance(body, (bytes, bytearray, str)):
        try:
            value = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        return value if isinstance(value, dict) else None
    return None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list | tuple:
    return value if isinstance(value, (list, tuple)) else ()


def _params(body: dict, names: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for key, attr in names:
        value = body.get(key)
        if value is None:
            continue
        if attr == A.GEN_AI_REQUEST_STOP_SEQUENCES:
            value = (value,) if isinstance(value, str) else tuple(value) if isinstance(value, (list, tuple)) else None
            if value is None:
                continue
        params[attr] = value
    return params


def _user(prompt: Any) -> list[dict[str, Any]]:
    return [{"role": "user", "parts": [text_part(prompt)]}] if isinstance(prompt, str) else []


class Family:
    """A model family's InvokeModel bodies; this base reads nothing (a family we do not know)."""

    name = "unknown"
    operation = V.OPERATION_CHAT
    embeddings = False

    def request(self, record: Any, body: dict) -> None:
        pass

    def response(self, record: Any, body: dict) -> None:
        pass

    def fold(self, record: InferenceRecord) -> "TextFold | Any":
        return TextFold(record, self)

    def chunk(self, payload: dict) -> tuple[Any, Any, Any, Any]:
        """(text piece, stop reason, input tokens, output tokens) of one stream chunk; None where it has none."""
        return None, None, None, None

    def finish(self, reason: Any) -> str:
        return V.FINISH_ERROR if reason is None else str(reason)

    def with_instruction(self, body: dict, instruction: str) -> dict | None:
        """The body telling the model ``instruction``; None: a raw prompt we do not rewrite (the retry resends it)."""
        return None


class TextFold:
    """Folds the chunks of a family that streams text pieces; cheap per chunk."""

    __slots__ = ("record", "family", "texts", "stop", "input_tokens", "output_tokens", "non_text")

    def __init__(self, record: InferenceRecord, family: Family) -> None:
        self.record, self.family = record, family
        self.texts: list[str] = []
        self.stop: Any = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.non_text = False

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def add(self, payload: dict) -> None:
        piece, stop, input_tokens, output_tokens = self.family.chunk(payload)
        if type(piece) is str and piece:
            self.texts.append(piece)
        if stop is not None:
            self.stop = stop
        if count(input_tokens) is not None:
            self.input_tokens = input_tokens
        if count(output_tokens) is not None:
            self.output_tokens = output_tokens

    def apply(self) -> None:
        record = self.record
        if self.stop is not None:
            reason = self.family.finish(self.stop)
            record.finish_reasons = [reason]
        else:
            reason = V.FINISH_ERROR  # the stream ended before its last chunk
        if self.texts or self.stop is not None:
            record.output_messages = [{"role": "assistant", "parts": [text_part(self.text)], "finish_reason": reason}]
        if self.input_tokens is not None:
            record.input_tokens = self.input_tokens
        if self.output_tokens is not None:
            record.output_tokens = self.output_tokens


def _reply(record: InferenceRecord, text: Any, reason: str, parts: list | None = None) -> None:
    record.output_messages = [{"role": "assistant", "parts": parts if parts is not None else ([text_part(text)] if isinstance(text, str) else []),
                               "finish_reason": reason}]
    record.finish_reasons = [reason]


def _mapped(table: dict[str, str]) -> Any:
    def finish(reason: Any) -> str:
        return table.get(reason, reason) if isinstance(reason, str) and reason else V.FINISH_ERROR

    return finish


# ---- Anthropic: the Messages API body ----------------------------------------------------------


class _View:
    """A JSON object read by attribute, as the Anthropic SDK's models are: its stream accumulator reads these."""

    __slots__ = ("_data",)

    def __init__(self, data: dict) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        value = self._data.get(name)
        return _View(value) if isinstance(value, dict) else value


class _AnthropicFold:
    """Anthropic's raw stream events, one per chunk: the Anthropic instrumentation's own accumulator reads them."""

    __slots__ = ("inner",)

    def __init__(self, record: InferenceRecord) -> None:
        self.inner = anthropic.MessageAccumulator(record)

    @property
    def text(self) -> str:
        return self.inner.text

    @property
    def non_text(self) -> bool:
        return self.inner.non_text

    def add(self, payload: dict) -> None:
        self.inner.add(_View(payload))

    def apply(self) -> None:
        self.inner.apply()


class Anthropic(Family):
    name = "anthropic"

    def request(self, record: InferenceRecord, body: dict) -> None:
        record.params = _params(body, (
            ("max_tokens", A.GEN_AI_REQUEST_MAX_TOKENS), ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
            ("top_p", A.GEN_AI_REQUEST_TOP_P), ("top_k", A.GEN_AI_REQUEST_TOP_K), ("stop_sequences", A.GEN_AI_REQUEST_STOP_SEQUENCES),
        ))
        record.input_messages = anthropic.input_messages(body.get("messages"))
        record.system_instructions = anthropic.system_parts(body.get("system"))
        record.tool_definitions = anthropic.tool_definitions(body.get("tools"), anthropic.anthropic_tool)

    def response(self, record: InferenceRecord, body: dict) -> None:
        anthropic.apply_message(record, body)

    def fold(self, record: InferenceRecord) -> _AnthropicFold:
        return _AnthropicFold(record)

    def with_instruction(self, body: dict, instruction: str) -> dict:
        system = body.get("system")
        if isinstance(system, str) and system:
            merged: Any = f"{system}\n\n{instruction}"
        elif isinstance(system, list):
            merged = [*system, {"type": "text", "text": instruction}]
        else:
            merged = instruction
        return {**body, "system": merged}


# ---- Amazon Nova: Converse's shapes in the body ------------------------------------------------


class Nova(Family):
    name = "nova"

    def request(self, record: InferenceRecord, body: dict) -> None:
        record.params = converse.inference_params(body.get("inferenceConfig"))
        record.input_messages = converse.input_messages(body.get("messages"))
        record.system_instructions = converse.system_parts(body.get("system"))
        record.tool_definitions = converse.tool_definitions(body.get("toolConfig"))

    def response(self, record: InferenceRecord, body: dict) -> None:
        converse.apply_output(record, body)

    def fold(self, record: InferenceRecord) -> converse.EventFold:
        return converse.EventFold(record)

    def with_instruction(self, body: dict, instruction: str) -> dict:
        system = body.get("system")
        blocks = list(system) if isinstance(system, list) else [{"text": system}] if isinstance(system, str) and system else []
        return {**body, "system": [*blocks, {"text": instruction}]}


# ---- Meta Llama: prompt / generation -----------------------------------------------------------


class Llama(Family):
    name = "llama"
    operation = V.OPERATION_TEXT_COMPLETION
    finish = staticmethod(_mapped({"stop": V.FINISH_STOP, "length": V.FINISH_LENGTH}))

    def request(self, record: InferenceRecord, body: dict) -> None:
        record.params = _params(body, (("max_gen_len", A.GEN_AI_REQUEST_MAX_TOKENS), ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
                                       ("top_p", A.GEN_AI_REQUEST_TOP_P)))
        record.input_messages = _user(body.get("prompt"))

    def response(self, record: InferenceRecord, body: dict) -> None:
        _reply(record, body.get("generation"), self.finish(body.get("stop_reason")))
        record.input_tokens = count(body.get("prompt_token_count"))
        record.output_tokens = count(body.get("generation_token_count"))

    def chunk(self, payload: dict) -> tuple[Any, Any, Any, Any]:
        return payload.get("generation"), payload.get("stop_reason"), payload.get("prompt_token_count"), payload.get("generation_token_count")


# ---- Mistral: prompt / outputs, or (Mistral Large 2 and later) messages / choices ----------------


class Mistral(Family):
    name = "mistral"
    finish = staticmethod(_mapped({"stop": V.FINISH_STOP, "length": V.FINISH_LENGTH, "model_length": V.FINISH_LENGTH,
                                   "tool_calls": V.FINISH_TOOL_CALL}))

    def request(self, record: InferenceRecord, body: dict) -> None:
        record.params = _params(body, (
            ("max_tokens", A.GEN_AI_REQUEST_MAX_TOKENS), ("temperature", A.GEN_AI_REQUEST_TEMPERATURE), ("top_p", A.GEN_AI_REQUEST_TOP_P),
            ("top_k", A.GEN_AI_REQUEST_TOP_K), ("stop", A.GEN_AI_REQUEST_STOP_SEQUENCES),
        ))
        if "messages" not in body:
            record.operation = V.OPERATION_TEXT_COMPLETION
            record.input_messages = _user(body.get("prompt"))
            return
        messages = []
        for message in _list(body.get("messages")):
            message = _dict(message)
            content = message.get("content")
            parts = [text_part(content)] if isinstance(content, str) else [
                text_part(c["text"]) for c in _list(content) if isinstance(c, dict) and isinstance(c.get("text"), str)]
            if message.get("role") == "system":
                record.system_instructions += parts
            else:
                messages.append({"role": message.get("role") if isinstance(message.get("role"), str) else "user", "parts": parts})
        record.input_messages = messages

    def _choice(self, body: dict) -> tuple[Any, Any]:
        if "choices" in body:
            choice = _dict(next(iter(_list(body.get("choices"))), None))
            return _dict(choice.get("message")).get("content"), choice.get("stop_reason", choice.get("finish_reason"))
        output = _dict(next(iter(_list(body.get("outputs"))), None))
        return output.get("text"), output.get("stop_reason")

    def response(self, record: InferenceRecord, body: dict) -> None:
        text, reason = self._choice(body)
        _reply(record, text, self.finish(reason))
        if isinstance(body.get("id"), str):
            record.response_id = body["id"]

    def chunk(self, payload: dict) -> tuple[Any, Any, Any, Any]:
        text, reason = self._choice(payload)
        return text, reason, None, None

    def with_instruction(self, body: dict, instruction: str) -> dict | None:
        messages = body.get("messages")
        if not isinstance(messages, list):
            return None
        first = messages[0] if messages and isinstance(messages[0], dict) else {}
        if first.get("role") == "system" and isinstance(first.get("content"), str):
            return {**body, "messages": [{**first, "content": f"{first['content']}\n\n{instruction}"}, *messages[1:]]}
        return {**body, "messages": [{"role": "system", "content": instruction}, *messages]}


# ---- Amazon Titan Text: inputText / results ----------------------------------------------------


class TitanText(Family):
    name = "titan-text"
    operation = V.OPERATION_TEXT_COMPLETION
    finish = staticmethod(_mapped({"FINISH": V.FINISH_STOP, "FINISHED": V.FINISH_STOP, "STOP_CRITERIA_MET": V.FINISH_STOP,
                                   "LENGTH": V.FINISH_LENGTH, "CONTENT_FILTERED": V.FINISH_CONTENT_FILTER}))

    def request(self, record: InferenceRecord, body: dict) -> None:
        record.params = _params(_dict(body.get("textGenerationConfig")), (
            ("maxTokenCount", A.GEN_AI_REQUEST_MAX_TOKENS), ("temperature", A.GEN_AI_REQUEST_TEMPERATURE),
            ("topP", A.GEN_AI_REQUEST_TOP_P), ("stopSequences", A.GEN_AI_REQUEST_STOP_SEQUENCES),
        ))
        record.input_messages = _user(body.get("inputText"))

    def response(self, record: InferenceRecord, body: dict) -> None:
        result = _dict(next(iter(_list(body.get("results"))), None))
        _reply(record, result.get("outputText"), self.finish(result.get("completionReason")))
        record.input_tokens = count(body.get("inputTextTokenCount"))
        record.output_tokens = count(result.get("tokenCount"))

    def chunk(self, payload: dict) -> tuple[Any, Any, Any, Any]:
        return (payload.get("outputText"), payload.get("completionReason"), payload.get("inputTextTokenCount"),
                payload.get("totalOutputTextTokenCount"))


# ---- Cohere Command R: message (+ chat_history, preamble) / text --------------------------------


class Cohere(Family):
    name = "cohere"
    finish = staticmethod(_mapped({"COMPLETE": V.FINISH_STOP, "STOP_SEQUENCE": V.FINISH_STOP, "MAX_TOKENS": V.FINISH_LENGTH,
                                   "ERROR_TOXIC": V.FINISH_CONTENT_FILTER, "TOOL_CALL": V.FINISH_TOOL_CALL, "ERROR": V.FINISH_ERROR,
                                   "ERROR_LIMIT": V.FINISH_LENGTH}))
    _ROLES = {"USER": "user", "CHATBOT": "assistant", "SYSTEM": "system", "TOOL": "tool"}

    def request(self, record: InferenceRecord, body: dict) -> None:
        record.params = _params(body, (
            ("max_tokens", A.GEN_AI_REQUEST_MAX_TOKENS), ("temperature", A.GEN_AI_REQUEST_TEMPERATURE), ("p", A.GEN_AI_REQUEST_TOP_P),
            ("k", A.GEN_AI_REQUEST_TOP_K), ("stop_sequences", A.GEN_AI_REQUEST_STOP_SEQUENCES), ("seed", A.GEN_AI_REQUEST_SEED),
        ))
        messages = []
        for turn in _list(body.get("chat_history")):
            turn = _dict(turn)
            if isinstance(turn.get("message"), str):
                messages.append({"role": self._ROLES.get(turn.get("role"), "user"), "parts": [text_part(turn["message"])]})
        record.input_messages = messages + _user(body.get("message"))
        if isinstance(body.get("preamble"), str) and body["preamble"]:
            record.system_instructions = [text_part(body["preamble"])]
        record.tool_definitions = records.tool_definitions(_list(body.get("tools")), _cohere_tool)

    def response(self, record: InferenceRecord, body: dict) -> None:
        reason = self.finish(body.get("finish_reason"))
        parts = [text_part(body["text"])] if isinstance(body.get("text"), str) and body["text"] else []
        parts += [{"type": "tool_call", "id": None, "name": _dict(c).get("name"), "arguments": _dict(c).get("parameters")}
                  for c in _list(body.get("tool_calls"))]
        _reply(record, None, reason, parts)
        if isinstance(body.get("response_id"), str):
            record.response_id = body["response_id"]
        billed = _dict(_dict(body.get("meta")).get("billed_units"))
        record.input_tokens = count(billed.get("input_tokens"))
        record.output_tokens = count(billed.get("output_tokens"))

    def fold(self, record: InferenceRecord) -> "_CohereFold":
        return _CohereFold(record, self)

    def chunk(self, payload: dict) -> tuple[Any, Any, Any, Any]:
        kind = payload.get("event_type")
        if kind == "text-generation":
            return payload.get("text"), None, None, None
        if kind == "stream-end":
            billed = _dict(_dict(_dict(payload.get("response")).get("meta")).get("billed_units"))
            return None, payload.get("finish_reason"), billed.get("input_tokens"), billed.get("output_tokens")
        return None, None, None, None

    def with_instruction(self, body: dict, instruction: str) -> dict:
        preamble = body.get("preamble")
        return {**body, "preamble": f"{preamble}\n\n{instruction}" if isinstance(preamble, str) and preamble else instruction}


class _CohereFold(TextFold):
    __slots__ = ("response_id",)

    def __init__(self, record: InferenceRecord, family: Family) -> None:
        super().__init__(record, family)
        self.response_id = None

    def add(self, payload: dict) -> None:
        super().add(payload)
        kind = payload.get("event_type")
        if kind == "tool-calls-generation" or kind == "tool-calls-chunk":
            self.non_text = True
        elif kind == "stream-end" and isinstance(_dict(payload.get("response")).get("response_id"), str):
            self.response_id = payload["response"]["response_id"]

    def apply(self) -> None:
        super().apply()
        if self.response_id:
            self.record.response_id = self.response_id


# ---- Embeddings: Amazon Titan (inputText / embedding), Cohere Embed (texts / embeddings) ---------


class TitanEmbed(Family):
    name = "titan-embed"
    operation = V.OPERATION_EMBEDDINGS
    embeddings = True

    def request(self, record: Any, body: dict) -> None:
        text = body.get("inputText")
        record.input_count = 1
        record.inputs = [text] if isinstance(text, str) else []
        formats = body.get("embeddingTypes")
        if isinstance(formats, list) and all(isinstance(f, str) for f in formats):
            record.params = {A.GEN_AI_REQUEST_ENCODING_FORMATS: tuple(formats)}

    def response(self, record: Any, body: dict) -> None:
        vector = body.get("embedding")
        if not isinstance(vector, list):
            vector = next((v for v in _dict(body.get("embeddingsByType")).values() if isinstance(v, list)), None)
        if isinstance(vector, list):
            record.dimension_count = len(vector)
        record.input_tokens = count(body.get("inputTextTokenCount"))


class CohereEmbed(Family):
    name = "cohere-embed"
    operation = V.OPERATION_EMBEDDINGS
    embeddings = True

    def request(self, record: Any, body: dict) -> None:
        texts = body.get("texts")
        texts = texts if isinstance(texts, list) else []
        record.input_count = len(texts)
        record.inputs = [t for t in texts if isinstance(t, str)]
        formats = body.get("embedding_types")
        if isinstance(formats, list) and all(isinstance(f, str) for f in formats):
            record.params = {A.GEN_AI_REQUEST_ENCODING_FORMATS: tuple(formats)}

    def response(self, record: Any, body: dict) -> None:
        vectors = body.get("embeddings")
        if isinstance(vectors, dict):  # by type, when the request asked for embedding_types
            vectors = next((v for v in vectors.values() if isinstance(v, list)), None)
        first = next(iter(_list(vectors)), None)
        if isinstance(first, list):
            record.dimension_count = len(first)
        if isinstance(body.get("id"), str):
            record.response_id = body["id"]


UNKNOWN = Family()
ANTHROPIC, NOVA, LLAMA, MISTRAL, TITAN_TEXT, COHERE = Anthropic(), Nova(), Llama(), Mistral(), TitanText(), Cohere()
TITAN_EMBED, COHERE_EMBED = TitanEmbed(), CohereEmbed()

#: A marker anywhere in the model id (so inference profiles and ARNs match too) -> its family; first match wins.
_MARKERS = (
    ("anthropic.", ANTHROPIC),
    ("meta.llama", LLAMA),
    ("mistral.", MISTRAL),
    ("amazon.titan-embed", TITAN_EMBED),
    ("amazon.titan-t", TITAN_TEXT),  # amazon.titan-text-*, amazon.titan-tg1-large
    ("amazon.nova", NOVA),
    ("cohere.embed", COHERE_EMBED),
    ("cohere.command-r", COHERE),
)
_ANTHROPIC_EVENTS = frozenset({"message", "message_start", "content_block_start", "content_block_delta", "content_block_stop",
                               "message_delta", "message_stop", "ping"})
_CONVERSE_EVENTS = ("output", "messageStart", "contentBlockDelta", "contentBlockStart", "contentBlockStop", "messageStop", "metadata")


def by_model(model_id: Any) -> Family:
    if isinstance(model_id, str):
        for marker, family in _MARKERS:
            if marker in model_id:
                return family
    return UNKNOWN


def by_shape(body: dict) -> Family:
    """The family of a request, response or stream chunk whose model id does not say."""
    if "anthropic_version" in body or body.get("type") in _ANTHROPIC_EVENTS:
        return ANTHROPIC
    if "inputText" in body:
        return TITAN_TEXT if "textGenerationConfig" in body else TITAN_EMBED
    if "results" in body or "outputText" in body:
        return TITAN_TEXT
    if "embedding" in body or "embeddingsByType" in body:
        return TITAN_EMBED
    if "texts" in body or "embeddings" in body:
        return COHERE_EMBED
    if "generation" in body or "max_gen_len" in body:
        return LLAMA
    if "outputs" in body or "choices" in body:
        return MISTRAL
    if "event_type" in body or "chat_history" in body or "preamble" in body or isinstance(body.get("message"), str):
        return COHERE
    if "messages" in body or any(k in body for k in _CONVERSE_EVENTS):
        return NOVA
    if "prompt" in body:
        return LLAMA
    return UNKNOWN


def family(model_id: Any, body: dict | None) -> Family:
    known = by_model(model_id)
    return known if known is not UNKNOWN or body is None else by_shape(body)


def _cohere_tool(tool: Any) -> dict[str, Any] | None:
    if not isinstance(tool, dict):
        return None
    return records.tool_definition("function", tool.get("name"), tool.get("description"), tool.get("parameter_definitions"))
