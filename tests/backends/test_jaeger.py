"""exporter="jaeger": what Jaeger would store, read by a loopback OTLP receiver (Jaeger cannot run here)."""

from __future__ import annotations

import micrometrics
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E

CLIENT = 3  # SpanKind.SPAN_KIND_CLIENT on the wire


def test_jaeger_stores_genai_spans_with_micro_metrics_as_tags_and_logs(receiver, protocol, chat):
    receiver.start()
    handle = micrometrics.instrument(exporter="jaeger", endpoint=receiver.endpoint, protocol=protocol, service_name="support-bot")
    german = chat()
    streamed = chat("Hello there, where is my order please?", stream=True)
    assert handle.force_flush()

    spans = {s.attributes[A.GEN_AI_RESPONSE_ID]: s for s in receiver.spans()}
    assert set(spans) == {german, streamed}
    span = spans[german]
    # Jaeger's service list and operation name.
    assert span.resource[A.SERVICE_NAME] == "support-bot"
    assert span.name == "chat gpt-4o-mini" and span.kind == CLIENT
    # Tags.
    assert span.attributes[A.GEN_AI_PROVIDER_NAME] == "openai"
    assert span.attributes[A.GEN_AI_OPERATION_NAME] == "chat"
    assert span.attributes["micrometrics.language_match.label"] == "match"
    assert span.attributes["micrometrics.language_match.expected"] == "de"
    assert span.attributes["micrometrics.language_match.detected"] == "de"
    assert span.attributes["micrometrics.response_length.words"] > 0
    assert spans[streamed].attributes["micrometrics.language_match.detected"] == "en"
    assert spans[streamed].attributes[A.GEN_AI_RESPONSE_TIME_TO_FIRST_CHUNK] > 0
    # Logs (span events), one per micro-metric result.
    events = {ev[A.GEN_AI_EVALUATION_NAME]: ev for name, ev in span.events if name == E.MICROMETRICS_EVALUATION_EVENT}
    assert set(events) == {"language_match", "response_length"}
    assert events["language_match"][A.GEN_AI_EVALUATION_SCORE_LABEL] == "match"
    # Content stays out unless asked for.
    assert A.GEN_AI_INPUT_MESSAGES not in span.attributes


def test_jaeger_gets_traces_only(receiver, protocol, chat):
    receiver.start()
    handle = micrometrics.instrument(exporter="jaeger", endpoint=receiver.endpoint, protocol=protocol)
    chat()
    assert handle.force_flush()
    assert receiver.spans()
    assert {r.signal for r in receiver.received} == {"traces"}


def test_jaeger_metrics_and_logs_can_go_to_the_console(receiver, protocol, chat, capsys):
    receiver.start()
    handle = micrometrics.instrument(exporter="jaeger", endpoint=receiver.endpoint, protocol=protocol, jaeger_metrics="console")
    chat()
    assert handle.force_flush()
    out = capsys.readouterr().out
    assert "gen_ai.client.operation.duration" in out
    assert "gen_ai.evaluation.result" in out
    assert {r.signal for r in receiver.received} == {"traces"}


def test_jaeger_endpoint_from_the_otlp_environment(receiver, protocol, chat, monkeypatch):
    receiver.start()
    if protocol == "grpc":
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
    else:
        # The per-signal variable is the full URL, used as is.
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.endpoint + "/v1/traces")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    handle = micrometrics.instrument(exporter="jaeger", service_name="from-env")
    chat()
    assert handle.force_flush()
    assert [s.resource[A.SERVICE_NAME] for s in receiver.spans()] == ["from-env"]


def test_otlp_headers_from_the_environment_and_the_headers_option_reach_jaeger(receiver, protocol, chat, monkeypatch):
    receiver.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme,x-team=search")
    handle = micrometrics.instrument(exporter="jaeger", endpoint=receiver.endpoint, protocol=protocol, headers={"x-team": "llm"})
    chat()
    assert handle.force_flush()
    headers = receiver.received[0].headers
    assert headers["x-tenant"] == "acme"
    assert headers["x-team"] == "llm"
