"""``@micrometrics.workflow``, ``@micrometrics.agent`` and ``@micrometrics.tool``: the span tree a user sees in
Jaeger for code no framework covers (workflow > agent > chat + tool), content only with capture, metrics on
an agent's final answer, the function's results and exceptions untouched."""

from __future__ import annotations

import asyncio
import json

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import micrometrics
from micrometrics.metrics import LanguageMatch

GERMAN = "Wie lange dauert der Versand nach Deutschland? Ich warte seit einer Woche auf mein Paket."


def chat(demo, question: str) -> str:
    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
    return reply.choices[0].message.content


def build(demo):
    @micrometrics.tool(description="Looks up an order's shipping status.")
    def order_status(order_id: str, verbose: bool = False) -> dict:
        return {"order_id": order_id, "status": "unterwegs"}

    @micrometrics.agent(name="support", description="Answers customers", provider="openai", model="gpt-4o-mini")
    def support(question: str) -> str:
        order_status("A-1042")
        return chat(demo, question)

    @micrometrics.workflow(name="support_flow")
    def flow(question: str) -> str:
        return support(question)

    return flow


def tree(telemetry) -> dict[str, object]:
    return {s.name: s for s in telemetry.spans()}


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_workflow_agent_tool_and_chat_form_one_tree(demo, telemetry, capture):
    telemetry.instrument(capture_content=capture, metrics=[])
    answer = build(demo)(GERMAN)
    assert isinstance(answer, str) and answer

    spans = tree(telemetry)
    wf, ag, tl, ch = spans["invoke_workflow support_flow"], spans["invoke_agent support"], spans["execute_tool order_status"], spans["chat gpt-4o-mini"]
    assert wf.parent is None
    assert ag.parent.span_id == wf.context.span_id
    assert tl.parent.span_id == ag.context.span_id and ch.parent.span_id == ag.context.span_id
    assert {wf.kind, ag.kind, tl.kind} == {SpanKind.INTERNAL} and ch.kind == SpanKind.CLIENT
    assert wf.attributes["gen_ai.operation.name"] == "invoke_workflow" and wf.attributes["gen_ai.workflow.name"] == "support_flow"
    assert ag.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert ag.attributes["gen_ai.agent.name"] == "support" and ag.attributes["gen_ai.agent.description"] == "Answers customers"
    assert ag.attributes["gen_ai.provider.name"] == "openai" and ag.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert tl.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tl.attributes["gen_ai.tool.name"] == "order_status" and tl.attributes["gen_ai.tool.type"] == "function"
    assert tl.attributes["gen_ai.tool.description"] == "Looks up an order's shipping status."
    assert "gen_ai.provider.name" not in tl.attributes
    if capture:
        assert json.loads(tl.attributes["gen_ai.tool.call.arguments"]) == {"order_id": "A-1042"}
        assert json.loads(tl.attributes["gen_ai.tool.call.result"]) == {"order_id": "A-1042", "status": "unterwegs"}
        assert json.loads(ag.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == GERMAN
        assert json.loads(ag.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == answer
    else:
        for span in (wf, ag, tl):
            for key in ("gen_ai.tool.call.arguments", "gen_ai.tool.call.result", "gen_ai.input.messages", "gen_ai.output.messages"):
                assert key not in span.attributes
        assert not any("A-1042" in str(v) or "unterwegs" in str(v) for s in spans.values() for v in s.attributes.values())
    # Runs add no gen_ai.client.* points: the chat call's one duration point is the only one.
    durations = telemetry.metrics().get("gen_ai.client.operation.duration", [])
    assert [p.attributes["gen_ai.operation.name"] for p in durations] == ["chat"]


def test_a_metric_judges_the_agents_final_answer(demo, telemetry):
    telemetry.instrument(metrics=[LanguageMatch(applies_to=["invoke_agent"])])
    demo.enqueue(json={"id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "Shipping to Germany takes three to five business days, your parcel is on its way."}, "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 10, "completion_tokens": 15, "total_tokens": 25}}, path_contains="/chat/completions")
    build(demo)(GERMAN)
    spans = tree(telemetry)
    agent = spans["invoke_agent support"].attributes
    assert agent["micrometrics.language_match.label"] == "mismatch"
    assert agent["micrometrics.language_match.expected"] == "de" and agent["micrometrics.language_match.detected"] == "en"
    assert "micrometrics.language_match.label" not in spans["chat gpt-4o-mini"].attributes  # applies_to: the agent only


def test_exceptions_and_results_pass_through_unchanged(telemetry):
    telemetry.instrument(metrics=[])

    class Boom(Exception):
        pass

    @micrometrics.tool
    def fails(x):
        raise Boom("the prompt text")

    sentinel = object()

    @micrometrics.tool(name="identity")
    def identity(x):
        return x

    with pytest.raises(Boom):
        fails(1)
    assert identity(sentinel) is sentinel
    span = tree(telemetry)["execute_tool fails"]
    assert span.status.status_code == StatusCode.ERROR and span.attributes["error.type"].endswith("Boom")
    assert "the prompt text" not in json.dumps([e.attributes.get("exception.message", "") for e in span.events])


def test_generators_and_async_generators_span_their_iteration(demo, telemetry):
    telemetry.instrument(metrics=[])

    @micrometrics.agent(name="streamer")
    def streamer(question):
        yield "a"
        yield chat(demo, question)

    @micrometrics.tool(name="pages")
    async def pages(n):
        for i in range(n):
            await asyncio.sleep(0)
            yield i

    assert len(list(streamer("Hallo, wie geht es dir heute?"))) == 2

    async def consume():
        return [i async for i in pages(3)]

    assert asyncio.run(consume()) == [0, 1, 2]
    spans = tree(telemetry)
    assert spans["chat gpt-4o-mini"].parent.span_id == spans["invoke_agent streamer"].context.span_id
    assert spans["execute_tool pages"].end_time >= spans["execute_tool pages"].start_time

    gen = streamer("Hallo")
    next(gen)
    gen.close()  # closed early: the span still ends
    assert len([s for s in telemetry.spans() if s.name == "invoke_agent streamer"]) == 2


async def test_async_agent_and_tool(demo, telemetry):
    telemetry.instrument(metrics=[])

    @micrometrics.tool
    async def lookup(order_id: str) -> str:
        return "ok"

    @micrometrics.agent(name="async_support")
    async def support(question: str) -> str:
        await lookup("A-1")
        client = openai.AsyncOpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
        reply = await client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": question}])
        return reply.choices[0].message.content

    await asyncio.gather(support("Hallo eins"), support("Hallo zwei"))
    spans = telemetry.spans()
    agents = [s for s in spans if s.name == "invoke_agent async_support"]
    assert len(agents) == 2
    for child in (s for s in spans if s.name in ("execute_tool lookup", "chat gpt-4o-mini")):
        assert child.parent.span_id in {a.context.span_id for a in agents}


def test_bad_arguments_fail_where_the_mistake_is_made():
    with pytest.raises(TypeError, match="name=3"):
        micrometrics.agent(name=3)
    with pytest.raises(ValueError, match="tool_type='api'.*'function'"):
        micrometrics.tool(tool_type="api")
    with pytest.raises(TypeError, match="decorates a function"):
        micrometrics.workflow(name="x")(42)


def test_not_instrumented_the_functions_just_run():
    @micrometrics.tool
    def add(a, b):
        return a + b

    @micrometrics.agent
    def gen():
        yield 1

    assert add(1, 2) == 3 and list(gen()) == [1]
