"""Pure mapping from call records to OpenTelemetry attributes (no provider, no SDK)."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import abc
from typing import Any, Callable, Mapping

from micrometrics import internal_errors
from micrometrics.records import AgentRecord, Call, CallRecord, Document, EmbeddingsRecord, InferenceRecord, RetrievalRecord, ToolRecord
from micrometrics_semconv import attributes as A
from micrometrics_semconv import values as V

TRUNCATION_MARKER = "…[truncated {n} chars]"
_PRIMITIVES = (str, bool, int, float)
_INT64 = 2**63
#: The request parameters' types in the conventions: a double parameter the application passed as an int
#: (``temperature=1``) is sent as a double; a value of another type (a string, a bool) is not sent.
_PARAM_TYPES = {
    A.GEN_AI_REQUEST_TEMPERATURE: "double", A.GEN_AI_REQUEST_TOP_P: "double", A.GEN_AI_REQUEST_TOP_K: "double",
    A.GEN_AI_REQUEST_FREQUENCY_PENALTY: "double", A.GEN_AI_REQUEST_PRESENCE_PENALTY: "double",
    A.GEN_AI_REQUEST_MAX_TOKENS: "int", A.GEN_AI_REQUEST_SEED: "int", A.GEN_AI_REQUEST_CHOICE_COUNT: "int",
    A.GEN_AI_REQUEST_STOP_SEQUENCES: "string[]", A.GEN_AI_REQUEST_ENCODING_FORMATS: "string[]",
}


def _typed(kind: str | None, value: Any) -> Any:
    """``value`` as the conventions type it (``kind``), or None when it is not one (providers' arguments are untrusted)."""
    if kind is None or value is None:
        return value
    if kind == "double":
        return float(value) if type(value) in (int, float) else None
    if kind == "int":
        return value if type(value) is int and -_INT64 <= value < _INT64 else None
    return value if isinstance(value, tuple) and all(isinstance(v, str) for v in value) else None  # string[]


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
    if isinstance(record, ToolRecord):
        tool = _name(record.tool_name)
        head = _name(record.method) or record.operation
        return f"{head} {tool}" if tool else head
    if isinstance(record, AgentRecord):
        # Agents and workflows are named for themselves, not for a model (the conventions' span names).
        name = _name(record.workflow_name if record.operation == V.OPERATION_INVOKE_WORKFLOW else record.agent_name)
        return f"{record.operation} {name}" if name else record.operation
    model = _name(record.model)
    return f"{record.operation} {model}" if model else record.operation


def request_attributes(record: CallRecord, call: Call | None = None, extra: bool = True, latest: bool = False) -> dict[str, Any]:
    """The attributes known before the call: set at span start, so samplers see them.

    ``call``: the attempt and the ``context(...)`` it started in (none: a record alone, e.g. offline).
    ``extra=False``: without the application's ``context(attributes=...)`` (see ``extra_attributes``).
    ``latest``: the conventions after v1.41 (conventions.py), else v1.41.
    """
    attrs: dict[str, Any] = _endpoint_attributes(record)
    for key, value in record.params.items():
        value = _typed(_PARAM_TYPES.get(key), _value(value))
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
            attrs[A.GEN_AI_REQUEST_TOP_K] = float(record.top_k)  # a double, as for inference
        if record.db_system:
            attrs[A.DB_SYSTEM_NAME] = record.db_system
        if _name(record.db_collection):
            attrs[A.DB_COLLECTION_NAME] = _name(record.db_collection)
        if _name(record.db_operation):
            attrs[A.DB_OPERATION_NAME] = _name(record.db_operation)
    if isinstance(record, ToolRecord):
        for key, value in ((A.GEN_AI_TOOL_NAME, record.tool_name), (A.GEN_AI_TOOL_CALL_ID, record.tool_call_id),
                           (A.GEN_AI_TOOL_TYPE, record.tool_type), (A.GEN_AI_TOOL_DESCRIPTION, record.tool_description)):
            if _name(value):
                attrs[key] = _name(value)
    elif isinstance(record, AgentRecord):
        for key, value in ((A.GEN_AI_AGENT_NAME, record.agent_name), (A.GEN_AI_AGENT_ID, record.agent_id),
                           (A.GEN_AI_AGENT_DESCRIPTION, record.agent_description), (A.GEN_AI_AGENT_VERSION, record.agent_version),
                           (A.GEN_AI_WORKFLOW_NAME, record.workflow_name)):
            if _name(value):
                attrs[key] = _name(value)
    if latest:
        latest_request(record, attrs)
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


def response_attributes(record: CallRecord, latest: bool = False) -> dict[str, Any]:
    """The attributes known once the response (or the stream's end) arrived (``latest``: as request_attributes)."""
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
        if record.score_kind:
            attrs[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] = record.score_kind
    if latest:
        latest_response(attrs)
    return attrs


def _endpoint_attributes(record: CallRecord) -> dict[str, Any]:
    """Operation, provider, requested model and server: on spans and metric points alike."""
    attrs: dict[str, Any] = {A.GEN_AI_OPERATION_NAME: record.operation}
    if record.provider:  # a tool run has no provider (the conventions' execute_tool span names none)
        attrs[A.GEN_AI_PROVIDER_NAME] = record.provider
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
    return attrs  # db.system.name stays on retrieval spans: the conventions' metrics do not define it


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
#: The fields of a tool definition that name it rather than describe it (like a tool call's name).
_TOOL_IDENTITY = ("type", "name")


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

    def tools(self, tools: list[Any]) -> list[Any]:
        """Tool definitions: everything but the tool's type and name through ``value`` (descriptions and schemas can quote content)."""
        return [
            {k: v if k in _TOOL_IDENTITY else self.value(v) for k, v in tool.items()} if isinstance(tool, Mapping) else self.value(tool)
            for tool in tools
        ]

    def messages(self, messages: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for m in messages:
            msg = dict(m)
            msg["parts"] = self.parts(list(m.get("parts") or ()))
            out.append(msg)
        return out


def _json(value: Any) -> str:
    return exportable(json.dumps(value, ensure_ascii=False, default=str))


_INT64 = 2**63


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data that OTLP carries as it is (an AnyValue: kvlist, array, scalar).

    Mapping keys become str (as JSON writes them); ints outside int64, NaN and infinities, and
    anything else become their text, as ``json.dumps(default=str)`` would: one unencodable value
    would fail the export of its whole batch.
    """
    kind = type(value)  # exact types first: this runs on every string of every captured call
    if kind is str:
        return exportable(value)
    if kind is dict:
        return {k if type(k) is str and k.isascii() else _plain_key(k): _plain(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [_plain(v) for v in value]
    if value is None or kind is bool:
        return value
    if isinstance(value, str):
        return exportable(str(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return int(value) if -_INT64 <= value < _INT64 else str(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, abc.Mapping):
        return {_plain_key(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return exportable(str(value))


def _plain_key(key: Any) -> str:
    if isinstance(key, str):
        return exportable(key)
    return json.dumps(key) if key is None or isinstance(key, bool) else exportable(str(key))


def cut(value: str, max_length: int | None) -> str:
    """``value`` within ``max_length`` characters, the cut marked (never cut silently)."""
    value = exportable(value)
    if max_length is None or len(value) <= max_length:
        return value
    marker = TRUNCATION_MARKER.format(n=len(value))
    keep = max(0, max_length - len(marker))
    marker = TRUNCATION_MARKER.format(n=len(value) - keep)
    return (value[:keep] + marker)[:max_length]


#: Texts of the items kept are cut no shorter than this before trailing items are dropped instead.
MIN_TEXT_CHARS = 64


def _shorter_tools(tools: list[Any], max_chars: int) -> list[Any]:
    """Tool definitions with each description cut (a parameters schema cut would no longer be one)."""
    shorter = ContentPolicy(max_chars=max_chars)
    return [{**t, "description": shorter.text(t["description"])} if isinstance(t, dict) and isinstance(t.get("description"), str) else t for t in tools]


def _fitted(items: list[Any], shorten: Callable[[list[Any], int], list[Any]] | None, max_length: int | None) -> tuple[str | None, int]:
    """JSON of ``items`` within ``max_length``, and how many trailing items were left out.

    Whole items only, so the JSON always parses: every item kept while each text, cut with its
    marker, keeps ``MIN_TEXT_CHARS``; else the longest prefix that does, its texts as long as fit
    (the first item alone when no prefix does). None when not even ``[]`` fits.
    """
    text = _json(items)
    if max_length is None or len(text) <= max_length:
        return text, 0

    def trial(n: int, max_chars: int) -> str | None:
        kept = items[:n]
        out = _json(shorten(kept, max_chars) if shorten is not None else kept)
        return out if len(out) <= max_length else None

    floor = MIN_TEXT_CHARS if shorten is not None else 0
    kept, low, high = 0, 1, len(items)
    while low <= high:  # the longest prefix that fits with texts of ``floor`` chars (monotone in n)
        mid = (low + high) // 2
        if trial(mid, floor) is not None:
            kept, low = mid, mid + 1
        else:
            high = mid - 1
    if kept == 0:
        kept, floor = 1, 0
    best = trial(kept, max_length)
    if best is None and shorten is not None:
        low, high = floor, max_length
        while low <= high:  # the longest per-text limit that fits
            mid = (low + high) // 2
            found = trial(kept, mid)
            if found is not None:
                best, low = found, mid + 1
            else:
                high = mid - 1
    if best is None:
        return ("[]" if max_length >= 2 else None), len(items)
    return best, len(items) - kept


def _document_item(doc: Document, distance: bool) -> dict[str, Any] | None:
    """``{id, score}`` of one document, null fields left out; a distance under our own key, never as ``score``."""
    item: dict[str, Any] = {}
    doc_id = _name(doc.id)
    if doc_id is not None:
        item["id"] = doc_id
    score = doc.score
    if isinstance(score, (int, float)) and not isinstance(score, bool) and math.isfinite(score):
        item[A.MICROMETRICS_DISTANCE if distance else "score"] = float(score)
    return item or None


def _messages(items: list[Any], max_chars: int) -> list[Any]:
    return ContentPolicy(max_chars=max_chars).messages(items)


def _parts(items: list[Any], max_chars: int) -> list[Any]:
    return ContentPolicy(max_chars=max_chars).parts(items)


#: How each structured content attribute is shortened to fit (None: whole items only).
_SHORTEN: dict[str, Callable[[list[Any], int], list[Any]] | None] = {
    A.GEN_AI_INPUT_MESSAGES: _messages,
    A.GEN_AI_OUTPUT_MESSAGES: _messages,
    A.GEN_AI_SYSTEM_INSTRUCTIONS: _parts,
    A.GEN_AI_TOOL_DEFINITIONS: _shorter_tools,
    A.GEN_AI_RETRIEVAL_DOCUMENTS: None,
    A.MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS: _parts,
}


def captured_content(record: CallRecord, policy: ContentPolicy, latest: bool = False) -> dict[str, Any]:
    """A call's opt-in content, redacted once, as plain structured values (lists of the conventions'
    JSON schemas; the query as text): what ``span_content`` and ``event_content`` both export.

    Fails closed: if the policy (a user's ``redact``) breaks, no content is exported.
    """
    try:
        return _captured_content(latest_parts(record) if latest else record, policy)
    except Exception as exc:
        internal_errors.report("content", exc)
        return {}


def _captured_content(record: CallRecord, policy: ContentPolicy) -> dict[str, Any]:
    content: dict[str, Any] = {}
    if isinstance(record, InferenceRecord):
        if record.input_messages:
            content[A.GEN_AI_INPUT_MESSAGES] = _plain(policy.messages(record.input_messages))
        if record.system_instructions:
            content[A.GEN_AI_SYSTEM_INSTRUCTIONS] = _plain(policy.parts(record.system_instructions))
        if record.output_messages:
            content[A.GEN_AI_OUTPUT_MESSAGES] = _plain(policy.messages(record.output_messages))
        if record.tool_definitions:
            content[A.GEN_AI_TOOL_DEFINITIONS] = _plain(policy.tools(record.tool_definitions))
    elif isinstance(record, RetrievalRecord):
        if record.query:
            content[A.GEN_AI_RETRIEVAL_QUERY_TEXT] = exportable(policy.text(record.query))
        # Ids and scores are opt-in content by the conventions; ids are identifiers, left unredacted.
        distance = record.score_kind == V.SCORE_KIND_DISTANCE
        items = [i for i in (_document_item(d, distance) for d in record.documents or ()) if i is not None]
        if items:
            content[A.GEN_AI_RETRIEVAL_DOCUMENTS] = items
        if any(d.content for d in record.documents):
            content[A.MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS] = _plain(
                [{"id": d.id, "content": policy.text(d.content or "")} for d in record.documents]
            )
    elif isinstance(record, ToolRecord):
        # Opt-in by the conventions: a tool's arguments and result quote the conversation and private data.
        if record.arguments is not None:
            content[A.GEN_AI_TOOL_CALL_ARGUMENTS] = _plain(policy.value(record.arguments))
        if record.result is not None:
            content[A.GEN_AI_TOOL_CALL_RESULT] = _plain(policy.value(record.result))
    # Embeddings: the conventions define no content attribute (metrics still read record.inputs).
    return content


def span_content(content: Mapping[str, Any], max_length: int | None = None) -> dict[str, Any]:
    """Content as span attributes: JSON strings (what every span backend shows) within ``max_length``
    (the SDK's attribute length limit), trailing items left out and counted in ``micrometrics.content.truncated``."""
    attrs: dict[str, Any] = {}
    dropped = 0
    for key, value in content.items():
        if isinstance(value, str):
            attrs[key] = cut(value, max_length)
            continue
        if not isinstance(value, list):  # a tool's arguments or result: one JSON value, cut as text
            attrs[key] = cut(_json(value), max_length)
            continue
        text, left_out = _fitted(value, _SHORTEN.get(key), max_length)
        dropped += left_out
        if text is not None:
            attrs[key] = text
    if dropped:
        attrs[A.MICROMETRICS_CONTENT_TRUNCATED] = dropped
    return attrs


def _cut_texts(value: Any, max_length: int) -> Any:
    if isinstance(value, str):
        return cut(value, max_length)
    if isinstance(value, dict):
        return {k: _cut_texts(v, max_length) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_texts(v, max_length) for v in value]
    return value


def event_content(content: Mapping[str, Any], max_length: int | None = None) -> dict[str, Any]:
    """Content as log record attributes: structured values, as the conventions require on events.

    The SDK's log attribute length limit applies to each string inside: each is cut here first, with the marker.
    """
    if max_length is None:
        return dict(content)
    return {key: _cut_texts(value, max_length) for key, value in content.items()}


def content_attributes(record: CallRecord, policy: ContentPolicy, max_length: int | None = None, latest: bool = False) -> dict[str, Any]:
    """Opt-in content as span attributes (``captured_content`` then ``span_content``); fails closed."""
    return span_content(captured_content(record, policy, latest), max_length)


def error_type(exc: BaseException) -> str:
    """HTTP status code for API errors, else the exception's qualified class name.

    Only an error status counts: an SDK that cannot read a 200 answer raises with that 200 on it (mistralai).
    """
    status = getattr(exc, "status_code", None)
    if status is None:
        status = getattr(exc, "code", None) if type(getattr(exc, "code", None)) is int else None
    if status is None:  # botocore's ClientError (Bedrock): the status is in the parsed error response
        response = getattr(exc, "response", None)
        meta = response.get("ResponseMetadata") if isinstance(response, dict) else None
        status = meta.get("HTTPStatusCode") if isinstance(meta, dict) else None
    if isinstance(status, int) and 400 <= status <= 599:
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


# ---- the conventions after v1.41 (OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental, conventions.py) ----------
# From open-telemetry/semantic-conventions-genai (unreleased): model/gen-ai/registry.yaml, the message JSON schemas
# and docs/gen-ai/non-normative/migration.md. Each function turns what the v1.41 mapping made into the newer form.


def _integer(value: Any) -> int | None:
    """An int as the newer conventions type ``top_k``; a whole float (Gemini's SDK sends 40.0) counts, 40.5 does not."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def latest_request(record: CallRecord, attrs: dict[str, Any]) -> None:
    """Request attributes: ``top_k`` an int (``gen_ai.retrieval.top_k`` on retrieval spans), and the request details
    only the newer conventions name (reasoning level, previous response, prompt template)."""
    top_k = _integer(attrs.pop(A.GEN_AI_REQUEST_TOP_K, None))
    if top_k is not None:
        attrs[A.GEN_AI_RETRIEVAL_TOP_K if isinstance(record, RetrievalRecord) else A.GEN_AI_REQUEST_TOP_K] = top_k
    if not isinstance(record, InferenceRecord):
        return
    for key, value in (
        (A.GEN_AI_REQUEST_REASONING_LEVEL, record.reasoning_level),
        (A.GEN_AI_REQUEST_PREVIOUS_RESPONSE_ID, record.previous_response_id),
        (A.GEN_AI_PROMPT_NAME, record.prompt_name),
        (A.GEN_AI_PROMPT_VERSION, record.prompt_version),
    ):
        value = _name(value)
        if value:
            attrs[key] = value


def latest_response(attrs: dict[str, Any]) -> None:
    """Response attributes: cache creation is called cache write."""
    written = attrs.pop(A.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, None)
    if written is not None:
        attrs[A.GEN_AI_USAGE_CACHE_WRITE_INPUT_TOKENS] = written


#: The part types the newer message schemas define; any other part is ``generic``, its type in ``generic_type``.
_PART_TYPES = frozenset({
    "text", "tool_call", "tool_call_response", "server_tool_call", "server_tool_call_response",
    "blob", "file", "uri", "reasoning", "compaction", V.PART_TYPE_GENERIC,
})
#: System instructions take text and generic parts only.
_SYSTEM_PART_TYPES = frozenset({"text", V.PART_TYPE_GENERIC})


def _generic(part: Any, known: frozenset[str]) -> Any:
    if not isinstance(part, Mapping):
        return part
    kind = part.get("type")
    if isinstance(kind, str) and kind in known:
        return part
    fields = {k: v for k, v in part.items() if k != "type"}
    return {"type": V.PART_TYPE_GENERIC, **({"generic_type": str(kind)} if kind is not None else {}), **fields}


def _generic_messages(messages: list[Any]) -> list[Any]:
    return [
        {**m, "parts": [_generic(p, _PART_TYPES) for p in m.get("parts") or ()]} if isinstance(m, Mapping) else m
        for m in messages
    ]


def latest_parts(record: CallRecord) -> CallRecord:
    """The record as the content attributes read it: a part of a type the newer schemas do not define is a ``generic``
    part (``{"type": "generic", "generic_type": "refusal", ...}``). A copy: metrics read the record as translated."""
    if not isinstance(record, InferenceRecord):
        return record
    return dataclasses.replace(
        record,
        input_messages=_generic_messages(record.input_messages),
        output_messages=_generic_messages(record.output_messages),
        system_instructions=[_generic(p, _SYSTEM_PART_TYPES) for p in record.system_instructions],
    )
