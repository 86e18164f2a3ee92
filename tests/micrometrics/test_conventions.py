"""Which GenAI conventions an instrument() emits: OTEL_SEMCONV_STABILITY_OPT_IN, read as the official
instrumentations read it, or instrument(conventions=...)."""

from __future__ import annotations

import logging

import pytest

import micrometrics
from micrometrics import conventions, settings

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
