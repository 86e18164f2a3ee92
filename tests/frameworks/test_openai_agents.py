"""The OpenAI Agents SDK (``openai-agents``), real runs over the demo server: the shared agent scenario
(agent_scenario.py) through ``Runner.run`` / ``run_sync`` / ``run_streamed``, on the Chat Completions and the
Responses model; one inference span per model call (the OpenAI SDK's, whose guard retries); tool content only
with capture; failures, cancellations and a broken processor never reach the run."""

from __future__ import annotations

import asyncio
import json

import pytest

agents = pytest.importorskip("agents", reason="openai-agents is not installed (pip install 'micrometrics[openai-agents]')")

import openai  # noqa: E402
from agents import Agent, OpenAIChatCompletionsModel, OpenAIResponsesModel, Runner, function_tool  # noqa: E402
from agents.tracing import get_trace_provider  # noqa: E402

from agent_scenario import AGENT_NAME, MODEL, QUESTION, SYSTEM, TOOL_NAME, TOOL_RESULT, assert_agent_run, guard, history, weather  # noqa: E402
from micrometrics import internal_errors  # noqa: E402
from micrometrics.metrics import language  # noqa: E402
from micrometrics_instrumentation.openai_agents import OpenAIAgentsInstrumentor  # noqa: E402


@pytest.fixture(autouse=True)
def _profiles():
    language.prepare()


@pytest.fixture
def agents_sdk():
    """The Agents SDK with no exporter to OpenAI's backend (this test's setting, never the instrumentation's),
    instrumented by micrometrics; the application's processors restored afterwards."""
    provider = get_trace_provider()
    saved = list(provider._multi_processor._processors)
    agents.set_trace_processors([])
    inst = OpenAIAgentsInstrumentor()
    yield inst
    inst.uninstrument()
    agents.set_trace_processors(saved)


def instrumented(telemetry, agents_sdk, **options):
    telemetry.instrument(**options)
    agents_sdk.instrument(skip_dep_check=True)
    return agents_sdk


def model_for(demo, api: str):
    client = openai.AsyncOpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    if api == "chat":
        return OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
    return OpenAIResponsesModel(model=MODEL, openai_client=client)


@function_tool(name_override=TOOL_NAME)
def get_weather(location: str, unit: str = "celsius") -> str:
    """Current weather of a city."""
    return weather(location, unit)


def support_agent(demo, api: str = "chat", tools=None) -> Agent:
    return Agent(name=AGENT_NAME, instructions=SYSTEM, tools=tools or [get_weather], model=model_for(demo, api))


def conversation() -> list:
    return [*history(), {"role": "user", "content": QUESTION}]


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_the_agent_scenario_run_sync(demo, telemetry, agents_sdk, api):
    instrumented(telemetry, agents_sdk, metrics=[guard()])
    result = Runner.run_sync(support_agent(demo, api), conversation())
    spans = assert_agent_run(telemetry, result.final_output)
    paths = [r.path for r in demo.requests]
    assert paths == ["/v1/chat/completions" if api == "chat" else "/v1/responses"] * 3, paths
    assert {c.instrumentation_scope.name for c in spans["chats"]} == {"micrometrics"}
    assert spans["agent"].kind.name == "INTERNAL" and spans["agent"].parent is None
    assert spans["tool"].parent.span_id == spans["agent"].context.span_id
    assert spans["tool"].attributes["gen_ai.tool.type"] == "function"


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_the_agent_scenario_run_async_under_the_applications_span(demo, telemetry, agents_sdk, api):
    instrumented(telemetry, agents_sdk, metrics=[guard()])
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("POST /support") as request:
        result = await Runner.run(support_agent(demo, api), conversation(), run_config=agents.RunConfig(group_id="conv-1"))
        # The run left the caller's context as it found it (our spans made current inside it were put back).
        from opentelemetry import trace

        from micrometrics import callcontext

        assert trace.get_current_span() is request and "conversation_id" not in callcontext.current()
    spans = assert_agent_run(telemetry, result.final_output)
    assert spans["agent"].parent.span_id == request.get_span_context().span_id
    assert spans["agent"].context.trace_id == request.get_span_context().trace_id


@pytest.mark.parametrize("api", ["chat", "responses"])
async def test_the_agent_scenario_streamed(demo, telemetry, agents_sdk, api):
    """The Responses model streams through ``client.responses.with_streaming_response.create``: the stream it
    parses out of the raw response is followed, so the guard holds its prefix and retries there too."""
    instrumented(telemetry, agents_sdk, metrics=[guard()])
    result = Runner.run_streamed(support_agent(demo, api), conversation())
    kinds = [event.type async for event in result.stream_events()]
    assert "raw_response_event" in kinds
    spans = assert_agent_run(telemetry, result.final_output)
    assert all(c.attributes.get("gen_ai.request.stream") is True for c in spans["chats"])


def test_the_agents_answer_is_what_metrics_on_invoke_agent_judge(demo, telemetry, agents_sdk):
    from micrometrics.metrics.language_match import LanguageMatch

    instrumented(telemetry, agents_sdk, metrics=[guard(), LanguageMatch(name="answer_language", applies_to=["invoke_agent"])],
                 capture_content=True)
    result = Runner.run_sync(support_agent(demo), conversation())
    agent = assert_agent_run(telemetry, result.final_output)["agent"]
    assert agent.attributes["micrometrics.answer_language.label"] == "match"
    assert agent.attributes["micrometrics.answer_language.expected"] == "de"
    output = json.loads(agent.attributes["gen_ai.output.messages"])
    assert "Wetterdienst" in output[0]["parts"][0]["content"]
    assert QUESTION in agent.attributes["gen_ai.input.messages"]


def test_tool_arguments_and_result_only_with_capture(demo, telemetry, agents_sdk):
    instrumented(telemetry, agents_sdk, metrics=[])
    Runner.run_sync(support_agent(demo), conversation())
    tool = telemetry.span(f"execute_tool {TOOL_NAME}")
    assert "gen_ai.tool.call.arguments" not in tool.attributes and "gen_ai.tool.call.result" not in tool.attributes
    everything = json.dumps([dict(s.attributes) for s in telemetry.spans()], ensure_ascii=False)
    assert "Berlin" not in everything and "Regen" not in everything and "Wetterdienst" not in everything


def test_tool_arguments_and_result_with_capture(demo, telemetry, agents_sdk):
    instrumented(telemetry, agents_sdk, metrics=[], capture_content=True)
    Runner.run_sync(support_agent(demo), conversation())
    tool = telemetry.span(f"execute_tool {TOOL_NAME}")
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"]) == {"location": "Berlin", "unit": "celsius"}
    assert json.loads(tool.attributes["gen_ai.tool.call.result"]) == TOOL_RESULT  # the tool's JSON text, as it returned it


class ParcelServiceDown(Exception):
    pass


def failing_tool(**options):
    @function_tool(name_override=TOOL_NAME, **options)
    def broken(location: str, unit: str = "celsius") -> str:
        """Current weather of a city."""
        raise ParcelServiceDown(f"no weather for {location}")

    return broken


def test_a_tool_that_raises_propagates_unchanged_and_fails_its_span(demo, telemetry, agents_sdk):
    instrumented(telemetry, agents_sdk, metrics=[])
    with pytest.raises(Exception) as raised:
        Runner.run_sync(support_agent(demo, tools=[failing_tool(failure_error_function=None)]), conversation())
    # What the SDK raises without micrometrics: our processor changes nothing about it.
    assert isinstance(raised.value, ParcelServiceDown) or isinstance(raised.value.__cause__, ParcelServiceDown)
    assert "Berlin" in str(raised.value.__cause__ or raised.value)  # unchanged, text and all
    # The tool span names what the tool raised (the SDK wraps it in its UserError); the agent span what left the run.
    tool = telemetry.span(f"execute_tool {TOOL_NAME}")
    assert tool.status.status_code.name == "ERROR"
    assert tool.attributes["error.type"].endswith("ParcelServiceDown")
    agent = telemetry.span(f"invoke_agent {AGENT_NAME}")
    assert agent.status.status_code.name == "ERROR"
    assert "Berlin" not in json.dumps([[dict(e.attributes) for e in s.events] for s in telemetry.spans()])


def test_a_tool_error_the_sdk_sends_back_to_the_model(demo, telemetry, agents_sdk):
    instrumented(telemetry, agents_sdk, metrics=[])
    result = Runner.run_sync(support_agent(demo, tools=[failing_tool()]), conversation())
    assert result.final_output  # the model answered after the tool's error message
    tool = telemetry.span(f"execute_tool {TOOL_NAME}")
    assert tool.status.status_code.name == "ERROR" and tool.attributes["error.type"]
    assert telemetry.span(f"invoke_agent {AGENT_NAME}").status.status_code.name != "ERROR"


async def test_a_run_cancelled_mid_tool_ends_its_spans_and_keeps_no_state(demo, telemetry, agents_sdk):
    instrumented(telemetry, agents_sdk, metrics=[])
    entered = asyncio.Event()

    @function_tool(name_override=TOOL_NAME)
    async def hanging(location: str, unit: str = "celsius") -> str:
        """Current weather of a city."""
        entered.set()
        await asyncio.sleep(60)
        return "never"

    task = asyncio.create_task(Runner.run(support_agent(demo, tools=[hanging]), conversation()))
    await asyncio.wait_for(entered.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    names = [s.name for s in telemetry.spans()]
    assert f"execute_tool {TOOL_NAME}" in names and f"invoke_agent {AGENT_NAME}" in names
    processor = agents_sdk.processor
    assert processor._spans == {} and processor._traces == {}


async def test_a_streamed_run_cancelled_midway(demo, telemetry, agents_sdk):
    instrumented(telemetry, agents_sdk, metrics=[])
    result = Runner.run_streamed(support_agent(demo), conversation())
    async for event in result.stream_events():
        if event.type == "run_item_stream_event":
            result.cancel()
    await asyncio.sleep(0.05)
    names = [s.name for s in telemetry.spans()]
    assert names.count(f"invoke_agent {AGENT_NAME}") == 1
    assert agents_sdk.processor._spans == {} and agents_sdk.processor._traces == {}


def test_a_failing_processor_never_reaches_the_run(demo, telemetry, agents_sdk):
    instrumented(telemetry, agents_sdk, metrics=[])
    internal_errors.reset_for_tests()

    class Hostile:
        trace_id = span_id = parent_id = "x"

        @property
        def span_data(self):
            raise RuntimeError("hostile span data")

        @property
        def error(self):
            raise RuntimeError("hostile error")

    processor = agents_sdk.processor
    processor.on_trace_start(object())
    processor.on_span_start(Hostile())
    processor.on_span_end(Hostile())
    processor.on_trace_end(object())
    assert sum(internal_errors.totals.values()) >= 2
    # And a real run afterwards is traced as before.
    result = Runner.run_sync(support_agent(demo), conversation())
    assert result.final_output
    assert len([s for s in telemetry.spans() if s.name == f"invoke_agent {AGENT_NAME}"]) == 1


def test_set_trace_processors_keeps_ours_and_uninstrument_removes_it(demo, telemetry, agents_sdk):
    instrumented(telemetry, agents_sdk, metrics=[])
    processor = agents_sdk.processor
    provider = get_trace_provider()
    assert processor in provider._multi_processor._processors

    class Theirs:
        def __init__(self):
            self.spans = []

        def on_trace_start(self, trace): pass
        def on_trace_end(self, trace): pass
        def on_span_start(self, span): pass
        def on_span_end(self, span): self.spans.append(span.span_data.type)
        def shutdown(self): pass
        def force_flush(self): pass

    theirs = Theirs()
    agents.set_trace_processors([theirs])  # the application replaces its processors: it keeps ours too
    assert provider._multi_processor._processors == (theirs, processor)
    Runner.run_sync(support_agent(demo), conversation())
    assert "agent" in theirs.spans and len([s for s in telemetry.spans() if s.name.startswith("invoke_agent")]) == 1

    agents_sdk.uninstrument()
    assert provider._multi_processor._processors == (theirs,)
    before = len(telemetry.spans())
    Runner.run_sync(support_agent(demo), conversation())
    assert not [s for s in telemetry.spans()[before:] if s.name.startswith(("invoke_agent", "execute_tool"))]


def test_a_handoff_is_the_next_agents_own_span_in_the_same_trace(demo, telemetry, agents_sdk):
    from agents import handoff

    instrumented(telemetry, agents_sdk, metrics=[])
    support = support_agent(demo)
    # The demo model calls a tool named for the weather: the handoff's tool here.
    triage = Agent(name="triage", instructions=SYSTEM, model=model_for(demo, "chat"),
                   handoffs=[handoff(support, tool_name_override="transfer_to_weather_desk")])
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("POST /support") as request:
        result = Runner.run_sync(triage, conversation())
    assert result.last_agent.name == AGENT_NAME
    spans = telemetry.spans()
    agents_ = {s.name: s for s in spans if s.attributes.get("gen_ai.operation.name") == "invoke_agent"}
    assert set(agents_) == {"invoke_agent triage", f"invoke_agent {AGENT_NAME}"}
    for span in agents_.values():
        assert span.context.trace_id == request.get_span_context().trace_id
    by_parent = {}
    for s in spans:
        if s.attributes.get("gen_ai.operation.name") == "chat":
            by_parent.setdefault(s.parent.span_id, []).append(s)
    assert len(by_parent[agents_["invoke_agent triage"].context.span_id]) == 1  # the call that handed off
    assert len(by_parent[agents_[f"invoke_agent {AGENT_NAME}"].context.span_id]) >= 1
    assert not [s for s in spans if s.attributes.get("gen_ai.operation.name") == "execute_tool" and "transfer" in s.name]


def test_a_tripped_guardrail_fails_the_agent_span_with_the_sdks_exception(demo, telemetry, agents_sdk):
    from agents import GuardrailFunctionOutput, InputGuardrailTripwireTriggered, input_guardrail

    @input_guardrail
    def no_parcels(ctx, agent, user_input):
        return GuardrailFunctionOutput(output_info=None, tripwire_triggered=True)

    instrumented(telemetry, agents_sdk, metrics=[])
    agent = Agent(name=AGENT_NAME, instructions=SYSTEM, tools=[get_weather], model=model_for(demo, "chat"),
                  input_guardrails=[no_parcels])
    with pytest.raises(InputGuardrailTripwireTriggered):
        Runner.run_sync(agent, conversation())
    span = telemetry.span(f"invoke_agent {AGENT_NAME}")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"].endswith("InputGuardrailTripwireTriggered"), span.attributes["error.type"]
    assert agents_sdk.processor._spans == {} and agents_sdk.processor._traces == {}


def test_the_runs_group_id_is_the_conversation_id_of_its_spans(demo, telemetry, agents_sdk):
    from agents import RunConfig

    from agent_scenario import CONVERSATION_ID

    instrumented(telemetry, agents_sdk, metrics=[guard()])
    result = Runner.run_sync(support_agent(demo), conversation(), run_config=RunConfig(group_id=CONVERSATION_ID))
    spans = assert_agent_run(telemetry, result.final_output)
    for span in (spans["agent"], spans["tool"], *spans["chats"]):
        assert span.attributes["gen_ai.conversation.id"] == CONVERSATION_ID, span.name
    # The application's own conversation id wins over the group id.
    import micrometrics

    telemetry.span_exporter.clear()
    with micrometrics.context(conversation_id="app-conv"):
        Runner.run_sync(support_agent(demo), conversation(), run_config=RunConfig(group_id=CONVERSATION_ID))
    assert {s.attributes.get("gen_ai.conversation.id") for s in telemetry.spans() if s.name.startswith(("invoke_agent", "chat"))} == {"app-conv"}
    assert agents_sdk.processor._spans == {}
