"""What the OpenAI Agents SDK processor costs per agent run: the shared agent scenario (tool call + answer, no
guard) against the demo server on loopback, run with the Agents SDK alone, with micrometrics' OpenAI
instrumentation, and with the Agents processor added; plus the time spent inside the processor's callbacks.
Not part of run_all.py (the whole run is dominated by loopback HTTP; the callbacks' time is the figure).

    python benchmarks/agents_processor.py [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "examples"), str(ROOT / "tests"), str(ROOT / "tests" / "frameworks")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    n = parser.parse_args().runs

    import agents
    from agents import Agent, OpenAIChatCompletionsModel, Runner, function_tool
    from openai import AsyncOpenAI

    from agent_scenario import AGENT_NAME, MODEL, QUESTION, SYSTEM, TOOL_NAME, history, weather
    from demo_server import DemoServer
    from micrometrics_instrumentation.openai_agents import OpenAIAgentsInstrumentor
    from telemetry_harness import Telemetry

    agents.set_trace_processors([])  # no exporter to OpenAI's backend

    @function_tool(name_override=TOOL_NAME)
    def get_weather(location: str, unit: str = "celsius") -> str:
        """Current weather of a city."""
        return weather(location, unit)

    with DemoServer() as demo:
        client = AsyncOpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
        agent = Agent(name=AGENT_NAME, instructions=SYSTEM, tools=[get_weather],
                      model=OpenAIChatCompletionsModel(model=MODEL, openai_client=client))
        conversation = [*history(), {"role": "user", "content": QUESTION}]

        def runs(count: int) -> float:
            times = []
            for _ in range(count):
                start = time.perf_counter()
                Runner.run_sync(agent, conversation)
                times.append(time.perf_counter() - start)
            return statistics.median(times) * 1000

        runs(5)
        alone = runs(n)
        telemetry = Telemetry()
        telemetry.instrument(metrics=[], instrumentations=["openai"])
        runs(5)
        with_openai = runs(n)
        inst = OpenAIAgentsInstrumentor()
        inst.instrument(skip_dep_check=True)
        spent: dict[str, float] = {}
        processor = inst.processor
        for name in ("on_trace_start", "on_trace_end", "on_span_start", "on_span_end"):
            original = getattr(processor, name)

            def timed(item, original=original, name=name):
                start = time.perf_counter()
                original(item)
                spent[name] = spent.get(name, 0.0) + time.perf_counter() - start

            setattr(processor, name, timed)
        runs(5)
        spent.clear()
        with_processor = runs(n)
        inst.uninstrument()
        telemetry.close()
    inside = sum(spent.values()) / n * 1000
    print(f"median ms per agent run (n={n}): Agents SDK alone {alone:.1f}; + micrometrics OpenAI {with_openai:.1f}; "
          f"+ Agents processor {with_processor:.1f}; inside the processor's callbacks: {inside:.2f} ms per run "
          f"({', '.join(f'{k} {v / n * 1000:.2f}' for k, v in spent.items())})")


if __name__ == "__main__":
    main()
