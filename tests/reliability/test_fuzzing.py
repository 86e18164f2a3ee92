"""Property-based tests: arbitrary requests, responses, stream chunks and texts never raise out of our code.

Translators get arbitrary kwargs and responses (missing, extra and wrongly typed
fields, arbitrary Unicode including lone surrogates, empty and huge texts); the
records they build go through every attribute mapping; the built-in metrics get
arbitrary text. Nothing raises, and every attribute is one OpenTelemetry accepts.
"""

from __future__ import annotations

import json
import string
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from micrometrics.attributes import (
    TRUNCATION_MARKER,
    ContentPolicy,
    exportable,
    content_attributes,
    cut,
    metric_attributes,
    request_attributes,
    response_attributes,
    span_name,
)
from micrometrics.metric import CallView, Result
from micrometrics.metrics import BannedPhrases, ContextUtilization, JsonFormat, LanguageMatch, ResponseLength, RetrievalPrecision
from micrometrics.records import Call, Document, InferenceRecord, RetrievalRecord, text_part
from micrometrics_semconv import attributes as A
from reliability_libraries import ALL, Library, Unbuildable

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

#: Any character, lone surrogates included (they arrive from JSON such as "\\ud800").
ANY_CHAR = st.characters(codec=None, categories=None)
text = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.sampled_from(["", " ", "\x00", "\ud800", "🙂" * 3, "Hallo, wie geht es Ihnen heute?", "```json\n{}\n```"]),
    st.builds(lambda t, n: t * n, st.text(ANY_CHAR, min_size=1, max_size=8), st.integers(500, 4000)),  # huge
)
scalar = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True), text)
#: JSON-shaped values with wrong types anywhere: what a provider's JSON or an application's arguments can hold.
value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.sampled_from(["id", "type", "text", "content", "role", "delta", "index", "message"]),
                                  st.text(string.ascii_lowercase + "_", max_size=12)), inner, max_size=5),
    ),
    max_leaves=12,
)
#: Keys the translators look for (so the fuzzer reaches past the first lookup), plus noise.
KEYS = [
    "model", "messages", "input", "prompt", "contents", "config", "system", "tools", "tool_choice", "stream",
    "max_tokens", "max_completion_tokens", "max_output_tokens", "temperature", "top_p", "top_k", "n", "seed", "stop",
    "stop_sequences", "response_format", "text", "instructions", "encoding_format", "dimensions", "query_texts",
    "n_results", "query", "limit", "collection_name", "choices", "usage", "id", "output", "content", "candidates",
    "usageMetadata", "usage_metadata", "data", "embeddings", "stop_reason", "role", "type", "delta", "index",
    "finish_reason", "message", "status", "ids", "distances", "documents", "metadatas", "points", "payload", "score",
    "reasoning_effort", "reasoning", "effort", "previous_response_id", "version", "output_config", "thinking_config",
]
mapping = st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=6)), value, max_size=8)
response = st.one_of(value, mapping)

TRANSLATORS: list[Any] = []
for lib in ALL:
    if lib.available():
        TRANSLATORS.append(pytest.param(lib, id=lib.id))


PRIMITIVES = (str, bool, int, float)


def valid_attribute(v: Any) -> bool:
    """The specification's attribute values: a primitive, or a homogeneous sequence of one primitive type."""
    if isinstance(v, PRIMITIVES):
        return True
    if isinstance(v, (list, tuple)):
        kinds = {bool if type(x) is bool else str if isinstance(x, str) else float if isinstance(x, float) else int if isinstance(x, int) else None for x in v}
        return None not in kinds and len(kinds) <= 1
    return False


def assert_valid_attributes(attrs: dict[str, Any]) -> None:
    """Every value is one every backend takes (anything else the SDK stringifies or drops, with a warning)."""
    for key, v in attrs.items():
        assert isinstance(key, str) and key, key
        assert valid_attribute(v), (key, v)


def map_everything(record: Any) -> None:
    span_name(record)
    assert_valid_attributes(metric_attributes(record))
    for latest in (False, True):  # v1.41, and the conventions after it (OTEL_SEMCONV_STABILITY_OPT_IN)
        assert_valid_attributes(request_attributes(record, latest=latest))
        assert_valid_attributes(response_attributes(record, latest))
        for policy in (ContentPolicy(), ContentPolicy(redact=str.upper, max_chars=50)):
            for limit in (None, 300):
                attrs = content_attributes(record, policy, limit, latest)
                assert_valid_attributes(attrs)
                for key, v in attrs.items():
                    if key == A.MICROMETRICS_CONTENT_TRUNCATED:
                        assert type(v) is int and v > 0
                        continue
                    assert limit is None or len(v) <= limit
                    if key != A.GEN_AI_RETRIEVAL_QUERY_TEXT:
                        json.loads(v)  # every JSON attribute parses, cut or not
    CallView(record).output_text


def built(lib: Library, kind: str, data: Any) -> Any:
    try:
        return lib.from_wire(kind, data)
    except Unbuildable:
        assume(False)


@pytest.mark.parametrize("lib", TRANSLATORS)
@FUZZ
@given(kwargs=mapping, args=st.lists(value, max_size=2), answer=response, chunks=st.lists(mapping, max_size=6))
def test_translators_take_any_request_response_and_chunks(lib: Library, kwargs: dict, args: list, answer: Any, chunks: list) -> None:
    """Arguments as an application may pass them (before the library validates them); responses and
    stream chunks as the library builds them from arbitrary JSON."""
    translator = lib.translator()()
    answer = built(lib, "response", answer)
    chunks = [built(lib, "chunk", c) for c in chunks] if lib.streams else []
    for instance in (None, SimpleNamespace(_client=None, _api_client=None, name=kwargs.get("model"))):
        record = translator.request(instance, tuple(args), dict(kwargs))
        map_everything(record)
        translator.response(record, answer)
        map_everything(record)
        translator.retry(tuple(args), dict(kwargs), "Antworte auf Deutsch.")
        accumulator = translator.accumulator(record, iter(()))
        if accumulator is not None:
            for c in chunks:
                accumulator.add(c)
            accumulator.text
            accumulator.apply()
            map_everything(record)


def inference(output: str, user: str, system: str = "") -> InferenceRecord:
    return InferenceRecord(
        operation="chat", provider="openai", model="m",
        input_messages=[{"role": "user", "parts": [text_part(user)]}],
        system_instructions=[text_part(system)] if system else [],
        output_messages=[{"role": "assistant", "parts": [text_part(output)], "finish_reason": "stop"}],
        output_tokens=len(output) // 4,
    )


documents = st.lists(
    st.builds(Document, id=st.one_of(st.none(), text), score=st.one_of(st.none(), st.floats(allow_nan=True)), content=st.one_of(st.none(), text)),
    max_size=6,
)
INFERENCE_METRICS = [
    LanguageMatch(), LanguageMatch(expected="de"), ResponseLength(min_words=1, max_words=50, max_chars=300, max_output_tokens=10),
    BannedPhrases(["delve", "as an AI"]), JsonFormat(always=True),
    JsonFormat(schema={"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}, always=True),
    ContextUtilization(), ContextUtilization(min_fraction=0.5),
]
for m in INFERENCE_METRICS:
    m.validate()


@FUZZ
@given(output=text, user=text, system=text, docs=documents)
def test_inference_metrics_take_any_text(output: str, user: str, system: str, docs: list) -> None:
    record = inference(output, user, system)
    view = CallView(record, Call(record=record, retrieved_documents=tuple(docs)))
    for metric in INFERENCE_METRICS:
        if metric.applies(view):
            result = metric.evaluate(view)
            assert isinstance(result, Result)
            assert_valid_attributes({f"d.{k}": v for k, v in (result.details or {}).items() if v is not None})


RETRIEVAL_METRICS = [RetrievalPrecision(), RetrievalPrecision(k=2, min_score=0.5), RetrievalPrecision(relevance=lambda q, d: 0.7)]
for m in RETRIEVAL_METRICS:
    m.validate()


@FUZZ
@given(query=st.one_of(st.none(), text), docs=documents, context=st.fixed_dictionaries({}, optional={
    # The labels' documented shapes (other shapes are the user's error: label "error", explained).
    "relevant_document_ids": st.lists(text, max_size=4),
    "relevance_grades": st.dictionaries(text, st.one_of(st.integers(0, 3), st.floats(0, 3)), max_size=4),
}))
def test_retrieval_metrics_take_any_documents(query: str | None, docs: list, context: dict) -> None:
    record = RetrievalRecord(operation="retrieval", provider="chroma", query=query, documents=list(docs))
    map_everything(record)
    for metric in RETRIEVAL_METRICS:
        result = metric.evaluate(CallView(record, Call(record=record, context=context)))
        assert isinstance(result, Result)


@FUZZ
@given(content=text, limit=st.integers(0, 500))
def test_cut_fits_and_marks(content: str, limit: int) -> None:
    out = cut(content, limit)
    assert len(out) <= limit
    out.encode("utf-8")  # exportable: no lone surrogates
    if len(content) <= limit:
        assert out == exportable(content)
    elif limit >= 40:
        # The kept head is the content's, made exportable (a lone surrogate becomes U+FFFD).
        assert out.startswith(exportable(content[: limit - 40])) and TRUNCATION_MARKER.split("{")[0] in out


@FUZZ
@given(texts=st.lists(text, min_size=1, max_size=30), limit=st.integers(60, 5000))
def test_content_within_the_length_limit_is_marked_and_redacted(texts: list[str], limit: int) -> None:
    secret = "ZX-PRIVATE-8812"
    record = inference(secret.join(texts[:1]) + secret, secret)
    record.input_messages = [{"role": "user", "parts": [text_part(t + secret)]} for t in texts]
    attrs = content_attributes(record, ContentPolicy(redact=lambda s: s.replace(secret, "[x]")), limit)
    kept = 0
    for key, v in attrs.items():
        if key == A.MICROMETRICS_CONTENT_TRUNCATED:
            continue
        assert len(v) <= limit and secret not in v
        items = json.loads(v)  # whole items only: the JSON always parses
        if key == A.GEN_AI_INPUT_MESSAGES:
            kept = len(items)
    assert kept + attrs.get(A.MICROMETRICS_CONTENT_TRUNCATED, 0) >= len(texts)


class _Stream:
    """A stream as the libraries return it: an iterator with close()."""

    def __init__(self, items: list) -> None:
        self._items = iter(items)
        self.closed = 0

    def __iter__(self) -> "_Stream":
        return self

    def __next__(self) -> Any:
        return next(self._items)

    def close(self) -> None:
        self.closed += 1


@pytest.fixture
def pipeline(telemetry):
    telemetry.instrument(instrumentations=[], metrics=[LanguageMatch(), ResponseLength(), RetrievalPrecision()])
    return telemetry


@pytest.mark.parametrize("lib", TRANSLATORS)
@settings(FUZZ, max_examples=50, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.function_scoped_fixture])
@given(kwargs=mapping, answer=response, chunks=st.lists(mapping, max_size=5), stream=st.booleans())
def test_the_pipeline_returns_exactly_what_the_library_returned(pipeline, lib: Library, kwargs: dict, answer: Any, chunks: list, stream: bool) -> None:
    """The whole call path with the real translator: the application gets the library's own object
    (or its items, through the stream proxy), one span ends, and nothing of ours raises or is even reported."""
    from micrometrics import internal_errors
    from micrometrics.calls import run_sync

    internal_errors.reset_for_tests()
    pipeline.span_exporter.clear()
    kwargs = dict(kwargs)
    if stream and lib.streams:
        kwargs["stream"] = True
        items = [built(lib, "chunk", c) for c in chunks]
        returned: Any = _Stream(items)
    else:
        returned = built(lib, "response", answer)
    translator = lib.make_translator(stream and lib.streams)
    result = run_sync(translator, lambda *a, **k: returned, None, (), kwargs)
    if isinstance(returned, _Stream):
        assert [id(x) for x in result] == [id(x) for x in items]
        result.close()
        assert returned.closed == 1
    else:
        assert result is returned
    assert len(pipeline.spans()) == 1
    assert internal_errors.totals == {}, f"reported: {sorted(internal_errors._seen)}"  # (stage, exception type) seen this session
