"""One inference span per call when a framework and the SDK under it are both instrumented (micrometrics.nesting).

The framework here is a small agent function traced through the same call path as every
integration (``calls.sync_wrapper`` with its own translator), standing in for the LangChain chat
model integration that will use it: its call runs the real ``openai`` client, instrumented too.
"""

from __future__ import annotations

import asyncio
from typing import Any

import openai
import pytest
import wrapt
from opentelemetry import context as otel_context

from micrometrics import nesting
from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics.records import EmbeddingsRecord, InferenceRecord
from micrometrics_instrumentation.translator import Translator
from micrometrics_semconv import attributes as A
from micrometrics_semconv import metrics as M

MESSAGES = [{"role": "user", "content": "Hallo, wo ist meine Bestellung? Ich warte seit Tagen darauf."}]


class AgentTranslator(Translator):
    """The framework's own view of the call: its model, the text it returns."""

    def __init__(self, nested: str | None) -> None:
        self.nested = nested

    def request(self, instance: Any, args: tuple, kwargs: dict) -> InferenceRecord:
        return InferenceRecord(operation="chat", provider="openai", model="agent-model")

    def response(self, record: Any, response: Any) -> None:
        record.output_messages = [{"role": "assistant", "parts": [{"type": "text", "content": response}]}]


def agent(nested: str | None, client: openai.OpenAI, seen: list) -> Any:
    def answer(question: str) -> str:
        seen.append((nesting.current(), otel_context.get_value(nesting.LANGUAGE_MODEL_SUPPRESSION_KEY)))
        r = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
        return r.choices[0].message.content

    return wrapt.FunctionWrapper(answer, sync_wrapper(AgentTranslator(nested)))


def async_agent(nested: str | None, client: openai.AsyncOpenAI) -> Any:
    async def answer(question: str) -> str:
        r = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
        return r.choices[0].message.content

    return wrapt.FunctionWrapper(answer, async_wrapper(AgentTranslator(nested)))


@pytest.mark.parametrize("nested", [None, nesting.SUPPRESS])
def test_an_sdk_call_inside_a_framework_inference_span_opens_no_second_span(demo, telemetry, nested):
    telemetry.instrument(metrics=[])
    seen: list = []
    answer = agent(nested, openai.OpenAI(base_url=demo.openai_base_url, api_key="k", max_retries=0), seen)
    text = answer("Wo ist meine Bestellung?")
    assert text  # the application's result, unchanged
    (span,) = telemetry.spans()
    assert span.name == "chat agent-model"  # the framework's span is the call's one inference span
    (scope, suppression), = seen
    assert scope == nesting.Scope(InferenceRecord, nesting.SUPPRESS)
    assert suppression is True  # OpenLLMetry's provider instrumentations skip the call under it too
    # The scope ends with the call: the next SDK call on its own has its span.
    openai.OpenAI(base_url=demo.openai_base_url, api_key="k", max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert [s.name for s in telemetry.spans()] == ["chat agent-model", "chat gpt-4o-mini"]
    assert nesting.current() is None


def test_a_framework_that_asks_for_child_spans_gets_the_sdk_span_under_its_own(demo, telemetry):
    telemetry.instrument(metrics=[])
    seen: list = []
    agent(nesting.CHILD, openai.OpenAI(base_url=demo.openai_base_url, api_key="k", max_retries=0), seen)("Wo ist meine Bestellung?")
    spans = {s.name: s for s in telemetry.spans()}
    assert set(spans) == {"chat agent-model", "chat gpt-4o-mini"}
    assert spans["chat gpt-4o-mini"].parent.span_id == spans["chat agent-model"].context.span_id
    assert seen == [(nesting.Scope(InferenceRecord, nesting.CHILD), None)]  # no other instrumentation is told to stand down


def test_the_async_path_keeps_one_span_and_one_duration_point(demo, telemetry):
    telemetry.instrument(metrics=[])
    client = openai.AsyncOpenAI(base_url=demo.openai_base_url, api_key="k", max_retries=0)
    assert asyncio.run(async_agent(None, client)("Wo ist meine Bestellung?"))
    assert [s.name for s in telemetry.spans()] == ["chat agent-model"]
    (point,) = telemetry.metrics()[M.GEN_AI_CLIENT_OPERATION_DURATION]
    assert point.count == 1 and point.attributes[A.GEN_AI_REQUEST_MODEL] == "agent-model"
    # The SDK's call under it recorded no token usage of its own (the framework's record has none here).
    assert M.GEN_AI_CLIENT_TOKEN_USAGE not in telemetry.metrics()


def test_a_nested_call_of_another_family_keeps_its_span(demo, telemetry):
    """An embeddings call made inside a chat span is its own operation: the scope is per family."""
    telemetry.instrument(metrics=[])
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="k", max_retries=0)

    def answer(question: str) -> str:
        client.embeddings.create(model="text-embedding-3-small", input=question)
        return "ok"

    wrapt.FunctionWrapper(answer, sync_wrapper(AgentTranslator(None)))("Bestellung")
    spans = {s.name: s for s in telemetry.spans()}
    assert set(spans) == {"chat agent-model", "embeddings text-embedding-3-small"}
    assert spans["embeddings text-embedding-3-small"].attributes[A.GEN_AI_OPERATION_NAME] == "embeddings"


def test_an_unknown_nested_choice_is_reported_and_the_call_goes_through_untraced(demo, telemetry):
    from micrometrics import internal_errors

    telemetry.instrument(metrics=[])
    internal_errors.reset_for_tests()
    assert agent("sometimes", openai.OpenAI(base_url=demo.openai_base_url, api_key="k", max_retries=0), [])("Bestellung")
    assert internal_errors.totals == {"request": 1}
    assert [s.name for s in telemetry.spans()] == ["chat gpt-4o-mini"]
    assert nesting.current() is None


def test_a_bad_nested_choice_is_rejected_naming_the_allowed_ones():
    with pytest.raises(ValueError, match=r"nested='sometimes' is not supported; allowed: 'suppress', 'child'"):
        nesting.scope_for(EmbeddingsRecord(operation="embeddings", provider="openai"), "sometimes")
