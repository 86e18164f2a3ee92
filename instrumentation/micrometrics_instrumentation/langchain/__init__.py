"""micrometrics instrumentation for LangChain retrievers (``langchain-core``).

Wraps ``BaseRetriever.invoke`` and ``ainvoke``, which every retriever built on
langchain-core inherits (vector store retrievers, custom subclasses, ``batch``,
``get_relevant_documents``). When the retriever itself calls an instrumented client
(Chroma, Qdrant), that call's span is the child of the retriever's span.
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.langchain.translators import RetrieverTranslator

__all__ = ["LangChainInstrumentor"]

_RETRIEVERS = "langchain_core.retrievers"


class LangChainInstrumentor(LibraryInstrumentor):
    library = "langchain_core"
    instruments = ("langchain-core >= 0.3",)

    def targets(self) -> Iterable[Target]:
        retriever = RetrieverTranslator()
        return (
            (_RETRIEVERS, "BaseRetriever", "invoke", sync_wrapper(retriever)),
            (_RETRIEVERS, "BaseRetriever", "ainvoke", async_wrapper(retriever)),
        )
