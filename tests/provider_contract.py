"""What every provider's instrumentation must show a backend for one call, asserted in one place.

A provider's tests (OpenAI, Anthropic, Google Gen AI, a vector store, the next one: Bedrock, Mistral, ...)
make a real call over loopback, then call ``assert_inference_call`` (or ``assert_failed_call``,
``assert_retrieval_call``) with what the call sent and got back. What only that provider does (request
parameters, cache tokens, tool calls, thoughts) stays asserted in its own test.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, StatusCode

from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M
from micrometrics_semconv import values as V
from telemetry_harness import Telemetry

#: The provider key of conventions before v1.37 (not declared: we must never emit it).
DEPRECATED_SYSTEM = "gen_ai.system"
#: What only content capture may put on a span.
CONTENT_KEYS = (A.GEN_AI_INPUT_MESSAGES, A.GEN_AI_SYSTEM_INSTRUCTIONS, A.GEN_AI_OUTPUT_MESSAGES)
#: The conventions' advised ``gen_ai.client.operation.duration`` buckets, written out (not our constant read back).
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
#: The details event describes an inference (chat, text_completion, generate_content): an embeddings call has none.
NO_DETAILS_EVENT = frozenset({V.OPERATION_EMBEDDINGS})
#: The conventions define no content attribute for embeddings: their inputs appear nowhere, capture on or off.
NO_CONTENT = frozenset({V.OPERATION_EMBEDDINGS})
#: ``assert_retrieval_call``'s default for attributes a test does not assert.
UNCHECKED: Any = object()
#: The keys of the token counts, by ``gen_ai.token.type``.
USAGE_KEYS = {V.TOKEN_TYPE_INPUT: A.GEN_AI_USAGE_INPUT_TOKENS, V.TOKEN_TYPE_OUTPUT: A.GEN_AI_USAGE_OUTPUT_TOKENS}


@dataclass(frozen=True)
class Content:
    """What the app sent and read: on the span (and the details log) with capture on, nowhere without it."""

    #: ``gen_ai.input.messages`` as the conventions' JSON; None: not asserted.
    input_messages: list[dict] | None = None
    #: ``gen_ai.system_instructions`` as the conventions' JSON; None: not asserted.
    system_instructions: list[dict] | None = None
    #: The one text answer the app read; None: not asserted.
    output_text: str | None = None

    def texts(self) -> list[str]:
        """Every text the app sent or read, none of which may appear anywhere without capture."""
        texts = [self.output_text] if self.output_text else []
        for message in [*(self.input_messages or []), {"parts": self.system_instructions or []}]:
            texts += [p["content"] for p in message.get("parts", []) if isinstance(p.get("content"), str)]
        return texts


def _same(actual: Any, expected: Any) -> bool:
    # Span attributes hold sequences as tuples; expectations are written as lists or tuples.
    if isinstance(expected, (list, tuple)):
        return isinstance(actual, (list, tuple)) and tuple(actual) == tuple(expected)
    return actual == expected


def assert_attributes(attrs: Mapping[str, Any], expected: Mapping[str, Any]) -> None:
    """Each key holds exactly its expected value."""
    wrong = {k: (attrs.get(k), v) for k, v in expected.items() if not _same(attrs.get(k), v)}
    assert not wrong, f"attribute (actual, expected): {wrong}"


def assert_inference_span(
    span: Any,
    *,
    operation: str,
    provider: str,
    request_model: str,
    response_model: str | None,
    response_id_prefix: str | None,
    finish_reasons: Sequence[str] | None,
    token_types: Sequence[str],
    server: tuple[str, int],
    stream: bool = False,
    attributes: Mapping[str, Any] | None = None,
) -> None:
    """The span of a successful inference call; None/absent arguments assert the attribute is absent."""
    attrs = span.attributes
    assert span.name == f"{operation} {request_model}"
    assert span.kind == SpanKind.CLIENT
    assert span.status.status_code == StatusCode.UNSET
    assert attrs[A.GEN_AI_OPERATION_NAME] == operation
    assert attrs[A.GEN_AI_PROVIDER_NAME] == provider
    assert DEPRECATED_SYSTEM not in attrs
    assert attrs[A.GEN_AI_REQUEST_MODEL] == request_model
    assert attrs.get(A.GEN_AI_RESPONSE_MODEL) == response_model
    if response_id_prefix is None:
        assert A.GEN_AI_RESPONSE_ID not in attrs
    else:
        assert attrs[A.GEN_AI_RESPONSE_ID].startswith(response_id_prefix), attrs[A.GEN_AI_RESPONSE_ID]
    if finish_reasons is None:
        assert A.GEN_AI_RESPONSE_FINISH_REASONS not in attrs
    else:
        assert tuple(attrs[A.GEN_AI_RESPONSE_FINISH_REASONS]) == tuple(finish_reasons)
    for token_type, key in USAGE_KEYS.items():
        if token_type in token_types:
            assert attrs[key] > 0, key
        else:
            assert key not in attrs, key
    assert (attrs[A.SERVER_ADDRESS], attrs[A.SERVER_PORT]) == server
    if stream:
        assert attrs[A.GEN_AI_REQUEST_STREAM] is True
        assert 0 < attrs[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] < (span.end_time - span.start_time) / 1e9
    else:
        assert A.GEN_AI_REQUEST_STREAM not in attrs
        assert A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK not in attrs
    assert_attributes(attrs, attributes or {})


def assert_content(attrs: Mapping[str, Any], content: Content, *, capture: bool, finish_reason: str | None = V.FINISH_STOP) -> None:
    """With capture: the conventions' JSON of what was sent and read. Without: none of it, under any key."""
    if not capture:
        for key in CONTENT_KEYS:
            assert key not in attrs, key
        for text in content.texts():
            assert not any(text in str(v) for v in attrs.values()), text
        return
    if content.input_messages is not None:
        assert json.loads(attrs[A.GEN_AI_INPUT_MESSAGES]) == content.input_messages
    if content.system_instructions is not None:
        assert json.loads(attrs[A.GEN_AI_SYSTEM_INSTRUCTIONS]) == content.system_instructions
    if content.output_text is not None:
        (output,) = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])
        expected = {"role": "assistant", "parts": [{"type": "text", "content": content.output_text}]}
        if finish_reason is not None:
            expected["finish_reason"] = finish_reason
        assert output == expected


def assert_operation_metrics(points: Mapping[str, list[Any]], span: Any, *, token_types: Sequence[str], stream: bool = False) -> None:
    """One duration point with the span's low-cardinality dimensions, and token counts equal to the span's."""
    attrs = span.attributes
    (duration,) = points[M.GEN_AI_CLIENT_OPERATION_DURATION]
    assert duration.count == 1 and duration.sum > 0
    assert tuple(duration.explicit_bounds) == DURATION_BUCKETS
    dimensions = (A.GEN_AI_OPERATION_NAME, A.GEN_AI_PROVIDER_NAME, A.GEN_AI_REQUEST_MODEL, A.GEN_AI_RESPONSE_MODEL, A.SERVER_ADDRESS, A.SERVER_PORT)
    common = {k: attrs[k] for k in dimensions if k in attrs}
    # Duration and token usage add the OpenAI service tier the response reported (the conventions' OpenAI refinement).
    usage = {**common, **({A.OPENAI_RESPONSE_SERVICE_TIER: attrs[A.OPENAI_RESPONSE_SERVICE_TIER]} if A.OPENAI_RESPONSE_SERVICE_TIER in attrs else {})}
    assert dict(duration.attributes) == usage
    token_points = points.get(M.GEN_AI_CLIENT_TOKEN_USAGE, [])
    assert sorted(p.attributes[A.GEN_AI_TOKEN_TYPE] for p in token_points) == sorted(token_types)
    tokens = {p.attributes[A.GEN_AI_TOKEN_TYPE]: p for p in token_points}
    for token_type, point in tokens.items():
        assert point.sum == attrs[USAGE_KEYS[token_type]], token_type
        assert {k: v for k, v in point.attributes.items() if k != A.GEN_AI_TOKEN_TYPE} == usage
    if stream:
        (first_chunk,) = points[M.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK]
        assert first_chunk.count == 1
        # One point per chunk after the first, each the gap since the chunk before, within the call's duration.
        (per_chunk,) = points[M.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK]
        assert per_chunk.count >= 1 and 0 <= per_chunk.sum < duration.sum
        assert tuple(per_chunk.explicit_bounds) == DURATION_BUCKETS
        assert dict(per_chunk.attributes) == dict(first_chunk.attributes) == common
    else:
        assert M.GEN_AI_CLIENT_OPERATION_TIME_TO_FIRST_CHUNK not in points
        assert M.GEN_AI_CLIENT_OPERATION_TIME_PER_OUTPUT_CHUNK not in points


#: The content attributes the details log record carries as structured values (the conventions' MUST on events).
STRUCTURED_KEYS = (*CONTENT_KEYS, A.GEN_AI_TOOL_DEFINITIONS)


def plain(value: Any) -> Any:
    """A structured attribute value as JSON reads it (the SDK keeps sequences as tuples)."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


def assert_details_log(logs: list[Any], span: Any, content: Content, *, capture: bool) -> None:
    """With capture, one details log record on the call's span, with the answer; without (or for embeddings), none.

    Its content is structured (maps and lists, not JSON strings), the same content the span carries as JSON.
    """
    details = [r for r in logs if r.event_name == E.GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS]
    if not capture:
        assert details == []
        return
    (detail,) = details
    assert detail.span_id == span.context.span_id
    for key in STRUCTURED_KEYS:
        if key in span.attributes:
            value = detail.attributes[key]
            assert isinstance(value, (list, tuple)) and not isinstance(value, str), (key, value)
            assert plain(value) == json.loads(span.attributes[key]), key
    if content.output_text is not None:
        assert detail.attributes[A.GEN_AI_OUTPUT_MESSAGES][0]["parts"][0]["content"] == content.output_text


def assert_inference_call(
    telemetry: Telemetry,
    *,
    operation: str,
    provider: str,
    request_model: str,
    response_model: str | None,
    response_id_prefix: str | None,
    server: tuple[str, int],
    finish_reasons: Sequence[str] | None = (V.FINISH_STOP,),
    token_types: Sequence[str] = (V.TOKEN_TYPE_INPUT, V.TOKEN_TYPE_OUTPUT),
    stream: bool = False,
    capture: bool = False,
    content: Content = Content(),
    secret: str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> Any:
    """One successful call as a backend shows it: its span, its metric points, its details log; the span, for more."""
    span = telemetry.span(f"{operation} {request_model}")
    assert_inference_span(
        span, operation=operation, provider=provider, request_model=request_model, response_model=response_model,
        response_id_prefix=response_id_prefix, finish_reasons=finish_reasons, token_types=token_types, server=server,
        stream=stream, attributes=attributes,
    )
    assert_content(span.attributes, content, capture=capture and operation not in NO_CONTENT, finish_reason=(finish_reasons or [None])[0])
    assert_operation_metrics(telemetry.metrics(), span, token_types=token_types, stream=stream)
    assert_details_log(telemetry.logs(), span, content, capture=capture and operation not in NO_DETAILS_EVENT)
    if secret is not None:
        assert secret not in repr([s.attributes for s in telemetry.spans()])
    return span


def assert_failed_call(telemetry: Telemetry, span_name: str, *, provider: str, error_type: str, capture: bool = False) -> Any:
    """A call that raised: an error span with ``error.type`` and the exception event, the duration point says so too,
    and one ``gen_ai.client.operation.exception`` log record (WARN) on the span: the exception's type, its
    message and stacktrace only with capture on (a provider's error may quote the prompt)."""
    span = telemetry.span(span_name)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes[A.GEN_AI_PROVIDER_NAME] == provider
    assert span.attributes[A.ERROR_TYPE] == error_type
    assert [e.name for e in span.events] == [E.EXCEPTION]
    (point,) = telemetry.metrics()[M.GEN_AI_CLIENT_OPERATION_DURATION]
    assert point.attributes[A.ERROR_TYPE] == error_type
    assert point.attributes[A.GEN_AI_PROVIDER_NAME] == provider
    (record,) = [r for r in telemetry.logs() if r.event_name == E.GEN_AI_CLIENT_OPERATION_EXCEPTION]
    assert record.severity_number == SeverityNumber.WARN and record.severity_text == "WARN"
    assert (record.trace_id, record.span_id) == (span.context.trace_id, span.context.span_id)
    assert record.timestamp == span.end_time
    (exception,) = span.events
    assert record.attributes[A.EXCEPTION_TYPE] == exception.attributes[A.EXCEPTION_TYPE]
    if capture:
        assert record.attributes[A.EXCEPTION_MESSAGE] and record.attributes[A.EXCEPTION_STACKTRACE]
    else:
        assert set(record.attributes) == {A.EXCEPTION_TYPE}
    return span


def retrieved_documents(span: Any) -> list[dict]:
    """``gen_ai.retrieval.documents`` (captured content): ids and scores (or our distances), in the store's order."""
    return json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])


def assert_retrieval_call(
    telemetry: Telemetry,
    *,
    provider: str,
    data_source: str,
    top_k: int,
    documents: list[dict],
    db_system: str | None,
    score_kind: str = V.SCORE_KIND_SIMILARITY,
    server: tuple[str, int] | None = None,
    capture: bool = False,
    query_text: str | None = None,
    first_document: dict | None = None,
    hidden: Sequence[str] = (),
    db_collection: str | None = UNCHECKED,
    db_operation: str | None = UNCHECKED,
) -> Any:
    """One retrieval as a backend shows it: its span (ids, scores and text only with capture, opt-in content by
    the conventions) and duration point. ``documents``: the ``gen_ai.retrieval.documents`` items capture shows.

    ``query_text``/``first_document``: what capture shows (None: a vector query has no text / not asserted);
    ``hidden``: texts that must appear in no attribute without capture.
    """
    span = telemetry.span(f"{V.OPERATION_RETRIEVAL} {data_source}")
    attrs = span.attributes
    assert span.kind == SpanKind.CLIENT
    assert span.status.status_code == StatusCode.UNSET
    assert attrs[A.GEN_AI_OPERATION_NAME] == V.OPERATION_RETRIEVAL
    assert attrs[A.GEN_AI_PROVIDER_NAME] == provider
    assert attrs.get(A.DB_SYSTEM_NAME) == db_system
    assert attrs[A.GEN_AI_DATA_SOURCE_ID] == data_source
    assert attrs[A.GEN_AI_REQUEST_TOP_K] == top_k and isinstance(attrs[A.GEN_AI_REQUEST_TOP_K], float)  # a double, as the conventions define it
    if db_collection is not UNCHECKED:
        assert attrs.get(A.DB_COLLECTION_NAME) == db_collection
    if db_operation is not UNCHECKED:
        assert attrs.get(A.DB_OPERATION_NAME) == db_operation
    assert attrs[A.MICROMETRICS_RETRIEVAL_SCORE_KIND] == score_kind
    assert (attrs.get(A.SERVER_ADDRESS), attrs.get(A.SERVER_PORT)) == (server or (None, None))
    if capture:
        assert retrieved_documents(span) == documents
    else:
        assert A.GEN_AI_RETRIEVAL_DOCUMENTS not in attrs
    if capture and query_text is not None:
        assert attrs[A.GEN_AI_RETRIEVAL_QUERY_TEXT] == query_text
    else:
        assert A.GEN_AI_RETRIEVAL_QUERY_TEXT not in attrs
    if capture and first_document is not None:
        assert json.loads(attrs[A.MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS])[0] == first_document
    if not capture:
        assert A.MICROMETRICS_RETRIEVAL_DOCUMENT_CONTENTS not in attrs
        for text in hidden:
            assert not any(text in str(v) for v in attrs.values()), text

    (duration,) = telemetry.metrics()[M.GEN_AI_CLIENT_OPERATION_DURATION]
    # The conventions' duration metric has no db.* dimension: db.system.name stays on the span.
    dimensions = (A.GEN_AI_OPERATION_NAME, A.GEN_AI_PROVIDER_NAME, A.SERVER_ADDRESS, A.SERVER_PORT)
    assert dict(duration.attributes) == {k: attrs[k] for k in dimensions if k in attrs}
    return span
