"""exporter="datadog": micro-metric results as Datadog LLM Observability evaluations, joined to their spans.

A loopback evaluation intake (examples/datadog/eval_intake.py) checks every request against the schema
written from Datadog's documentation (datadog_eval_metric.schema.json, sources in its ``$comment``) and
refuses what it does not allow; spans go to a loopback OTLP intake or to Datadog's own test agent.
"""

from __future__ import annotations

import base64
import json
import logging
import sys
import time
import urllib.request
from pathlib import Path

import jsonschema
import pytest

import micrometrics
from micrometrics.export import datadog_evaluations as dde, presets
from micrometrics_semconv import attributes as A
from otlp_receiver import spans_of

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "datadog"))
from eval_intake import EvalIntake  # noqa: E402

API_KEY = "dd-test-key-0123456789abcdef0123456789abcdef"
SCHEMA = json.loads((Path(__file__).parent / "datadog_eval_metric.schema.json").read_text())
_VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
#: The incident: a German customer, five turns, and the bot slips into English on the fifth.
GERMAN_TURNS = [
    "Hallo, ich habe eine Frage zu meiner Bestellung.",
    "Die Bestellnummer ist 4711, bitte prüfen Sie den Status.",
    "Danke. Wann kommt das Paket denn an?",
    "Kann ich die Lieferadresse noch ändern?",
    "Und wie lange dauert die Rücksendung, wenn mir etwas nicht passt?",
]


def schema_errors(body):
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _VALIDATOR.iter_errors(body)]


@pytest.fixture
def intake():
    with EvalIntake(validate=schema_errors) as server:
        yield server
        micrometrics.uninstrument()


@pytest.fixture
def german_chat(demo):
    """The fifth German turn, answered in English by the demo server; returns the response text."""
    import openai

    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)

    def call() -> str:
        messages = [{"role": "user", "content": turn} for turn in GERMAN_TURNS]
        return client.chat.completions.create(model="gpt-4o-mini", messages=messages).choices[0].message.content

    return call


def agentless(monkeypatch, http_receiver, intake, **options):
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    http_receiver.start()
    options.setdefault("service_name", "support-bot")
    # endpoint= and datadog_evaluations= stand in for https://otlp.<site> and https://api.<site> (no test talks to Datadog).
    return micrometrics.instrument(
        exporter="datadog", datadog_agentless=True, endpoint=http_receiver.endpoint, datadog_evaluations=intake.url, **options
    )


def by_label(metrics):
    return {m["label"]: m for m in metrics}


def test_a_german_user_answered_in_english_shows_as_a_language_match_mismatch_on_its_span(http_receiver, intake, german_chat, monkeypatch):
    monkeypatch.setenv("DD_ENV", "staging")
    monkeypatch.setenv("DD_VERSION", "1.4.2")
    handle = agentless(monkeypatch, http_receiver, intake)
    answer = german_chat()
    assert "business days" in answer  # English reached the customer
    assert handle.force_flush()

    (span,) = http_receiver.spans()
    assert span.attributes["micrometrics.language_match.label"] == "mismatch"
    assert all(not r.errors for r in intake.received), [r.errors for r in intake.received]
    (request,) = intake.accepted()
    assert request.path == "/api/intake/llm-obs/v2/eval-metric"
    assert request.headers["dd-api-key"] == API_KEY
    assert request.headers["content-type"] == "application/json"
    metrics = by_label(request.json["data"]["attributes"]["metrics"])
    assert set(metrics) == {"language_match", "language_match_score", "response_length"}

    language = metrics["language_match"]
    assert language["metric_type"] == "categorical"
    assert language["categorical_value"] == "mismatch"
    assert language["assessment"] == "fail"
    # Joined to the span the OTLP intake received, by its ids as decimal strings.
    assert language["join_on"] == {"span": {"span_id": str(int(span.span_id, 16)), "trace_id": str(int(span.trace_id, 16))}}
    assert language["ml_app"] == "support-bot"
    assert {"source:otel", "service:support-bot", "env:staging", "version:1.4.2"} <= set(language["tags"])
    score = metrics["language_match_score"]
    assert score["metric_type"] == "score" and 0.0 <= score["score_value"] < 0.5
    assert score["join_on"] == language["join_on"]
    assert metrics["response_length"]["categorical_value"] == "pass"


def test_ml_app_is_dd_llmobs_ml_app_else_the_service(http_receiver, intake, german_chat, monkeypatch, caplog):
    monkeypatch.setenv("DD_LLMOBS_ML_APP", "Support Bot")
    handle = agentless(monkeypatch, http_receiver, intake, service_name="support bot")
    german_chat()
    assert handle.force_flush()
    # Datadog's naming rules: lowercase, no spaces; the same name as the spans' service, so no warning.
    assert {m["ml_app"] for m in intake.metrics()} == {"support_bot"}
    assert not [r for r in caplog.records if "may not join" in r.getMessage()]


def test_an_outage_of_the_evaluation_intake_loses_no_span_and_warns_once(http_receiver, intake, german_chat, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG, logger="micrometrics")
    intake.set_mode("unavailable")
    handle = agentless(monkeypatch, http_receiver, intake)
    german_chat()
    assert not handle.force_flush(3.0)  # the evaluations are still queued
    german_chat()
    assert not handle.force_flush(3.0)

    # Spans, metric points and log records all arrived: the outage took nothing else.
    assert len(http_receiver.spans()) == 2
    assert http_receiver.metric_points() and http_receiver.log_records()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "evaluation intake" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert intake.url in warnings[0] and "HTTP 503" in warnings[0]
    assert {r.status for r in intake.received} == {503}

    intake.set_mode("ok")
    assert handle.force_flush()
    # Nothing lost: both calls' results, each joined to its own span.
    joined = {(m["join_on"]["span"]["trace_id"], m["join_on"]["span"]["span_id"]) for m in intake.metrics() if m["label"] == "language_match"}
    assert joined == {(str(int(s.trace_id, 16)), str(int(s.span_id, 16))) for s in http_receiver.spans()}
    assert any("resumed" in r.getMessage() for r in caplog.records)


def test_an_intake_that_refuses_connections_is_an_outage_too(http_receiver, intake, german_chat, monkeypatch, caplog):
    intake.stop()
    handle = agentless(monkeypatch, http_receiver, intake)
    german_chat()
    assert not handle.force_flush(3.0)
    assert len(http_receiver.spans()) == 1
    warnings = [r.getMessage() for r in caplog.records if "evaluation intake" in r.getMessage()]
    assert len(warnings) == 1 and "Connection" in warnings[0], warnings
    intake.start()
    assert handle.force_flush()
    assert by_label(intake.metrics())["language_match"]["categorical_value"] == "mismatch"


def test_a_hanging_intake_holds_neither_the_calls_nor_the_shutdown(http_receiver, intake, german_chat, monkeypatch):
    intake.set_mode("hang")
    handle = agentless(monkeypatch, http_receiver, intake)
    started = time.monotonic()
    for _ in range(3):
        german_chat()
    calls_took = time.monotonic() - started
    assert not handle.force_flush(1.0)
    assert len(http_receiver.spans()) == 3  # the other signals are not behind the evaluations
    started = time.monotonic()
    micrometrics.uninstrument(2.0)
    assert time.monotonic() - started < 3.0
    assert calls_took < 2.0


def test_past_its_capacity_the_queue_drops_the_oldest_and_says_so_on_recovery(intake, caplog):
    caplog.set_level(logging.INFO, logger="micrometrics")
    intake.stop()
    sender = dde.DatadogEvaluations(dde.target(agentless=True, site="datadoghq.com", api_key=API_KEY, base=intake.url), capacity=5)
    sender.describe({A.SERVICE_NAME: "support-bot"})
    sender.add(dde.Evaluation(1, span_id, "language_match", "mismatch", 0.1, False, 0) for span_id in range(1, 9))
    assert not sender.flush(3.0)
    assert sender.dropped == 3
    intake.start()
    assert sender.close(3.0)
    assert [int(m["join_on"]["span"]["span_id"]) for m in intake.metrics() if m["metric_type"] == "categorical"] == [4, 5, 6, 7, 8]
    assert any("dropped meanwhile: 3 evaluations" in r.getMessage() for r in caplog.records)


def test_a_payload_the_intake_refuses_is_dropped_with_one_warning_not_retried(caplog):
    with EvalIntake(validate=lambda body: ["refused for the test"]) as refusing:
        sender = dde.DatadogEvaluations(dde.target(agentless=True, site="datadoghq.com", api_key=API_KEY, base=refusing.url), batch=1)
        sender.add(dde.Evaluation(1, n, "language_match", "match", None, True, 0) for n in (1, 2, 3))
        assert sender.close(3.0)  # nothing left to send: refused is final
    assert [r.status for r in refusing.received] == [400, 400, 400]  # one request each, no retries
    assert sender.refused == 3
    warnings = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(warnings) == 1 and "HTTP 400" in warnings[0]


def test_the_api_key_is_in_no_span_log_metric_or_evaluation(http_receiver, intake, german_chat, monkeypatch, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    intake.set_mode("unavailable")
    handle = agentless(monkeypatch, http_receiver, intake, capture_content=True)
    german_chat()
    handle.force_flush(3.0)
    intake.set_mode("ok")
    assert handle.force_flush()
    micrometrics.uninstrument()

    assert http_receiver.received and intake.accepted()
    for received in http_receiver.received:  # spans, metric points, log records
        assert API_KEY.encode() not in received.body
    for received in intake.received:  # only in the header the intake authenticates with
        assert API_KEY.encode() not in received.body
    logged = [r.getMessage() for r in caplog.records]
    assert any("evaluation intake" in line for line in logged)
    assert not [line for line in logged if API_KEY in line]
    assert API_KEY not in repr(handle.providers.evaluations) and API_KEY not in repr(handle.providers.evaluations.target)
    out, err = capfd.readouterr()
    assert API_KEY not in out and API_KEY not in err


def test_turned_off_nothing_is_sent(http_receiver, intake, german_chat, monkeypatch):
    monkeypatch.setenv("MICROMETRICS_DATADOG_EVALUATIONS", "false")  # as the conftest does: here it is the point
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    http_receiver.start()
    handle = micrometrics.instrument(exporter="datadog", datadog_agentless=True, endpoint=http_receiver.endpoint)
    german_chat()
    assert handle.force_flush()
    assert handle.providers.evaluations is None
    assert http_receiver.spans() and not intake.received


def test_results_of_other_exporters_are_not_sent(telemetry, intake, german_chat):
    german_chat()  # instrumented with in-memory exporters: no Datadog pipeline, no intake traffic
    assert not intake.received


# ---- site routing and keys: at instrument() ---------------------------------------------------


@pytest.mark.parametrize("site", ["ddog-gov.com", "us2.ddog-gov.com"])
def test_a_site_without_llm_observability_fails_at_instrument(site, monkeypatch):
    monkeypatch.setenv("DD_SITE", site)
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    with pytest.raises(ValueError, match="LLM Observability is not offered on") as err:
        micrometrics.instrument(exporter="datadog", datadog_agentless=True, datadog_evaluations=True)
    assert "datadoghq.eu" in str(err.value) and API_KEY not in str(err.value)


def test_an_unknown_site_fails_at_instrument_listing_the_sites(monkeypatch):
    monkeypatch.setenv("DD_SITE", "datadoghq.con")
    with pytest.raises(ValueError, match=r"DD_SITE='datadoghq.con' is not a Datadog site; allowed: datadoghq.com, us3.datadoghq.com"):
        micrometrics.instrument(exporter="datadog", datadog_evaluations=True)


def test_a_gov_site_through_the_agent_without_evaluations_is_apm_only(monkeypatch, intake):
    monkeypatch.setenv("DD_SITE", "ddog-gov.com")
    handle = micrometrics.instrument(exporter="datadog", datadog_evaluations=False)
    assert handle.providers.evaluations is None


def test_a_missing_api_key_fails_at_instrument_saying_what_to_set():
    with pytest.raises(ValueError, match="needs your API key in the DD_API_KEY environment variable"):
        micrometrics.instrument(exporter="datadog", datadog_agentless=True)


def test_a_bad_datadog_evaluations_value_names_what_is_allowed():
    with pytest.raises(ValueError, match=r"datadog_evaluations='yes please'.*allowed: True, False, or a base URL"):
        micrometrics.instrument(exporter="datadog", datadog_evaluations="yes please")


@pytest.mark.parametrize(
    "site, api_host",
    [
        (None, "api.datadoghq.com"),
        ("us3.datadoghq.com", "api.us3.datadoghq.com"),
        ("us5.datadoghq.com", "api.us5.datadoghq.com"),
        ("datadoghq.eu", "api.datadoghq.eu"),
        ("https://app.datadoghq.eu/", "api.datadoghq.eu"),
        ("ap1.datadoghq.com", "api.ap1.datadoghq.com"),
        ("ap2.datadoghq.com", "api.ap2.datadoghq.com"),
    ],
)
def test_every_llm_observability_site_routes_evaluations_and_traces_to_its_hosts(site, api_host, monkeypatch):
    if site:
        monkeypatch.setenv("DD_SITE", site)
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    handle = micrometrics.instrument(exporter="datadog", datadog_agentless=True, datadog_evaluations=True)
    assert handle.providers.evaluations.target.url == f"https://{api_host}/api/intake/llm-obs/v2/eval-metric"
    # The spans go to the same site's OTLP intake (the preset's default endpoint).
    assert presets.datadog_site() == api_host.removeprefix("api.")


def test_evaluations_are_on_by_default_wherever_the_preset_sends(monkeypatch):
    monkeypatch.delenv("MICROMETRICS_DATADOG_EVALUATIONS")
    monkeypatch.setenv("DD_AGENT_HOST", "dd-agent.internal")
    handle = micrometrics.instrument(exporter="datadog")  # no call is made: nothing is sent
    assert handle.providers.evaluations.target.url == "http://dd-agent.internal:8126/evp_proxy/v2/api/intake/llm-obs/v2/eval-metric"
    micrometrics.uninstrument()
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    handle = micrometrics.instrument(exporter="datadog", datadog_agentless=True)
    assert handle.providers.evaluations.target.url == "https://api.datadoghq.com/api/intake/llm-obs/v2/eval-metric"


# ---- through the Datadog Agent (Datadog's own test agent) -------------------------------------


def test_through_the_agent_spans_and_evaluations_meet_in_the_test_agent(agent, german_chat, monkeypatch):
    monkeypatch.setenv("DD_TRACE_AGENT_URL", f"http://127.0.0.1:{agent.port}")
    handle = micrometrics.instrument(
        exporter="datadog", endpoint=agent.otlp_http_endpoint, service_name="support-bot", datadog_evaluations=True
    )
    german_chat()
    assert handle.force_flush()

    (span,) = spans_of(agent.requests("traces"))
    with urllib.request.urlopen(f"http://127.0.0.1:{agent.port}/test/session/requests", timeout=10) as resp:
        requests = json.loads(resp.read())
    posts = [r for r in requests if r["url"].endswith("/evp_proxy/v2/api/intake/llm-obs/v2/eval-metric")]
    assert len(posts) == 1
    # The Agent's EVP proxy routes by subdomain and adds its own API key: none leaves the application.
    headers = {k.lower(): v for k, v in posts[0]["headers"].items()}
    assert headers["x-datadog-evp-subdomain"] == "api"
    assert "dd-api-key" not in headers
    body = json.loads(base64.b64decode(posts[0]["body"]))
    assert schema_errors(body) == []
    language = by_label(body["data"]["attributes"]["metrics"])["language_match"]
    assert language["categorical_value"] == "mismatch"
    assert language["join_on"]["span"] == {"span_id": str(int(span.span_id, 16)), "trace_id": str(int(span.trace_id, 16))}
    assert span.resource[A.SERVICE_NAME] == language["ml_app"] == "support-bot"


# ---- the mapping, on its own -------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, label",
    [
        ("language_match", "language_match"),
        ("Tonalität prüfen", "Tonalitat_prufen"),
        ("7_day_refund", "metric_7_day_refund"),
        ("_private", "metric__private"),
        ("x" * 250, "x" * 200),
        ("日本語", "metric____"),
    ],
)
def test_metric_names_follow_datadogs_label_rules(name, label):
    assert dde.evaluation_label(name) == label
    assert _VALIDATOR.evolve(schema=SCHEMA["$defs"]["Label"]).is_valid(dde.evaluation_label(name))


def test_a_score_label_stays_within_200_characters():
    ev = dde.Evaluation(1, 2, "s" * 300, "pass", 0.5, True, 0)
    entries = dde.metric_entries(ev, "app", [])
    assert [len(e["label"]) for e in entries] == [200, 200]
    assert entries[1]["label"].endswith("_score")
    assert schema_errors({"data": {"type": "evaluation_metric", "attributes": {"metrics": entries}}}) == []


def test_a_result_without_score_or_verdict_is_categorical_only():
    ev = dde.Evaluation(2**127 + 5, 2**63 + 7, "judge", "timeout", None, None, 1700000000000)
    (entry,) = dde.metric_entries(ev, "app", ["env:prod"])
    assert entry["join_on"]["span"] == {"span_id": str(2**63 + 7), "trace_id": str(2**127 + 5)}
    assert "assessment" not in entry and entry["categorical_value"] == "timeout"
    assert entry["tags"] == ["source:otel", "env:prod"]


# ---- offline: micrometrics eval --traces FILE --push-datadog ----------------------------------


def test_an_offline_re_evaluation_lands_on_the_recorded_production_span(telemetry, intake, german_chat, tmp_path, monkeypatch, capsys):
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from micrometrics import cli
    from micrometrics.offline.traces import OTLPJsonFileSpanExporter

    # Production: the call is exported with content (the Collector's file exporter writes the same lines).
    handle = telemetry.instrument(capture_content=True, instrumentations=["openai"])
    path = tmp_path / "spans.jsonl"
    handle.tracer_provider.add_span_processor(SimpleSpanProcessor(OTLPJsonFileSpanExporter(path)))
    german_chat()
    telemetry.flush()
    (span,) = telemetry.spans()
    micrometrics.uninstrument()

    monkeypatch.setenv("MICROMETRICS_DATADOG_AGENTLESS", "true")
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("MICROMETRICS_DATADOG_EVALUATIONS", intake.url)
    code = cli.main(["eval", "--traces", str(path), "--push-datadog", "--quiet", "--no-progress"])
    assert code == 0, capsys.readouterr().err
    assert "pushed 2 evaluations of 1 spans to " + intake.url in capsys.readouterr().err

    assert all(not r.errors for r in intake.received)
    assert {r.headers["dd-api-key"] for r in intake.received} == {API_KEY}
    language = by_label(intake.metrics())["language_match"]
    assert language["categorical_value"] == "mismatch"
    ctx = span.get_span_context()
    assert language["join_on"]["span"] == {"span_id": str(ctx.span_id), "trace_id": str(ctx.trace_id)}
    assert "micrometrics_run:offline" in language["tags"] and "source:otel" in language["tags"]
    assert language["ml_app"] == dde.ml_app_name(span.resource.attributes[A.SERVICE_NAME])


def test_push_datadog_needs_recorded_spans(intake, capsys):
    from micrometrics import cli

    dataset = Path(__file__).resolve().parents[2] / "examples" / "evaluation" / "dataset.jsonl"
    assert cli.main(["eval", str(dataset), "--push-datadog", "--quiet"]) == cli.EXIT_USAGE
    assert "--push-datadog joins results to the spans of --traces FILE" in capsys.readouterr().err
    assert not intake.received


# ---- what LLM Observability reads from the spans -------------------------------------------------


def test_llm_observability_gets_the_137_content_attributes_on_the_span(http_receiver, intake, german_chat, monkeypatch):
    handle = agentless(monkeypatch, http_receiver, intake, capture_content="SPAN_ONLY")
    german_chat()
    assert handle.force_flush()
    (request,) = [r for r in http_receiver.received if r.signal == "traces"]
    assert request.headers["dd-otlp-source"] == "llmobs"
    (span,) = http_receiver.spans()
    attrs = span.attributes
    assert "gen_ai.system" not in attrs
    assert (attrs[A.GEN_AI_OPERATION_NAME], attrs[A.GEN_AI_PROVIDER_NAME], attrs[A.GEN_AI_REQUEST_MODEL]) == ("chat", "openai", "gpt-4o-mini")
    # Inputs and outputs "on direct span attributes", as the 1.37+ JSON messages (role + parts).
    inputs = json.loads(attrs[A.GEN_AI_INPUT_MESSAGES])
    assert [m["role"] for m in inputs] == ["user"] * 5
    assert inputs[-1]["parts"] == [{"type": "text", "content": GERMAN_TURNS[-1]}]
    (output,) = json.loads(attrs[A.GEN_AI_OUTPUT_MESSAGES])
    assert output["role"] == "assistant" and "business days" in output["parts"][0]["content"]


def test_content_on_log_records_only_is_said_to_miss_llm_observability(monkeypatch, caplog):
    handle = micrometrics.instrument(exporter="datadog", capture_content="EVENT_ONLY")
    assert handle.settings.capture_mode == "event_only"
    assert any("LLM Observability reads them from spans" in r.getMessage() for r in caplog.records)
