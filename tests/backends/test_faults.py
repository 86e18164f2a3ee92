"""A backend that is down, hangs or answers 500: the app's calls go on, one warning, bounded memory, then recovery."""

from __future__ import annotations

import logging

import pytest

import micrometrics
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M

EXPORTER_LOGGERS = "opentelemetry.exporter"


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.WARNING]


def response_ids(receiver) -> list[str]:
    return [s.attributes[A.GEN_AI_RESPONSE_ID] for s in receiver.spans()]


@pytest.mark.parametrize("fault", ["down", "fail", "hang"])
def test_calls_go_on_one_warning_then_every_span_arrives_when_the_backend_is_back(receiver, protocol, chat, caplog, monkeypatch, fault):
    caplog.set_level(logging.DEBUG, logger="micrometrics")
    caplog.set_level(logging.INFO)
    if fault != "down":
        receiver.set_mode(fault)
        receiver.start()
    handle = micrometrics.instrument(exporter="datadog", endpoint=receiver.endpoint, protocol=protocol, service_name="shop")

    during = [chat() for _ in range(4)]
    assert not handle.force_flush(timeout_s=5)
    during.append(chat(stream=True))
    assert not handle.force_flush(timeout_s=5)
    during.append(chat())

    # One warning for the whole outage, naming the endpoint; the exporters' per-export errors are not printed.
    (warning,) = warnings_of(caplog)
    assert warning.name == "micrometrics"
    assert "cannot export" in warning.getMessage() and receiver.endpoint in warning.getMessage()
    assert not [r for r in caplog.records if r.name.startswith(EXPORTER_LOGGERS)]

    if fault == "down":
        receiver.start()
    else:
        receiver.set_mode("ok")
    assert handle.force_flush()

    # Every span of every completed call, once.
    assert sorted(response_ids(receiver)) == sorted(during)
    assert len(set(during)) == len(during)
    # The evaluation log records and the metric points of the outage arrive too.
    results = [r for r in receiver.log_records() if r.event_name == E.GEN_AI_EVALUATION_RESULT]
    assert sorted(r.attributes[A.GEN_AI_RESPONSE_ID] for r in results if r.attributes[A.GEN_AI_EVALUATION_NAME] == "language_match") == sorted(during)
    evaluations = [p.value for p in receiver.metric_points() if p.name == M.MICROMETRICS_EVALUATIONS and p.attributes[A.GEN_AI_EVALUATION_NAME] == "language_match"]
    assert sum(evaluations) == len(during)
    assert any("resumed" in r.getMessage() for r in caplog.records if r.name == "micrometrics")
    assert len(warnings_of(caplog)) == 1


def test_jaeger_down_at_shutdown_loses_what_it_must_and_says_so_once(receiver, protocol, chat, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG, logger="micrometrics")
    caplog.set_level(logging.INFO)
    handle = micrometrics.instrument(exporter="jaeger", endpoint=receiver.endpoint, protocol=protocol)
    chat()
    chat()
    assert not handle.force_flush(timeout_s=5)
    micrometrics.uninstrument()

    messages = [r.getMessage() for r in warnings_of(caplog)]
    assert len(messages) == 2, messages
    assert "cannot export traces" in messages[0]
    assert "2 spans were not exported" in messages[1]
    assert not [r for r in caplog.records if r.name.startswith(EXPORTER_LOGGERS)]


def test_memory_stays_bounded_while_the_backend_is_down(receiver, protocol, chat, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG, logger="micrometrics")
    caplog.set_level(logging.INFO)
    # Small queues, so the bound shows with few calls: the batch queue and the outbox hold 8 spans each.
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "8")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4")
    handle = micrometrics.instrument(exporter="jaeger", endpoint=receiver.endpoint, protocol=protocol)
    calls = [chat(), chat()]
    assert not handle.force_flush(timeout_s=5)
    calls += [chat() for _ in range(40)]
    receiver.start()
    assert handle.force_flush()

    delivered = response_ids(receiver)
    assert 0 < len(delivered) <= 16
    assert len(set(delivered)) == len(delivered) and set(delivered) <= set(calls)
    # The newest spans are kept, the oldest dropped, and the count is reported.
    assert calls[-1] in delivered
    (resumed,) = [r.getMessage() for r in caplog.records if "resumed" in r.getMessage()]
    assert "spans" in resumed and "dropped meanwhile: nothing" not in resumed
    assert len(warnings_of(caplog)) == 1
