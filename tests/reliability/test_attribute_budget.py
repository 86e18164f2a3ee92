"""The span attribute budget: the SDK's SpanLimits never cost the core gen_ai.* attributes.

The SDK keeps at most ``max_span_attributes`` (default 128) per span, evicting the
OLDEST first (the core attributes are set first), and cuts string values at
``max_span_attribute_length`` (OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT) silently. Huge
tool definitions, long histories, many context attributes or many metrics must not
evict the core attributes, and content that does not fit keeps its first whole items (texts cut with a
marker) and counts the others in ``micrometrics.content.truncated``: its JSON always parses.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

import openai
import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import micrometrics
from micrometrics.attributes import TRUNCATION_MARKER
from micrometrics.metric import CallView, MicroMetric, Result
from micrometrics.metrics import LanguageMatch, ResponseLength
from micrometrics_semconv import attributes as A
from reliability_libraries import API_KEY

CORE = (
    A.GEN_AI_OPERATION_NAME, A.GEN_AI_PROVIDER_NAME, A.GEN_AI_REQUEST_MODEL, A.SERVER_ADDRESS, A.SERVER_PORT,
    A.GEN_AI_RESPONSE_ID, A.GEN_AI_RESPONSE_MODEL, A.GEN_AI_RESPONSE_FINISH_REASONS,
    A.GEN_AI_USAGE_INPUT_TOKENS, A.GEN_AI_USAGE_OUTPUT_TOKENS,
)
MARKER = TRUNCATION_MARKER.split("{")[0]


@pytest.fixture
def limited() -> Iterator[Any]:
    """micrometrics on a TracerProvider with the limits given to ``limited(...)``."""
    made: list[Any] = []

    def instrument(max_attributes: int | None = None, max_length: int | None = None, **options: Any) -> "Spans":
        exporter = InMemorySpanExporter()
        tp = TracerProvider(span_limits=SpanLimits(max_span_attributes=max_attributes, max_span_attribute_length=max_length))
        tp.add_span_processor(SimpleSpanProcessor(exporter))
        mp, lp = MeterProvider(metric_readers=[InMemoryMetricReader()]), LoggerProvider()
        made.extend([tp, mp, lp])
        options.setdefault("instrumentations", ["openai"])
        handle = micrometrics.instrument(exporter="none", tracer_provider=tp, meter_provider=mp, logger_provider=lp, **options)
        return Spans(handle, exporter)

    yield instrument
    micrometrics.uninstrument()
    for p in made:
        p.shutdown()


class Spans:
    def __init__(self, handle: Any, exporter: InMemorySpanExporter) -> None:
        self.handle, self.exporter = handle, exporter

    def get_finished_spans(self) -> tuple:
        self.handle.force_flush()
        return self.exporter.get_finished_spans()


def chat(demo: Any, messages: list[dict], **kwargs: Any) -> Any:
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key=API_KEY, max_retries=0)
    try:
        return client.chat.completions.create(model="gpt-4o-mini", messages=messages, **kwargs)
    finally:
        client.close()


def history(turns: int, words: int = 40) -> list[dict]:
    text = " ".join(["Bestellung"] * words)
    out = []
    for i in range(turns):
        out.append({"role": "user", "content": f"Frage {i}: {text}"})
        out.append({"role": "assistant", "content": f"Antwort {i}: {text}"})
    out.append({"role": "user", "content": "Hallo, ich habe eine Frage zu meiner Bestellung, bitte helfen Sie mir."})
    return out


def huge_tools(n: int) -> list[dict]:
    return [
        {"type": "function", "function": {
            "name": f"tool_{i}", "description": "Sucht Bestellungen im Lager. " * 30,
            "parameters": {"type": "object", "properties": {f"p{j}": {"type": "string", "description": "x" * 50} for j in range(10)}},
        }}
        for i in range(n)
    ]


class Chatty(MicroMetric):
    """A metric with many details: eight attributes per result."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name)

    def evaluate(self, call: CallView) -> Result:
        return Result("pass", score=1.0, details={f"d{i}": i for i in range(5)})


def assert_core(span: Any) -> None:
    missing = [k for k in CORE if k not in span.attributes]
    assert missing == [], f"core attributes evicted: {missing}"


@pytest.mark.parametrize("max_attributes", [16, 32, 128])
def test_many_metrics_never_evict_the_core_attributes(limited, demo, max_attributes, caplog):
    exporter = limited(max_attributes=max_attributes, metrics=[Chatty(f"chatty_{i}") for i in range(30)])
    chat(demo, history(1))
    (span,) = exporter.get_finished_spans()
    assert_core(span)
    assert len(span.attributes) <= max_attributes
    # Left out, not evicted: counted on the span, and the SDK never had to warn "Attributes dict is full".
    shown = sum(1 for k in span.attributes if k.startswith("micrometrics.chatty_"))
    # The cost attributes come after the results, as far as they fit (the micrometrics.cost point is recorded anyway).
    cost = (A.GEN_AI_USAGE_COST_AMOUNT, A.GEN_AI_USAGE_COST_CURRENCY, A.GEN_AI_USAGE_COST_SOURCE)
    shown += sum(1 for k in cost if k in span.attributes)
    assert shown + span.attributes[A.MICROMETRICS_ATTRIBUTES_DROPPED] == 30 * 8 + len(cost)
    assert span.dropped_attributes == 0
    assert not [r for r in caplog.records if "Attributes dict is full" in r.getMessage()]
    assert len(span.events) == 30  # every result still has its event (and log record)


# 20: an OpenAI call's core attributes (request, response, openai.*) take 15 slots; a result needs one more.
@pytest.mark.parametrize("max_attributes", [20, 128])
def test_many_context_attributes_never_evict_the_core_attributes(limited, demo, max_attributes):
    exporter = limited(max_attributes=max_attributes, metrics=[LanguageMatch(), ResponseLength()])
    with micrometrics.context(attributes={f"app.tag_{i}": i for i in range(200)}):
        chat(demo, history(1))
    (span,) = exporter.get_finished_spans()
    assert_core(span)
    assert "micrometrics.language_match.label" in span.attributes  # results outrank the app's extra tags


@pytest.mark.parametrize("max_length", [256, 4096])
def test_huge_tools_and_histories_keep_whole_items_that_fit_and_count_the_rest(limited, demo, max_length):
    exporter = limited(max_length=max_length, capture_content=True, metrics=[LanguageMatch()])
    messages, tools = history(150), huge_tools(60)
    answer = chat(demo, messages, tools=tools).choices[0].message.content
    (span,) = exporter.get_finished_spans()
    assert_core(span)
    left_out = 0
    for key, sent in ((A.GEN_AI_INPUT_MESSAGES, messages), (A.GEN_AI_TOOL_DEFINITIONS, tools)):
        value = span.attributes[key]
        assert len(value) <= max_length
        kept = json.loads(value)  # never a byte cut: the JSON always parses
        assert len(kept) < len(sent)
        left_out += len(sent) - len(kept)
        # The items kept are the first ones, in order; only their texts may be shortened, with the marker.
        if key == A.GEN_AI_INPUT_MESSAGES:
            assert [m["role"] for m in kept] == [m["role"] for m in sent[: len(kept)]]
        else:
            assert [t["name"] for t in kept] == [t["function"]["name"] for t in tools[: len(kept)]]
    assert span.attributes[A.MICROMETRICS_CONTENT_TRUNCATED] == left_out
    output = span.attributes[A.GEN_AI_OUTPUT_MESSAGES]
    assert len(output) <= max_length
    assert answer in json.loads(output)[0]["parts"][0]["content"] or MARKER in output
    assert "micrometrics.language_match.label" in span.attributes  # results still fit


def test_without_limits_nothing_is_truncated(limited, demo):
    exporter = limited(capture_content=True, metrics=[])
    messages = history(20)
    chat(demo, messages, tools=huge_tools(5))
    (span,) = exporter.get_finished_spans()
    exported = json.loads(span.attributes[A.GEN_AI_INPUT_MESSAGES])
    assert [m["parts"][0]["content"] for m in exported] == [m["content"] for m in messages]
    assert MARKER not in span.attributes[A.GEN_AI_TOOL_DEFINITIONS]
    assert A.MICROMETRICS_CONTENT_TRUNCATED not in span.attributes


def test_a_moderately_long_history_stays_valid_json_with_each_text_marked(limited, demo):
    exporter = limited(max_length=4096, capture_content=True, metrics=[])
    messages = history(12, words=60)
    chat(demo, messages)
    (span,) = exporter.get_finished_spans()
    value = span.attributes[A.GEN_AI_INPUT_MESSAGES]
    assert len(value) <= 4096
    exported = json.loads(value)  # still the conventions' JSON: each text cut, the structure whole
    assert [m["role"] for m in exported] == [m["role"] for m in messages]
    long_texts = [m["parts"][0]["content"] for m, sent in zip(exported, messages) if len(sent["content"]) > 200]
    assert long_texts and all(MARKER in t for t in long_texts)
    assert A.MICROMETRICS_CONTENT_TRUNCATED not in span.attributes  # nothing left out
