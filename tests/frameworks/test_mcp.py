"""MCP tool calls, real ``mcp`` client and server over real transports (stdio subprocess, streamable HTTP on
loopback): one ``tools/call {tool}`` span per side (CLIENT, SERVER; ``execute_tool``), the server's continuing
the client's trace through ``params._meta``; arguments and result only with capture; a metric on tool results;
a tool error, a server that dies mid-call. mcp 2.x (this environment) traces itself: never both its span and
ours. mcp 1.x traces nothing: the same spans, run in a cached environment of its own (slow)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

mcp = pytest.importorskip("mcp", reason="mcp is not installed (pip install 'micrometrics[mcp]')")

from agent_scenario import TOOL_NAME, TOOL_RESULT  # noqa: E402
from mcp_scenario import http_server, server_spans, session  # noqa: E402
from micrometrics import metric  # noqa: E402
from micrometrics_instrumentation.mcp import MCPInstrumentor  # noqa: E402

ARGS = {"location": "Berlin", "unit": "celsius"}
MAJOR = int(importlib.metadata.version("mcp").split(".")[0])


@pytest.fixture
def instrumented_mcp():
    inst = MCPInstrumentor()
    inst.instrument(skip_dep_check=True)
    yield inst
    inst.uninstrument()


def _client_tool_spans(telemetry):
    return [s for s in telemetry.spans() if s.attributes.get("mcp.method.name") == "tools/call"]


async def _call(transport, spans_file, tool, arguments, capture=False):
    if transport == "http":
        async with http_server(spans_file, capture) as url:
            async with session("http", url, spans_file, capture) as client:
                return await client.call_tool(tool, arguments)
    async with session("stdio", None, spans_file, capture) as client:
        return await client.call_tool(tool, arguments)


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_one_span_per_side_and_the_server_continues_the_clients_trace(telemetry, instrumented_mcp, tmp_path, transport):
    telemetry.instrument(metrics=[])
    spans_file = tmp_path / "server.jsonl"
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("agent turn") as turn:
        result = await _call(transport, spans_file, TOOL_NAME, ARGS)
    assert json.loads(result.content[0].text) == TOOL_RESULT  # what the app gets, unchanged

    client = _client_tool_spans(telemetry)
    assert len(client) == 1, [s.name for s in telemetry.spans()]
    c = client[0]
    assert c.name == f"tools/call {TOOL_NAME}" and c.kind.name == "CLIENT"
    assert c.attributes["gen_ai.operation.name"] == "execute_tool" and c.attributes["gen_ai.tool.name"] == TOOL_NAME
    assert c.parent.span_id == turn.get_span_context().span_id
    assert not [s for s in telemetry.spans() if s.name.startswith("MCP send tools/call")], "never mcp's client span beside ours"
    assert "gen_ai.tool.call.arguments" not in c.attributes and "gen_ai.tool.call.result" not in c.attributes

    calls = [s for s in server_spans(spans_file) if s["name"].startswith("tools/call")]
    assert len(calls) == 1, "one server span for the call: ours, never mcp 2.x's own beside it"
    srv = calls[0]
    assert srv["scope"] == "micrometrics" and srv["kind"] == "SERVER" and srv["name"] == f"tools/call {TOOL_NAME}"
    assert srv["attributes"]["gen_ai.operation.name"] == "execute_tool"
    assert srv["trace_id"] == c.context.trace_id and srv["parent_id"] == c.context.span_id
    assert "gen_ai.tool.call.arguments" not in srv["attributes"]
    assert srv["attributes"]["mcp.method.name"] == "tools/call" and srv["attributes"]["jsonrpc.request.id"]
    if MAJOR >= 2:  # its spans of the other methods stay its own, in the same trace
        assert any(s["scope"] == "mcp-python-sdk" and s["name"].startswith("initialize") for s in server_spans(spans_file))


async def test_arguments_result_and_a_metric_on_the_tool_result_with_capture(telemetry, instrumented_mcp, tmp_path):
    @metric.micro_metric(name="weather_reported", applies_to=["execute_tool"])
    def weather_reported(call):
        return metric.Result(label="pass" if "Regen" in call.output_text else "fail")

    telemetry.instrument(metrics=[weather_reported], capture_content=True)
    spans_file = tmp_path / "server.jsonl"
    await _call("stdio", spans_file, TOOL_NAME, ARGS, capture=True)
    c = _client_tool_spans(telemetry)[0]
    assert json.loads(c.attributes["gen_ai.tool.call.arguments"]) == ARGS
    assert json.loads(c.attributes["gen_ai.tool.call.result"]) == TOOL_RESULT
    assert c.attributes["micrometrics.weather_reported.label"] == "pass"
    srv = [s for s in server_spans(spans_file) if s["name"].startswith("tools/call")][0]
    assert json.loads(srv["attributes"]["gen_ai.tool.call.result"]) == TOOL_RESULT


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_tool_error_result_is_a_failed_span_on_both_sides(telemetry, instrumented_mcp, tmp_path, transport):
    telemetry.instrument(metrics=[])
    spans_file = tmp_path / "server.jsonl"
    result = await _call(transport, spans_file, "broken", {"location": "Berlin"})
    assert getattr(result, "is_error", getattr(result, "isError", None)) is True  # the app reads the error result, unchanged
    c = _client_tool_spans(telemetry)[0]
    assert c.status.status_code.name == "ERROR" and c.attributes["error.type"] == "tool_error"
    srv = [s for s in server_spans(spans_file) if s["name"].startswith("tools/call")][0]
    assert srv["status"] == "ERROR" and srv["attributes"]["error.type"] == "tool_error"
    assert "Berlin" not in json.dumps([dict(s.attributes) for s in telemetry.spans()]) + json.dumps(srv)


async def test_a_server_that_dies_mid_call(telemetry, instrumented_mcp, tmp_path):
    telemetry.instrument(metrics=[])
    spans_file = tmp_path / "server.jsonl"
    with pytest.raises(BaseException) as raised:
        await _call("stdio", spans_file, "die", {})
    # What mcp raises (its "Connection closed" error, in anyio's task groups): ours changes nothing about it.
    assert "Connection closed" in repr(raised.value)
    c = _client_tool_spans(telemetry)
    assert len(c) == 1 and c[0].name == "tools/call die"
    assert c[0].status.status_code.name == "ERROR" and c[0].attributes["error.type"].endswith("MCPError")
    assert [s for s in server_spans(spans_file, wait_for=0, timeout=0) if s["name"].startswith("tools/call")] == []


async def test_uninstrument_restores_the_client_and_mcps_own_client_span(telemetry, tmp_path):
    from mcp.client.session import ClientSession

    original = ClientSession.call_tool
    inst = MCPInstrumentor()
    inst.instrument(skip_dep_check=True)
    assert ClientSession.call_tool is not original
    inst.uninstrument()
    assert ClientSession.call_tool is original
    telemetry.instrument(metrics=[], instrumentations=["openai"])  # our providers, without our mcp instrumentation
    await _call("stdio", tmp_path / "server.jsonl", TOOL_NAME, ARGS)
    assert _client_tool_spans(telemetry) == []


# ---- mcp 1.x, in an environment of its own -------------------------------------------------------


@pytest.mark.slow
def test_mcp_1x_traces_the_same_spans_and_propagates_context(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "coexistence"))
    import foreign

    spec = foreign.Foreign("mcp-1", ("mcp==1.30.0",), "mcp.client.session", honours_suppression=False)
    try:
        where = foreign.install(spec)
    except foreign.Unavailable as exc:
        pytest.skip(f"mcp 1.x cannot be installed here: {exc}")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(where), os.environ.get("PYTHONPATH", "")])}
    out = tmp_path / "report.json"
    run = subprocess.run([sys.executable, str(Path(__file__).parent / "mcp_scenario.py"), str(out)], env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["version"].startswith("1.") and report["module"].startswith(str(where)), report
    for transport in ("stdio", "http"):
        part = report[transport]
        assert part["results"] == {"get_weather": [json.dumps(TOOL_RESULT)], "broken": True}
        # Spans end when their metrics ran (a worker thread): in any order.
        client = sorted((s for s in part["client"] if s["name"].startswith("tools/call")), key=lambda s: s["name"] != "tools/call get_weather")
        server = sorted((s for s in part["server"] if s["name"].startswith("tools/call")), key=lambda s: s["name"] != "tools/call get_weather")
        assert [s["name"] for s in client] == ["tools/call get_weather", "tools/call broken"], transport
        assert [s["name"] for s in server] == ["tools/call get_weather", "tools/call broken"], transport
        for c, s in zip(client, server):
            assert c["kind"] == "CLIENT" and s["kind"] == "SERVER"
            assert s["trace_id"] == c["trace_id"] and s["parent_id"] == c["span_id"], "the server continues the client's trace"
        assert json.loads(client[0]["attributes"]["gen_ai.tool.call.arguments"]) == ARGS
        assert json.loads(server[0]["attributes"]["gen_ai.tool.call.result"]) == TOOL_RESULT
        assert client[1]["attributes"]["error.type"] == "tool_error" and server[1]["attributes"]["error.type"] == "tool_error"


async def test_an_agents_sdk_mcp_tool_is_one_client_span_that_the_server_continues(demo, telemetry, instrumented_mcp, tmp_path):
    """The Agents SDK calls an MCP server's tool: its function span (our ``execute_tool``) is the call's one client
    span; the MCP call under it opens none of its own (nor mcp 2.x's), and the server's span continues it."""
    agents = pytest.importorskip("agents", reason="openai-agents is not installed")
    import openai
    from agents import Agent, OpenAIChatCompletionsModel, Runner
    from agents.mcp import MCPServerStdio
    from agents.tracing import get_trace_provider

    from agent_scenario import AGENT_NAME, MODEL, QUESTION, SYSTEM, assert_agent_run, guard, history
    from mcp_scenario import SERVER, server_env
    from micrometrics.metrics import language
    from micrometrics_instrumentation.openai_agents import OpenAIAgentsInstrumentor

    language.prepare()
    provider = get_trace_provider()
    saved = list(provider._multi_processor._processors)
    agents.set_trace_processors([])  # no exporter to OpenAI's backend in a test
    telemetry.instrument(metrics=[guard()])
    sdk = OpenAIAgentsInstrumentor()
    sdk.instrument(skip_dep_check=True)
    spans_file = tmp_path / "server.jsonl"
    try:
        params = {"command": sys.executable, "args": [str(SERVER)], "env": server_env(spans_file, False)}
        async with MCPServerStdio(params=params, name="weather") as server:
            client = openai.AsyncOpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
            agent = Agent(name=AGENT_NAME, instructions=SYSTEM, mcp_servers=[server],
                          model=OpenAIChatCompletionsModel(model=MODEL, openai_client=client))
            result = await Runner.run(agent, [*history(), {"role": "user", "content": QUESTION}])
    finally:
        sdk.uninstrument()
        agents.set_trace_processors(saved)
    tree = assert_agent_run(telemetry, result.final_output)
    tool = tree["tool"]
    assert not [s for s in telemetry.spans() if s.attributes.get("mcp.method.name") == "tools/call"], "no second client span"
    srv = [s for s in server_spans(spans_file) if s["name"].startswith("tools/call")]
    assert len(srv) == 1 and srv[0]["parent_id"] == tool.context.span_id and srv[0]["trace_id"] == tool.context.trace_id
