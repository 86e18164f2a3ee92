"""A user who captures content sees every provider's tools as the conventions' tool definitions.

``gen_ai.tool.definitions`` items have ``type``, ``name``, ``description`` and ``parameters`` at the top
level, whatever shape the provider's SDK takes them in (OpenAI chat nests a function under
``"function"``; Anthropic calls the schema ``input_schema``; Gemini has function declarations), and
unset fields are left out rather than sent as null. Tool definitions are content: captured only with
``capture_content`` on.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from google import genai
from google.genai import types

from micrometrics_semconv import attributes as A
from micrometrics_semconv import events as E

SCHEMA = {"type": "object", "properties": {"city": {"type": "string", "description": "Die Stadt"}}, "required": ["city"]}
ASK = "Wie ist das Wetter in Hamburg?"


def definitions(telemetry) -> list[dict]:
    return json.loads(telemetry.span().attributes[A.GEN_AI_TOOL_DEFINITIONS])


def openai_client(demo) -> openai.OpenAI:
    return openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)


def test_openai_chat_function_and_custom_tools(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    tools = [
        {"type": "function", "function": {"name": "get_weather", "description": "Current weather.", "parameters": SCHEMA, "strict": True}},
        {"type": "custom", "custom": {"name": "sql", "description": "Runs SQL.", "format": {"type": "text"}}},
    ]
    openai_client(demo).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": ASK}], tools=tools)
    assert definitions(telemetry) == [
        {"type": "function", "name": "get_weather", "description": "Current weather.", "parameters": SCHEMA},
        {"type": "custom", "name": "sql", "description": "Runs SQL."},
    ]


def test_openai_responses_function_and_built_in_tools(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    tools = [
        {"type": "function", "name": "get_weather", "description": "Current weather.", "parameters": SCHEMA, "strict": True},
        {"type": "web_search"},
        {"type": "mcp", "server_label": "shop", "server_url": "https://mcp.example.com"},
    ]
    openai_client(demo).responses.create(model="gpt-4.1", input=ASK, tools=tools)
    assert definitions(telemetry) == [
        {"type": "function", "name": "get_weather", "description": "Current weather.", "parameters": SCHEMA},
        {"type": "web_search", "name": "web_search"},  # a built-in tool is named by its type
        {"type": "mcp", "name": "shop"},  # an MCP server by its label
    ]


def test_anthropic_client_and_server_tools(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    client = anthropic.Anthropic(base_url=demo.anthropic_base_url, api_key="sk-ant-test", max_retries=0)
    tools = [
        {"name": "get_weather", "description": "Current weather.", "input_schema": SCHEMA},
        {"name": "lookup", "input_schema": {"type": "object"}},  # no description: none invented
        {"type": "web_search_20250305", "name": "web_search", "max_uses": 2},
    ]
    client.messages.create(model="claude-sonnet-5-5", max_tokens=100, messages=[{"role": "user", "content": ASK}], tools=tools)
    assert definitions(telemetry) == [
        {"type": "function", "name": "get_weather", "description": "Current weather.", "parameters": SCHEMA},
        {"type": "function", "name": "lookup", "parameters": {"type": "object"}},
        {"type": "web_search_20250305", "name": "web_search"},
    ]


def test_google_function_declarations_and_built_in_tools(demo, telemetry):
    telemetry.instrument(capture_content=True, metrics=[])
    client = genai.Client(api_key="google-test", http_options={"base_url": demo.google_base_url})
    weather = types.FunctionDeclaration(name="get_weather", description="Current weather.", parameters_json_schema=SCHEMA)
    config = types.GenerateContentConfig(
        tools=[types.Tool(function_declarations=[weather]), types.Tool(google_search=types.GoogleSearch())],
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
    )
    client.models.generate_content(model="gemini-2.0-flash", contents=ASK, config=config)
    assert definitions(telemetry) == [
        {"type": "function", "name": "get_weather", "description": "Current weather.", "parameters": SCHEMA},
        {"type": "google_search", "name": "google_search"},
    ]


@pytest.mark.parametrize("capture", [False, "EVENT_ONLY"])
def test_tool_definitions_are_content(demo, telemetry, capture):
    """Off, or captured on the details event only: no tool definitions on the span."""
    telemetry.instrument(capture_content=capture, metrics=[])
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Current weather.", "parameters": SCHEMA}}]
    openai_client(demo).chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": ASK}], tools=tools)
    assert A.GEN_AI_TOOL_DEFINITIONS not in telemetry.span().attributes
    details = [r for r in telemetry.logs() if r.event_name == E.GEN_AI_CLIENT_INFERENCE_OPERATION_DETAILS]
    if capture:
        (detail,) = details
        (tool,) = detail.attributes[A.GEN_AI_TOOL_DEFINITIONS]  # structured on the event
        assert dict(tool) == {"type": "function", "name": "get_weather", "description": "Current weather.", "parameters": tool["parameters"]}
        assert tool["parameters"]["required"] == ("city",)
    else:
        assert details == []
