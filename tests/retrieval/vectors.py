"""Deterministic embeddings for the retrieval tests: no model download, same vectors every run."""

from __future__ import annotations

import hashlib
import math
import re

from chromadb import Documents, EmbeddingFunction, Embeddings

DIMENSION = 256


def embed(text: str) -> list[float]:
    """A hashed bag of words, L2-normalised: texts sharing words are near."""
    vector = [0.0] * DIMENSION
    for word in re.findall(r"\w+", text.lower()):
        vector[int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "big") % DIMENSION] += 1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


class HashEmbedding(EmbeddingFunction[Documents]):
    """A chromadb embedding function over ``embed``."""

    def __init__(self) -> None:
        pass

    def __call__(self, input: Documents) -> Embeddings:  # noqa: A002 - chromadb's parameter name
        return [embed(t) for t in input]

    @staticmethod
    def name() -> str:
        return "micrometrics-test-hash"

    def get_config(self) -> dict:
        return {}

    @staticmethod
    def build_from_config(config: dict) -> "HashEmbedding":
        return HashEmbedding()


try:  # LangChain's embeddings interface over the same vectors
    from langchain_core.embeddings import Embeddings

    class HashEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [embed(t) for t in texts]

        def embed_query(self, text: str) -> list[float]:
            return embed(text)

except ImportError:  # pragma: no cover - langchain-core is a dev dependency
    pass
