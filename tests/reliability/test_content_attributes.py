"""Captured content as a backend receives it: structured on the details log record, valid JSON on spans.

- On the ``gen_ai.client.inference.operation.details`` log record, ``gen_ai.input.messages``,
  ``gen_ai.output.messages``, ``gen_ai.system_instructions`` and ``gen_ai.tool.definitions`` are
  structured values (OTLP kvlists and arrays), as the conventions require on events; spans keep JSON
  strings. Checked on the OTLP bytes a real exporter sent.
- A JSON attribute never breaks under the SDK's length limit: whole trailing items (messages,
  parts, tools, documents) are left out and counted in ``micrometrics.content.truncated``.
- The user's ``redact`` runs once per string of a call, whether content goes to spans, events or both.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk._logs import LoggerProvider, LogRecordLimits
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider

import micrometrics
from micrometrics.attributes import TRUNCATION_MARKER, ContentPolicy, captured_content, content_attributes, span_content
from micrometrics.records import Document, InferenceRecord, RetrievalRecord, text_part
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import values as V
from otlp_sink import attributes
from reliability_libraries import API_KEY

MARKER = TRUNCATION_MARKER.split("{")[0]
STRUCTURED = (A.GEN_AI_INPUT_MESSAGES, A.GEN_AI_OUTPUT_MESSAGES, A.GEN_AI_SYSTEM_INSTRUCTIONS, A.GEN_AI_TOOL_DEFINITIONS)

SYSTEM = "Du bist der Kundendienst von Versandhaus Nord."
QUESTION = "Wie ist das Wetter in Hamburg? Kundennummer ZX-8812."
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Aktuelles Wetter an einem Ort.",
        "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "days": {"type": "integer"}}, "required": ["location"]},
    },
}


def ask(demo: Any) -> Any:
    """A chat call with tools (OpenAI chat keeps its system message in the history: ``gen_ai.input.messages``)."""
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
    try:
        return client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "system", "content": SYSTEM}, {"role": "user", "content": QUESTION}], tools=[WEATHER],
        )
    finally:
        client.close()


def ask_with_instructions(demo: Any) -> Any:
    """A Responses call: its ``instructions`` are ``gen_ai.system_instructions``."""
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
    try:
        return client.responses.create(model="gpt-4.1", instructions=SYSTEM, input=QUESTION)
    finally:
        client.close()


def plain(value: Any) -> Any:
    """A structured value as JSON reads it (the SDK and the OTLP decoding give tuples for arrays)."""
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def details_of(records: list[Any], model: str = "gpt-4o-mini") -> list[Any]:
    """The details log records of the calls to ``model``, oldest first."""
    return [
        r for r in records
        if r.event_name == E.GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS and attributes_of(r).get(A.GEN_AI_REQUEST_MODEL) == model
    ]


def attributes_of(record: Any) -> dict[str, Any]:
    return attributes(record) if hasattr(record, "ListFields") else dict(record.attributes or {})


def test_details_event_content_is_structured_and_survives_otlp_export(demo, sink):
    handle = micrometrics.instrument(
        exporter="otlp", endpoint=sink.url, service_name="content-check", instrumentations=["openai"], capture_content="SPAN_AND_EVENT", metrics=[],
    )
    try:
        response = ask(demo)
        ask_with_instructions(demo)
        handle.force_flush()
    finally:
        micrometrics.uninstrument()
    call = response.choices[0].message.tool_calls[0]

    # Decoded from the protobuf bytes the exporter sent.
    (event,) = [attributes(r) for r in details_of(sink.log_records())]
    (instructed,) = [attributes(r) for r in details_of(sink.log_records(), "gpt-4.1")]
    spans = {s.name: attributes(s) for s in sink.spans()}
    for on_event, on_span, keys in (
        (event, spans["chat gpt-4o-mini"], (A.GEN_AI_INPUT_MESSAGES, A.GEN_AI_OUTPUT_MESSAGES, A.GEN_AI_TOOL_DEFINITIONS)),
        (instructed, spans["chat gpt-4.1"], (A.GEN_AI_INPUT_MESSAGES, A.GEN_AI_OUTPUT_MESSAGES, A.GEN_AI_SYSTEM_INSTRUCTIONS)),
    ):
        for key in keys:
            assert isinstance(on_event[key], tuple), f"{key} is not an OTLP array on the log record: {on_event[key]!r}"
            assert isinstance(on_span[key], str), f"{key} is no JSON string on the span"  # spans keep JSON strings
            assert plain(on_event[key]) == json.loads(on_span[key]), key
    assert plain(instructed[A.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": SYSTEM}]
    assert plain(event[A.GEN_AI_INPUT_MESSAGES]) == [
        {"role": "system", "parts": [{"type": "text", "content": SYSTEM}]},
        {"role": "user", "parts": [{"type": "text", "content": QUESTION}]},
    ]
    assert plain(event[A.GEN_AI_TOOL_DEFINITIONS]) == [
        {"type": "function", "name": "get_weather", "description": "Aktuelles Wetter an einem Ort.", "parameters": plain(WEATHER["function"]["parameters"])},
    ]
    (output,) = event[A.GEN_AI_OUTPUT_MESSAGES]
    assert output["finish_reason"] == "tool_call"
    # Tool arguments stay a map (kvlist) inside the structure, not a JSON string.
    assert output["parts"][0] == {"type": "tool_call", "id": call.id, "name": "get_weather", "arguments": json.loads(call.function.arguments)}


@pytest.fixture
def limited_logs():
    """micrometrics on a LoggerProvider whose log attribute strings are limited to ``max_length``."""
    made: list[Any] = []

    def instrument(max_length: int, **options: Any) -> Any:
        exporter = InMemoryLogRecordExporter()
        lp = LoggerProvider(log_record_limits=LogRecordLimits(max_attribute_length=max_length))
        lp.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        tp, mp = TracerProvider(), MeterProvider(metric_readers=[InMemoryMetricReader()])
        made.extend([tp, mp, lp])
        handle = micrometrics.instrument(exporter="none", tracer_provider=tp, meter_provider=mp, logger_provider=lp, instrumentations=["openai"], **options)

        def logs() -> list[Any]:
            handle.force_flush()
            return [r.log_record for r in exporter.get_finished_logs()]

        return logs

    yield instrument
    micrometrics.uninstrument()
    for p in made:
        p.shutdown()


def test_a_log_attribute_length_limit_cuts_each_text_with_a_marker_and_keeps_the_structure(limited_logs, demo):
    logs = limited_logs(24, capture_content="EVENT_ONLY", metrics=[])
    ask(demo)
    (detail,) = details_of(logs())
    system, user = detail.attributes[A.GEN_AI_INPUT_MESSAGES]
    for message, sent in ((system, SYSTEM), (user, QUESTION)):
        text = message["parts"][0]["content"]
        assert len(text) <= 24 and MARKER in text  # the SDK alone would have cut it silently
        assert message["parts"][0]["type"] == "text"  # the structure whole
    assert (system["role"], user["role"]) == ("system", "user")
    (tool,) = detail.attributes[A.GEN_AI_TOOL_DEFINITIONS]
    assert tool["name"] == "get_weather" and tool["parameters"]["required"] == ("location",)


MODES = ("SPAN_ONLY", "EVENT_ONLY", "SPAN_AND_EVENT")


def test_redact_runs_once_per_string_whatever_the_targets(demo, telemetry):
    seen: dict[str, Counter] = {}
    for mode in MODES:
        calls: Counter = Counter()

        def redact(text: str) -> str:
            calls[text] += 1
            return text.replace("ZX-8812", "[kundennummer]")

        telemetry.instrument(capture_content=mode, redact=redact, metrics=[])
        ask(demo)
        telemetry.flush()
        micrometrics.uninstrument()
        seen[mode] = calls
    assert seen["SPAN_ONLY"][QUESTION] == 1 and seen["SPAN_ONLY"][SYSTEM] == 1
    # The same strings, as often, with content on both targets as with one.
    assert seen["SPAN_AND_EVENT"] == seen["SPAN_ONLY"] == seen["EVENT_ONLY"]
    detail = details_of(telemetry.logs())[-1]
    assert "[kundennummer]" in detail.attributes[A.GEN_AI_INPUT_MESSAGES][1]["parts"][0]["content"]
    span = [s for s in telemetry.spans() if A.GEN_AI_INPUT_MESSAGES in s.attributes][-1]
    assert "ZX-8812" not in span.attributes[A.GEN_AI_INPUT_MESSAGES]


# ---- every JSON attribute parses and fits, whatever the content and the limit -------------------

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=300)
ARGUMENTS = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), ANY_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(ANY_TEXT, inner, max_size=3)),
    max_leaves=8,
)
PART = st.one_of(
    st.builds(text_part, ANY_TEXT),
    st.fixed_dictionaries({"type": st.just("tool_call"), "id": st.one_of(st.none(), ANY_TEXT), "name": ANY_TEXT, "arguments": ARGUMENTS}),
)
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "tool", "system"]), "parts": st.lists(PART, max_size=4)})
TOOL = st.fixed_dictionaries(
    {"type": st.just("function"), "name": ANY_TEXT},
    optional={"description": ANY_TEXT, "parameters": st.dictionaries(ANY_TEXT, ARGUMENTS, max_size=4)},
)
LIMIT = st.one_of(st.none(), st.integers(0, 300), st.integers(300, 4000))  # small limits often: most cases cut


def assert_fits_and_accounts(record: Any, limit: int | None) -> dict[str, Any]:
    """Every value fits; every JSON value parses; kept items are the first ones; the rest are counted."""
    full = captured_content(record, ContentPolicy())
    attrs = span_content(full, limit)
    left_out = 0
    for key, items in full.items():
        if isinstance(items, str):
            continue
        if key not in attrs:
            assert limit is not None and limit < 2  # not even "[]" fits
            left_out += len(items)
            continue
        value = attrs[key]
        assert limit is None or len(value) <= limit, key
        kept = json.loads(value)
        assert isinstance(kept, list) and len(kept) <= len(items)
        left_out += len(items) - len(kept)
        if limit is None or len(json.dumps(items, ensure_ascii=False)) <= limit:
            assert kept == json.loads(json.dumps(items, ensure_ascii=False)), key
        for got, sent in zip(kept, items):
            if "role" in sent:
                assert got["role"] == sent["role"] and len(got["parts"]) == len(sent["parts"])
            if "name" in sent:
                assert got["name"] == sent["name"]
    assert attrs.get(A.MICROMETRICS_CONTENT_TRUNCATED, 0) == left_out
    assert set(attrs) - set(full) <= {A.MICROMETRICS_CONTENT_TRUNCATED}
    return attrs


@FUZZ
@given(
    inputs=st.lists(MESSAGE, min_size=1, max_size=12), outputs=st.lists(MESSAGE, max_size=3), system=st.lists(st.builds(text_part, ANY_TEXT), max_size=4),
    tools=st.lists(TOOL, max_size=8), limit=LIMIT,
)
def test_inference_content_always_parses_fits_and_counts_what_was_left_out(inputs, outputs, system, tools, limit) -> None:
    record = InferenceRecord(
        operation="chat", provider="openai", input_messages=inputs, output_messages=outputs, system_instructions=system, tool_definitions=tools,
    )
    assert_fits_and_accounts(record, limit)


DOCUMENT = st.builds(
    Document,
    id=st.one_of(st.none(), ANY_TEXT, st.integers()),
    score=st.one_of(st.none(), st.floats(), st.integers()),
    content=st.one_of(st.none(), ANY_TEXT),
)


@FUZZ
@given(docs=st.lists(DOCUMENT, max_size=10), kind=st.sampled_from([V.SCORE_KIND_SIMILARITY, V.SCORE_KIND_DISTANCE, None]), limit=LIMIT)
def test_retrieval_documents_have_no_null_fields_and_a_distance_is_never_a_score(docs, kind, limit) -> None:
    record = RetrievalRecord(operation="retrieval", provider="custom", query="q", documents=docs, score_kind=kind)
    attrs = assert_fits_and_accounts(record, limit)
    if A.GEN_AI_RETRIEVAL_DOCUMENTS not in attrs:
        return
    for item in json.loads(attrs[A.GEN_AI_RETRIEVAL_DOCUMENTS]):
        assert item and None not in item.values()  # no {"id": null, "score": null}
        assert set(item) <= {"id", "score", A.MICROMETRICS_DISTANCE}
        if kind == V.SCORE_KIND_DISTANCE:
            assert "score" not in item
        for number in (item.get("score"), item.get(A.MICROMETRICS_DISTANCE)):
            assert number is None or math.isfinite(number)


def test_a_broken_redact_exports_no_content_on_either_target(demo, telemetry):
    def broken(text: str) -> str:
        raise RuntimeError("redactor down")

    telemetry.instrument(capture_content="SPAN_AND_EVENT", redact=broken, metrics=[])
    ask(demo)
    span = telemetry.span("chat gpt-4o-mini")
    assert not [k for k in STRUCTURED if k in span.attributes]
    (detail,) = details_of(telemetry.logs())
    assert not [k for k in STRUCTURED if k in detail.attributes]
    assert detail.attributes[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"  # the rest of the record is there


def test_content_attributes_is_the_span_form() -> None:
    """The pure mapping a custom pipeline may call: JSON strings, as on spans."""
    record = InferenceRecord(operation="chat", provider="openai", input_messages=[{"role": "user", "parts": [text_part(QUESTION)]}])
    attrs = content_attributes(record, ContentPolicy(redact=str.upper))
    assert json.loads(attrs[A.GEN_AI_INPUT_MESSAGES]) == [{"role": "user", "parts": [{"type": "text", "content": QUESTION.upper()}]}]
