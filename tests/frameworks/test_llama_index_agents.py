"""LlamaIndex (llama-index-core): its dispatcher's spans and events as the spans a user sees in a backend.

Real LlamaIndex objects over the demo server's OpenAI endpoint: an ``openai``-SDK-backed ``FunctionCallingLLM``
(llama_index_models.py; the SDK is instrumented, so the model call's one span is the SDK's, whose guard retries),
``MockLLM`` for a model whose SDK we do not instrument (the framework's span, from LlamaIndex's LLM events),
``FunctionAgent`` for the shared agent scenario, ``FunctionTool`` for tools.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from opentelemetry import context as otel_context

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "retrieval"))

from agent_scenario import AGENT_NAME, MODEL, QUESTION, SYSTEM, TOOL_NAME, assert_agent_run, guard, history, weather
from llama_index_setup import instrument
from micrometrics.metrics import language

llama_core = pytest.importorskip("llama_index.core", reason="llama-index-core is not installed")

from llama_index.core.agent.workflow import FunctionAgent  # noqa: E402
from llama_index.core.llms import ChatMessage, MockLLM  # noqa: E402
from llama_index.core.tools import FunctionTool  # noqa: E402
from llama_index_models import SdkChatModel  # noqa: E402


@pytest.fixture(autouse=True)
def _profiles():
    language.prepare()


def chats(telemetry):
    return [s for s in telemetry.spans() if s.attributes.get("gen_ai.operation.name") == "chat"]


def agent(demo, streaming: bool = False) -> FunctionAgent:
    return FunctionAgent(
        name=AGENT_NAME, description="Answers the shop's customers.", llm=SdkChatModel(base_url=demo.openai_base_url, model=MODEL),
        tools=[FunctionTool.from_defaults(fn=weather, name=TOOL_NAME, description="Current weather of a city.")],
        system_prompt=SYSTEM, streaming=streaming,
    )


async def run_agent(demo, streaming: bool = False) -> str:
    handler = agent(demo, streaming).run(user_msg=QUESTION, chat_history=[ChatMessage(**m) for m in history()])
    if streaming:
        async for _ in handler.stream_events():
            pass
    return str(await handler)


# ---- the shared agent scenario -------------------------------------------------------------------


def test_agent_scenario_sync_caller(demo, telemetry, request):
    """A synchronous application runs the agent with ``asyncio.run``: the guard retries the English answer in German."""
    instrument(telemetry, request, metrics=[guard()])
    answer = asyncio.run(run_agent(demo))
    run = assert_agent_run(telemetry, answer)
    tool = run["tool"]
    assert tool.attributes["gen_ai.tool.call.id"]  # the model's call id, from the agent's ToolCall event
    assert tool.parent.span_id == run["agent"].context.span_id
    # The one span per model call is the SDK's (its guard retried it), under the agent span.
    assert {c.instrumentation_scope.name for c in run["chats"]} == {"micrometrics"}
    assert all(c.attributes["gen_ai.provider.name"] == "openai" for c in run["chats"])


async def test_agent_scenario_async(demo, telemetry, request):
    instrument(telemetry, request, metrics=[guard()])
    answer = await run_agent(demo)
    run = assert_agent_run(telemetry, answer)
    assert all(c.attributes["gen_ai.provider.name"] == "openai" for c in run["chats"])


async def test_agent_scenario_streamed(demo, telemetry, request):
    """``FunctionAgent(streaming=True)``: the SDK's streamed call runs when the agent consumes the stream, after
    LlamaIndex's LLM span ended; still one inference span per model call, under the agent."""
    instrument(telemetry, request, metrics=[guard()])
    answer = await run_agent(demo, streaming=True)
    run = assert_agent_run(telemetry, answer)
    assert all(c.attributes.get("gen_ai.request.stream") is True for c in run["chats"])
    assert all(c.attributes["gen_ai.provider.name"] == "openai" for c in run["chats"]), "the SDK's spans, no framework span beside them"


# ---- model calls: one inference span, the SDK's or the framework's ----------------------------------


def _tracker():
    from micrometrics_instrumentation.llama_index import LlamaIndexInstrumentor

    return LlamaIndexInstrumentor()._handlers.spans


def test_an_llm_whose_sdk_is_not_instrumented_is_reported_from_its_events(telemetry, request):
    """``MockLLM`` (no SDK below): the framework's ``chat`` span, from LlamaIndex's LLM events, once, though
    ``CustomLLM.chat`` goes through ``complete``; messages only with capture."""
    instrument(telemetry, request, capture_content=True)
    before = otel_context.get_current()
    reply = MockLLM().chat([ChatMessage(role="system", content="Sei kurz."), ChatMessage(role="user", content="Wo ist mein Paket?")])
    span = telemetry.span("chat unknown")  # MockLLM names no model
    assert span.attributes["gen_ai.provider.name"] == "llama_index"
    assert span.kind.name == "CLIENT"
    assert json.loads(span.attributes["gen_ai.system_instructions"]) == [{"type": "text", "content": "Sei kurz."}]
    assert json.loads(span.attributes["gen_ai.input.messages"])[0]["parts"][0]["content"] == "Wo ist mein Paket?"
    assert json.loads(span.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == reply.message.content
    assert [s.name for s in telemetry.spans()] == ["chat unknown"]
    assert len(_tracker()) == 0
    assert otel_context.get_current() == before  # what was made current for the call is gone with it


async def test_an_async_and_a_streamed_llm_call_without_sdk(telemetry, request):
    instrument(telemetry, request, capture_content=True)
    llm = MockLLM()
    await llm.achat([ChatMessage(role="user", content="eins")])
    text = ""
    async for chunk in await llm.astream_chat([ChatMessage(role="user", content="zwei drei")]):
        text = chunk.message.content
    for chunk in llm.stream_chat([ChatMessage(role="user", content="vier")]):
        pass
    spans = [s for s in telemetry.spans() if s.name == "chat unknown"]
    assert len(spans) == 3
    streamed = spans[1]
    assert streamed.attributes["gen_ai.request.stream"] is True
    assert "zwei drei" in streamed.attributes["gen_ai.output.messages"] and text
    assert len(_tracker()) == 0


def test_a_stream_consumed_after_the_llm_call_returned_is_one_span_the_sdks(demo, telemetry, request):
    """The SDK call of ``stream_chat`` runs while the app reads the stream, after LlamaIndex's span ended: still one span."""
    instrument(telemetry, request)
    before = otel_context.get_current()
    llm = SdkChatModel(base_url=demo.openai_base_url, model=MODEL)
    stream = llm.stream_chat([ChatMessage(role="user", content="Hello, where is my parcel?")])
    assert chats(telemetry) == []  # nothing sent yet
    last = None
    for last in stream:
        pass
    spans = chats(telemetry)
    assert len(spans) == 1, [(s.name, s.attributes.get("gen_ai.provider.name")) for s in spans]
    assert spans[0].attributes["gen_ai.provider.name"] == "openai" and spans[0].attributes["gen_ai.request.stream"] is True
    assert last is not None and last.message.content
    # The next call in this context is its own: the stream's pending call was ended, not left for it to take.
    MockLLM().chat([ChatMessage(role="user", content="x")])
    assert [s.attributes["gen_ai.provider.name"] for s in chats(telemetry)] == ["openai", "llama_index"]
    assert len(_tracker()) == 0
    assert otel_context.get_current() == before


async def test_an_async_stream_and_a_plain_call_over_the_sdk(demo, telemetry, request):
    instrument(telemetry, request)
    llm = SdkChatModel(base_url=demo.openai_base_url, model=MODEL)
    await llm.achat([ChatMessage(role="user", content="Hello")])
    async for _ in await llm.astream_chat([ChatMessage(role="user", content="Hello again")]):
        pass
    llm.complete("Hello once more")  # complete over chat: the same model call
    spans = chats(telemetry)
    assert [s.attributes["gen_ai.provider.name"] for s in spans] == ["openai"] * 3
    assert [s.attributes.get("gen_ai.request.stream", False) for s in spans] == [False, True, False]


def test_a_stream_closed_early_is_one_span_marked_abandoned(telemetry, request):
    instrument(telemetry, request)
    stream = MockLLM(max_tokens=20).stream_complete("ein langer Text")
    next(stream)
    stream.close()
    span = telemetry.span("text_completion unknown")
    assert span.attributes["error.type"] == "micrometrics.stream.abandoned"
    assert len(_tracker()) == 0


class _BrokenLLM(MockLLM):
    def complete(self, prompt, formatted=False, **kwargs):
        raise ConnectionError(f"upstream refused the prompt {prompt!r}")


def test_a_model_call_that_raises(telemetry, request):
    """The app gets the LLM's own exception; the span is an error, its text (quoting the prompt) not exported."""
    instrument(telemetry, request)
    with pytest.raises(ConnectionError) as raised:
        _BrokenLLM().chat([ChatMessage(role="user", content="geheime Bestellnummer 12345")])
    assert "geheime Bestellnummer" in str(raised.value)
    span = telemetry.span("chat unknown")
    assert span.status.status_code.name == "ERROR"
    assert span.attributes["error.type"] == "ConnectionError"
    exported = json.dumps([dict(span.attributes), [dict(e.attributes or {}) for e in span.events], span.status.description])
    assert "geheime" not in exported
    assert len(_tracker()) == 0


# ---- tools ---------------------------------------------------------------------------------------


def test_a_tool_call_with_arguments_and_result_under_capture(telemetry, request):
    instrument(telemetry, request, capture_content=True)
    tool = FunctionTool.from_defaults(fn=weather, name=TOOL_NAME, description="Current weather of a city.\nMore.")
    output = tool.call(location="Berlin")
    assert output.raw_output == weather("Berlin")
    span = telemetry.span(f"execute_tool {TOOL_NAME}")
    assert span.attributes["gen_ai.tool.name"] == TOOL_NAME
    assert span.attributes["gen_ai.tool.description"] == "Current weather of a city."
    assert json.loads(span.attributes["gen_ai.tool.call.arguments"]) == {"location": "Berlin"}
    assert "Regen" in span.attributes["gen_ai.tool.call.result"]


def test_tool_content_is_not_exported_without_capture(telemetry, request):
    instrument(telemetry, request)
    FunctionTool.from_defaults(fn=weather, name=TOOL_NAME).call(location="Berlin")
    span = telemetry.span(f"execute_tool {TOOL_NAME}")
    assert "gen_ai.tool.call.arguments" not in span.attributes and "gen_ai.tool.call.result" not in span.attributes
    assert "Berlin" not in json.dumps(dict(span.attributes))


async def test_a_tool_that_raises(telemetry, request):
    instrument(telemetry, request)

    def lookup(order: str) -> str:
        raise KeyError(f"no order {order}")

    tool = FunctionTool.from_defaults(fn=lookup)
    with pytest.raises(KeyError) as raised:
        await tool.acall(order="12345")
    assert raised.value.args == ("no order 12345",)
    span = telemetry.span("execute_tool lookup")
    assert span.status.status_code.name == "ERROR" and span.attributes["error.type"] == "KeyError"
    assert "12345" not in json.dumps([dict(span.attributes), [dict(e.attributes or {}) for e in span.events]])


# ---- the app never pays for us -------------------------------------------------------------------


def test_agent_content_is_not_exported_without_capture(demo, telemetry, request):
    instrument(telemetry, request, metrics=[guard()])
    asyncio.run(run_agent(demo))
    exported = json.dumps([dict(s.attributes) for s in telemetry.spans()], default=str)
    for secret in (QUESTION[:20], "Berlin", "Regen", "12345", SYSTEM[:20]):
        assert secret not in exported, secret


def test_agent_content_with_capture(demo, telemetry, request):
    instrument(telemetry, request, metrics=[guard()], capture_content=True)
    asyncio.run(run_agent(demo))
    agent_span = telemetry.span(f"invoke_agent {AGENT_NAME}")
    inputs = json.loads(agent_span.attributes["gen_ai.input.messages"])
    assert inputs[-1]["parts"][0]["content"] == QUESTION and len(inputs) == 9  # four earlier turns, two messages each, and the question
    assert "Wetterdienst" in agent_span.attributes["gen_ai.output.messages"]
    assert agent_span.attributes["gen_ai.agent.description"] == "Answers the shop's customers."
    tool = telemetry.span(f"execute_tool {TOOL_NAME}")
    assert json.loads(tool.attributes["gen_ai.tool.call.arguments"])["location"] == "Berlin"


class _HostileRetriever:
    """A retriever attribute that raises when read: our span handler fails on it, the app must not notice."""


def test_a_handler_failure_never_reaches_the_app(telemetry, request):
    from llama_index.core.retrievers import BaseRetriever
    from llama_index.core.schema import NodeWithScore, TextNode

    from micrometrics import internal_errors

    class Hostile(BaseRetriever):
        @property
        def _similarity_top_k(self):
            raise RuntimeError("boom while micrometrics reads me")

        def _retrieve(self, query_bundle):
            return [NodeWithScore(node=TextNode(id_="a", text="A"), score=0.5)]

    instrument(telemetry, request)
    before = internal_errors.totals.get("llama_index", 0)
    nodes = Hostile().retrieve("q")
    assert [n.node.node_id for n in nodes] == ["a"]
    assert internal_errors.totals.get("llama_index", 0) > before
    assert len(_tracker()) == 0


def test_spans_whose_exit_never_comes_do_not_accumulate(telemetry, request):
    """LlamaIndex span ids we see enter but never exit (a run cancelled mid-way, a lost done-callback) are bounded."""
    import inspect as _inspect

    from llama_index.core.instrumentation import get_dispatcher

    from micrometrics_instrumentation.llama_index.handlers import MAX_OPEN

    instrument(telemetry, request)
    dispatcher = get_dispatcher()
    bound = _inspect.signature(lambda: None).bind()
    for i in range(MAX_OPEN + 500):
        dispatcher.span_enter(id_=f"Orphan.step-{i:036d}", bound_args=bound, instance=None, parent_id=None)
    assert len(_tracker()) == MAX_OPEN
    assert _tracker().evicted == 500


async def test_a_cancelled_agent_run_leaves_no_state_and_ends_its_spans(demo, telemetry, request):
    instrument(telemetry, request)
    demo.enqueue(delay=2.0, path_contains="/chat/completions")
    handler = agent(demo).run(user_msg=QUESTION)
    for _ in range(200):
        await asyncio.sleep(0.01)
        if demo.requests:
            break
    await handler.cancel_run()
    with pytest.raises(BaseException):
        await handler
    await asyncio.sleep(0.05)
    assert len(_tracker()) == 0
    names = [s.name for s in telemetry.spans()]
    assert f"invoke_agent {AGENT_NAME}" in names


def test_uninstrument_removes_the_handlers(telemetry, request):
    from llama_index.core.instrumentation import get_dispatcher

    instrument(telemetry, request)
    root = get_dispatcher()
    ours = [h for h in root.span_handlers + root.event_handlers if type(h).__name__.startswith("Micrometrics")]
    assert len(ours) == 2
    from micrometrics_instrumentation.llama_index import LlamaIndexInstrumentor

    LlamaIndexInstrumentor().uninstrument()
    import micrometrics

    micrometrics.uninstrument()
    assert not [h for h in root.span_handlers + root.event_handlers if type(h).__name__.startswith("Micrometrics")]
    MockLLM().chat([ChatMessage(role="user", content="x")])
    assert telemetry.spans() == []


# ---- other agents --------------------------------------------------------------------------------


async def test_agent_scenario_through_an_agent_workflow(demo, telemetry, request):
    """``AgentWorkflow`` (the multi-agent runner) with the support agent as its root: ``invoke_agent support_agent``."""
    from llama_index.core.agent.workflow import AgentWorkflow

    instrument(telemetry, request, metrics=[guard()])
    workflow = AgentWorkflow(agents=[agent(demo)], root_agent=AGENT_NAME)
    answer = str(await workflow.run(user_msg=QUESTION, chat_history=[ChatMessage(**m) for m in history()]))
    assert_agent_run(telemetry, answer)


async def test_a_react_agent(demo, telemetry, request):
    from llama_index.core.agent.workflow import ReActAgent

    from corpus import chat_completion

    instrument(telemetry, request)
    demo.enqueue(json=chat_completion("Thought: I can answer without tools.\nAnswer: Ihr Paket kommt morgen."), path_contains="/chat/completions")
    react = ReActAgent(name="react_support", llm=SdkChatModel(base_url=demo.openai_base_url, model=MODEL), streaming=False,
                       tools=[FunctionTool.from_defaults(fn=weather, name=TOOL_NAME)])
    answer = str(await react.run(user_msg="Wann kommt mein Paket?"))
    assert answer == "Ihr Paket kommt morgen."
    run = telemetry.span("invoke_agent react_support")
    chat = telemetry.span(f"chat {MODEL}")
    assert chat.parent.span_id == run.context.span_id
    assert chat.attributes["gen_ai.provider.name"] == "openai"


class _SilentLLM(MockLLM):
    """A model whose stream ends without a chunk: LlamaIndex's end event carries no response."""

    def stream_complete(self, prompt, formatted=False, **kwargs):
        return iter(())


def test_a_stream_without_a_chunk(telemetry, request):
    instrument(telemetry, request)
    assert list(_SilentLLM().stream_chat([ChatMessage(role="user", content="x")])) == []
    span = telemetry.span("chat unknown")
    assert "error.type" not in span.attributes
    assert len(_tracker()) == 0


def test_a_tool_argument_that_is_an_iterator_is_left_to_the_tool(telemetry, request):
    instrument(telemetry, request, capture_content=True)

    def total(amounts) -> int:
        return sum(amounts)

    tool = FunctionTool.from_defaults(fn=total)
    assert tool.call(amounts=(x for x in (1, 2, 3))).raw_output == 6
    assert telemetry.span("execute_tool total").attributes["gen_ai.tool.call.result"] == "6"


def test_llama_index_imported_after_instrument_is_instrumented_on_its_import(tmp_path):
    """The handlers are added when the application imports ``llama_index.core`` (a post-import hook), not by us importing it."""
    import os
    import subprocess

    root = Path(__file__).resolve().parents[2]
    script = tmp_path / "app.py"
    script.write_text(
        "import sys\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "import micrometrics\n"
        "from micrometrics_instrumentation.llama_index import LlamaIndexInstrumentor\n"
        "exporter = InMemorySpanExporter(); provider = TracerProvider(); provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "handle = micrometrics.instrument(exporter='none', metrics=[], tracer_provider=provider)\n"
        "LlamaIndexInstrumentor().instrument()\n"
        "assert 'llama_index.core' not in sys.modules, 'instrumenting imported LlamaIndex'\n"
        "from llama_index.core.llms import ChatMessage, MockLLM\n"
        "MockLLM().chat([ChatMessage(role='user', content='x')])\n"
        "handle.force_flush(timeout_s=10)\n"
        "print(','.join(s.name for s in exporter.get_finished_spans()))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(str(root / p) for p in ("src", "semconv", "instrumentation")))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "chat unknown"
