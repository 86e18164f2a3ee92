"""micrometrics instrumentation for ``lancedb`` (embedded).

A LanceDB vector query is a lazy builder (``table.search(vector).limit(k)``); the span is its
execution. Every ``to_*`` of a sync vector query (``to_list``, ``to_pandas``, ``to_polars``,
``to_pydantic``) goes through ``LanceVectorQueryBuilder.to_arrow``, and every one of an async
``AsyncVectorQuery`` through ``to_arrow`` too: those two are wrapped, one ``retrieval {table}`` span
per executed query. ``to_batches`` called directly (a stream of record batches) is not traced, and
full-text and hybrid queries are not vector searches (docs/retrieval.md).
"""

from __future__ import annotations

from typing import Iterable

from micrometrics.calls import async_wrapper, sync_wrapper
from micrometrics_instrumentation.instrumentor import LibraryInstrumentor, Target
from micrometrics_instrumentation.libraries import LIBRARIES
from micrometrics_instrumentation.lancedb.translators import VectorQueryTranslator

__all__ = ["LanceDBInstrumentor"]


class LanceDBInstrumentor(LibraryInstrumentor):
    library = LIBRARIES["lancedb"]
    instruments = ("lancedb >= 0.20",)

    def targets(self) -> Iterable[Target]:
        query = VectorQueryTranslator()
        return (
            ("lancedb.query", "LanceVectorQueryBuilder", "to_arrow", sync_wrapper(query)),
            # Inherited from AsyncQueryBase: wrapped on the vector query only, so plain scans and FTS stay untouched.
            ("lancedb.query", "AsyncVectorQuery", "to_arrow", async_wrapper(query)),
        )
