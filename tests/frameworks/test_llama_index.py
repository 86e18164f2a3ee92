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
