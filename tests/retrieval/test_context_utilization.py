"""ContextUtilization on the chat span after a retrieval: which retrieved documents the answer used,
for documents retrieved in the same ``micrometrics.context()`` block or the same trace."""

from __future__ import annotations

import gc
import tracemalloc

import openai
import pytest
from opentelemetry import trace

import micrometrics
from corpus import CORPUS, SHIPPING_QUESTION, chat_completion
from micrometrics.trace_memory import MAX_REMEMBERED_BYTES, MAX_REMEMBERED_DOCUMENTS, MAX_REMEMBERED_TRACES
from micrometrics.metrics import ContextUtilization, ResponseLength, RetrievalPrecision
from micrometrics_semconv import attributes as A

PREFIX = "micrometrics.context_utilization."
QUESTION = [{"role": "user", "content": SHIPPING_QUESTION}]


def client(demo) -> openai.OpenAI:
    return openai.OpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)


def ask(demo, answer: str | None = None) -> str:
    if answer is not None:
        demo.enqueue(json=chat_completion(answer), path_contains="/chat/completions")
    return client(demo).chat.completions.create(model="gpt-4o-mini", messages=QUESTION).choices[0].message.content


def utilization(telemetry) -> dict:
    attrs = telemetry.span("chat gpt-4o-mini").attributes
    return {k[len(PREFIX):]: v for k, v in attrs.items() if k.startswith(PREFIX)}


def test_documents_retrieved_in_the_block_and_used_by_the_answer(demo, telemetry, kb):
    telemetry.instrument(metrics=[RetrievalPrecision(), ContextUtilization()])
    with micrometrics.context():
        retrieved = kb.query(query_texts=[SHIPPING_QUESTION], n_results=3)["ids"][0]
        ask(demo, "Shipping to Germany takes 3 to 5 business days; shipping is free over 50 euros [shipping-costs].")
    assert {"shipping-germany", "shipping-costs"} <= set(retrieved)

    result = utilization(telemetry)
    assert result["label"] == "pass" and result["passed"] is True
    assert (result["used"], result["retrieved"]) == (2, 3)
    assert result["fraction"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["score"] == pytest.approx(2 / 3)
    # By shared words ("shipping to germany takes") and by citation.
    assert set(result["used_ids"].split(",")) == {"shipping-germany", "shipping-costs"}
    # The retrieval span keeps its own metric.
    assert telemetry.span(f"retrieval {kb.name}").attributes["micrometrics.retrieval_precision.label"] in ("pass", "fail")


def test_min_fraction_and_an_answer_that_ignores_the_context(demo, telemetry):
    telemetry.instrument(metrics=[ContextUtilization(min_fraction=0.5)])
    with micrometrics.context():
        micrometrics.record_retrieval(
            query="refund", documents=[{"id": k, "content": CORPUS[k]} for k in ("refund-policy", "warranty")], data_source="kb"
        )
        ask(demo, "I am not sure, please contact our support team by email.")
    result = utilization(telemetry)
    assert result["label"] == "fail" and result["passed"] is False
    assert (result["used"], result["retrieved"], result["fraction"]) == (0, 2, 0.0)
    event = telemetry.span("chat gpt-4o-mini").events[0].attributes
    assert event[A.GEN_AI_EVALUATION_EXPLANATION] == "the answer used 0 of 2 retrieved documents; wanted at least 0.5"


def test_documents_are_forgotten_when_the_block_ends(demo, telemetry):
    telemetry.instrument(metrics=[ContextUtilization()])
    with micrometrics.context():
        micrometrics.record_retrieval(documents=[{"id": "refund-policy", "content": CORPUS["refund-policy"]}], data_source="kb")
    ask(demo, "Refunds are issued within 14 days of receiving the returned item.")
    # No documents before this chat call: no result at all, not an "undetermined".
    assert utilization(telemetry) == {}


def test_documents_retrieved_in_the_same_trace(demo, telemetry):
    telemetry.instrument(metrics=[ContextUtilization()])
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("handle question"):
        micrometrics.record_retrieval(documents=[{"id": "refund-policy", "content": CORPUS["refund-policy"]}], data_source="kb")
        ask(demo, "Good news: refunds are issued within 14 days.")
    with tracer.start_as_current_span("another request"):
        ask(demo, "Refunds are issued within 14 days.")

    first, second = [s for s in telemetry.spans() if s.name == "chat gpt-4o-mini"]
    assert first.attributes[PREFIX + "used_ids"] == "refund-policy"
    assert first.attributes[PREFIX + "label"] == "pass"
    assert not any(k.startswith(PREFIX) for k in second.attributes)  # another trace: nothing retrieved


def test_short_numeric_ids_count_only_when_cited_in_brackets(demo, telemetry, qdrant):
    from vectors import embed

    telemetry.instrument(metrics=[ContextUtilization()])
    with micrometrics.context():
        points = qdrant.query_points("kb", query=embed("shipping"), limit=2, with_payload=False).points
        ids = [p.id for p in points]
        ask(demo, f"You have 1 order and {ids[0]} returns; see [{ids[1]}].")
    result = utilization(telemetry)
    assert result["used_ids"] == str(ids[1])
    assert result["used"] == 1


def test_streamed_answer_is_judged_when_the_stream_ends(demo, telemetry):
    telemetry.instrument(metrics=[ContextUtilization()])
    with micrometrics.context():
        micrometrics.record_retrieval(
            documents=[
                {"id": "order-help", "content": "If your question is about an order, please share your order number with us."},
                {"id": "warranty", "content": CORPUS["warranty"]},
            ],
            data_source="kb",
        )
        stream = client(demo).chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "Hello, I have a question"}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert "share your order number" in text
    result = utilization(telemetry)
    assert (result["used_ids"], result["retrieved"]) == ("order-help", 2)


async def test_async_chat_after_async_retrieval(demo, telemetry):
    telemetry.instrument(metrics=[ContextUtilization()])

    @micrometrics.retriever(data_source="kb")
    async def search(query: str) -> list[dict]:
        return [{"id": "warranty", "content": CORPUS["warranty"]}]

    demo.enqueue(json=chat_completion("It has a two year warranty against manufacturing defects."), path_contains="/chat/completions")
    aclient = openai.AsyncOpenAI(base_url=demo.openai_base_url, api_key="sk-test", max_retries=0)
    with micrometrics.context():
        await search("warranty")
        await aclient.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)
    assert utilization(telemetry)["used_ids"] == "warranty"


def test_langchain_over_chroma_documents_count_once(demo, telemetry, kb):
    from retrievers import ChromaRetriever

    telemetry.instrument(metrics=[ContextUtilization()])
    with micrometrics.context():
        ChromaRetriever(collection=kb, k=2).invoke(SHIPPING_QUESTION)
        ask(demo, "Shipping to Germany takes 3 to 5 business days.")
    result = utilization(telemetry)
    assert result["retrieved"] == 2  # the retriever's span and its Chroma child hold the same two
    assert "shipping-germany" in result["used_ids"].split(",")


def test_memory_is_bounded_per_block(demo, telemetry):
    telemetry.instrument(metrics=[ContextUtilization()])
    with micrometrics.context():
        micrometrics.record_retrieval(documents=[{"id": f"doc-{i}", "content": f"text {i}"} for i in range(100)], data_source="kb")
        ask(demo, "According to [doc-99], yes.")
    result = utilization(telemetry)
    assert result["retrieved"] == MAX_REMEMBERED_DOCUMENTS
    assert result["used_ids"] == "doc-99"  # the newest are kept


def test_memory_is_bounded_across_traces(demo, telemetry):
    telemetry.instrument(metrics=[ContextUtilization()])
    tracer = telemetry.tracer_provider.get_tracer("app")
    oldest = tracer.start_span("long request")
    with trace.use_span(oldest):
        micrometrics.record_retrieval(documents=[{"id": "refund-policy"}], data_source="kb")
    for i in range(MAX_REMEMBERED_TRACES):
        with tracer.start_as_current_span(f"request {i}"):
            micrometrics.record_retrieval(documents=[{"id": f"doc-{i}"}], data_source="kb")
    with trace.use_span(oldest, end_on_exit=True):
        ask(demo, "See [refund-policy].")
    # Pushed out by newer traces: the long request's documents are forgotten.
    assert utilization(telemetry) == {}


def test_no_context_utilization_without_the_metric(demo, telemetry):
    telemetry.instrument()
    with micrometrics.context():
        micrometrics.record_retrieval(documents=[{"id": "refund-policy", "content": CORPUS["refund-policy"]}], data_source="kb")
        ask(demo, "Refunds are issued within 14 days.")
    assert utilization(telemetry) == {}  # opt-in


def _retained_after(telemetry, traces: int, docs: int, doc_chars: int) -> int:
    """Bytes still allocated after ``traces`` requests each retrieved ``docs`` documents of ``doc_chars`` characters."""
    tracer = telemetry.tracer_provider.get_tracer("app")
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(traces):
            with tracer.start_as_current_span(f"request {i}"):
                micrometrics.record_retrieval(
                    documents=[{"id": f"doc-{i}-{j}", "content": f"{i} {j} " + "lorem ipsum " * (doc_chars // 12)} for j in range(docs)],
                    data_source="kb",
                )
        telemetry.flush()  # every call evaluated: nothing pending in the queue
        telemetry.span_exporter.clear()  # the backend's copy is not ours
        gc.collect()
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


def test_retrieved_documents_are_bounded_by_bytes_across_traces(demo, telemetry):
    telemetry.instrument(metrics=[ContextUtilization()])
    # 60 requests x 20 chunks of 50 KB: 60 MB retrieved, within the old count bounds (1,024 traces x 64).
    retained = _retained_after(telemetry, traces=60, docs=20, doc_chars=50_000)
    assert retained < MAX_REMEMBERED_BYTES * 1.5, f"{retained / 1e6:.1f} MB kept"
    # The newest trace is still remembered: the metric keeps working.
    tracer = telemetry.tracer_provider.get_tracer("app")
    with tracer.start_as_current_span("last request"):
        micrometrics.record_retrieval(documents=[{"id": "refund-policy", "content": CORPUS["refund-policy"]}], data_source="kb")
        ask(demo, "See [refund-policy].")
    assert utilization(telemetry)["used_ids"] == "refund-policy"


def test_retrieved_documents_are_not_kept_when_no_metric_reads_them(demo, telemetry):
    telemetry.instrument(metrics=[RetrievalPrecision(), ResponseLength()])
    retained = _retained_after(telemetry, traces=20, docs=10, doc_chars=50_000)
    assert retained < 1_000_000, f"{retained / 1e6:.1f} MB kept"  # 10 MB retrieved, none of it kept


def test_a_block_keeps_its_documents_within_a_byte_budget(demo, telemetry):
    from micrometrics.trace_memory import MAX_BLOCK_BYTES

    telemetry.instrument(metrics=[ContextUtilization()])
    big = 1_000_000
    with micrometrics.context():
        micrometrics.record_retrieval(documents=[{"id": f"doc-{i}", "content": f"{i} " + "x" * big} for i in range(10)], data_source="kb")
        ask(demo, "According to [doc-9], yes.")
    result = utilization(telemetry)
    assert result["retrieved"] <= MAX_BLOCK_BYTES // big and result["used_ids"] == "doc-9"  # the newest are kept
