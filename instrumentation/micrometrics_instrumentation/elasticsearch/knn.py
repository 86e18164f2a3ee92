"""Which searches are vector searches: only a kNN search becomes a retrieval span (docs/retrieval.md).

A full-text search can retrieve documents for an LLM too, but it is also every log query, dashboard
and autocomplete of the cluster: tracing each as a ``retrieval`` would flood the GenAI view with
searches nobody asked to evaluate. An application that wants one of those judged wraps it in
``@micrometrics.retriever``.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from micrometrics import internal_errors


#: How deep ``bool`` queries are searched for a kNN clause (a hybrid query nests one or two).
_MAX_DEPTH = 8


def knn_clause(query: Any, kinds: tuple[str, ...] = ("knn",), depth: int = 0) -> Mapping | None:
    """The vector query (``knn``, or another of ``kinds``) of a query DSL object: at its top, or in a ``bool``
    query's clauses (a hybrid query)."""
    if not isinstance(query, Mapping) or depth > _MAX_DEPTH:
        return None
    for kind in kinds:
        knn = query.get(kind)
        if isinstance(knn, Mapping):
            return knn
    clauses = query.get("bool")
    if isinstance(clauses, Mapping):
        for occur in ("must", "should", "filter"):
            items = clauses.get(occur)
            for item in items if isinstance(items, list) else [items]:
                found = knn_clause(item, kinds, depth + 1)
                if found is not None:
                    return found
    return None


def vector_searches_only(wrapper: Callable, is_vector: Callable[[dict], bool]) -> Callable:
    """``wrapper`` for the calls ``is_vector(kwargs)`` says are vector searches; every other call goes straight through."""

    def gated(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        try:
            vector = is_vector(kwargs)
        except Exception as exc:  # never break the search over our check
            internal_errors.report("request", exc)
            vector = False
        if not vector:
            return wrapped(*args, **kwargs)  # an async method's coroutine, unawaited: the caller awaits it
        return wrapper(wrapped, instance, args, kwargs)

    gated.opens_span = True  # type: ignore[attr-defined]  # another GenAI layer on the method is kept above it
    return gated
