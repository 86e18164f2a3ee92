"""Pure mapping from call records to OpenTelemetry attributes (no provider, no SDK)."""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping

from micrometrics import internal_errors
from micrometrics.records import Call, CallRecord, EmbeddingsRecord, InferenceRecord, RetrievalRecord
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

TRUNCATION_MARKER = "…[truncated {n} chars]"
_PRIMITIVES = (str, bool, int, float)


def exportable(text: str) -> str:
    """``text`` with lone surrogates (JSON's "\\ud800" decodes to one) replaced: OTLP encodes UTF-8,
    and one such string would fail the export of its whole batch, the application's spans included."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _name(value: Any) -> str | None:
    """A model, id or address as exported: a non-empty str, else nothing (providers' data is untrusted)."""
    if isinstance(value, str):
        return exportable(value) if value else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _value(value: Any) -> Any:
    """An attribute value every backend takes (a primitive or a homogeneous sequence of one), else None."""
    if isinstance(value, str):
        return exportable(value)
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, (list, tuple)) and value:
        kinds = {type(v) for v in value}
        if len(kinds) == 1 and kinds <= {str, bool, int, float}:
            return tuple(exportable(v) for v in value) if str in kinds else tuple(value)
    return None


def span_name(record: CallRecord) -> str:
    if isinstance(record, RetrievalRecord):
        source = _name(record.data_source)
        return f"{V.OPERATION_RETRIEVAL} {source}" if source else V.OPERATION_RETRIEVAL
    model = _name(record.model)
    return f"{record.operation} {model}" if model else record.operation


def request_attributes(record: CallRecord, call: Call | None = None, extra: bool = True) -> dict[str, Any]:
    """The attributes known before the call: set at span start, so samplers see them.

    ``call``: the attempt and the ``context(...)`` it started in (none: a record alone, e.g. offline).
    ``extra=False``: without the application's ``context(attributes=...)`` (see ``extra_attributes``).
    """
    attrs: dict[str, Any] = _endpoint_attributes(record)
    for key, value in record.params.items():
        value = _value(value)
        if value is not None:
            attrs[key] = value
    if record.stream:
        attrs[A.GEN_AI_REQUEST_STREAM] = True
    if isinstance(record, InferenceRecord) and _name(record.output_type):
        attrs[A.GEN_AI_OUTPUT_TYPE] = _name(record.output_type)
    if isinstance(record, RetrievalRecord):
        if _name(record.data_source):
            attrs[A.GEN_AI_DATA_SOURCE_ID] = _name(record.data_source)
        if isinstance(record.top_k, int) and not isinstance(record.top_k, bool):
            attrs[A.GEN_AI_REQUEST_TOP_K] = record.top_k
        if record.db_system:
            attrs[A.DB_SYSTEM_NAME] = record.db_system
    if call is None:
        return attrs
    if call.attempt > 1:
        attrs[A.MICROMETRICS_ATTEMPT] = call.attempt
    ctx = call.context
    if ctx:
        conv = ctx.get("conversation_id")
        if conv is not None:
            attrs[A.GEN_AI_CONVERSATION_ID] = exportable(str(conv))
        if extra:
            for k, v in extra_attributes(call).items():
                attrs.setdefault(k, v)
    return attrs


def extra_attributes(call: Call) -> Mapping[str, Any]:
    """The application's own span attributes, from ``micrometrics.context(attributes=...)``."""
    return (call.context.get("attributes") if call.context else None) or {}


def response_attributes(record: CallRecord) -> dict[str, Any]:
    """The attributes known once the response (or the stream's end) arrived."""
    attrs: dict[str, Any] = {}
    if _name(record.response_id):
        attrs[A.GEN_AI_RESPONSE_ID] = _name(record.response_id)
    if _name(record.response_model):
        attrs[A.GEN_AI_RESPONSE_MODEL] = _name(record.response_model)
    reasons = tuple(exportable(r) for r in record.finish_reasons or () if isinstance(r, str))
    if reasons:
        attrs[A.GEN_AI_RESPONSE_FINISH_REASONS] = reasons
    if record.input_tokens is not None:
        attrs[A.GEN_AI_USAGE_INPUT_TOKENS] = record.input_tokens
    if record.output_tokens is not None:
        attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] = record.output_tokens
    if record.cache_read_tokens is not None:
        attrs[A.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = record.cache_read_tokens
    if record.cache_creation_tokens is not None:
        attrs[A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = record.cache_creation_tokens
    if record.reasoning_tokens is not None:
        attrs[A.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS] = record.reasoning_tokens
    if record.time_to_first_chunk is not None:
        attrs[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] = record.time_to_first_chunk
    for key, value in record.response_params.items():
        value = _value(value)
        if value is not None and value != "":
            attrs[key] = value
    if isinstance(record, EmbeddingsRecord) and type(record.dimension_count) is int and record.dimension_count > 0:
        attrs[A.GEN_AI_EMBEDDINGS_DIMENSION_COUNT] = record.dimension_count
    if isinstance(record, RetrievalRecord):
        # Ids and scores are not content: always recorded.
        attrs[A.GEN_AI_RETRIEVAL_DOCUMENTS] = _json([{"id": d.id, "score": d.score} for d in record.documents or ()])
        if record.score_kind:
            attrs[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] = record.score_kind
    return attrs


def _endpoint_attributes(record: CallRecord) -> dict[str, Any]:
    """Operation, provider, requested model and server: on spans and metric points alike."""
    attrs: dict[str, Any] = {A.GEN_AI_OPERATION_NAME: record.operation, A.GEN_AI_PROVIDER_NAME: record.provider}
    model = _name(record.model)
    if model:
        attrs[A.GEN_AI_REQUEST_MODEL] = model
    address = record.server_address
    if isinstance(address, str) and address:
        attrs[A.SERVER_ADDRESS] = exportable(address)
        if isinstance(record.server_port, int) and not isinstance(record.server_port, bool) and record.server_port > 0:
            attrs[A.SERVER_PORT] = record.server_port
    return attrs


def metric_attributes(record: CallRecord) -> dict[str, Any]:
    """Metric dimensions: an allow-list, never ids or content."""
    attrs = _endpoint_attributes(record)
    if _name(record.response_model):
        attrs[A.GEN_AI_RESPONSE_MODEL] = _name(record.response_model)
    if record.error_type:
        attrs[A.ERROR_TYPE] = record.error_type
    if isinstance(record, RetrievalRecord) and record.db_system:
        attrs[A.DB_SYSTEM_NAME] = record.db_system
    return attrs


def dimensions(call: Call) -> dict[str, Any]:
    """The call's metric dimensions, computed once per call (spans.ended clears them: the response may change them)."""
    dims = call.dimensions
    if dims is None:
        dims = call.dimensions = metric_attributes(call.record)
    return dims


#: ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` values, as opentelemetry-util-genai defines them.
NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT = "no_content", "span_only", "event_only", "span_and_event"
CAPTURE_MODES = (NO_CONTENT, SPAN_ONLY, EVENT_ONLY, SPAN_AND_EVENT)


def capture_targets(mode: str | bool) -> tuple[bool, bool]:
    """(content on spans, content on events/log records) for a capture mode (True: both, False: neither)."""
    if mode is True:
        mode = SPAN_AND_EVENT
    elif mode is False or mode is None:
        mode = NO_CONTENT
    if mode not in CAPTURE_MODES:
        raise ValueError(f"capture_content={mode!r} is not a capture mode; allowed: True, False, {', '.join(map(repr, CAPTURE_MODES))}")
    return mode in (SPAN_ONLY, SPAN_AND_EVENT), mode in (EVENT_ONLY, SPAN_AND_EVENT)


#: The fields of a message part that hold content (text, tool arguments and results, URIs).
_CONTENT_KEYS = ("content", "arguments", "response", "uri")


class ContentPolicy:
    """How content is exported when capture is on: redaction, then truncation with a marker."""

    __slots__ = ("redact", "max_chars")

    def __init__(self, redact: Callable[[str], str] | None = None, max_chars: int | None = None) -> None:
        self.redact = redact
        self.max_chars = max_chars

    def text(self, value: str) -> str:
        if self.redact is not None:
            value = self.redact(value)
            if not isinstance(value, str):
                raise TypeError(f"redact must return a str, returned {type(value).__name__}")
        if self.max_chars is not None and len(value) > self.max_chars:
            cut = len(value) - self.max_chars
            value = value[: self.max_chars] + TRUNCATION_MARKER.format(n=cut)
        return value

    def value(self, value: Any) -> Any:
        """Every string, number and key inside a structured value (tool arguments, tool results) through ``text``."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {self._key(k): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.value(v) for v in value]
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            # A card number sent as a JSON number is content too; unchanged by redact, it stays a number.
            shown = str(value)
            redacted = self.text(shown)
            return value if redacted == shown else redacted
        return self.text(str(value))  # what json.dumps(default=str) would export

    def _key(self, key: Any) -> Any:
        """A mapping key as JSON writes it (a str), through ``text``: keys can be content ({"4111...": ...})."""
        if key is None or isinstance(key, bool):
            return key
        return self.text(key if isinstance(key, str) else str(key))

    def parts(self, parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for part in parts:
            p = dict(part)
            for key in _CONTENT_KEYS:
                if p.get(key) is not None:
                    p[key] = self.value(p[key])
            out.append(p)
        return out

    def messages(self, messages: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for m in messages:
            msg = dict(m)
            msg["parts"] = self.parts(list(m.get("parts") or ()))
            out.append(msg)
        return out


def _json(value: Any) -> str:
    return exportable(json.dumps(value, ensure_ascii=False, default=str))


def cut(value: str, max_length: int | None) -> str:
    """``value`` within ``max_length`` characters, the cut marked (never cut silently)."""
    value = exportable(value)
    if max_length is None or len(value) <= max_length:
        return value
    marker = TRUNCATION_MARKER.format(n=len(value))
    keep = max(0, max_length - len(marker))
    marker = TRUNCATION_MARKER.format(n=len(value) - keep)
    return (value[:keep] + marker)[:max_length]


def _fitted(value: list[Any], messages: bool, max_length: int | None) -> str:
    """JSON of messages (or parts) within ``max_length``: each text cut shorter, with its marker,
    until the JSON fits; when even empty texts do not fit, the JSON itself is cut."""
    text = _json(value)
    if max_length is None or len(text) <= max_length:
        return text
    best, low, high = None, 0, max_length
    while low <= high:  # the longest per-text limit that fits
        mid = (low + high) // 2
        shorter = ContentPolicy(max_chars=mid)
        trial = _json(shorter.messages(value) if messages else shorter.parts(value))
        if len(trial) <= max_length:
            best, low = trial, mid + 1
        else:
            high = mid - 1
    return best if best is not None else cut(text, max_length)


def content_attributes(record: CallRecord, policy: ContentPolicy, max_length: int | None = None) -> dict[str, Any]:
    """Opt-in content attributes, as the conventions' JSON message schema.

    Each value fits ``max_length`` (the SDK's attribute length limit), cut with a
    marker. Fails closed: if the policy (a user's ``redact``) breaks, no content is exported.
    """
    try:
        return _content_attributes(record, policy, max_length)
    except Exception as exc:
        internal_errors.report("content", exc)
        return {}


def _content_attributes(record: CallRecord, policy: ContentPolicy, max_length: int | None) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    if isinstance(record, InferenceRecord):
        if record.input_messages:
            attrs[A.GEN_AI_INPUT_MESSAGES] = _fitted(policy.messages(record.input_messages), True, max_length)
        if record.system_instructions:
            attrs[A.GEN_AI_SYSTEM_INSTRUCTIONS] = _fitted(policy.parts(record.system_instructions), False, max_length)
        if record.output_messages:
            attrs[A.GEN_AI_OUTPUT_MESSAGES] = _fitted(policy.messages(record.output_messages), True, max_length)
        if record.tool_definitions:
            attrs[A.GEN_AI_TOOL_DEFINITIONS] = cut(policy.text(_json(record.tool_definitions)), max_length)
    elif isinstance(record, RetrievalRecord):
        if record.query:
            attrs[A.GEN_AI_RETRIEVAL_QUERY_TEXT] = cut(policy.text(record.query), max_length)
        if any(d.content for d in record.documents):
            contents = [{"id": d.id, "content": policy.text(d.content or "")} for d in record.documents]
            attrs[A.MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS] = _fitted(contents, False, max_length)
    elif isinstance(record, EmbeddingsRecord) and record.inputs:
        inputs = [{"role": "user", "parts": [{"type": "text", "content": policy.text(t)}]} for t in record.inputs]
        attrs[A.GEN_AI_INPUT_MESSAGES] = _fitted(inputs, True, max_length)
    return attrs


def error_type(exc: BaseException) -> str:
    """HTTP status code for API errors, else the exception's qualified class name."""
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(exc, "code", None) if type(getattr(exc, "code", None)) is int else None
    if isinstance(status, int) and 100 <= status <= 599:
        return str(status)
    return qualified_name(type(exc))


def qualified_name(cls: type) -> str:
    """An exception class as ``exception.type`` names it: ``ValueError``, ``openai.RateLimitError``."""
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def error_text(exc_text: str, capture: bool, policy: ContentPolicy) -> str | None:
    """An exception's message as exported: None with capture off (providers quote the input in
    their errors), else through ``redact``; a broken ``redact`` fails closed (None)."""
    if not capture or not exc_text:
        return None
    try:
        return exportable(policy.text(exc_text))
    except Exception as exc:
        internal_errors.report("content", exc)
        return None
