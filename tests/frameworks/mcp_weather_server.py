"""The MCP server of the MCP tests (mcp 1.x or 2.x): tools ``get_weather``, ``broken`` (raises) and ``die`` (the
process exits mid-call), over stdio or streamable HTTP (``python mcp_weather_server.py http PORT``).

Instrumented by micrometrics in its own process (``MICROMETRICS_SPANS``: a file each ended span is appended
to as a JSON line, what a backend would receive), capture on when ``MICROMETRICS_CAPTURE`` is set."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[2] / "examples")]

from agent_scenario import TOOL_NAME, weather  # noqa: E402


def _trace_to_file(path: str) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    import micrometrics
    from micrometrics_instrumentation.mcp import MCPInstrumentor

    class Lines(SpanExporter):
        def export(self, spans):
            with open(path, "a", encoding="utf-8") as out:
                for s in spans:
                    out.write(json.dumps({
                        "name": s.name, "kind": s.kind.name, "scope": s.instrumentation_scope.name,
                        "trace_id": s.context.trace_id, "span_id": s.context.span_id,
                        "parent_id": s.parent.span_id if s.parent else None,
                        "status": s.status.status_code.name, "attributes": dict(s.attributes),
                    }) + "\n")
            return SpanExportResult.SUCCESS

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(Lines()))
    from opentelemetry import trace

    trace.set_tracer_provider(provider)  # mcp 2.x's own spans go to the global provider: a backend sees them too
    micrometrics.instrument(tracer_provider=provider, exporter="none", instrumentations=[], metrics=[],
                            capture_content=bool(os.environ.get("MICROMETRICS_CAPTURE")))
    MCPInstrumentor().instrument(skip_dep_check=True)


def main() -> None:
    if os.environ.get("MICROMETRICS_SPANS"):
        _trace_to_file(os.environ["MICROMETRICS_SPANS"])
    http = len(sys.argv) > 2 and sys.argv[1] == "http"
    port = int(sys.argv[2]) if http else 0
    try:
        from mcp.server.mcpserver import MCPServer  # 2.x

        server, run = MCPServer("weather"), {"host": "127.0.0.1", "port": port}
    except ImportError:
        from mcp.server.fastmcp import FastMCP  # 1.x

        server, run = FastMCP("weather", host="127.0.0.1", port=port, log_level="WARNING"), {}

    @server.tool(name=TOOL_NAME)
    def get_weather(location: str, unit: str = "celsius") -> str:
        """Current weather of a city."""
        return weather(location, unit)

    @server.tool()
    def broken(location: str) -> str:
        """Always fails."""
        raise ValueError(f"no weather service for {location}")

    @server.tool()
    def die() -> str:
        """The server process exits mid-call."""
        os._exit(3)

    if http:
        server.run("streamable-http", **run)
    else:
        server.run()


if __name__ == "__main__":
    main()
