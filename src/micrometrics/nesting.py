"""One inference span per call: what a nested instrumented call does when a call's span is already open.

While an instrumented inference (or embeddings) call runs, its span's context carries a
``Scope``: the family of the call and what a nested call of the same family does under it.

* ``SUPPRESS`` (the default): the nested call opens no span; the outer span is the call's one
  inference span. A framework that calls the provider SDK (a LangChain chat model over the
  ``openai`` client), or a high-level method that goes through a low-level one (``create`` over
  ``client.post``), gives one span.
* ``CHILD``: the nested call opens its own span, as the child of the outer one.

The integration that opens the outer span chooses, with its translator's ``nested`` attribute
(``calls.py`` reads it). A retrieval call sets no scope unless its translator asks for ``SUPPRESS``
(a LangChain vector store's search, a vector-store retriever, a pgvector SQL query): then the
retrieval calls nested in it (the store's client, the SQL under the ORM) open no span, and the
outermost retrieval span is the query's one span. Otherwise a nested retrieval is the child of the
outer one, as before (a custom retriever over Chroma). Retrieval and inference scopes are kept
apart: one never suppresses the other's family.

While a ``SUPPRESS`` scope is open, the keys that other GenAI instrumentations honour are set
too, so that theirs under ours opens no span either: OpenLLMetry's
``suppress_language_model_instrumentation`` (its provider instrumentations skip the call, as
under its own LangChain span), and ``opentelemetry-util-genai``'s inference / embeddings context
data (1.2+: a nested invocation publishes to it instead of opening a span), when that library is
loaded.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from opentelemetry import context as otel_context

from micrometrics.records import AgentRecord, CallRecord, EmbeddingsRecord, InferenceRecord, RetrievalRecord

SUPPRESS = "suppress"
CHILD = "child"
NESTED = (SUPPRESS, CHILD)

#: Set by OpenLLMetry's framework instrumentations (LangChain, ...) around their LLM span; its provider instrumentations skip a call under it.
LANGUAGE_MODEL_SUPPRESSION_KEY = "suppress_language_model_instrumentation"
_UTIL_GENAI = "opentelemetry.util.genai.invocation"


@dataclass(frozen=True)
class Scope:
    """An open call's span: nested calls of ``family`` follow ``nested``."""

    family: type
    nested: str


_KEY = otel_context.create_key("micrometrics.open_call")
_SCOPES = {(family, nested): Scope(family, nested) for family in (InferenceRecord, EmbeddingsRecord) for nested in NESTED}
#: Apart from ``_KEY``: a retrieval under an LLM call (or the reverse) leaves the other family's scope as it was.
_RETRIEVAL_KEY = otel_context.create_key("micrometrics.open_retrieval")
RETRIEVAL_SUPPRESS = Scope(RetrievalRecord, SUPPRESS)


def _family(record: CallRecord) -> type | None:
    if isinstance(record, AgentRecord):
        return None  # an agent's model calls are its children: agent runs set no scope and are never suppressed
    if isinstance(record, InferenceRecord):
        return InferenceRecord
    if isinstance(record, EmbeddingsRecord):
        return EmbeddingsRecord
    return None


class Pending:
    """A framework's model call that has not opened its span: an instrumented SDK call below takes it
    (``taken``), and the framework then opens none (operations.begin_inference)."""

    __slots__ = ("family", "taken")

    def __init__(self, family: type) -> None:
        self.family, self.taken = family, False


_PENDING_KEY = otel_context.create_key("micrometrics.pending_call")


def pend(ctx: Any, family: type) -> tuple[Any, Pending]:
    """``ctx`` marked with a framework's pending call of ``family``."""
    pending = Pending(family)
    return otel_context.set_value(_PENDING_KEY, pending, ctx), pending


#: A framework's streamed call whose SDK call runs when the app consumes the stream, after the framework's call returned
#: (outside the context the framework ran it in): pending in the consumer's context (``defer``).
_DEFERRED: ContextVar[Pending | None] = ContextVar("micrometrics.deferred_call", default=None)


def defer(pending: Pending) -> None:
    """``pending`` also in this context, for an SDK call made later in it (a stream the app consumes here). No token:
    the value stays until the next stream's replaces it, inert once taken (PendingInference ends take it)."""
    _DEFERRED.set(pending)


def take(record: CallRecord) -> None:
    """An instrumented call opens its span: a framework's pending call of its family above it is taken."""
    pending = otel_context.get_value(_PENDING_KEY)
    if pending is None:
        pending = _DEFERRED.get()
    if isinstance(pending, Pending) and not pending.taken and _pending_family(record) is pending.family:
        pending.taken = True


def _pending_family(record: CallRecord) -> type | None:
    return RetrievalRecord if isinstance(record, RetrievalRecord) else _family(record)


def current() -> Scope | None:
    scope = otel_context.get_value(_KEY)
    return scope if isinstance(scope, Scope) else None


def suppressed(record: CallRecord) -> bool:
    """Whether ``record``'s call runs under an open span of its family that takes the nested calls in."""
    if isinstance(record, RetrievalRecord):
        return otel_context.get_value(_RETRIEVAL_KEY) is RETRIEVAL_SUPPRESS
    scope = otel_context.get_value(_KEY)
    return isinstance(scope, Scope) and scope.nested == SUPPRESS and _pending_family(record) is scope.family


def suppress_retrieval(ctx: Any) -> Any:
    """``ctx`` (a framework retriever's span context, LlamaIndex) in which an instrumented store query opens no span of
    its own: the retrieval scope a translator's ``SUPPRESS`` sets, kept apart from the model calls' scope."""
    return otel_context.set_value(_RETRIEVAL_KEY, RETRIEVAL_SUPPRESS, ctx)


def suppresses(family: type) -> bool:
    """``suppressed`` for a call of ``family`` read before its record is built: a low-level method
    (``client.post``) under its high-level one pays one context read, not a record."""
    scope = otel_context.get_value(_KEY)
    return scope is BROKEN or (isinstance(scope, Scope) and scope.nested == SUPPRESS and scope.family is family)


#: An instrumented call whose own telemetry failed to start (reported once): it runs as if we were not there, and the
#: low-level method it goes through (``create`` over ``client.post``: ``suppresses``) opens no span either. A library
#: of its own below it (a framework's failed call over an SDK) still has its span.
BROKEN = Scope(object, SUPPRESS)


def broken(ctx: Any) -> Any:
    """``ctx`` for the original call of an instrumented call whose span could not start."""
    return otel_context.set_value(_KEY, BROKEN, ctx)


def scope_for(record: CallRecord, nested: str | None = None) -> Scope | None:
    """The scope ``record``'s call opens (None: its family sets none); ``nested`` None is the default, SUPPRESS
    (for retrieval, CHILD: a retrieval suppresses nested retrievals only when its translator says so)."""
    if isinstance(record, RetrievalRecord):
        if nested is not None and nested not in NESTED:
            raise ValueError(f"nested={nested!r} is not supported; allowed: {', '.join(map(repr, NESTED))}")
        return RETRIEVAL_SUPPRESS if nested == SUPPRESS else None
    nested = nested or SUPPRESS
    if nested not in NESTED:
        raise ValueError(f"nested={nested!r} is not supported; allowed: {', '.join(map(repr, NESTED))}")
    family = _family(record)
    return None if family is None else _SCOPES[(family, nested)]


def enter(ctx: Any, scope: Scope | None) -> Any:
    """``ctx`` (the call's span context) with ``scope``, and under SUPPRESS the keys other instrumentations honour."""
    if scope is None:
        return ctx
    if scope.family is RetrievalRecord:
        return otel_context.set_value(_RETRIEVAL_KEY, scope, ctx)
    ctx = otel_context.set_value(_KEY, scope, ctx)
    if scope.nested == SUPPRESS:
        ctx = otel_context.set_value(LANGUAGE_MODEL_SUPPRESSION_KEY, True, ctx)
        genai = _util_genai_data(scope.family)
        if genai is not None:
            ctx = otel_context.set_value(genai[0], genai[1](), ctx)
    return ctx


def _util_genai_data(family: type) -> tuple[str, type] | None:
    """util-genai's context key and data class for ``family``, when the application loaded util-genai (never imported here)."""
    module = sys.modules.get(_UTIL_GENAI)
    if module is None:
        return None
    if family is InferenceRecord:
        key, data = getattr(module, "CLIENT_INFERENCE_CONTEXT_KEY", None), getattr(module, "InferenceData", None)
    else:
        key, data = getattr(module, "CLIENT_EMBEDDING_CONTEXT_KEY", None), getattr(module, "EmbeddingData", None)
    return (key, data) if isinstance(key, str) and isinstance(data, type) else None
