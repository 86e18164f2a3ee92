"""What a backend's logs show when something fails: the ``gen_ai.client.operation.exception`` record of a
call that raised, and ``error.type`` on the result of an evaluation that did not complete."""

from __future__ import annotations

import threading

import openai
import pytest
from opentelemetry._logs import SeverityNumber

from micrometrics import Result, micro_metric
from micrometrics.metrics import ResponseLength
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E

SECRET = "Bestellung 4711 an Frau Müller"
MESSAGES = [{"role": "user", "content": f"Wo ist meine {SECRET}?"}]


def client(demo):
    return openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)


def failing_call(demo):
    """A 400 whose error message quotes the prompt, as providers' validation errors do."""
    demo.enqueue(status=400, json={"error": {"message": f"Invalid content: '{MESSAGES[0]['content']}'", "type": "invalid_request_error", "code": None}})
    with pytest.raises(openai.BadRequestError):
        client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


def exception_records(telemetry):
    return [r for r in telemetry.logs() if r.event_name == E.GEN_AI_CLIENT_OPERATION_EXCEPTION]


@pytest.mark.parametrize("capture", [False, "span_only"], ids=["off", "span_only"])
def test_without_capture_on_events_the_exception_record_has_its_type_only(demo, telemetry, capture):
    telemetry.instrument(metrics=[], capture_content=capture)
    failing_call(demo)
    (record,) = exception_records(telemetry)
    span = telemetry.span()
    assert record.severity_number == SeverityNumber.WARN and record.severity_text == "WARN"
    assert record.span_id == span.context.span_id and record.trace_id == span.context.trace_id
    assert dict(record.attributes) == {A.EXCEPTION_TYPE: "openai.BadRequestError"}
    assert "4711" not in repr(record.attributes) and record.body is None


@pytest.mark.parametrize("capture", [True, "event_only"], ids=["both", "event_only"])
def test_with_capture_on_events_the_record_has_the_message_and_stacktrace_redacted(demo, telemetry, capture):
    telemetry.instrument(metrics=[], capture_content=capture, redact=lambda s: s.replace("4711", "****"))
    failing_call(demo)
    (record,) = exception_records(telemetry)
    attrs = record.attributes
    assert attrs[A.EXCEPTION_TYPE] == "openai.BadRequestError"
    assert "Bestellung **** an Frau Müller" in attrs[A.EXCEPTION_MESSAGE]
    assert "Traceback" in attrs[A.EXCEPTION_STACKTRACE] and "BadRequestError" in attrs[A.EXCEPTION_STACKTRACE]
    assert "4711" not in repr(attrs)
    # event_only: the span keeps the exception's type alone.
    (event,) = telemetry.span().events
    assert (A.EXCEPTION_MESSAGE in event.attributes) is (capture is True)


def test_a_redact_that_breaks_leaves_the_type_and_the_call_unchanged(demo, telemetry):
    def broken(text):
        raise RuntimeError("redact bug")

    telemetry.instrument(metrics=[], capture_content=True, redact=broken)
    failing_call(demo)  # the user's exception, unchanged
    (record,) = exception_records(telemetry)
    assert dict(record.attributes) == {A.EXCEPTION_TYPE: "openai.BadRequestError"}
    assert telemetry.span().end_time is not None


def test_a_successful_call_has_no_exception_record(demo, telemetry):
    telemetry.instrument(metrics=[])
    client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert exception_records(telemetry) == []


def test_an_evaluation_that_did_not_complete_says_why_in_error_type(demo, telemetry):
    """Raised: the exception's class; over the deadline: ``timeout``; not run after a hang: ``_OTHER``; completed: none."""
    release = threading.Event()

    @micro_metric(name="broken")
    def broken(call):
        raise KeyError("oops")

    @micro_metric(name="hangs")
    def hangs(call):
        release.wait(10)
        return Result("pass")

    telemetry.instrument(metrics=[broken, hangs, ResponseLength()], evaluation_deadline_s=0.3)
    try:
        client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        first = telemetry.span()
        client(demo).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        spans = telemetry.spans()
    finally:
        release.set()
    second = next(s for s in spans if s.context.span_id != first.context.span_id)

    def by_metric(span):
        events = {e.attributes[A.GEN_AI_EVALUATION_NAME]: e.attributes for e in span.events if e.name == E.MICROMETRICS_EVALUATION_EVENT}
        logs = {r.attributes[A.GEN_AI_EVALUATION_NAME]: r.attributes for r in telemetry.logs()
                if r.event_name == E.GEN_AI_EVALUATION_RESULT and r.span_id == span.context.span_id}
        assert events.keys() == logs.keys()
        return {name: (events[name].get(A.ERROR_TYPE), logs[name].get(A.ERROR_TYPE), logs[name][A.GEN_AI_EVALUATION_SCORE_LABEL]) for name in events}

    assert by_metric(first)["broken"] == ("KeyError", "KeyError", "error")
    assert by_metric(first)["hangs"] == ("timeout", "timeout", "timeout")
    assert by_metric(second)["hangs"] == ("_OTHER", "_OTHER", "error")  # quarantined: not run, nothing raised
    assert by_metric(second)["response_length"] == (None, None, "pass")
