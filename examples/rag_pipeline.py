"""A RAG pipeline with its retrieval and its answer measured where they happen.

A real Chroma collection (in-memory, with a small deterministic embedding function,
so nothing is downloaded), a retrieval, and an answer from the local demo LLM server
through the real OpenAI client. micrometrics turns them into two spans:

* ``retrieval support-kb`` with the documents' ids and distances and
  ``retrieval_precision`` (how many of them are relevant);
* ``chat gpt-4o-mini`` with ``context_utilization`` (how many of the retrieved
  documents the answer used).

The second run passes relevance labels (graded) through ``micrometrics.context``, so
``retrieval_precision`` also reports recall, MRR and NDCG.

    pip install -e ".[chromadb,openai]"      # from the repository root
    python examples/rag_pipeline.py
"""

from __future__ import annotations

import hashlib
import math
import re
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _demo import require  # noqa: E402

require("chromadb", "openai")

import chromadb  # noqa: E402
import openai  # noqa: E402
from chromadb import Documents, EmbeddingFunction, Embeddings  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402

import micrometrics  # noqa: E402
from demo_server import DemoServer  # noqa: E402
from micrometrics.metrics import ContextUtilization, RetrievalPrecision  # noqa: E402

KNOWLEDGE_BASE = {
    "shipping-germany": "Shipping to Germany takes 3 to 5 business days with DHL.",
    "shipping-costs": "Shipping costs 4.90 euros; orders over 50 euros ship free.",
    "shipping-express": "Express shipping within Germany arrives the next business day.",
    "refund-policy": "Refunds are issued within 14 days of receiving the returned item.",
    "office-berlin": "Our office is in Berlin and open Monday to Friday.",
    "warranty": "Every device has a two year warranty against manufacturing defects.",
}
QUESTION = "How long does shipping to Germany take?"


class HashEmbedding(EmbeddingFunction[Documents]):
    """A hashed bag of words: texts that share words are near. Deterministic, no model download."""

    dimension = 256

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - chromadb's parameter name
        vectors = []
        for text in input:
            vector = [0.0] * self.dimension
            for word in re.findall(r"\w+", text.lower()):
                vector[int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big") % self.dimension] += 1.0
            norm = math.sqrt(sum(x * x for x in vector)) or 1.0
            vectors.append([x / norm for x in vector])
        return vectors

    @staticmethod
    def name() -> str:
        return "rag-example-hash"

    def get_config(self) -> dict[str, Any]:
        return {}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> "HashEmbedding":
        return HashEmbedding()


def build_knowledge_base() -> Any:
    client = chromadb.EphemeralClient()
    collection = client.get_or_create_collection("support-kb", embedding_function=HashEmbedding())
    collection.upsert(ids=list(KNOWLEDGE_BASE), documents=list(KNOWLEDGE_BASE.values()))
    return collection


def answer(llm: openai.OpenAI, demo: DemoServer, question: str, ids: list[str], texts: list[str]) -> str:
    context = "\n".join(f"[{i}] {t}" for i, t in zip(ids, texts))
    # The demo server plays a model that answers from the first document and cites it;
    # scripting it keeps the example deterministic.
    demo.enqueue(json=_completion(f"{texts[0]} [{ids[0]}]"), path_contains="/chat/completions")
    response = llm.chat.completions.create(
        model="gpt-4o-mini",
        messages=[
            {"role": "system", "content": "Answer from the context only and cite the document ids in brackets.\n" + context},
            {"role": "user", "content": question},
        ],
    )
    return response.choices[0].message.content or ""


def _completion(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-rag-example",
        "object": "chat.completion",
        "created": 1767225600,
        "model": "gpt-4o-mini-2026-01-01",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": len(text.split()), "total_tokens": 120 + len(text.split())},
    }


def rag(collection: Any, llm: openai.OpenAI, demo: DemoServer, **labels: Any) -> str:
    """One question: retrieve, then answer, inside one context block (so the answer is checked against these documents)."""
    with micrometrics.context(**labels):
        result = collection.query(query_texts=[QUESTION], n_results=3)
        return answer(llm, demo, QUESTION, result["ids"][0], result["documents"][0])


def show(spans: list[Any]) -> None:
    for span in spans:
        print(f"  span {span.name!r}")
        for key, value in sorted(span.attributes.items()):
            if key.startswith(("micrometrics.retrieval_precision.", "micrometrics.context_utilization.")) or key in (
                "gen_ai.retrieval.documents",
                "micrometrics.retrieval.score_kind",
            ):
                print(f"    {key} = {value}")


def main() -> None:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    with DemoServer() as demo:
        handle = micrometrics.instrument(
            service_name="rag-example",
            exporter="console",  # one line per span on stderr
            tracer_provider=provider,
            # Retrieved ids and scores are opt-in content (as are the query and the answer): shown with capture on.
            capture_content="SPAN_ONLY",
            metrics=[RetrievalPrecision(), ContextUtilization()],
        )
        collection = build_knowledge_base()
        llm = openai.OpenAI(base_url=demo.openai_base_url, api_key="demo", max_retries=0)

        print(f"Q: {QUESTION}")
        print(f"A: {rag(collection, llm, demo)}")
        handle.force_flush()
        print("Run 1, no labels: precision judged by the query's words in the documents")
        show(spans.get_finished_spans())

        spans.clear()
        grades = {"shipping-germany": 3, "shipping-costs": 2, "shipping-express": 1}
        rag(collection, llm, demo, relevance_grades=grades)
        handle.force_flush()
        print(f"Run 2, with relevance_grades={grades}: recall, MRR and NDCG")
        show(spans.get_finished_spans())
        micrometrics.uninstrument()


if __name__ == "__main__":
    main()
