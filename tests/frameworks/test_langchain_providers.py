"""The agent scenario over other providers' LangChain chat models, each over the demo server's wire format:
``ChatAnthropic`` (anthropic SDK), ``ChatGoogleGenerativeAI`` (google-genai SDK), ``ChatBedrockConverse`` (boto3)
and ``ChatLiteLLM`` (litellm's own HTTP). Where we instrument the SDK under the model, its span is the one inference
span and its guard retries in German; LiteLLM's is the handler's span, after the fact: its guard reports the English
answer, it cannot retry it."""

from __future__ import annotations

import warnings

import pytest
from langchain_core.tools import tool

from agent_scenario import AGENT_NAME, QUESTION, SYSTEM, assert_agent_run, guard, history, weather
from micrometrics.metrics import language

INPUT = {"messages": [*history(), {"role": "user", "content": QUESTION}]}


@pytest.fixture(autouse=True)
def _profiles():
    language.prepare()


@tool
def get_weather(location: str, unit: str = "celsius") -> str:
    """Current weather of a city."""
    return weather(location, unit)


def agent(model):
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_react_agent(model, [get_weather], prompt=SYSTEM, name=AGENT_NAME)


def anthropic(demo):
    from langchain_anthropic import ChatAnthropic

    return ChatAnthropic(model="claude-sonnet-4-5", base_url=demo.anthropic_base_url, api_key="sk-test", max_retries=0)


def google(demo):
    from langchain_google_genai import ChatGoogleGenerativeAI

    return ChatGoogleGenerativeAI(model="gemini-2.0-flash", google_api_key="test-key", base_url=demo.google_base_url, max_retries=0)


def bedrock(demo):
    from langchain_aws import ChatBedrockConverse

    return ChatBedrockConverse(model="anthropic.claude-3-haiku-20240307-v1:0", endpoint_url=demo.base_url, region_name="us-east-1",
                               aws_access_key_id="test", aws_secret_access_key="test")


def run(graph, mode: str) -> str:
    if mode == "invoke":
        return graph.invoke(INPUT)["messages"][-1].content
    chunks = [chunk for chunk, meta in graph.stream(INPUT, stream_mode="messages") if meta.get("langgraph_node") == "agent"]
    last = chunks[-1].id
    return "".join(c.text for c in chunks if c.id == last)


def assert_sdk_spans(telemetry, answer: str, operation: str, provider: str) -> None:
    spans = telemetry.spans()
    agent_span = next(s for s in spans if s.name == f"invoke_agent {AGENT_NAME}")
    calls = sorted((s for s in spans if s.attributes.get("gen_ai.operation.name") == operation), key=lambda s: s.start_time)
    assert len(calls) == 3, [s.name for s in spans]  # the tool call, the English answer, its German retry: one span each
    assert {s.attributes["gen_ai.provider.name"] for s in calls} == {provider}
    assert all(s.attributes.get("server.address") == "127.0.0.1" for s in calls)  # the SDK's spans
    assert all(s.parent.span_id == agent_span.context.span_id for s in calls)
    assert [s.attributes.get("micrometrics.language_match.label") for s in calls][1:] == ["mismatch", "match"]
    assert calls[2].attributes["micrometrics.attempt"] == 2
    assert "Wetterdienst" in answer and "weather service" not in answer


@pytest.mark.parametrize("mode", ["invoke", "stream"])
@pytest.mark.parametrize("make, operation, provider", [
    (bedrock, "chat", "aws.bedrock"),
    (google, "generate_content", "gcp.gemini"),
], ids=["ChatBedrockConverse", "ChatGoogleGenerativeAI"])
def test_guard_retries_through_the_sdk_span(demo, telemetry, make, operation, provider, mode):
    telemetry.instrument(metrics=[guard()])
    answer = run(agent(make(demo)), mode)
    assert_sdk_spans(telemetry, answer, operation, provider)


def test_chat_anthropic(demo, telemetry):
    telemetry.instrument(metrics=[guard()])
    answer = run(agent(anthropic(demo)), "invoke")
    assert_agent_run(telemetry, answer)
    assert_sdk_spans(telemetry, answer, "chat", "anthropic")


def test_chat_anthropic_streamed(demo, telemetry):
    telemetry.instrument(metrics=[guard()])
    answer = run(agent(anthropic(demo)), "stream")
    assert_sdk_spans(telemetry, answer, "chat", "anthropic")


def test_chat_litellm(demo, telemetry, monkeypatch):
    """Without a LiteLLM instrumentation the handler opens the chat span after the fact: the guard reports the English
    answer, it cannot retry it. With one (``micrometrics_litellm`` installed), LiteLLM's span takes the call and its
    guard retries, as for the SDKs above."""
    from micrometrics import registry

    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of litellm's price list
    langchain_litellm = pytest.importorskip("langchain_litellm", reason="langchain-litellm is not installed")
    telemetry.instrument(metrics=[guard()], capture_content=True)
    model = langchain_litellm.ChatLiteLLM(model="openai/gpt-4o-mini", api_base=demo.openai_base_url, openai_api_key="sk-test")
    answer = run(agent(model), "invoke")
    spans = telemetry.spans()
    agent_span = next(s for s in spans if s.name == f"invoke_agent {AGENT_NAME}")
    chats = sorted((s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"), key=lambda s: s.start_time)
    assert all(s.parent.span_id == agent_span.context.span_id for s in chats)
    assert {s.attributes["gen_ai.provider.name"] for s in chats} == {"openai"}  # the model's prefix
    if "litellm" in registry.importable():  # LiteLLM's own span: one per attempt, the guard retries
        assert len(chats) == 3 and chats[2].attributes["micrometrics.attempt"] == 2
        assert [c.attributes.get("micrometrics.language_match.label") for c in chats][1:] == ["mismatch", "match"]
        assert "Wetterdienst" in answer
        return
    assert len(chats) == 2 and [c.name for c in chats] == ["chat openai/gpt-4o-mini"] * 2
    assert "server.address" not in chats[0].attributes  # the handler's span: litellm's HTTP is not instrumented
    assert chats[1].attributes["micrometrics.language_match.label"] == "mismatch"  # reported, not retried
    assert "weather service" in answer
    tools = chats[0].attributes["gen_ai.tool.definitions"]  # content: from the tools LangChain bound to the model
    assert '"name": "get_weather"' in tools and '"description": "Current weather of a city."' in tools
