"""LangChain without a graph, and the handler under attack: an LCEL chain is one ``invoke_workflow`` span with its
model and retriever calls under it; a model whose SDK we do not instrument (or do not load) gets a framework
``chat`` span after the fact; a handler that raises, a tool that raises, runs that never end, an agent called as a
tool, parallel tool calls, and uninstrument."""

from __future__ import annotations

import asyncio
import contextvars

import openai
import pytest
from langchain_core.callbacks import BaseCallbackHandler, CallbackManager
from langchain_core.callbacks.manager import BaseCallbackManager
from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding
from langchain_core.language_models import FakeListChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import RunnablePassthrough
from langchain_core.tools import tool
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from opentelemetry import trace

import micrometrics
from agent_scenario import MODEL, guard
from demo_server import INCIDENT_REPLY
from micrometrics import internal_errors
from micrometrics.metrics import language

PROMPT = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{question}")])
QUESTION = "Hallo, ich habe eine Frage zu meiner Bestellung."


@pytest.fixture(autouse=True)
def _profiles():
    language.prepare()


def handler():
    from micrometrics_instrumentation.langchain import callbacks

    return callbacks.HANDLER


def chat_model(demo, **kwargs) -> ChatOpenAI:
    return ChatOpenAI(model=MODEL, base_url=demo.openai_base_url, api_key="sk-test", max_retries=0,
                      http_async_client=openai.DefaultAsyncHttpxClient(), **kwargs)


def names(telemetry) -> list[str]:
    return sorted(s.name for s in telemetry.spans())


# ---- LCEL chains --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["invoke", "ainvoke", "stream"])
def test_an_lcel_chain_is_a_workflow_with_the_sdk_chat_span_under_it(demo, telemetry, mode):
    telemetry.instrument(metrics=[guard()])
    chain = PROMPT | chat_model(demo) | StrOutputParser()
    if mode == "invoke":
        answer = chain.invoke({"question": QUESTION})
    elif mode == "ainvoke":
        async def ainvoke():
            result = await chain.ainvoke({"question": QUESTION})
            assert trace.get_current_span() is trace.INVALID_SPAN  # the workflow's context was given back in the task
            return result

        answer = asyncio.run(ainvoke())
    else:
        answer = "".join(chain.stream({"question": QUESTION}))
    assert answer.startswith("Hallo und herzlich willkommen")
    assert names(telemetry) == ["chat gpt-4o-mini", "invoke_workflow RunnableSequence"]
    chat = telemetry.span("chat gpt-4o-mini")
    workflow = telemetry.span("invoke_workflow RunnableSequence")
    assert chat.parent.span_id == workflow.context.span_id and workflow.parent is None
    assert workflow.kind == trace.SpanKind.INTERNAL and chat.kind == trace.SpanKind.CLIENT
    assert workflow.attributes["gen_ai.operation.name"] == "invoke_workflow"
    assert workflow.attributes["gen_ai.workflow.name"] == "RunnableSequence"
    assert chat.attributes["gen_ai.response.id"].startswith("chatcmpl-")  # the SDK's span: the provider's response id
    assert chat.attributes["micrometrics.language_match.label"] == "match"
    assert chat.attributes.get("gen_ai.request.stream", False) is (mode == "stream")


def test_a_rag_chain_retriever_and_model_under_the_workflow(demo, telemetry):
    telemetry.instrument(metrics=[])
    store = InMemoryVectorStore(embedding=DeterministicFakeEmbedding(size=16))
    store.add_documents([Document(id="shipping", page_content="Versand dauert zwei Tage."), Document(id="refund", page_content="Geld zurück.")])
    retriever = store.as_retriever(search_kwargs={"k": 1})
    chain = {"context": retriever, "question": RunnablePassthrough()} | PROMPT | chat_model(demo) | StrOutputParser()
    chain.invoke(QUESTION)
    workflow = telemetry.span("invoke_workflow RunnableSequence")
    for name in ("retrieval InMemoryVectorStore", "chat gpt-4o-mini"):
        assert telemetry.span(name).parent.span_id == workflow.context.span_id, name


def test_a_model_whose_sdk_is_not_instrumented_gets_the_frameworks_span(demo, telemetry):
    """Only LangChain instrumented: the chat span is opened by the handler after the fact, from LangChain's own
    view of the call (model, usage, finish reason, response id), timed from the call's start. Its guard reports."""
    telemetry.instrument(instrumentations=["langchain"], metrics=[guard()], capture_content=True)
    chain = PROMPT | chat_model(demo, temperature=0.2, max_tokens=64) | StrOutputParser()
    answer = chain.invoke({"question": QUESTION})
    assert names(telemetry) == ["chat gpt-4o-mini", "invoke_workflow RunnableSequence"]
    chat = telemetry.span("chat gpt-4o-mini")
    a = chat.attributes
    assert a["gen_ai.provider.name"] == "openai" and a["gen_ai.request.model"] == MODEL
    assert a["gen_ai.request.temperature"] == 0.2 and a["gen_ai.request.max_tokens"] == 64
    assert a["gen_ai.response.id"].startswith("chatcmpl-") and a["gen_ai.response.model"].startswith(MODEL)
    assert a["gen_ai.response.finish_reasons"] == ("stop",)
    assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
    assert answer in a["gen_ai.output.messages"] and QUESTION in a["gen_ai.input.messages"]
    assert a["micrometrics.language_match.label"] == "match"
    assert chat.parent.span_id == telemetry.span("invoke_workflow RunnableSequence").context.span_id
    assert "gen_ai.client.operation.duration" in telemetry.metrics()


def test_a_fake_model_streamed_gets_a_framework_span_with_time_to_first_chunk(telemetry):
    telemetry.instrument(metrics=[guard()])
    model = FakeListChatModel(responses=[INCIDENT_REPLY])
    with micrometrics.context(expected_language="de"):
        chunks = list(model.stream("Wie ist das Wetter?"))
    assert "".join(c.content for c in chunks) == INCIDENT_REPLY
    span = telemetry.span("chat")  # the fake model names no model
    assert span.attributes["gen_ai.provider.name"] == "langchain"
    assert span.attributes["gen_ai.request.stream"] is True
    assert span.attributes["gen_ai.response.time_to_first_chunk"] >= 0
    # A framework span is reported after the call: its guard can report, not retry (the SDK span is what retries).
    assert span.attributes["micrometrics.language_match.label"] == "mismatch"
    assert "micrometrics.attempt" not in span.attributes


def test_a_model_error_fails_the_framework_span_and_propagates(demo, telemetry):
    telemetry.instrument(instrumentations=["langchain"], metrics=[])
    demo.enqueue(status=400, json={"error": {"message": f"invalid prompt: {QUESTION}", "type": "invalid_request_error"}})
    with pytest.raises(openai.BadRequestError, match="invalid prompt"):
        (PROMPT | chat_model(demo)).invoke({"question": QUESTION})
    span = telemetry.span("chat gpt-4o-mini")
    assert span.status.status_code == trace.StatusCode.ERROR and span.attributes["error.type"] == "400"
    workflow = telemetry.span("invoke_workflow RunnableSequence")
    assert workflow.attributes["error.type"] == "400"  # the exception propagated through the chain, same type
    # The error quotes the prompt: content, so nowhere in the telemetry with capture off.
    seen = [str(v) for s in telemetry.spans() for v in [s.status.description, *s.attributes.values(),
                                                         *(a for e in s.events for a in e.attributes.values())]]
    assert not any("Frage zu meiner Bestellung" in v for v in seen)


# ---- tools ------------------------------------------------------------------------------------------


@tool
def lookup_order(order_id: str) -> str:
    """Look an order up."""
    if order_id == "boom":
        raise ValueError(f"order {order_id} not found")
    return f"order {order_id}: shipped"


def test_a_tool_called_directly_and_with_a_tool_call(telemetry):
    telemetry.instrument(metrics=[], capture_content=True)
    assert lookup_order.invoke({"order_id": "1"}) == "order 1: shipped"
    message = lookup_order.invoke({"name": "lookup_order", "args": {"order_id": "2"}, "id": "call_42", "type": "tool_call"})
    assert message.content == "order 2: shipped" and message.tool_call_id == "call_42"
    first, second = sorted(telemetry.spans(), key=lambda s: s.start_time)
    assert first.name == second.name == "execute_tool lookup_order"
    assert "gen_ai.tool.call.id" not in first.attributes and second.attributes["gen_ai.tool.call.id"] == "call_42"
    assert second.attributes["gen_ai.tool.call.arguments"] == '{"order_id": "2"}'
    assert second.attributes["gen_ai.tool.call.result"] == "order 2: shipped"
    assert second.attributes["gen_ai.tool.description"] == "Look an order up."
    assert second.attributes["gen_ai.tool.type"] == "function"


def test_a_tool_that_raises_fails_its_span_and_the_same_exception_propagates(telemetry):
    telemetry.instrument(metrics=[])
    with pytest.raises(ValueError, match="order boom not found") as raised:
        lookup_order.invoke({"order_id": "boom"})
    assert type(raised.value) is ValueError
    span = telemetry.span("execute_tool lookup_order")
    assert span.status.status_code == trace.StatusCode.ERROR and span.attributes["error.type"] == "ValueError"
    assert "boom" not in str(span.events)  # the error's text is content: off by default
    assert handler().open_runs() == 0 and trace.get_current_span() is trace.INVALID_SPAN


def tool_calls_graph(calls: list[dict], tools: list, handle_tool_errors: bool = False):
    """An agent whose model asks for ``calls`` at once (a scripted node), then a ToolNode that runs them in parallel."""

    def plan(state: MessagesState) -> dict:
        if isinstance(state["messages"][-1], AIMessage) or state["messages"][-1].type == "tool":
            return {"messages": [AIMessage(content="Fertig.")]}
        return {"messages": [AIMessage(content="", tool_calls=calls)]}

    graph = StateGraph(MessagesState)
    graph.add_node("plan", plan)
    graph.add_node("tools", ToolNode(tools, handle_tool_errors=handle_tool_errors))
    graph.add_edge(START, "plan")
    graph.add_conditional_edges("plan", lambda s: "tools" if s["messages"][-1].tool_calls else END)
    graph.add_edge("tools", "plan")
    return graph.compile(name="order_agent")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_parallel_tool_calls_each_a_span_under_the_agent(telemetry, is_async):
    telemetry.instrument(metrics=[])
    calls = [{"name": "lookup_order", "args": {"order_id": str(i)}, "id": f"call_{i}", "type": "tool_call"} for i in range(4)]
    graph = tool_calls_graph(calls, [lookup_order])
    inputs = {"messages": [("user", "Wo sind meine Bestellungen?")]}
    async def ainvoke():
        result = await graph.ainvoke(inputs)
        assert trace.get_current_span() is trace.INVALID_SPAN  # given back in the task too
        return result

    out = asyncio.run(ainvoke()) if is_async else graph.invoke(inputs)
    assert out["messages"][-1].content == "Fertig."
    agent = telemetry.span("invoke_agent order_agent")
    tools = [s for s in telemetry.spans() if s.name == "execute_tool lookup_order"]
    assert sorted(s.attributes["gen_ai.tool.call.id"] for s in tools) == [f"call_{i}" for i in range(4)]
    assert all(s.parent.span_id == agent.context.span_id for s in tools)
    assert handler().open_runs() == 0 and trace.get_current_span() is trace.INVALID_SPAN


def test_a_tool_error_inside_a_graph_fails_the_tool_span_and_the_agent_goes_on(telemetry):
    telemetry.instrument(metrics=[])
    calls = [{"name": "lookup_order", "args": {"order_id": "boom"}, "id": "call_b", "type": "tool_call"}]
    out = tool_calls_graph(calls, [lookup_order], handle_tool_errors=True).invoke({"messages": [("user", "Bestellung boom?")]})
    assert out["messages"][-2].status == "error"  # ToolNode turned the error into a message for the model
    span = telemetry.span("execute_tool lookup_order")
    assert span.attributes["error.type"] == "ValueError"
    assert telemetry.span("invoke_agent order_agent").status.status_code != trace.StatusCode.ERROR


def test_an_agent_called_as_a_tool_is_an_agent_span_under_the_tool_span(demo, telemetry):
    """A subgraph inside a tool: ``invoke_agent outer > execute_tool > invoke_agent expert > chat``; the chains
    inside the tool that are no graph (the prompt, the parser) are not spans."""
    telemetry.instrument(metrics=[])
    expert_model = chat_model(demo)

    def answer(state: MessagesState) -> dict:
        return {"messages": [expert_model.invoke(state["messages"])]}

    inner = StateGraph(MessagesState)
    inner.add_node("answer", answer)
    inner.add_edge(START, "answer")
    expert = inner.compile(name="expert")

    @tool
    def ask_expert(question: str) -> str:
        """Ask the expert agent."""
        summary = (PROMPT | FakeListChatModel(responses=["kurz"]) | StrOutputParser()).invoke({"question": question})
        return expert.invoke({"messages": [("user", question + summary)]})["messages"][-1].content

    calls = [{"name": "ask_expert", "args": {"question": QUESTION}, "id": "call_x", "type": "tool_call"}]
    tool_calls_graph(calls, [ask_expert]).invoke({"messages": [("user", QUESTION)]})
    outer, inner_agent = telemetry.span("invoke_agent order_agent"), telemetry.span("invoke_agent expert")
    tool_span = telemetry.span("execute_tool ask_expert")
    assert tool_span.parent.span_id == outer.context.span_id
    assert inner_agent.parent.span_id == tool_span.context.span_id
    assert telemetry.span("chat gpt-4o-mini").parent.span_id == inner_agent.context.span_id
    assert telemetry.span("chat").parent.span_id == tool_span.context.span_id  # the fake model in the tool's chain
    assert names(telemetry) == ["chat", "chat gpt-4o-mini", "execute_tool ask_expert", "invoke_agent expert", "invoke_agent order_agent"]
    assert inner_agent.start_time >= tool_span.start_time and inner_agent.end_time <= tool_span.end_time


# ---- other handlers, broken runs, bounds -----------------------------------------------------------------


class Raising(BaseCallbackHandler):
    """An application's handler that asks LangChain to re-raise its errors."""

    raise_error = True

    def __init__(self, event: str) -> None:
        self.event = event

    def on_chain_start(self, *args, **kwargs):
        if self.event == "on_chain_start":
            raise RuntimeError("handler broke on start")

    def on_chain_end(self, *args, **kwargs):
        if self.event == "on_chain_end":
            raise RuntimeError("handler broke on end")


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize("event", ["on_chain_start", "on_chain_end"])
def test_another_handler_that_raises_leaves_no_open_run_and_no_attached_context(demo, telemetry, event, is_async):
    chain = PROMPT | chat_model(demo) | StrOutputParser()

    def call(config=None):
        if is_async:
            async def run():
                await chain.ainvoke({"question": QUESTION}, config=config)
                assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached in the task either
            return asyncio.run(run())
        return chain.invoke({"question": QUESTION}, config=config)

    with pytest.raises(RuntimeError, match="handler broke") as without_us:
        call({"callbacks": [Raising(event)]})
    telemetry.instrument(metrics=[])
    with pytest.raises(RuntimeError, match="handler broke") as with_us:
        call({"callbacks": [Raising(event)]})
    assert str(with_us.value) == str(without_us.value)  # the application sees what LangChain does without us
    assert handler().open_runs() == 0 and trace.get_current_span() is trace.INVALID_SPAN
    workflows = [s for s in telemetry.spans() if s.name == "invoke_workflow RunnableSequence"]
    if event == "on_chain_end" or is_async:  # ours ran before the raising handler's error: the run closed, failed as the app saw it
        assert [s.attributes["error.type"] for s in workflows] == ["RuntimeError"]
    else:  # sync: the raising handler came first in the list, the run never started for us
        assert workflows == []
    call()  # the next call is a trace of its own
    assert [s.parent for s in telemetry.spans() if s.name == "invoke_workflow RunnableSequence"][-1] is None


def test_a_handler_raising_after_ours_on_start_closes_our_run(telemetry):
    telemetry.instrument(metrics=[])
    manager = CallbackManager.configure()
    manager.add_handler(Raising("on_chain_start"))  # after ours: our start ran, then LangChain re-raises
    with pytest.raises(RuntimeError, match="handler broke on start"):
        manager.on_chain_start(None, {"question": QUESTION}, name="broken")
    assert handler().open_runs() == 0 and trace.get_current_span() is trace.INVALID_SPAN
    assert telemetry.span("invoke_workflow broken").attributes["error.type"] == "RuntimeError"


def test_our_handler_failing_never_reaches_the_application(telemetry):
    """A tool output we cannot read (its ``str`` raises): the app gets it as it is, the span still ends."""

    class Opaque:
        def __str__(self):
            raise RuntimeError("unprintable")

    @tool
    def opaque() -> object:
        """Returns an object."""
        return Opaque()

    telemetry.instrument(metrics=[])
    before = dict(internal_errors.totals)
    result = opaque.invoke({})
    assert isinstance(result, Opaque)
    assert telemetry.span("execute_tool opaque").status.status_code != trace.StatusCode.ERROR
    assert internal_errors.totals.get("response", 0) > before.get("response", 0)


def test_runs_that_never_end_are_bounded(telemetry):
    telemetry.instrument(metrics=[])
    manager = CallbackManager.configure()
    h = handler()
    h.max_runs = 20
    try:
        # Started and never ended (their end events lost), in a context of their own (as a dead task's).
        contextvars.copy_context().run(lambda: [manager.on_chain_start(None, {"q": i}, name=f"run{i}") for i in range(50)])
        assert h.open_runs() == 20
        evicted = [s for s in telemetry.spans() if s.name.startswith("invoke_workflow run")]
        assert len(evicted) == 30  # the oldest were ended when evicted: no span is lost open
    finally:
        h.max_runs = type(h).max_runs
    assert trace.get_current_span() is trace.INVALID_SPAN


def test_the_handler_is_added_once_and_uninstrument_turns_it_off(demo, telemetry):
    telemetry.instrument(metrics=[])
    manager = CallbackManager.configure(inheritable_callbacks=CallbackManager.configure())
    assert sum(1 for h in manager.inheritable_handlers if h is handler()) == 1
    assert sum(1 for h in manager.handlers if h is handler()) == 1
    micrometrics.uninstrument()
    assert not hasattr(BaseCallbackManager.__init__, "__wrapped__")
    assert all(h is not handler() for h in CallbackManager.configure().handlers)
    (PROMPT | FakeListChatModel(responses=["x"])).invoke({"question": "q"})
    manager.on_chain_start(None, {}, name="stale")  # a manager made while instrumented: its handler is off
    assert telemetry.spans() == []
    telemetry.instrument(metrics=[])
    assert sum(1 for h in CallbackManager.configure().handlers if h is handler()) == 1


# ---- other shapes: LLMs, subgraph nodes, the classic AgentExecutor -------------------------------------------


def test_an_llm_is_a_text_completion_span(telemetry):
    from langchain_core.language_models import FakeListLLM

    telemetry.instrument(metrics=[], capture_content=True)
    assert FakeListLLM(responses=["Gern geschehen!"]).invoke("Danke") == "Gern geschehen!"
    span = telemetry.span("text_completion")
    assert span.attributes["gen_ai.operation.name"] == "text_completion"
    assert "Gern geschehen!" in span.attributes["gen_ai.output.messages"] and "Danke" in span.attributes["gen_ai.input.messages"]


def test_a_subgraph_node_is_part_of_its_agent(telemetry):
    """A compiled graph added as a node is a step of the outer agent, not an agent of its own: its model call sits
    under the outer agent span."""
    telemetry.instrument(metrics=[])
    model = FakeListChatModel(responses=["Ihr Paket ist unterwegs."])
    inner = StateGraph(MessagesState)
    inner.add_node("answer", lambda s: {"messages": [model.invoke(s["messages"])]})
    inner.add_edge(START, "answer")
    outer = StateGraph(MessagesState)
    outer.add_node("support", inner.compile(name="inner"))
    outer.add_edge(START, "support")
    outer.compile(name="outer").invoke({"messages": [("user", "Wo ist mein Paket?")]})
    assert names(telemetry) == ["chat", "invoke_agent outer"]
    assert telemetry.span("chat").parent.span_id == telemetry.span("invoke_agent outer").context.span_id


def test_a_classic_agent_executor_is_an_agent(demo, telemetry):
    from langchain_classic.agents import AgentExecutor, create_tool_calling_agent

    from agent_scenario import QUESTION as WEATHER_QUESTION, weather

    @tool
    def get_weather(location: str, unit: str = "celsius") -> str:
        """Current weather of a city."""
        return weather(location, unit)

    telemetry.instrument(metrics=[])
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{input}"), ("placeholder", "{agent_scratchpad}")])
    executor = AgentExecutor(agent=create_tool_calling_agent(chat_model(demo), [get_weather], prompt), tools=[get_weather])
    assert "Berlin" in executor.invoke({"input": WEATHER_QUESTION})["output"]
    agent = telemetry.span("invoke_agent AgentExecutor")
    tool_span = telemetry.span("execute_tool get_weather")
    chats = [s for s in telemetry.spans() if s.name == "chat gpt-4o-mini"]
    assert len(chats) == 2 and all(s.parent.span_id == agent.context.span_id for s in [tool_span, *chats])
    assert tool_span.attributes["gen_ai.tool.call.id"].startswith("call_demo")


def test_an_async_model_call_gives_its_context_back(demo, telemetry):
    """``agenerate`` ends its calls in tasks of their own (``asyncio.gather``): the pending call's context is still
    given back in the caller's task, so the app's next call there is a trace of its own."""
    from opentelemetry import context as otel_context

    telemetry.instrument(metrics=[])

    async def run():
        before = otel_context.get_current()
        await chat_model(demo).ainvoke(QUESTION)
        assert otel_context.get_current() is before
        await FakeListChatModel(responses=["ok"]).ainvoke("x")
        assert otel_context.get_current() is before

    asyncio.run(run())
    assert handler().open_runs() == 0
    assert sorted(s.name for s in telemetry.spans() if s.parent is None) == ["chat", "chat gpt-4o-mini"]
