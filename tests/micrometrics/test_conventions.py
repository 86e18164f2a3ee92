"""Which GenAI conventions an instrument() emits: OTEL_SEMCONV_STABILITY_OPT_IN, read as the official
instrumentations read it, or instrument(conventions=...)."""

from __future__ import annotations

import json
import logging

import pytest

import micrometrics
from micrometrics import conventions, settings
from micrometrics.attributes import ContentPolicy, content_attributes, request_attributes
from micrometrics.records import InferenceRecord
from micrometrics_semconv import attributes as A

OPT_IN = "OTEL_SEMCONV_STABILITY_OPT_IN"


@pytest.fixture
def environment(monkeypatch):
    monkeypatch.delenv(OPT_IN, raising=False)
    return monkeypatch


@pytest.mark.parametrize(
    "value, expected",
    [
        ("gen_ai_latest_experimental", "gen_ai_latest_experimental"),
        ("http,gen_ai_latest_experimental", "gen_ai_latest_experimental"),  # one variable for every category
        (" database/dup , gen_ai_latest_experimental ", "gen_ai_latest_experimental"),
        ("http", "v1.41"),
        ("http/dup,database", "v1.41"),
        (",,", "v1.41"),
    ],
)
def test_the_variable_is_a_comma_separated_list_shared_with_other_categories(value, expected, environment, caplog):
    environment.setenv(OPT_IN, value)
    with caplog.at_level(logging.WARNING, logger="micrometrics"):
        assert settings.resolve(metrics=[]).conventions == expected
    assert caplog.messages == []  # other categories are other instrumentations' business


@pytest.mark.parametrize("value", ["gen_ai_latest", "GEN_AI_LATEST_EXPERIMENTAL", "http,genai_latest_experimental", "gen_ai/dup"])
def test_an_unknown_gen_ai_value_is_logged_and_v141_stays(value, environment, caplog):
    """Matched exactly, as the official instrumentations match it: every GenAI instrumentation in the process
    emits the same version. Never an error: the variable is shared, and a newer value must not break us."""
    environment.setenv(OPT_IN, value)
    with caplog.at_level(logging.WARNING, logger="micrometrics"):
        assert settings.resolve(metrics=[]).conventions == "v1.41"
    [message] = caplog.messages
    assert OPT_IN in message and "v1.41" in message and "'gen_ai_latest_experimental'" in message


def test_the_argument_wins_over_the_variable(environment):
    environment.setenv(OPT_IN, "gen_ai_latest_experimental")
    assert settings.resolve(metrics=[], conventions="v1.41").conventions == "v1.41"
    environment.delenv(OPT_IN)
    assert settings.resolve(metrics=[], conventions="GEN_AI_LATEST_EXPERIMENTAL").conventions == "gen_ai_latest_experimental"


@pytest.mark.parametrize("bad", ["1.42", "latest", 141, True])
def test_a_bad_argument_names_the_allowed_values(bad, environment):
    with pytest.raises(ValueError, match=r"instrument\(conventions=.*allowed: 'v1.41', 'gen_ai_latest_experimental'"):
        settings.resolve(metrics=[], conventions=bad)


def test_zero_code_reads_the_variable(environment):
    environment.setenv(OPT_IN, "http,gen_ai_latest_experimental")
    assert settings.from_environment()["conventions"] == "gen_ai_latest_experimental"
    environment.delenv(OPT_IN)
    assert settings.from_environment()["conventions"] == "v1.41"


def test_the_runtime_says_which_version_it_emits(telemetry, environment):
    environment.setenv(OPT_IN, "gen_ai_latest_experimental")
    handle = telemetry.instrument(metrics=[])
    assert (handle.settings.conventions, handle.runtime.conventions) == (conventions.LATEST, "gen_ai_latest_experimental")
    assert handle.runtime.spans.latest and handle.runtime.emitter.latest


@micrometrics.retriever(data_source="kb")
def lookup(query: str, k: int = 2) -> list[dict]:
    return [{"id": "a", "score": 0.9}, {"id": "b", "score": 0.8}][:k]


@pytest.mark.parametrize("value, schema_url", [(None, "https://opentelemetry.io/schemas/1.41.0"), ("gen_ai_latest_experimental", "")])
def test_the_schema_url_is_v141s_and_none_for_the_unreleased_conventions(value, schema_url, telemetry, environment):
    """A backend reads the scope's schema URL as the version spoken: the newer conventions have no published schema."""
    if value:
        environment.setenv(OPT_IN, value)
    telemetry.instrument(metrics=[])
    lookup("shipping")
    span = telemetry.span("retrieval kb")
    assert span.instrumentation_scope.schema_url == schema_url  # the SDK writes "no schema" as ""
    data = telemetry.metric_reader.get_metrics_data()
    scopes = [sm.scope for rm in data.resource_metrics for sm in rm.scope_metrics if sm.scope.name == "micrometrics"]
    assert scopes and all(scope.schema_url == schema_url for scope in scopes)


@pytest.mark.parametrize("top_k, exported", [(40, 40), (40.0, 40), (40.5, None), (True, None), ("40", None), (None, None)])
def test_top_k_under_the_newer_conventions_is_an_int_or_nothing(top_k, exported):
    """Provider data is untrusted: a top_k that is no whole number is left out, never exported as something else."""
    record = InferenceRecord(operation="chat", provider="anthropic", params={A.GEN_AI_REQUEST_TOP_K: top_k})
    attrs = request_attributes(record, latest=True)
    assert attrs.get(A.GEN_AI_REQUEST_TOP_K) == exported and type(attrs.get(A.GEN_AI_REQUEST_TOP_K)) is type(exported)


def test_garbage_request_details_and_part_types_do_not_break_the_mapping():
    record = InferenceRecord(
        operation="chat", provider="openai", reasoning_level=["high"], previous_response_id="", prompt_name=7, prompt_version=None,
        input_messages=[{"role": "user", "parts": [{"type": ["odd"]}, {"content": "no type"}, {"type": "text", "content": "hi"}]}],
        system_instructions=[{"type": "tool_call", "name": "x"}],
    )
    attrs = request_attributes(record, latest=True)
    assert A.GEN_AI_REQUEST_REASONING_LEVEL not in attrs and A.GEN_AI_REQUEST_PREVIOUS_RESPONSE_ID not in attrs
    assert attrs[A.GEN_AI_PROMPT_NAME] == "7"
    content = content_attributes(record, ContentPolicy(), latest=True)
    parts = json.loads(content[A.GEN_AI_INPUT_MESSAGES])[0]["parts"]
    assert parts == [
        {"type": "generic", "generic_type": "['odd']"}, {"type": "generic", "content": "no type"}, {"type": "text", "content": "hi"},
    ]
    assert json.loads(content[A.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "generic", "generic_type": "tool_call", "name": "x"}]
    assert record.input_messages[0]["parts"][0] == {"type": ["odd"]}  # the record, which metrics read, is left as translated
