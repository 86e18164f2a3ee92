"""The MCP client side of the MCP tests, for mcp 1.x and 2.x alike: a session over stdio (the server a
subprocess) or streamable HTTP (the server on loopback), calling one tool. Also run as a script by the mcp 1.x
test in its own environment: ``python mcp_scenario.py REPORT_FILE`` writes what the client traced."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import asynccontextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVER = HERE / "mcp_weather_server.py"


def server_env(spans_file: Path, capture: bool) -> dict[str, str]:
    env = {**os.environ, "MICROMETRICS_SPANS": str(spans_file)}
    env.pop("MICROMETRICS_CAPTURE", None)
    if capture:
        env["MICROMETRICS_CAPTURE"] = "1"
    return env


def server_spans(spans_file: Path, wait_for: int = 1, timeout: float = 10.0) -> list[dict]:
    """The server's ended spans (its process writes each as it ends)."""
    deadline = time.monotonic() + timeout
    while True:
        lines = spans_file.read_text().splitlines() if spans_file.exists() else []
        spans = [json.loads(line) for line in lines if line.strip()]
        if len([s for s in spans if s["name"].startswith("tools/call")]) >= wait_for or time.monotonic() > deadline:
            return spans
        time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@asynccontextmanager
async def http_server(spans_file: Path, capture: bool = False):
    """The server over streamable HTTP on loopback, in its own process; yields its URL."""
    import httpx

    port = free_port()
    proc = subprocess.Popen([sys.executable, str(SERVER), "http", str(port)], env=server_env(spans_file, capture),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        for _ in range(200):
            try:
                httpx.get(url, timeout=0.5)
                break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@asynccontextmanager
async def session(transport: str, target, spans_file: Path, capture: bool = False):
    """An initialized ``ClientSession`` to the weather server (``target``: the URL for http)."""
    from mcp import ClientSession

    if transport == "stdio":
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client

        params = StdioServerParameters(command=sys.executable, args=[str(SERVER)], env=server_env(spans_file, capture))
        opened = stdio_client(params)
    else:
        from mcp.client.streamable_http import streamable_http_client

        opened = streamable_http_client(target)
    async with opened as streams:
        async with ClientSession(streams[0], streams[1]) as client:
            await client.initialize()
            yield client


async def _report(out: str) -> None:
    """mcp 1.x: the scenario in this environment, its client spans and the server's written to ``out``."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import micrometrics
    import mcp
    from micrometrics_instrumentation.mcp import MCPInstrumentor

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    micrometrics.instrument(tracer_provider=provider, exporter="none", instrumentations=[], metrics=[], capture_content=True)
    MCPInstrumentor().instrument(skip_dep_check=True)
    tracer = provider.get_tracer("app")
    import importlib.metadata

    report: dict = {"version": importlib.metadata.version("mcp"), "module": mcp.__file__}
    folder = Path(out).parent
    for transport in ("stdio", "http"):
        spans_file = folder / f"server-{transport}.jsonl"
        spans_file.unlink(missing_ok=True)
        exporter.clear()
        results = {}
        server = http_server(spans_file, capture=True) if transport == "http" else None
        url = await server.__aenter__() if server else None
        try:
            with tracer.start_as_current_span("agent turn"):
                async with session(transport, url, spans_file, capture=True) as client:
                    r = await client.call_tool("get_weather", {"location": "Berlin", "unit": "celsius"})
                    results["get_weather"] = [c.text for c in r.content]
                    r = await client.call_tool("broken", {"location": "Berlin"})
                    results["broken"] = r.isError
        finally:
            if server:
                await server.__aexit__(None, None, None)
        micrometrics.installation.current().force_flush()  # the monitor thread ends our spans after each call returned
        client_spans = [{"name": s.name, "kind": s.kind.name, "trace_id": s.context.trace_id, "span_id": s.context.span_id,
                         "parent_id": s.parent.span_id if s.parent else None, "status": s.status.status_code.name,
                         "attributes": dict(s.attributes)} for s in exporter.get_finished_spans()]
        report[transport] = {"results": results, "client": client_spans, "server": server_spans(spans_file, 2)}
    Path(out).write_text(json.dumps(report))


if __name__ == "__main__":
    import anyio

    anyio.run(_report, sys.argv[1])
