"""exporter="datadog": what a Datadog Agent (Datadog's own test agent) and the agentless intake receive."""

from __future__ import annotations

import logging
import random

import pytest

import micrometrics
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M
from otlp_receiver import OtlpReceiver, log_records_of, metric_points_of, spans_of

DELTA = 1  # AggregationTemporality.DELTA on the wire
CLIENT = 3  # SpanKind.SPAN_KIND_CLIENT on the wire
API_KEY = "dd-test-key-0123456789abcdef0123456789abcdef"


def agent_endpoint(agent, protocol: str) -> str:
    return agent.otlp_grpc_endpoint if protocol == "grpc" else agent.otlp_http_endpoint


def test_agent_receives_genai_spans_micro_metrics_delta_metrics_and_evaluation_logs(agent, protocol, chat, monkeypatch):
    monkeypatch.setenv("DD_SERVICE", "support-bot")
    monkeypatch.setenv("DD_ENV", "staging")
    monkeypatch.setenv("DD_VERSION", "1.4.2")
    handle = micrometrics.instrument(exporter="datadog", endpoint=agent_endpoint(agent, protocol), protocol=protocol)
    response_id = chat()
    assert handle.force_flush()

    (span,) = spans_of(agent.requests("traces"))
    assert span.name == "chat gpt-4o-mini" and span.kind == CLIENT
    # Unified service tagging, as Datadog reads it from the resource.
    assert span.resource[A.SERVICE_NAME] == "support-bot"
    assert span.resource[A.DEPLOYMENT_ENVIRONMENT_NAME] == "staging"
    assert span.resource[A.SERVICE_VERSION] == "1.4.2"
    # GenAI conventions 1.37+ (what LLM Observability reads): gen_ai.provider.name, not gen_ai.system.
    attrs = span.attributes
    assert attrs[A.GEN_AI_OPERATION_NAME] == "chat"
    assert attrs[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert "gen_ai.system" not in attrs
    assert attrs[A.GEN_AI_REQUEST_MODEL] == "gpt-4o-mini"
    assert attrs[A.GEN_AI_RESPONSE_ID] == response_id
    assert attrs[A.GEN_AI_USAGE_INPUT_TOKENS] > 0 and attrs[A.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    # Micro metrics as span attributes and span events.
    assert attrs["micrometrics.language_match.label"] == "match"
    assert attrs["micrometrics.language_match.passed"] is True
    assert attrs["micrometrics.language_match.detected"] == "de"
    assert attrs["micrometrics.response_length.label"] == "pass"
    evaluated = {ev[A.GEN_AI_EVALUATION_NAME] for name, ev in span.events if name == E.MICROMETRICS_EVALUATION_EVENT}
    assert evaluated == {"language_match", "response_length"}

    results = [r for r in log_records_of(agent.requests("logs")) if r.event_name == E.GEN_AI_EVALUATION_RESULT]
    by_name = {r.attributes[A.GEN_AI_EVALUATION_NAME]: r for r in results}
    assert set(by_name) == {"language_match", "response_length"}
    language = by_name["language_match"]
    assert language.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL] == "match"
    assert 0.9 < language.attributes[A.GEN_AI_EVALUATION_SCORE_VALUE] <= 1.0
    # Parented to the evaluated span: Datadog links the record to the trace.
    assert (language.trace_id, language.span_id) == (span.trace_id, span.span_id)
    assert language.resource[A.SERVICE_NAME] == "support-bot"

    points = metric_points_of(agent.requests("metrics"))
    names = {p.name for p in points}
    assert {M.GEN_AI_CLIENT_OPERATION_DURATION, M.GEN_AI_CLIENT_TOKEN_USAGE, M.MICROMETRICS_EVALUATIONS, M.MICROMETRICS_SCORE_HISTOGRAM} <= names
    assert {p.temporality for p in points} == {DELTA}
    evaluations = {(p.attributes[A.GEN_AI_EVALUATION_NAME], p.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL]): p.value for p in points if p.name == M.MICROMETRICS_EVALUATIONS}
    assert evaluations[("language_match", "match")] == 1
    duration = [p for p in points if p.name == M.GEN_AI_CLIENT_OPERATION_DURATION]
    assert duration[0].kind == "histogram" and duration[0].attributes[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert points[0].resource[A.DEPLOYMENT_ENVIRONMENT_NAME] == "staging"


def test_delta_points_count_each_interval_not_the_running_total(agent, protocol, chat):
    handle = micrometrics.instrument(exporter="datadog", endpoint=agent_endpoint(agent, protocol), protocol=protocol)
    chat()
    assert handle.force_flush()
    first = len(agent.requests("metrics"))
    chat()
    chat()
    assert handle.force_flush()

    later = metric_points_of(agent.requests("metrics")[first:])
    counts = [p.value for p in later if p.name == M.MICROMETRICS_EVALUATIONS and p.attributes[A.GEN_AI_EVALUATION_NAME] == "language_match"]
    # Cumulative would say 3; delta says what happened since the last export.
    assert counts == [2]
    durations = [p.value for p in later if p.name == M.GEN_AI_CLIENT_OPERATION_DURATION]
    assert [count for count, _ in durations] == [2]


def test_agent_found_through_dd_agent_host_on_the_otlp_port(protocol, chat, monkeypatch):
    # A random loopback address stands in for the agent's host: the default OTLP port is free there.
    host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(2, 254)}"
    port = 4317 if protocol == "grpc" else 4318
    monkeypatch.setenv("DD_AGENT_HOST", host)
    with OtlpReceiver(protocol, port=port, host=host) as agent_host:
        handle = micrometrics.instrument(exporter="datadog", protocol=protocol, service_name="via-agent-host")
        chat()
        assert handle.force_flush()
        micrometrics.uninstrument()
    assert [s.resource[A.SERVICE_NAME] for s in agent_host.spans()] == ["via-agent-host"]
    assert agent_host.metric_points() and agent_host.log_records()


def test_agentless_sends_the_key_and_llm_observability_source_headers_over_http(http_receiver, chat, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    monkeypatch.setenv("DD_SITE", "datadoghq.eu")
    http_receiver.start()
    # endpoint= stands in for https://otlp.datadoghq.eu (no test talks to Datadog).
    handle = micrometrics.instrument(
        exporter="datadog", datadog_agentless=True, endpoint=http_receiver.endpoint, protocol="grpc", service_name="llm-app"
    )
    chat()
    assert handle.force_flush()

    by_signal = {r.signal: r.headers for r in http_receiver.received}
    assert set(by_signal) == {"traces", "metrics", "logs"}, "agentless speaks http/protobuf even when grpc was asked"
    assert by_signal["traces"]["dd-api-key"] == API_KEY
    assert by_signal["traces"]["dd-otlp-source"] == "llmobs"
    assert by_signal["metrics"]["dd-api-key"] == API_KEY
    assert by_signal["logs"]["dd-api-key"] == API_KEY
    assert {p.temporality for p in http_receiver.metric_points()} == {DELTA}
    assert any("http/protobuf only" in r.getMessage() for r in caplog.records)


def test_the_api_key_is_in_no_payload_and_no_log_line(http_receiver, chat, monkeypatch, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("DD_API_KEY", API_KEY)
    http_receiver.set_mode("fail")
    http_receiver.start()
    handle = micrometrics.instrument(exporter="datadog", datadog_agentless=True, endpoint=http_receiver.endpoint, capture_content=True)
    chat()
    assert not handle.force_flush()  # the intake answers 500: a warning is logged
    http_receiver.set_mode("ok")
    assert handle.force_flush()
    micrometrics.uninstrument()

    assert http_receiver.received
    for received in http_receiver.received:
        assert API_KEY.encode() not in received.body
    logged = [r.getMessage() for r in caplog.records]
    assert any("cannot export" in line for line in logged)
    assert not [line for line in logged if API_KEY in line]
    out, err = capfd.readouterr()
    assert API_KEY not in out and API_KEY not in err


def test_agentless_without_an_api_key_says_what_to_set():
    with pytest.raises(ValueError, match="DD_API_KEY"):
        micrometrics.instrument(exporter="datadog", datadog_agentless=True)
