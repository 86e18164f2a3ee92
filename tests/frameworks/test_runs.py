"""The API framework integrations report through (micrometrics.operations): runs opened from callbacks with an
explicit parent, and a framework's model call that yields to the instrumented SDK call below it (one inference
span, the SDK's, which carries the guards), else is reported after the fact."""

from __future__ import annotations

import time

import openai
from opentelemetry import context as otel_context

from micrometrics import operations
from micrometrics.records import AgentRecord, InferenceRecord, ToolRecord, text_part


def test_a_framework_model_call_over_an_instrumented_sdk_is_one_span_the_sdks(demo, telemetry):
    telemetry.instrument(metrics=[])
    agent = operations.begin(AgentRecord(operation="invoke_agent", provider="langchain", agent_name="graph"))
    token = agent.attach()
    try:
        pending = operations.begin_inference()
        inner = otel_context.attach(pending.context)
        try:
            client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hallo"}])
        finally:
            otel_context.detach(inner)
        assert pending.taken
        pending.end(InferenceRecord(operation="chat", provider="langchain", model="gpt-4o-mini"))
    finally:
        agent.detach(token)
    agent.end()
    spans = telemetry.spans()
    chats = [s for s in spans if s.name == "chat gpt-4o-mini"]
    assert len(chats) == 1 and chats[0].attributes["gen_ai.provider.name"] == "openai"
    assert chats[0].parent.span_id == telemetry.span("invoke_agent graph").context.span_id


def test_a_framework_model_call_with_no_sdk_below_is_reported_after_the_fact(telemetry):
    telemetry.instrument(metrics=[])
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("request") as parent:
        parent_ctx = otel_context.get_current()
    before = time.time_ns()
    pending = operations.begin_inference(parent=parent_ctx)
    time.sleep(0.01)
    record = InferenceRecord(operation="chat", provider="langchain", model="fake-model", input_tokens=3, output_tokens=2,
                             output_messages=[{"role": "assistant", "parts": [text_part("ok")], "finish_reason": "stop"}])
    pending.end(record)
    span = telemetry.span("chat fake-model")
    assert span.parent.span_id == parent.get_span_context().span_id
    assert before <= span.start_time <= span.end_time - 10_000_000  # timed from when the call began
    assert span.attributes["gen_ai.usage.input_tokens"] == 3
    points = telemetry.metrics()["gen_ai.client.operation.duration"]
    assert len(points) == 1 and points[0].sum >= 0.01


def test_a_failed_tool_run_reported_by_callbacks(telemetry):
    telemetry.instrument(metrics=[])
    run = operations.begin(ToolRecord(operation="execute_tool", tool_name="search", tool_call_id="call_1", tool_type="function"))
    run.record.arguments = {"q": "secret"}
    run.fail(ValueError("secret"))
    run.fail(ValueError("twice"))  # ended once
    span = telemetry.span("execute_tool search")
    assert span.attributes["error.type"] == "ValueError" and span.attributes["gen_ai.tool.call.id"] == "call_1"
    assert "gen_ai.tool.call.arguments" not in span.attributes
    assert len([s for s in telemetry.spans() if s.name == "execute_tool search"]) == 1


def test_not_instrumented_nothing_is_opened():
    assert operations.begin(ToolRecord(operation="execute_tool", tool_name="x")) is None
    assert operations.begin_inference() is None
