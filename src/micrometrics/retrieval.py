"""Retrieval for any retriever: ``@micrometrics.retriever`` and ``micrometrics.record_retrieval``.

Both build a ``RetrievalRecord`` and hand it to the one pipeline, so a hand-written
retriever gets the same ``retrieval {data_source}`` span, documents, metrics and
``RetrievalPrecision`` as the instrumented vector stores.
"""

from __future__ import annotations

import functools
import inspect
import numbers
from typing import Any, Callable, Iterable, Mapping

from micrometrics import internal_errors
from micrometrics.runtime import current as current_runtime
from micrometrics.calls import run_async, run_sync
from micrometrics.records import Call, Document, RetrievalRecord
from micrometrics.reading import first_field
from micrometrics_semconv import values as V

__all__ = ["retriever", "record_retrieval", "to_document", "as_documents"]

SCORE_KINDS = (V.SCORE_KIND_SIMILARITY, V.SCORE_KIND_DISTANCE)

_ID_KEYS = ("id", "_id", "doc_id", "document_id", "chunk_id")
_SCORE_KEYS = ("score", "relevance_score", "similarity_score", "similarity", "_score")
_CONTENT_KEYS = ("content", "page_content", "text", "document", "chunk", "body")
#: Parameter names a decorated function's query / cut-off is found under, in this order.
_QUERY_PARAMS = ("query", "question", "q", "input", "text", "prompt")
_TOP_K_PARAMS = ("k", "top_k", "n_results", "limit", "n", "size")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def to_document(item: Any) -> Document:
    """One retrieved item -> ``Document``: a dict or object with id / score / content
    (``page_content``, ``text``, ...), a ``(document, score)`` pair, or plain text."""
    if isinstance(item, Document):
        return item
    if isinstance(item, str):
        return Document(content=item)
    if isinstance(item, tuple) and len(item) == 2 and _number(item[1]) is not None:
        doc = to_document(item[0])
        return Document(id=doc.id, score=_number(item[1]), content=doc.content, metadata=doc.metadata)
    metadata = first_field(item, ("metadata", "metadatas", "payload"))
    if not isinstance(metadata, Mapping):
        metadata = None
    doc_id = first_field(item, _ID_KEYS)
    if doc_id is None and metadata is not None:
        doc_id = first_field(metadata, _ID_KEYS)
    score = _number(first_field(item, _SCORE_KEYS))
    if score is None and metadata is not None:
        score = _number(first_field(metadata, _SCORE_KEYS))
    content = first_field(item, _CONTENT_KEYS)
    return Document(
        id=str(doc_id) if doc_id is not None else None,
        score=score,
        content=content if isinstance(content, str) else None,
        metadata=metadata,
    )


def as_documents(value: Any) -> list[Document]:
    """A retriever's result -> documents. Only lists and tuples: an iterator is the
    caller's to consume, never ours."""
    if isinstance(value, Mapping) or not isinstance(value, (list, tuple)):
        return []
    return [to_document(item) for item in value]


def _check_score_kind(owner: str, score_kind: Any) -> None:
    if score_kind is not None and score_kind not in SCORE_KINDS:
        raise ValueError(f"{owner}: score_kind={score_kind!r} is not allowed; use 'similarity' (higher is better) or 'distance' (lower is better)")


class _Parameter:
    """Where a named parameter sits in a signature: by keyword, by position, or its default."""

    __slots__ = ("name", "index", "default")

    def __init__(self, name: str, index: int | None, default: Any) -> None:
        self.name = name
        self.index = index
        self.default = default

    def value(self, args: tuple, kwargs: dict) -> Any:
        if self.name in kwargs:
            return kwargs[self.name]
        if self.index is not None and self.index < len(args):
            return args[self.index]
        return self.default


def _find(params: list[inspect.Parameter], names: Iterable[str]) -> _Parameter | None:
    by_name = {p.name: i for i, p in enumerate(params)}
    for name in names:
        if name in by_name:
            i = by_name[name]
            p = params[i]
            positional = p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
            default = None if p.default is p.empty else p.default
            return _Parameter(name, i if positional else None, default)
    return None


class FunctionTranslator:
    """A decorated retriever function's call and result -> a ``RetrievalRecord``."""

    def __init__(
        self,
        fn: Callable,
        *,
        data_source: str | None,
        provider: str | None,
        db_system: str | None,
        score_kind: str | None,
        query_arg: str | None,
        top_k_arg: str | None,
    ) -> None:
        self.data_source = data_source or getattr(fn, "__name__", None)
        self.db_system = db_system
        self.provider = provider or db_system or V.PROVIDER_CUSTOM
        self.score_kind = score_kind
        try:
            params = list(inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            params = []
        self.query = _find(params, (query_arg,) if query_arg else _QUERY_PARAMS)
        if self.query is None and not query_arg:
            # Else the first parameter that is not self/cls: ``def search(text_to_find)``.
            rest = [p for p in params if p.name not in ("self", "cls") and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
            self.query = _find(params, (rest[0].name,)) if rest else None
        self.top_k = _find(params, (top_k_arg,) if top_k_arg else _TOP_K_PARAMS)

    def request(self, instance: Any, args: tuple, kwargs: dict) -> RetrievalRecord:
        query = self.query.value(args, kwargs) if self.query else None
        top_k = self.top_k.value(args, kwargs) if self.top_k else None
        return RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=self.provider,
            data_source=self.data_source,
            query=query if isinstance(query, str) else None,
            top_k=top_k if isinstance(top_k, int) and not isinstance(top_k, bool) else None,
            score_kind=self.score_kind,
            db_system=self.db_system,
        )

    def response(self, record: RetrievalRecord, response: Any) -> None:
        record.documents = as_documents(response)

    def accumulator(self, record: RetrievalRecord, stream: Any) -> None:
        return None

    def retry(self, args: tuple, kwargs: dict, instruction: str | None) -> tuple[tuple, dict]:
        return args, kwargs


def retriever(
    fn: Callable | None = None,
    *,
    data_source: str | None = None,
    provider: str | None = None,
    db_system: str | None = None,
    score_kind: str | None = V.SCORE_KIND_SIMILARITY,
    query_arg: str | None = None,
    top_k_arg: str | None = None,
) -> Any:
    """Make every call of a retriever function a ``retrieval {data_source}`` span.

    ``@micrometrics.retriever`` or ``@micrometrics.retriever(data_source="kb")`` on a
    function (sync or ``async``) that returns a list of documents: dicts or objects
    with ``id``, ``score`` and ``content`` (or ``page_content`` / ``text``),
    ``(document, score)`` pairs, or strings. The query is the parameter named
    ``query_arg`` (default: ``query``, ``question``, ``q``, ... else the first one),
    the cut-off the one named ``top_k_arg`` (default: ``k``, ``top_k``, ``limit``, ...).
    ``data_source`` defaults to the function's name; ``score_kind`` says whether a
    higher score is better (``similarity``) or worse (``distance``).
    """
    _check_score_kind("micrometrics.retriever", score_kind)
    if data_source is not None and not isinstance(data_source, str):
        raise TypeError(f"micrometrics.retriever: data_source={data_source!r} must be a str such as 'kb'")

    def decorate(f: Callable) -> Callable:
        if not callable(f):
            raise TypeError(f"@micrometrics.retriever decorates a function that returns documents, got {f!r}")
        translator = FunctionTranslator(
            f, data_source=data_source, provider=provider, db_system=db_system, score_kind=score_kind,
            query_arg=query_arg, top_k_arg=top_k_arg,
        )
        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def async_retrieve(*args: Any, **kwargs: Any) -> Any:
                return await run_async(translator, f, None, args, kwargs)

            return async_retrieve

        @functools.wraps(f)
        def retrieve(*args: Any, **kwargs: Any) -> Any:
            return run_sync(translator, f, None, args, kwargs)

        return retrieve

    return decorate(fn) if fn is not None else decorate


def record_retrieval(
    *,
    documents: Iterable[Any] = (),
    query: str | None = None,
    data_source: str | None = None,
    top_k: int | None = None,
    score_kind: str | None = V.SCORE_KIND_SIMILARITY,
    db_system: str | None = None,
    provider: str | None = None,
) -> None:
    """Record a retrieval that already happened: one ``retrieval {data_source}`` span
    (of no duration) with its documents, and ``RetrievalPrecision`` on it.

    For retrievals you can wrap, prefer ``@micrometrics.retriever``: it also times them.
    A no-op when micrometrics is not instrumented.
    """
    _check_score_kind("micrometrics.record_retrieval", score_kind)
    runtime = current_runtime()
    if runtime is None:
        return
    try:
        record = RetrievalRecord(
            operation=V.OPERATION_RETRIEVAL,
            provider=provider or db_system or V.PROVIDER_CUSTOM,
            data_source=data_source,
            query=query if isinstance(query, str) else None,
            top_k=top_k if isinstance(top_k, int) and not isinstance(top_k, bool) else None,
            score_kind=score_kind,
            db_system=db_system,
        )
        call = Call(record=record)
        token = runtime.start(call)
        runtime.detach(token)
        record.documents = as_documents(documents if isinstance(documents, (list, tuple)) else list(documents))
        runtime.finish(call, guards="report")
    except Exception as exc:
        internal_errors.report("record_retrieval", exc)
