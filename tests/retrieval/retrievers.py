"""LangChain retrievers the tests use: a custom one, a failing one, one over a Chroma collection."""

from __future__ import annotations

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever

from corpus import CORPUS


class KeywordRetriever(BaseRetriever):
    """A custom retriever: the corpus entries sharing a word with the query, scored in metadata."""

    k: int = 3

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        terms = set(query.lower().replace("?", "").split())
        scored = []
        for slug, text in CORPUS.items():
            overlap = len(terms & set(text.lower().replace(".", "").split()))
            if overlap:
                scored.append(LCDocument(id=slug, page_content=text, metadata={"score": overlap / len(terms)}))
        return sorted(scored, key=lambda d: -d.metadata["score"])[: self.k]


class FailingRetriever(BaseRetriever):
    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        raise LookupError(f"index offline for {query!r}")


class ChromaRetriever(BaseRetriever):
    """A LangChain retriever over an (instrumented) Chroma collection."""

    collection: object
    k: int = 2

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        result = self.collection.query(query_texts=[query], n_results=self.k)
        return [
            LCDocument(id=i, page_content=text, metadata={"distance": d})
            for i, text, d in zip(result["ids"][0], result["documents"][0], result["distances"][0])
        ]
