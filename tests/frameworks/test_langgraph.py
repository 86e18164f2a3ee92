"""The shared agent scenario (agent_scenario.py) through LangGraph over ``ChatOpenAI`` pointed at the demo server:
the prebuilt ReAct agent, a hand-built ``StateGraph`` with a ``ToolNode`` and LangChain's ``create_agent``, run with
``invoke``, ``ainvoke`` and streamed (``stream_mode="messages"``). No change to the application's code: ``instrument()``
adds the callback handler; the chat spans are the openai SDK's (its guard retries in German)."""

from __future__ import annotations

import warnings

import openai
import pytest
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from opentelemetry import trace

from agent_scenario import AGENT_NAME, CONVERSATION_ID, MODEL, QUESTION, SYSTEM, assert_agent_run, guard, history, weather
from micrometrics.metrics import language


@pytest.fixture(autouse=True)
def _profiles():
    language.prepare()


@tool
def get_weather(location: str, unit: str = "celsius") -> str:
    """Current weather of a city."""
    return weather(location, unit)


def chat_model(demo) -> ChatOpenAI:
    # Its own async HTTP client: langchain-openai caches one per base URL, bound to the event loop of the first test.
    return ChatOpenAI(model=MODEL, base_url=demo.openai_base_url, api_key="sk-test", max_retries=0,
                      http_async_client=openai.DefaultAsyncHttpxClient())


def react_agent(demo):
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # moved to langchain.agents in LangGraph 1.0, still shipped
        return create_react_agent(chat_model(demo), [get_weather], prompt=SYSTEM, name=AGENT_NAME)


def state_graph(demo):
    model = chat_model(demo).bind_tools([get_weather])

    def call_model(state: MessagesState) -> dict:
        return {"messages": [model.invoke([{"role": "system", "content": SYSTEM}, *state["messages"]])]}

    graph = StateGraph(MessagesState)
    graph.add_node("agent", call_model)
    graph.add_node("tools", ToolNode([get_weather]))
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", tools_condition)
    graph.add_edge("tools", "agent")
    return graph.compile(name=AGENT_NAME)


def create_agent_graph(demo):
    from langchain.agents import create_agent

    return create_agent(chat_model(demo), [get_weather], system_prompt=SYSTEM, name=AGENT_NAME)


BUILDERS = {"react": react_agent, "state_graph": state_graph, "create_agent": create_agent_graph}
INPUT = {"messages": [*history(), {"role": "user", "content": QUESTION}]}
CONFIG = {"configurable": {"thread_id": CONVERSATION_ID}}


def streamed_answer(items) -> str:
    """The text the user read: the last model message's streamed chunks, joined."""
    by_message: dict = {}
    for chunk, meta in items:
        if isinstance(chunk.content, str):
            by_message[chunk.id] = by_message.get(chunk.id, "") + chunk.content
    return list(by_message.values())[-1]


def assert_graph_run(telemetry, answer: str) -> None:
    spans = assert_agent_run(telemetry, answer)
    agent = spans["agent"]
    assert agent.attributes["gen_ai.provider.name"] == "langchain" and agent.parent is None
    # LangGraph's thread is the conversation, on the agent span and on every call inside it.
    for span in [agent, spans["tool"], *spans["chats"]]:
        assert span.attributes["gen_ai.conversation.id"] == CONVERSATION_ID, span.name
    # The chat spans are the openai SDK's: the retry is the guard's, one span per attempt, under the agent.
    for chat in spans["chats"]:
        assert chat.attributes["gen_ai.provider.name"] == "openai"
        assert chat.parent.span_id == agent.context.span_id
    assert spans["tool"].parent.span_id == agent.context.span_id
    assert spans["tool"].attributes["gen_ai.tool.call.id"].startswith("call_demo")
    assert "gen_ai.tool.call.arguments" not in spans["tool"].attributes  # content: off by default


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_agent_invoke(demo, telemetry, builder):
    telemetry.instrument(metrics=[guard()])
    out = BUILDERS[builder](demo).invoke(INPUT, config=CONFIG)
    assert_graph_run(telemetry, out["messages"][-1].content)


@pytest.mark.parametrize("builder", ["react", "state_graph"])
async def test_agent_ainvoke(demo, telemetry, builder):
    telemetry.instrument(metrics=[guard()])
    out = await BUILDERS[builder](demo).ainvoke(INPUT, config=CONFIG)
    assert trace.get_current_span() is trace.INVALID_SPAN  # the agent's context was given back in this task
    assert_graph_run(telemetry, out["messages"][-1].content)


@pytest.mark.parametrize("builder", ["react", "state_graph"])
def test_agent_stream_messages(demo, telemetry, builder):
    telemetry.instrument(metrics=[guard()])
    items = list(BUILDERS[builder](demo).stream(INPUT, config=CONFIG, stream_mode="messages"))
    assert trace.get_current_span() is trace.INVALID_SPAN
    answer = streamed_answer(items)
    assert "weather service" not in answer  # the English attempt never reached the user: the guard held its prefix
    assert_graph_run(telemetry, answer)
    assert all(c.attributes.get("gen_ai.request.stream") is True for c in assert_agent_run(telemetry, answer)["chats"])


@pytest.mark.parametrize("builder", ["react", "state_graph"])
async def test_agent_astream_messages(demo, telemetry, builder):
    telemetry.instrument(metrics=[guard()])
    items = [item async for item in BUILDERS[builder](demo).astream(INPUT, config=CONFIG, stream_mode="messages")]
    assert trace.get_current_span() is trace.INVALID_SPAN
    answer = streamed_answer(items)
    assert "weather service" not in answer
    assert_graph_run(telemetry, answer)


def test_agent_stream_updates_and_content_capture(demo, telemetry):
    """``stream_mode="updates"`` (a node's output at a time); with content capture the tool's arguments and result
    and the agent's conversation and answer are on the spans."""
    telemetry.instrument(metrics=[guard()], capture_content=True)
    updates = list(react_agent(demo).stream(INPUT, config=CONFIG, stream_mode="updates"))
    answer = updates[-1]["agent"]["messages"][-1].content
    spans = assert_agent_run(telemetry, answer)
    tool = spans["tool"].attributes
    assert tool["gen_ai.tool.call.arguments"] == '{"location": "Berlin", "unit": "celsius"}'
    assert tool["gen_ai.tool.call.result"] == weather("Berlin")
    agent = spans["agent"].attributes
    assert QUESTION in agent["gen_ai.input.messages"] and "Wetterdienst" in agent["gen_ai.output.messages"]


def test_conversation_id_from_context_without_a_thread(demo, telemetry):
    import micrometrics

    telemetry.instrument(metrics=[guard()])
    with micrometrics.context(conversation_id="from-context"):
        out = react_agent(demo).invoke(INPUT)
    spans = assert_agent_run(telemetry, out["messages"][-1].content)
    assert {s.attributes.get("gen_ai.conversation.id") for s in [spans["agent"], spans["tool"], *spans["chats"]]} == {"from-context"}


def test_a_stream_the_application_abandons_ends_the_run_and_gives_its_context_back(demo, telemetry):
    from micrometrics_instrumentation.langchain import callbacks

    telemetry.instrument(metrics=[guard()])
    stream = react_agent(demo).stream(INPUT, config=CONFIG, stream_mode="messages")
    next(stream)  # the first token of the first model call, then the application walks away
    stream.close()
    assert trace.get_current_span() is trace.INVALID_SPAN
    assert callbacks.HANDLER.open_runs() == 0
    agent = telemetry.span(f"invoke_agent {AGENT_NAME}")
    assert agent.end_time is not None and len([s for s in telemetry.spans() if s.name == f"chat {MODEL}"]) == 1
