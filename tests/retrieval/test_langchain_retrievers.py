"""A user instruments an app built on LangChain retrievers: custom ones, vector store ones, and
ones that call an instrumented vector store (the store's span is the retriever span's child)."""

from __future__ import annotations

import asyncio
import json

import pytest
from langchain_core.documents import Document as LCDocument
from langchain_core.vectorstores import InMemoryVectorStore

import micrometrics
from corpus import CORPUS, SHIPPING_QUESTION
from micrometrics.metrics import RetrievalPrecision
from micrometrics_semconv import attributes as A
from provider_contract import assert_failed_call, assert_retrieval_call
from retrievers import ChromaRetriever, FailingRetriever, KeywordRetriever
from vectors import HashEmbeddings


def documents_of(span) -> list[dict]:
    return json.loads(span.attributes[A.GEN_AI_RETRIEVAL_DOCUMENTS])


@pytest.mark.parametrize("capture", [False, True], ids=["nocontent", "content"])
def test_custom_retriever_invoke(telemetry, capture):
    telemetry.instrument(capture_content=capture, metrics=[RetrievalPrecision()])
    docs = KeywordRetriever().invoke(SHIPPING_QUESTION)

    span = assert_retrieval_call(
        telemetry, provider="langchain", db_system=None, data_source="KeywordRetriever", top_k=3,
        db_collection=None, db_operation=None,  # a custom retriever: no store known
        documents=[{"id": d.id, "score": d.metadata["score"]} for d in docs],
        capture=capture, query_text=SHIPPING_QUESTION, first_document={"id": docs[0].id, "content": docs[0].page_content},
        hidden=[SHIPPING_QUESTION, *CORPUS.values()],
    )
    assert span.attributes["micrometrics.retrieval_precision.judged_by"] == "lexical"


def test_retriever_name_is_the_data_source(telemetry):
    telemetry.instrument(metrics=[])
    KeywordRetriever(name="faq").invoke("warranty")
    assert telemetry.span("retrieval faq").attributes[A.GEN_AI_DATA_SOURCE_ID] == "faq"


def test_vector_store_retriever_sync_async_and_batch(telemetry):
    telemetry.instrument(capture_content=True, metrics=[RetrievalPrecision()])
    store = InMemoryVectorStore(embedding=HashEmbeddings())
    store.add_documents([LCDocument(id=slug, page_content=text) for slug, text in CORPUS.items()])
    retriever = store.as_retriever(search_kwargs={"k": 2})

    with micrometrics.context(relevant_document_ids=["shipping-germany"]):
        docs = retriever.invoke(SHIPPING_QUESTION)
        adocs = asyncio.run(retriever.ainvoke(SHIPPING_QUESTION))
        batch = retriever.batch(["refund", "warranty"])

    assert docs[0].id == "shipping-germany" and [d.id for d in adocs] == [d.id for d in docs]
    spans = telemetry.spans()
    assert [s.name for s in spans] == ["retrieval InMemoryVectorStore"] * 4
    first = spans[0].attributes
    assert first[A.GEN_AI_REQUEST_TOP_K] == 2
    assert [d["id"] for d in documents_of(spans[0])] == [d.id for d in docs]
    assert first["micrometrics.retrieval_precision.mrr"] == 1.0
    assert {tuple(d["id"] for d in documents_of(s)) for s in spans[2:]} == {tuple(d.id for d in b) for b in batch}


def test_a_failing_retriever_raises_the_same_exception(telemetry):
    telemetry.instrument(metrics=[RetrievalPrecision()])
    with pytest.raises(LookupError, match="index offline for 'refund'"):
        FailingRetriever().invoke("refund")
    assert_failed_call(telemetry, "retrieval FailingRetriever", provider="langchain", error_type="LookupError")


def assert_parent_and_child(telemetry, kb) -> None:
    spans = {s.name: s for s in telemetry.spans()}
    assert sorted(spans) == sorted(["retrieval ChromaRetriever", f"retrieval {kb.name}"])
    parent, child = spans["retrieval ChromaRetriever"], spans[f"retrieval {kb.name}"]
    assert child.parent is not None and child.parent.span_id == parent.context.span_id
    assert child.context.trace_id == parent.context.trace_id
    assert parent.attributes[A.GEN_AI_PROVIDER_NAME] == "langchain"
    assert child.attributes[A.GEN_AI_PROVIDER_NAME] == "chroma"
    assert [d["id"] for d in documents_of(parent)] == [d["id"] for d in documents_of(child)]
    # Each span is judged once, with its own score kind.
    for span in (parent, child):
        assert span.attributes["micrometrics.retrieval_precision.judged_by"] == "labels"
        assert span.attributes["micrometrics.retrieval_precision.mrr"] == 1.0


def test_langchain_over_chroma_is_a_parent_and_a_child_not_two_siblings(telemetry, kb):
    telemetry.instrument(capture_content=True, metrics=[RetrievalPrecision()])
    with micrometrics.context(relevant_document_ids=["shipping-germany"]):
        ChromaRetriever(collection=kb).invoke(SHIPPING_QUESTION)
    assert_parent_and_child(telemetry, kb)


def test_async_langchain_over_chroma_keeps_the_parent(telemetry, kb):
    telemetry.instrument(capture_content=True, metrics=[RetrievalPrecision()])

    async def main():
        with micrometrics.context(relevant_document_ids=["shipping-germany"]):
            return await ChromaRetriever(collection=kb).ainvoke(SHIPPING_QUESTION)

    asyncio.run(main())
    assert_parent_and_child(telemetry, kb)
