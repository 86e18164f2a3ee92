"""What micrometrics adds to LlamaIndex calls: the same calls with and without its dispatcher handlers, in one run.

Standalone: ``python benchmarks/llama_index_overhead.py [--rounds N] [--calls N]``.
Three calls, all in process (no network, no model download):

* ``chat``: ``MockLLM().chat(...)``: the framework's ``chat`` span, reported from LlamaIndex's LLM events
  (``CustomLLM.chat`` over ``complete``: two LlamaIndex spans, one of ours);
* ``retrieve``: a ``VectorStoreIndex`` retriever over the built-in ``SimpleVectorStore`` (20 nodes, a hashed
  embedding, top 3): a ``retrieval`` span and its query's ``embeddings`` span among ~6 LlamaIndex spans;
* ``tool``: ``FunctionTool.call``: an ``execute_tool`` span.

micrometrics runs with ``metrics=[]`` (spans, attributes, duration metrics; no micro metric), spans and
metric points go through the SDK's batch processors to exporters that drop them. Each round times a block
of calls with the handlers on the root dispatcher and a block without them (removed, as uninstrument does),
alternating, so the noise of a shared machine hits both sides alike. Prints per call the median of both
sides over rounds and the difference: what the handlers add per call.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for root in ("src", "semconv", "instrumentation"):
    sys.path.insert(0, str(ROOT / root))

from llama_index.core import VectorStoreIndex  # noqa: E402
from llama_index.core.base.embeddings.base import BaseEmbedding  # noqa: E402
from llama_index.core.instrumentation import get_dispatcher  # noqa: E402
from llama_index.core.llms import ChatMessage, MockLLM  # noqa: E402
from llama_index.core.schema import TextNode  # noqa: E402
from llama_index.core.tools import FunctionTool  # noqa: E402


class Hashed(BaseEmbedding):
    def _vector(self, text: str) -> list[float]:
        v = [0.0] * 64
        for w in re.findall(r"\w+", text.lower()):
            v[int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "big") % 64] += 1.0
        n = math.sqrt(sum(x * x for x in v)) or 1.0
        return [x / n for x in v]

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)


def make_calls() -> dict:
    """The three calls, all in process: name -> a call without arguments."""
    llm = MockLLM()
    messages = [ChatMessage(role="user", content="Wo ist mein Paket?")]
    retriever = VectorStoreIndex([TextNode(id_=str(i), text=f"document {i} about topic {i % 5}") for i in range(20)],
                                 embed_model=Hashed()).as_retriever(similarity_top_k=3)
    tool = FunctionTool.from_defaults(fn=lambda location: f"sunny in {location}", name="weather")
    return {
        "chat": lambda: llm.chat(messages),
        "retrieve": lambda: retriever.retrieve("topic 3"),
        "tool": lambda: tool.call(location="Berlin"),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from workload import Sink

    import micrometrics
    from micrometrics_instrumentation.llama_index import LlamaIndexInstrumentor

    sink = Sink()
    micrometrics.instrument(exporter="none", instrumentations=[], metrics=[], tracer_provider=sink.tracer_provider,
                            meter_provider=sink.meter_provider, logger_provider=sink.logger_provider)
    LlamaIndexInstrumentor().instrument()
    root = get_dispatcher()
    ours = [h for h in root.span_handlers + root.event_handlers if type(h).__name__.startswith("Micrometrics")]
    theirs_spans = [h for h in root.span_handlers if h not in ours]
    theirs_events = [h for h in root.event_handlers if h not in ours]
    with_spans, with_events = list(root.span_handlers), list(root.event_handlers)

    calls = make_calls()

    def block(fn) -> float:
        start = time.perf_counter()
        for _ in range(args.calls):
            fn()
        return (time.perf_counter() - start) / args.calls

    results: dict[str, dict[str, list[float]]] = {name: {"on": [], "off": []} for name in calls}
    for _ in range(args.rounds):
        for name, fn in calls.items():
            root.span_handlers, root.event_handlers = with_spans, with_events
            results[name]["on"].append(block(fn))
            root.span_handlers, root.event_handlers = theirs_spans, theirs_events
            results[name]["off"].append(block(fn))
        sink.flush()
    root.span_handlers, root.event_handlers = with_spans, with_events
    print(f"{'call':<10} {'LlamaIndex alone':>18} {'with micrometrics':>18} {'added':>10}")
    for name, sides in results.items():
        off, on = statistics.median(sides["off"]) * 1e6, statistics.median(sides["on"]) * 1e6
        print(f"{name:<10} {off:>15.1f} us {on:>15.1f} us {on - off:>7.1f} us")
    print(f"({args.rounds} rounds x {args.calls} calls per side, medians; spans exported: {sink.spans.count if hasattr(sink.spans, 'count') else 'n/a'})")
    LlamaIndexInstrumentor().uninstrument()
    micrometrics.uninstrument()


if __name__ == "__main__":
    main()
