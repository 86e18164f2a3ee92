"""ToolCallValidity: known tool names, arguments that parse and match the tool's schema; on a dataset and a real client."""

from __future__ import annotations

import json
import time

import openai
import pytest

from micrometrics.metric import CallView
from micrometrics.metrics import ToolCallValidity
from micrometrics.metrics.tool_calls import check_call, schema_errors
from micrometrics.records import InferenceRecord
from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E
from micrometrics_semconv import metrics as M

from fidelity import Score, result_of, rows
from retrieval.corpus import chat_completion

PROBLEMS = ("unknown_tool", "invalid_json", "not_object", "schema")


def test_precision_and_recall_on_the_labelled_dataset():
    data = rows("tool_call_validity")
    assert len(data) >= 100
    assert {"en", "de", "fr", "es", "it", "nl", "pt", "hard_negative"} <= {t for r in data for t in r.tags}
    metric = ToolCallValidity()
    every, per = Score(), {p: Score() for p in PROBLEMS}
    for row in data:
        truth = {t.split(":", 1)[1] for t in row.tags if t.startswith("problem:")}
        result = result_of(metric, row)
        found = {p for p in result.details["problems"].split(",") if p}
        for p, s in per.items():
            s.tp += p in found and p in truth
            s.fp += p in found and p not in truth
            s.fn += p in truth and p not in found
        every.add(row.id, bool(truth), bool(found))
    print(f"\ntool_call_validity, {len(data)} answers: {every}")
    for p, s in per.items():
        print(f"  {p:13s} {s}")
    # Measured: 107 answers P 1.0 R 1.0, every problem kind P 1.0 R 1.0. The labels were written with the
    # checker; the schema verdicts are cross-checked against jsonschema in the next test.
    assert every.precision == 1.0 and every.recall == 1.0
    assert all(s.precision == 1.0 and s.recall == 1.0 for s in per.values())


def test_the_schema_subset_agrees_with_jsonschema_on_every_dataset_call():
    jsonschema = pytest.importorskip("jsonschema", reason="the cross-check needs jsonschema (a dev dependency, not a core one)")
    compared = 0
    for row in rows("tool_call_validity"):
        tools = {d["name"]: d for d in row.record_fields["tool_definitions"]}
        for part in row.tool_calls:
            args = part["arguments"]
            if part["name"] not in tools or not isinstance(args, dict):
                continue
            schema = tools[part["name"]]["parameters"]
            ours = next(schema_errors(args, schema), None) is None
            theirs = jsonschema.Draft202012Validator(schema).is_valid(args)
            assert ours == theirs, (row.id, part["name"])
            compared += 1
    assert compared >= 80


def _view(parts, tools) -> CallView:
    return CallView(InferenceRecord(operation="chat", provider="x", model="m", tool_definitions=tools,
                                    output_messages=[{"role": "assistant", "parts": parts, "finish_reason": "tool_call"}]))


WEATHER = {"type": "function", "name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
    "required": ["city"], "additionalProperties": False}}


def test_errors_name_the_tool_and_the_schema_rule_never_the_value():
    secret = "Jane Doe, 0171 2345678"
    r = ToolCallValidity().evaluate(_view([{"type": "tool_call", "name": "get_weather", "arguments": {"city": "Rome", "unit": secret}}], [WEATHER]))
    assert (r.label, r.score, r.details["first_error"]) == ("fail", 0.0, "get_weather: arguments.unit: enum")
    r = ToolCallValidity().evaluate(_view([{"type": "tool_call", "name": "get_weather", "arguments": {"city": "Rome", secret: 1}}], [WEATHER]))
    assert r.details["first_error"] == "get_weather: arguments: additionalProperties"
    r = ToolCallValidity().evaluate(_view([{"type": "tool_call", "name": secret, "arguments": {}}], [WEATHER]))
    assert (r.details["problems"], r.details["first_error"]) == ("unknown_tool", "unknown_tool")
    assert secret not in json.dumps([r.explanation, dict(r.details)])


def test_without_definitions_only_parsing_is_checked_and_calls_without_tools_get_no_result():
    parts = [{"type": "tool_call", "name": "anything", "arguments": "{broken"}]
    r = ToolCallValidity().evaluate(_view(parts, None))
    assert (r.label, r.details["problems"], r.details["schemas"]) == ("fail", "invalid_json", False)
    assert ToolCallValidity(require_definitions=True).evaluate(_view(parts, None)).label == "undetermined"
    assert ToolCallValidity().applies(_view([{"type": "text", "content": "hi"}], [WEATHER])) is False
    with pytest.raises(TypeError, match=r"require_definitions='yes' must be True or False"):
        ToolCallValidity(require_definitions="yes")
    with pytest.raises(ValueError, match=r"mode='sometimes' is not allowed; use one of 'async', 'guard'"):
        ToolCallValidity(mode="sometimes")


def test_hostile_arguments_and_schemas_are_bounded():
    deep = "[" * 100_000 + "]" * 100_000  # nested past the parser's recursion limit
    assert check_call({"name": "get_weather", "arguments": deep}, {"get_weather": WEATHER})[0] in ("invalid_json", "not_object", "too_large")
    assert check_call({"name": "get_weather", "arguments": "x" * 300_000}, {"get_weather": WEATHER}) == ("too_large", None)
    nested: dict = {"type": "object", "properties": {}}
    node = nested
    for _ in range(200):  # a schema deeper than MAX_DEPTH: checked to that depth, no RecursionError
        child = {"type": "object", "properties": {}}
        node["properties"]["a"] = child
        node = child
    value: dict = {}
    cursor = value
    for _ in range(200):
        cursor["a"] = {}
        cursor = cursor["a"]
    assert check_call({"name": "deep", "arguments": value}, {"deep": {"parameters": nested}}) == (None, None)
    many = [{"type": "tool_call", "name": "get_weather", "arguments": {"city": str(i)}} for i in range(10_000)]
    t0 = time.thread_time()
    r = ToolCallValidity().evaluate(_view(many, [WEATHER]))
    assert time.thread_time() - t0 < 1.0 and r.details["calls"] == 64  # the first 64 calls


def _weather_tool(parameters: dict) -> list[dict]:
    return [{"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": parameters}}]


MATCHING = {"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}
MISMATCHING = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}


@pytest.mark.parametrize("stream", [False, True])
def test_the_demo_models_tool_call_is_checked_against_the_requests_schema(demo, telemetry, stream):
    telemetry.instrument(metrics=[ToolCallValidity()])
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    ask = [{"role": "user", "content": "What's the weather in Berlin?"}]
    for parameters in (MATCHING, MISMATCHING):
        r = client.chat.completions.create(model="gpt-4o-mini", messages=ask, tools=_weather_tool(parameters), stream=stream)
        if stream:
            list(r)
    matching, mismatching = telemetry.spans()
    a = matching.attributes
    assert (a["micrometrics.tool_call_validity.label"], a["micrometrics.tool_call_validity.calls"], a["micrometrics.tool_call_validity.score"]) == ("pass", 1, 1.0)
    b = mismatching.attributes
    assert (b["micrometrics.tool_call_validity.label"], b["micrometrics.tool_call_validity.problems"]) == ("fail", "schema")
    assert b["micrometrics.tool_call_validity.first_error"] == "get_weather: arguments.city: required"
    event = next(e for e in mismatching.events if e.name == E.MICROMETRICS_EVALUATION_EVENT)
    assert event.attributes[A.GEN_AI_EVALUATION_EXPLANATION] == "1 of 1 tool calls invalid: get_weather: arguments.city: required"
    log = [r for r in telemetry.logs() if r.event_name == E.GEN_AI_EVALUATION_RESULT][-1]
    assert log.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL] == "fail"
    points = {p.attributes[A.GEN_AI_EVALUATION_SCORE_LABEL]: p.value for p in telemetry.metrics()[M.MICROMETRICS_EVALUATIONS]}
    assert points == {"pass": 1, "fail": 1}


def test_an_answer_without_tool_calls_gets_no_result(demo, telemetry):
    telemetry.instrument(metrics=[ToolCallValidity()])
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello"}], tools=_weather_tool(MATCHING))
    assert not any(k.startswith("micrometrics.tool_call_validity.") for k in telemetry.span().attributes)


def test_as_a_guard_broken_arguments_are_retried_with_an_instruction(demo, telemetry):
    telemetry.instrument(metrics=[ToolCallValidity(mode="guard", max_retries=1)])
    broken = chat_completion("")
    broken["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\": \"Berlin\""}}]}
    broken["choices"][0]["finish_reason"] = "tool_calls"
    demo.enqueue(json=broken)
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "What's the weather in Berlin?"}], tools=_weather_tool(MATCHING))
    assert json.loads(r.choices[0].message.tool_calls[0].function.arguments)["location"] == "Berlin"  # the retry's valid call
    instruction = " ".join(m["content"] for m in demo.requests[-1].body["messages"] if m["role"] == "system")
    assert "get_weather: invalid_json" in instruction and "Call only the tools offered (get_weather)" in instruction
    first, second = telemetry.spans()
    assert first.attributes["micrometrics.tool_call_validity.label"] == "fail"
    assert (second.attributes[A.MICROMETRICS_ATTEMPT], second.attributes["micrometrics.tool_call_validity.label"]) == (2, "pass")
