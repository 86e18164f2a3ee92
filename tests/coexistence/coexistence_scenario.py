"""An application with micrometrics and another package's OpenAI instrumentation; prints what a backend receives, as JSON.

Run by test_other_instrumentations.py in a subprocess, with the other instrumentation's folder
(foreign.py) first on PYTHONPATH and the demo server's directory on it:

    python coexistence_scenario.py MODULE ORDER

MODULE: the other instrumentor's module. ORDER: ``ours-first`` or ``theirs-first`` (which
``instrument()`` runs first), or ``zero-code`` (run under ``opentelemetry-instrument``, which
instruments both from their entry points).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import sys
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

module, order = sys.argv[1], sys.argv[2]
spans = InMemorySpanExporter()
tracer_provider = TracerProvider()
tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
trace.set_tracer_provider(tracer_provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

import openai  # noqa: E402
import wrapt  # noqa: E402

import micrometrics  # noqa: E402
import micrometrics.runtime  # noqa: E402
from demo_server import DemoServer  # noqa: E402
from micrometrics.calls import sync_wrapper  # noqa: E402
from micrometrics.records import InferenceRecord  # noqa: E402
from micrometrics_instrumentation import layers  # noqa: E402
from micrometrics_instrumentation.translator import Translator  # noqa: E402

MESSAGES = [{"role": "user", "content": "Hallo, wo ist meine Bestellung? Ich warte seit Tagen darauf."}]
OURS = "micrometrics"


def flush() -> None:
    runtime = micrometrics.runtime.current()
    if runtime is not None:
        runtime.flush(5)


def taken() -> list[list[str]]:
    """The spans finished since the last look: [name, 'ours' | 'theirs'] each."""
    flush()
    out = [[s.name, "ours" if s.instrumentation_scope.name == OURS else "theirs"] for s in spans.get_finished_spans()]
    spans.clear()
    return out


def points() -> dict[str, dict[str, int]]:
    """Recorded measurements of the two GenAI client histograms, by whose they are."""
    flush()
    out: dict[str, dict[str, int]] = {"ours": {}, "theirs": {}}
    data = reader.get_metrics_data()
    for rm in data.resource_metrics if data else ():
        for sm in rm.scope_metrics:
            who = "ours" if sm.scope.name == OURS else "theirs"
            for m in sm.metrics:
                if m.name in ("gen_ai.client.token.usage", "gen_ai.client.operation.duration"):
                    out[who][m.name] = out[who].get(m.name, 0) + sum(p.count for p in m.data.data_points)
    return out


def calls(srv: DemoServer) -> dict[str, Any]:
    sync = openai.OpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0)

    def stream() -> None:
        for _ in sync.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}):
            pass

    async def achat() -> None:
        async with openai.AsyncOpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0) as aclient:
            await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)

    async def astream() -> None:
        async with openai.AsyncOpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0) as aclient:
            async for _ in await aclient.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options={"include_usage": True}):
                pass

    cases = {
        "chat": lambda: sync.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES),
        "chat_async": lambda: asyncio.run(achat()),
        "chat_stream": stream,
        "chat_stream_async": lambda: asyncio.run(astream()),
        "embeddings": lambda: sync.embeddings.create(model="text-embedding-3-small", input="Bestellung"),
        "responses": lambda: sync.responses.create(model="gpt-4o-mini", input="Wo ist meine Bestellung?"),
    }
    out = {}
    for name, call in cases.items():
        call()
        out[name] = taken()
    return out


class AgentTranslator(Translator):
    """A framework's inference span (what the LangChain chat model integration will open) over the SDK call."""

    def request(self, instance: Any, args: tuple, kwargs: dict) -> InferenceRecord:
        return InferenceRecord(operation="chat", provider="openai", model="agent-model")

    def response(self, record: Any, response: Any) -> None:
        pass


def main() -> None:
    report: dict[str, Any] = {}
    with DemoServer() as srv:
        client = openai.OpenAI(base_url=srv.openai_base_url, api_key="k", max_retries=0)
        if order == "zero-code":
            report["cases"] = calls(srv)
            report["metrics"] = points()
            print(json.dumps(report))
            return
        theirs = importlib.import_module(module).OpenAIInstrumentor()
        if order == "theirs-first":
            theirs.instrument()
            handle = micrometrics.instrument(exporter="none", metrics=[])
            early = client.chat.completions.with_raw_response
        else:
            handle = micrometrics.instrument(exporter="none", metrics=[])
            # The SDK caches this view with the methods bound now, before the other instrumentation wraps.
            early = client.chat.completions.with_raw_response
            theirs.instrument()
        early.create(model="gpt-4o-mini", messages=MESSAGES).parse()
        report["raw_response_view"] = taken()
        report["wrapped"] = isinstance(vars(openai.resources.chat.completions.Completions)["create"], wrapt.FunctionWrapper)
        report["cases"] = calls(srv)
        report["metrics"] = points()

        def chat() -> list[list[str]]:
            client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            return taken()

        # Either one uninstrumented, the other goes on alone; instrumented again (after us), theirs stands down again.
        theirs.uninstrument()
        report["theirs_uninstrumented"] = chat()
        theirs.instrument()
        report["theirs_again"] = chat()
        handle.shutdown()
        report["ours_uninstrumented"] = chat()
        # A framework's inference span of ours over the SDK call that only they instrument.
        micrometrics.instrument(exporter="none", metrics=[], instrumentations=[])
        agent = wrapt.FunctionWrapper(lambda: client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES), sync_wrapper(AgentTranslator()))
        agent()
        report["framework_over_theirs"] = taken()
        micrometrics.uninstrument()
        # What micrometrics left on the method: none of its layers, and no other layer still gated.
        left = layers.chain(openai.resources.chat.completions.Completions, "create")[0]
        report["left_by_us"] = [fn.__qualname__ for fn, _ in left if layers.is_ours(fn) or fn.__qualname__.endswith("gate")]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
