"""What the LangChain callback handler adds to a chain call: the same calls with and without micrometrics, in one run.

Standalone: ``python benchmarks/langchain_overhead.py [--rounds N] [--calls N]``.
No network and no SDK under the model (``FakeListChatModel``), so what is timed is LangChain and the handler:

* ``lcel``: ``prompt | model | parser`` (``invoke_workflow`` + the model's ``chat`` span, after the fact);
* ``graph``: a LangGraph agent, model node -> ``ToolNode`` (one tool call) -> model node (``invoke_agent``,
  two ``chat`` spans, one ``execute_tool``; the graph's nodes and steps are callbacks, not spans).

Each workload runs with ``metrics=[]`` (the spans, their attributes and the duration metric) against LangChain
alone (``uninstrument()``: no handler, no wrapper), block against block, the order alternating every round, so
the noise of a shared machine hits both sides alike. Spans and log records go through the SDK's batch processors
to exporters that drop them. Prints the median and p95 per call of both sides, the difference of the medians
(the handler's added cost per chain call, in microseconds), the median over rounds of the block-time ratio, and
the same for the calling thread's CPU time (the steadier figure on a busy machine).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Sequence

ROOT = Path(__file__).resolve().parents[1]
for root in ("src", "semconv", "instrumentation", "benchmarks"):
    sys.path.insert(0, str(ROOT / root))

import langchain_core  # noqa: E402
from importlib.metadata import version  # noqa: E402
from langchain_core.language_models import FakeListChatModel  # noqa: E402
from langchain_core.messages import AIMessage  # noqa: E402
from langchain_core.output_parsers import StrOutputParser  # noqa: E402
from langchain_core.prompts import ChatPromptTemplate  # noqa: E402
from langchain_core.tools import tool  # noqa: E402
from langgraph.graph import END, START, MessagesState, StateGraph  # noqa: E402
from langgraph.prebuilt import ToolNode  # noqa: E402
from opentelemetry.sdk._logs import LoggerProvider  # noqa: E402
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult  # noqa: E402

import micrometrics  # noqa: E402
from paired import compare  # noqa: E402

ANSWER = "Ihre Bestellung wurde gestern verschickt und kommt in zwei bis drei Werktagen an."


class _DropSpans(SpanExporter):
    """Drops the spans, counting them: the instrumented side must really trace."""

    count = 0

    def export(self, spans: Sequence[Any]) -> SpanExportResult:
        _DropSpans.count += len(spans)
        return SpanExportResult.SUCCESS


class _DropLogs(LogRecordExporter):
    def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
        return LogRecordExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def lcel() -> Callable[[], Any]:
    chain = ChatPromptTemplate.from_messages([("system", "Be brief."), ("human", "{q}")]) | FakeListChatModel(responses=[ANSWER]) | StrOutputParser()
    return lambda: chain.invoke({"q": "Wo ist mein Paket?"})


def graph() -> Callable[[], Any]:
    @tool
    def track(order_id: str) -> str:
        """Where an order is."""
        return "in Berlin"

    model = FakeListChatModel(responses=[ANSWER])

    def agent(state: MessagesState) -> dict:
        if state["messages"][-1].type == "tool":
            return {"messages": [model.invoke(state["messages"])]}
        model.invoke(state["messages"])  # the model's turn that asks for the tool (its text is scripted below)
        return {"messages": [AIMessage(content="", tool_calls=[{"name": "track", "args": {"order_id": "1"}, "id": "call_1"}])]}

    g = StateGraph(MessagesState)
    g.add_node("agent", agent)
    g.add_node("tools", ToolNode([track]))
    g.add_edge(START, "agent")
    g.add_conditional_edges("agent", lambda s: "tools" if s["messages"][-1].tool_calls else END)
    g.add_edge("tools", "agent")
    compiled = g.compile(name="support_agent")
    return lambda: compiled.invoke({"messages": [("user", "Wo ist mein Paket?")]})


WORKLOADS = {"lcel": lcel, "graph": graph}


def run_block(call: Callable[[], Any], n: int) -> tuple[list[int], list[int]]:
    """Wall time and the calling thread's CPU time of each call (CPU: what a busy shared machine disturbs least)."""
    wall, cpu = [], []
    for _ in range(n):
        t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
        call()
        cpu.append(time.thread_time_ns() - c0)
        wall.append(time.perf_counter_ns() - t0)
    return wall, cpu


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=100, help="chain calls per side per round")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(BatchSpanProcessor(_DropSpans()))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    logger_provider = LoggerProvider()
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(_DropLogs()))
    providers = dict(tracer_provider=tracer_provider, meter_provider=meter_provider, logger_provider=logger_provider)

    print(f"langchain-core {langchain_core.__version__}, langgraph {version('langgraph')}; "
          f"{args.rounds} rounds x {args.calls} calls per side; metrics=[]")
    print(f"{'workload':<10}{'alone us':>10}{'p95':>9}{'with mm':>10}{'p95':>9}{'+median us':>12}{'ratio':>8}"
          f"{'cpu alone':>11}{'cpu mm':>9}{'+cpu us':>9}{'spans/call':>12}")
    for name, make in WORKLOADS.items():
        call = make()
        run_block(call, 20)  # warm LangChain's caches before anything is timed
        exported, state = _DropSpans.count, {}

        def enter() -> None:
            state["handle"] = micrometrics.instrument(exporter="none", instrumentations=["langchain"], metrics=[], **providers)
            run_block(call, 3)  # untimed: the first calls after instrument() make the handler

        def leave() -> None:
            state["handle"].force_flush()
            micrometrics.uninstrument()  # untimed: the other side is LangChain alone

        paired = compare(lambda i: call(), lambda i: call(), rounds=args.rounds, calls=args.calls, enter=enter, leave=leave)
        traced = args.rounds * (args.calls + 3)
        cb, co = statistics.median(paired.original_cpu), statistics.median(paired.instrumented_cpu)
        print(paired.line(name, width=10) + f"{cb / 1e3:>11.1f}{co / 1e3:>9.1f}{(co - cb) / 1e3:>9.1f}"
              f"{(_DropSpans.count - exported) / traced:>12.1f}")


if __name__ == "__main__":
    main()
