"""The shared agent scenario (agent_scenario.py) through a hand-written agent: ``@micrometrics.agent`` and
``@micrometrics.tool`` over the OpenAI SDK, sync and async. The frameworks' tests run the same assertions."""

from __future__ import annotations

import json

import openai
import pytest

import micrometrics
from agent_scenario import AGENT_NAME, MODEL, QUESTION, SYSTEM, TOOL_NAME, assert_agent_run, guard, history, weather
from micrometrics.metrics import language

TOOLS = [{"type": "function", "function": {"name": TOOL_NAME, "description": "Current weather of a city.",
          "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]


@pytest.fixture(autouse=True)
def _profiles():
    language.prepare()


def build(demo, is_async: bool):
    get_weather = micrometrics.tool(name=TOOL_NAME)(weather)

    def messages() -> list:
        return [{"role": "system", "content": SYSTEM}, *history(), {"role": "user", "content": QUESTION}]

    def after_tool(msgs: list, reply: object) -> list:
        call = reply.choices[0].message.tool_calls[0]
        result = get_weather(**json.loads(call.function.arguments))
        return [*msgs, reply.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": result}]

    if is_async:
        client = openai.AsyncOpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)

        @micrometrics.agent(name=AGENT_NAME, provider="openai", model=MODEL)
        async def run(question: str) -> str:
            msgs = messages()
            reply = await client.chat.completions.create(model=MODEL, messages=msgs, tools=TOOLS)
            final = await client.chat.completions.create(model=MODEL, messages=after_tool(msgs, reply), tools=TOOLS)
            return final.choices[0].message.content

        return run

    client = openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)

    @micrometrics.agent(name=AGENT_NAME, provider="openai", model=MODEL)
    def run(question: str) -> str:
        msgs = messages()
        reply = client.chat.completions.create(model=MODEL, messages=msgs, tools=TOOLS)
        final = client.chat.completions.create(model=MODEL, messages=after_tool(msgs, reply), tools=TOOLS)
        return final.choices[0].message.content

    return run


def test_hand_written_agent(demo, telemetry):
    telemetry.instrument(metrics=[guard()])
    answer = build(demo, False)(QUESTION)
    assert_agent_run(telemetry, answer)


async def test_hand_written_async_agent(demo, telemetry):
    telemetry.instrument(metrics=[guard()])
    answer = await build(demo, True)(QUESTION)
    assert_agent_run(telemetry, answer)
