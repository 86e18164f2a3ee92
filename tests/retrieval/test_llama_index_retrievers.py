"""LlamaIndex retrievers and vector stores: one ``retrieval`` span per query (not two when the store's client is
instrumented too), the nodes as documents (id, score; text only with capture), RetrievalPrecision on it, and
ContextUtilization on the model call a query engine makes after it.

Real LlamaIndex indexes: ``VectorStoreIndex`` over its built-in ``SimpleVectorStore``, over Chroma
(``llama-index-vector-stores-chroma``, the embedded client) and over Qdrant (``llama-index-vector-stores-qdrant``,
local mode), with a deterministic embedding model (frameworks/llama_index_models.py).
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

import micrometrics
from corpus import CORPUS, SHIPPING_QUESTION, chat_completion
from micrometrics.metrics import ContextUtilization, RetrievalPrecision
from store_scenario import DOCUMENTS, EXPECTED_IDS, QUERY_TEXT, QUERY_VECTOR, RELEVANT_IDS, TOP_K, assert_scenario

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "frameworks"))

pytest.importorskip("llama_index.core", reason="llama-index-core is not installed")

from llama_index.core import StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.schema import TextNode  # noqa: E402
from llama_index_models import HashEmbedding, SdkChatModel  # noqa: E402
from llama_index_setup import instrument  # noqa: E402


def retrievals(telemetry) -> list:
    return [s for s in telemetry.spans() if s.attributes.get("gen_ai.operation.name") == "retrieval"]


def scenario_nodes() -> list[TextNode]:
    return [TextNode(id_=i, text=text, embedding=vector) for i, text, vector in DOCUMENTS]


def scenario_embedding() -> HashEmbedding:
    return HashEmbedding(vectors={QUERY_TEXT: QUERY_VECTOR})


def chroma_index():
    import chromadb
    from llama_index.vector_stores.chroma import ChromaVectorStore

    client = chromadb.EphemeralClient()
    name = f"li-scenario-{uuid.uuid4().hex[:8]}"
    collection = client.create_collection(name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
    store = ChromaVectorStore(chroma_collection=collection)
    index = VectorStoreIndex(scenario_nodes(), storage_context=StorageContext.from_defaults(vector_store=store), embed_model=scenario_embedding())
    return index, name, lambda: client.delete_collection(name)


def kb_index() -> VectorStoreIndex:
    """The support knowledge base in LlamaIndex's built-in SimpleVectorStore (no database: no db.system.name)."""
    nodes = [TextNode(id_=slug, text=text) for slug, text in CORPUS.items()]
    return VectorStoreIndex(nodes, embed_model=HashEmbedding())


def test_the_shared_scenario_through_a_llama_index_retriever_over_chroma(telemetry, request):
    """The labelled query through ``VectorStoreIndex.as_retriever()`` over Chroma: one retrieval span, LlamaIndex's
    (the Chroma client's own query under it opens none), with the scenario's precision, recall, MRR and NDCG."""
    instrument(telemetry, request, metrics=[RetrievalPrecision()])
    index, name, drop = chroma_index()
    request.addfinalizer(drop)
    with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
        nodes = index.as_retriever(similarity_top_k=TOP_K).retrieve(QUERY_TEXT)
    assert [n.node.node_id for n in nodes] == EXPECTED_IDS
    spans = retrievals(telemetry)
    assert len(spans) == 1, [(s.name, s.attributes.get("gen_ai.provider.name")) for s in spans]
    attrs = assert_scenario(spans[0], data_source=name, db_system="chroma", score_kind="similarity")
    assert attrs["gen_ai.provider.name"] == "llama_index"
    assert attrs["db.collection.name"] == name
    # The query's embedding is the retriever's child.
    embeddings = [s for s in telemetry.spans() if s.name == "embeddings hash-embedding"]
    assert [e.parent.span_id for e in embeddings] == [spans[0].context.span_id]


async def test_the_shared_scenario_async_over_qdrant(telemetry, request):
    """``aretrieve`` over Qdrant (local mode; its point ids are UUIDs, so the labels are the nodes' ids)."""
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import AsyncQdrantClient, QdrantClient

    instrument(telemetry, request, metrics=[RetrievalPrecision()])
    ids = {i: str(uuid.uuid5(uuid.NAMESPACE_URL, i)) for i, _, _ in DOCUMENTS}
    nodes = [TextNode(id_=ids[i], text=text, embedding=vector) for i, text, vector in DOCUMENTS]
    client, aclient = QdrantClient(":memory:"), AsyncQdrantClient(":memory:")
    store = QdrantVectorStore(collection_name="li_scenario", client=client, aclient=aclient)
    await store.async_add(nodes)
    index = VectorStoreIndex.from_vector_store(store, embed_model=scenario_embedding())
    with micrometrics.context(relevant_document_ids=[ids[i] for i in RELEVANT_IDS]):
        found = await index.as_retriever(similarity_top_k=TOP_K).aretrieve(QUERY_TEXT)
    assert [n.node.node_id for n in found] == [ids[i] for i in EXPECTED_IDS]
    spans = retrievals(telemetry)
    assert len(spans) == 1, [(s.name, s.attributes.get("gen_ai.provider.name")) for s in spans]
    assert_scenario(spans[0], data_source="li_scenario", db_system="qdrant", score_kind="similarity")
    client.close()
    await aclient.close()


def test_documents_are_ids_and_scores_and_their_text_only_with_capture(telemetry, request):
    instrument(telemetry, request)
    nodes = kb_index().as_retriever(similarity_top_k=3).retrieve(SHIPPING_QUESTION)
    span = telemetry.span("retrieval VectorIndexRetriever")
    assert span.attributes["gen_ai.request.top_k"] == 3.0
    assert "db.system.name" not in span.attributes  # SimpleVectorStore is no database
    assert "gen_ai.retrieval.documents" not in span.attributes
    assert "gen_ai.retrieval.query.text" not in span.attributes
    assert nodes[0].node.node_id == "shipping-germany"
    text = " ".join(str(v) for v in span.attributes.values())
    assert CORPUS["shipping-germany"] not in text and SHIPPING_QUESTION not in text


def test_documents_with_capture(telemetry, request):
    import json

    instrument(telemetry, request, capture_content=True)
    kb_index().as_retriever(similarity_top_k=2).retrieve(SHIPPING_QUESTION)
    span = telemetry.span("retrieval VectorIndexRetriever")
    documents = json.loads(span.attributes["gen_ai.retrieval.documents"])
    assert [d["id"] for d in documents][0] == "shipping-germany"
    assert all(isinstance(d["score"], float) for d in documents)
    assert span.attributes["gen_ai.retrieval.query.text"] == SHIPPING_QUESTION


def test_a_query_engine_is_a_workflow_whose_model_call_sees_the_retrieved_documents(demo, telemetry, request):
    """``index.as_query_engine(llm=...).query(q)``: ``invoke_workflow RetrieverQueryEngine`` with the retrieval and
    the model call under it; ContextUtilization on the model call (the SDK's span) counts the documents it used."""
    instrument(telemetry, request, metrics=[RetrievalPrecision(), ContextUtilization()])
    demo.enqueue(json=chat_completion("Shipping to Germany takes 3 to 5 business days; shipping is free over 50 euros [shipping-costs]."), path_contains="/chat/completions")
    engine = kb_index().as_query_engine(llm=SdkChatModel(base_url=demo.openai_base_url), similarity_top_k=3)
    response = engine.query(SHIPPING_QUESTION)
    assert "3 to 5 business days" in str(response)

    spans = telemetry.spans()
    workflow = telemetry.span("invoke_workflow RetrieverQueryEngine")
    assert workflow.attributes["gen_ai.operation.name"] == "invoke_workflow"
    retrieval = telemetry.span("retrieval VectorIndexRetriever")
    chat = telemetry.span("chat gpt-4o-mini")
    assert retrieval.parent.span_id == workflow.context.span_id
    assert chat.parent.span_id == workflow.context.span_id
    assert chat.attributes["gen_ai.provider.name"] == "openai"  # the SDK's span: one per model call
    assert len([s for s in spans if s.attributes.get("gen_ai.operation.name") == "chat"]) == 1
    assert chat.attributes["micrometrics.context_utilization.retrieved"] == 3
    assert chat.attributes["micrometrics.context_utilization.used"] >= 2
    assert "shipping-germany" in chat.attributes["micrometrics.context_utilization.used_ids"]
