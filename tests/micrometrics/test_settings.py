"""instrument()'s options are declared once (settings.OPTIONS): the signature, the README and zero-code agree with it."""

from __future__ import annotations

import inspect
import logging
import warnings
from pathlib import Path

import pytest

import micrometrics
from micrometrics import registry, settings

ROOT = Path(__file__).resolve().parents[2]
_VARIABLES = {variable for option in settings.OPTIONS for variable in option.env}


@pytest.fixture
def environment(monkeypatch):
    """No ambient option variable: each test sets the ones it is about."""
    for variable in _VARIABLES | {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"}:
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_the_instrument_signature_is_the_option_table_plus_the_providers():
    """A new option is added to OPTIONS and to instrument()'s signature, with the same default."""
    parameters = inspect.signature(micrometrics.instrument).parameters
    names = [o.name for o in settings.OPTIONS] + list(settings.PROVIDERS)
    assert list(parameters) == names
    assert {p: parameters[p].default for p in parameters} == {
        **{o.name: o.default for o in settings.OPTIONS}, **{p: None for p in settings.PROVIDERS}
    }
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())
    assert all(p.annotation is not inspect.Parameter.empty for p in parameters.values())  # typed, for IDEs


def test_settings_has_one_attribute_per_option():
    s = settings.resolve(exporter="none", metrics=[])
    for option in settings.OPTIONS:
        assert hasattr(s, option.attribute), option.name
    assert (s.capture_mode, s.capture_content, s.exporter_explicit) == ("no_content", False, True)


def test_the_readme_options_table_is_the_one_generated_from_the_option_table():
    """Edit the doc in settings.OPTIONS, then paste settings.options_table() into the README."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## `instrument()` options", 1)[1].split("\n\n", 2)[1]
    assert table == settings.options_table(), "README.md is out of date; paste this table:\n" + settings.options_table()
    row = next(line for line in table.splitlines() if line.startswith("| `instrumentations`"))
    assert all(f"`{name}`" in row for name in registry.supported())


def test_resolve_refuses_an_unknown_option_listing_the_known_ones():
    with pytest.raises(TypeError, match=r"unknown options \['exporters'\]; allowed: service_name, exporter"):
        settings.resolve(exporters="none")


def test_an_empty_variable_counts_as_unset(environment):
    """As the OpenTelemetry specification reads its variables."""
    for variable in ("MICROMETRICS_EXPORTER", "MICROMETRICS_EVALUATOR", settings.CAPTURE_ENV, "OTEL_SERVICE_NAME"):
        environment.setenv(variable, "")
    s = settings.resolve(metrics=[])
    assert (s.exporter, s.evaluator, s.capture_mode, s.service_name) == ("console", "thread", "no_content", "unknown_service")


@pytest.mark.parametrize(
    "variable, value, error, needle",
    [
        ("MICROMETRICS_EXPORTER", "bogus", ValueError, "MICROMETRICS_EXPORTER='bogus': instrument(exporter='bogus') is not supported; allowed: 'console'"),
        ("MICROMETRICS_EVALUATOR", "subprocess", ValueError, "MICROMETRICS_EVALUATOR='subprocess'"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "thrift", ValueError, "OTEL_EXPORTER_OTLP_PROTOCOL='thrift'"),
        ("MICROMETRICS_DATADOG_AGENTLESS", "maybe", ValueError, "MICROMETRICS_DATADOG_AGENTLESS='maybe' is not a boolean"),
        (settings.CAPTURE_ENV, "EVENTS", ValueError, f"environment variable {settings.CAPTURE_ENV}: 'EVENTS' is not a content capture mode"),
    ],
)
def test_a_bad_variable_is_an_error_naming_the_variable_and_what_is_allowed(variable, value, error, needle, environment):
    environment.setenv(variable, value)
    with pytest.raises(error) as info:
        settings.resolve(metrics=[])
    assert needle in str(info.value)


def test_zero_code_reads_the_same_options_from_the_environment(environment):
    environment.setenv("MICROMETRICS_EVALUATOR", "Process")
    environment.setenv(settings.CAPTURE_ENV, "span_only")
    options = settings.from_environment()
    assert set(options) == {o.name for o in settings.OPTIONS if o.zero_code}
    assert (options["evaluator"], options["capture_content"]) == ("process", "span_only")
    assert [m.name for m in options["metrics"]] == [m.name for m in settings.default_metrics()]
    assert (options["max_queue"], options["evaluation_deadline_s"], options["redact"]) == (10_000, 2.0, None)


def test_under_zero_code_a_bad_variable_is_logged_and_the_option_keeps_its_fallback(environment, caplog):
    environment.setenv("MICROMETRICS_EVALUATOR", "subprocess")
    with caplog.at_level(logging.ERROR, logger="micrometrics"):
        options = settings.from_environment()
    assert options["evaluator"] == "thread"
    assert [m for m in caplog.messages if "MICROMETRICS_EVALUATOR='subprocess'" in m and "evaluator stays at 'thread'" in m]


@pytest.mark.parametrize(
    "first, second",
    [({"evaluator": "thread"}, {"evaluator": "process"}), ({"max_queue": 10}, {"max_queue": 20}),
     ({"jaeger_metrics": "none"}, {"jaeger_metrics": "console"})],
)
def test_a_second_instrument_call_that_differs_in_any_option_warns(first, second, telemetry):
    handle = telemetry.instrument(metrics=[], **first)
    with pytest.warns(RuntimeWarning, match="already called with other options"):
        assert telemetry.instrument(metrics=[], **second) is handle


def test_a_second_call_with_a_new_redact_function_of_the_same_code_is_the_same_call(telemetry):
    """Functions compare by identity, and a lambda written in the app's setup is new on each call: not compared."""
    handle = telemetry.instrument(metrics=[], redact=lambda text: text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert telemetry.instrument(metrics=[], redact=lambda text: text) is handle
