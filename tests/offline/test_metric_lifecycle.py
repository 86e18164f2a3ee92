"""What a failure costs, who owns a metric and until when, and turning metrics off from a file."""

from __future__ import annotations

import datetime as dt
import json
import warnings

import openai
import pytest

import micrometrics
from micrometrics import metric_overrides
from micrometrics.metrics import BannedPhrases, LanguageMatch, ResponseLength
from micrometrics.metric_overrides import MetricsConfigError
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M
from offline_cli import METRICS

GERMAN = "Hallo, ich habe eine Frage zu meiner Bestellung bitte, sie ist noch nicht da."
ENGLISH = "Hello there, where is my order please? It should have arrived by now."


def _chat(demo, text: str, expected: str) -> None:
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    with micrometrics.context(expected_language=expected):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": text}])


def _cost_points(telemetry) -> dict[tuple, float]:
    return {
        (p.attributes[A.GEN_AI_EVALUATION_NAME], p.attributes[A.MICROMETRICS_COST_CURRENCY]): p.value
        for p in telemetry.metrics().get(M.MICROMETRICS_FAILURE_COST, [])
    }


def test_failure_cost_counter_adds_the_cost_of_each_failure_in_its_currency(telemetry, demo):
    telemetry.instrument(instrumentations=["openai"], metrics=[
        LanguageMatch(cost_per_failure=4.0, currency="EUR"),
        BannedPhrases(phrases=("order",), cost_per_failure=0.25),  # USD by default
        ResponseLength(max_words=500, cost_per_failure=9.0),  # never fails here: never counted
    ])
    _chat(demo, GERMAN, "fr")  # German answer, French expected: a mismatch
    _chat(demo, GERMAN, "fr")
    _chat(demo, GERMAN, "de")  # a match costs nothing
    _chat(demo, ENGLISH, "en")  # "order" in the English answer: a banned phrase
    points = _cost_points(telemetry)
    assert points == {("language_match", "EUR"): 8.0, ("banned_phrases", "USD"): 0.25}
    point = next(p for p in telemetry.metrics()[M.MICROMETRICS_FAILURE_COST] if p.attributes[A.GEN_AI_EVALUATION_NAME] == "language_match")
    assert set(point.attributes) <= A.METRIC_DIMENSIONS
    assert point.attributes[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"


def test_a_metric_without_cost_emits_no_cost(telemetry, demo):
    telemetry.instrument(instrumentations=["openai"], metrics=[LanguageMatch()])
    _chat(demo, GERMAN, "fr")
    assert _cost_points(telemetry) == {}
    assert telemetry.metrics()[M.MICROMETRICS_EVALUATIONS][0].attributes[A.GEN_AI_EVALUATION_SCORE_LABEL] == "mismatch"


def test_instrument_warns_once_about_a_metric_past_its_review_date(telemetry):
    stale = ResponseLength(owner="support-quality", review_by=dt.date.today() - dt.timedelta(days=1))
    fresh = LanguageMatch(owner="support-quality", review_by=dt.date.today() + dt.timedelta(days=90))
    with pytest.warns(UserWarning, match=r"'response_length' \(owner: support-quality\) was due for review on") as caught:
        telemetry.instrument(instrumentations=["openai"], metrics=[stale, fresh])
    assert len([w for w in caught if "due for review" in str(w.message)]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second call returns the same handle and says nothing more
        telemetry.instrument(instrumentations=["openai"], metrics=[stale, fresh])


# ---- MICROMETRICS_CONFIG -----------------------------------------------------------------------

TOML = """\
# operations' overrides
[metrics.language_match]
mode = "guard"
sample_rate = 0.5
owner = "support-quality"
review_by = 2027-03-31
cost_per_failure = 4
currency = "EUR"

[metrics.response_length]
enabled = false

[metrics.banned_phrases]
enabled = true
"""

YAML = """\
metrics:
  language_match:
    mode: guard
    sample_rate: 0.5
    owner: support-quality
    review_by: 2027-03-31
    cost_per_failure: 4
    currency: EUR
  response_length:
    enabled: false
  banned_phrases:
    enabled: true
"""


@pytest.mark.parametrize("suffix, text", [(".toml", TOML), (".yaml", YAML)])
def test_a_config_file_turns_metrics_off_and_on_and_sets_their_settings(tmp_path, suffix, text):
    path = tmp_path / f"metrics{suffix}"
    path.write_text(text)
    mine = [LanguageMatch(), ResponseLength()]
    out = metric_overrides.apply(mine, metric_overrides.load(path))
    assert [m.name for m in out] == ["language_match", "banned_phrases"]
    lm = out[0]
    assert (lm.mode, lm.sample_rate, lm.owner, lm.review_by, lm.cost_per_failure, lm.currency) == (
        "guard", 0.5, "support-quality", dt.date(2027, 3, 31), 4.0, "EUR")
    assert mine[0].mode == "async"  # the application's objects are left as they were


@pytest.mark.parametrize(
    "text, line, message",
    [
        ('[metrics.language_match]\nmode = "guard"\nsample_rate = 2\n', 3, "metrics.language_match.sample_rate: 2 must be a number between 0 and 1"),
        ('[metrics.language_match]\n\nmod = "guard"\n', 3, "metrics.language_match.mod: unknown setting; allowed: enabled, mode"),
        ('[metrics.language_match]\nmode = "sometimes"\n', 2, "metrics.language_match.mode: 'sometimes' is not a mode"),
        ('[metrics.language_match]\nreview_by = "next spring"\n', 2, "review_by: 'next spring' is not a date; write it as YYYY-MM-DD"),
        ('[metrics.language_match]\ncost_per_failure = -1\n', 2, "cost_per_failure: -1 must be a number >= 0"),
        ('# header\n\n[metrics.langauge_match]\nenabled = false\n', 3, "metrics.langauge_match: no configured metric has this name"),
        ('[metrics.my_metric]\nenabled = true\n', 2, "'my_metric' is not a built-in metric"),
        ('[metric.language_match]\nmode = "guard"\n', 1, "metric: unknown key; the file holds 'metrics' (keyed by metric name) and 'pricing' (keyed by model)"),
        ('[metrics.language_match]\nmode = \n', 2, "not valid TOML"),
        ('metrics.language_match.enabled = "no"\n', 1, "metrics.language_match.enabled: 'no' must be true or false"),
    ],
)
def test_toml_errors_name_the_bad_key_and_its_line(tmp_path, text, line, message):
    path = tmp_path / "metrics.toml"
    path.write_text(text)
    with pytest.raises(MetricsConfigError) as err:
        metric_overrides.apply([LanguageMatch()], metric_overrides.load(path))
    assert str(err.value).startswith(f"{path}:{line}: "), str(err.value)
    assert message in str(err.value)
    assert err.value.line == line


@pytest.mark.parametrize(
    "text, line, message",
    [
        ("metrics:\n  language_match:\n    owner: me\n    sample_rate: lots\n", 4, "metrics.language_match.sample_rate: 'lots' must be a number between 0 and 1"),
        ("metrics:\n  response_length:\n    enabled: true\n  language_match:\n    colour: blue\n", 5, "metrics.language_match.colour: unknown setting"),
        ("metrics:\n  language_match: [1, 2\n", 3, "not valid YAML"),
    ],
)
def test_yaml_errors_name_the_bad_key_and_its_line(tmp_path, text, line, message):
    path = tmp_path / "metrics.yml"
    path.write_text(text)
    with pytest.raises(MetricsConfigError) as err:
        metric_overrides.apply([LanguageMatch()], metric_overrides.load(path))
    assert f"{path}:{line}: " in str(err.value) and message in str(err.value)


def test_other_file_types_are_refused(tmp_path):
    path = tmp_path / "metrics.ini"
    path.write_text("[metrics]\n")
    with pytest.raises(MetricsConfigError, match="name it .toml, .yaml or .yml"):
        metric_overrides.load(path)


def test_instrument_applies_the_file_named_by_micrometrics_config(telemetry, demo, tmp_path, monkeypatch):
    path = tmp_path / "ops.toml"
    path.write_text('[metrics.response_length]\nenabled = false\n\n[metrics.language_match]\ncost_per_failure = 2.5\ncurrency = "EUR"\n')
    monkeypatch.setenv("MICROMETRICS_CONFIG", str(path))
    handle = telemetry.instrument(instrumentations=["openai"], metrics=[LanguageMatch(), ResponseLength()])
    assert [m.name for m in handle.metrics] == ["language_match"]
    _chat(demo, GERMAN, "fr")
    span = telemetry.span("chat gpt-4o-mini")
    assert span.attributes["micrometrics.language_match.label"] == "mismatch"
    assert not any(k.startswith("micrometrics.response_length.") for k in span.attributes)  # turned off
    assert _cost_points(telemetry) == {("language_match", "EUR"): 2.5}


def test_instrument_refuses_a_broken_config_file_with_its_line(tmp_path, monkeypatch):
    path = tmp_path / "ops.toml"
    path.write_text('[metrics.language_match]\nsample_rate = "half"\n')
    monkeypatch.setenv("MICROMETRICS_CONFIG", str(path))
    with pytest.raises(MetricsConfigError, match=r"ops.toml:2: metrics.language_match.sample_rate"):
        micrometrics.instrument(exporter="none", instrumentations=["openai"])
    assert micrometrics.installation.current() is None


# ---- micrometrics metrics ----------------------------------------------------------------------


def test_metrics_command_lists_mode_sample_rate_owner_review_date_and_cost(cli, tmp_path):
    done = cli("metrics", "--metrics", METRICS)
    assert done.code == 0, done.err
    lines = done.out.splitlines()
    assert lines[0].split() == ["metric", "class", "mode", "sample", "rate", "applies", "to", "owner", "review", "by", "cost", "per", "failure"]
    lm = next(line for line in lines if line.startswith("language_match"))
    assert lm.split() == ["language_match", "LanguageMatch", "async", "1", "chat,text_completion,generate_content", "support-quality", "2027-03-31", "4", "EUR"]
    assert "2026-06-30 OVERDUE" in next(line for line in lines if line.startswith("banned_phrases"))
    assert "banned_phrases (owner: brand-team) was due for review on 2026-06-30" in done.err

    ops = tmp_path / "ops.toml"
    ops.write_text('[metrics.banned_phrases]\nenabled = false\n\n[metrics.language_match]\nmode = "guard"\nsample_rate = 0.25\n')
    done = cli("metrics", "--metrics", METRICS, "--json", env={"MICROMETRICS_CONFIG": str(ops)})
    listed = {m["name"]: m for m in json.loads(done.out)}
    assert "banned_phrases" not in listed
    assert (listed["language_match"]["mode"], listed["language_match"]["sample_rate"]) == ("guard", 0.25)

    # The defaults, when no --metrics is given.
    assert [m["name"] for m in json.loads(cli("metrics", "--json").out)][:2] == ["language_match", "response_length"]

    ops.write_text("[metrics.language_match]\nsampel_rate = 1\n")
    done = cli("metrics", env={"MICROMETRICS_CONFIG": str(ops)})
    assert done.code == 2 and f"{ops}:2: metrics.language_match.sampel_rate: unknown setting" in done.err


def test_eval_reports_cost_and_honours_the_config_file(cli, tmp_path):
    ops = tmp_path / "ops.yaml"
    ops.write_text("metrics:\n  language_match:\n    cost_per_failure: 10\n    currency: CHF\n  banned_phrases:\n    enabled: false\n")
    done = cli("eval", "examples/evaluation/dataset.jsonl", "--metrics", METRICS, "--json", "-", env={"MICROMETRICS_CONFIG": str(ops)})
    report = json.loads(done.out)
    assert "banned_phrases" not in report["summary"]
    assert report["summary"]["language_match"]["cost"] == {"per_failure": 10.0, "currency": "CHF", "total": 30.0}
    assert report["summary"]["response_length"]["cost"] == {"per_failure": 0.5, "currency": "EUR", "total": 0.5}
