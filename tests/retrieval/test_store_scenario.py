"""The shared retrieval scenario (store_scenario.py) through every store instrumented in this package's core set:
the same four documents and labelled query give the same precision, recall, MRR and NDCG on each one's span."""

from __future__ import annotations

import uuid

import pytest

import micrometrics
from micrometrics.metrics import RetrievalPrecision
from store_scenario import DIMENSION, DOCUMENTS, QUERY_VECTOR, RELEVANT_IDS, TOP_K, EXPECTED_IDS, assert_scenario, cosine


def _chroma(telemetry):
    import chromadb

    client = chromadb.EphemeralClient()
    name = f"scenario-{uuid.uuid4().hex[:8]}"
    collection = client.create_collection(name, metadata={"hnsw:space": "cosine"}, embedding_function=None)
    collection.add(ids=[d[0] for d in DOCUMENTS], documents=[d[1] for d in DOCUMENTS], embeddings=[d[2] for d in DOCUMENTS])
    with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
        result = collection.query(query_embeddings=[QUERY_VECTOR], n_results=TOP_K)
    client.delete_collection(name)
    return result["ids"][0], name, "chroma", "similarity"


def _qdrant(telemetry):
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    client.create_collection("scenario", vectors_config=models.VectorParams(size=DIMENSION, distance=models.Distance.COSINE))
    client.upsert("scenario", points=[models.PointStruct(id=int(i), vector=v, payload={"text": t}) for i, t, v in DOCUMENTS])
    with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
        points = client.query_points("scenario", query=QUERY_VECTOR, limit=TOP_K).points
    client.close()
    return [str(p.id) for p in points], "scenario", "qdrant", "similarity"


def _function(telemetry):
    @micrometrics.retriever(data_source="scenario-kb", db_system="custom-store")
    def search(query_vector, k):
        ranked = sorted(DOCUMENTS, key=lambda d: -cosine(d[2], query_vector))[:k]
        return [{"id": i, "score": cosine(v, query_vector), "text": t} for i, t, v in ranked]

    with micrometrics.context(relevant_document_ids=RELEVANT_IDS):
        hits = search(QUERY_VECTOR, k=TOP_K)
    return [h["id"] for h in hits], "scenario-kb", "custom-store", "similarity"


@pytest.mark.parametrize("store", [_chroma, _qdrant, _function], ids=["chroma", "qdrant", "retriever-decorator"])
def test_the_labelled_query_scores_the_same_on_every_store(telemetry, store):
    telemetry.instrument(metrics=[RetrievalPrecision()])
    ids, data_source, db_system, score_kind = store(telemetry)
    assert ids == EXPECTED_IDS
    assert_scenario(telemetry.span(f"retrieval {data_source}"), data_source=data_source, db_system=db_system, score_kind=score_kind)
