"""Retrieval fixtures: a real in-process Chroma collection, a real Chroma server, a Qdrant collection."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import CORPUS  # noqa: E402
from vectors import HashEmbedding, embed  # noqa: E402


@pytest.fixture
def kb():
    """A fresh Chroma collection (EphemeralClient shares one store per process: unique name)."""
    import chromadb

    client = chromadb.EphemeralClient()
    name = f"kb-{uuid.uuid4().hex[:8]}"
    collection = client.create_collection(name, embedding_function=HashEmbedding())
    collection.add(ids=list(CORPUS), documents=list(CORPUS.values()), metadatas=[{"topic": k.split("-")[0]} for k in CORPUS])
    yield collection
    client.delete_collection(name)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real Chroma server on loopback (``chroma run``), for the HTTP and async clients."""
    port = _free_port()
    binary = Path(sys.executable).parent / "chroma"
    proc = subprocess.Popen(
        [str(binary), "run", "--path", str(tmp_path_factory.mktemp("chroma")), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1)
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError("chroma run did not start")
            time.sleep(0.05)
    yield port
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def qdrant_points():
    from qdrant_client import models

    return [
        models.PointStruct(id=i, vector=embed(text), payload={"text": text, "slug": slug})
        for i, (slug, text) in enumerate(CORPUS.items(), start=1)
    ]


@pytest.fixture
def qdrant():
    """A local-mode (``:memory:``) Qdrant collection ``kb`` of the corpus; point ids 1..5."""
    from qdrant_client import QdrantClient, models

    client = QdrantClient(":memory:")
    client.create_collection("kb", vectors_config=models.VectorParams(size=len(embed("x")), distance=models.Distance.COSINE))
    client.upsert("kb", points=qdrant_points())
    yield client
    client.close()
