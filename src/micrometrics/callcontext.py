"""``micrometrics.context(...)``: values that travel with the calls of a block of code.

A ContextVar holds an immutable mapping; nested blocks merge into their parent and
asyncio tasks inherit the values they were created with.
"""

from __future__ import annotations

import contextvars
import warnings
from types import MappingProxyType
from typing import Any, Iterator, Mapping
from contextlib import contextmanager

from micrometrics.trace_memory import RETRIEVED_KEY, RetrievedDocuments

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_values: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("micrometrics_context", default=_EMPTY)

_ATTRIBUTE_TYPES = (str, bool, int, float)
#: Keys the core itself reads; the rest are read by metrics (``MicroMetric.context_keys``).
CORE_KEYS = frozenset({"attributes", "conversation_id"})
_warned: set[str] = set()
#: The active runtime's metrics (set by ``runtime.set_current``; this module must not import the runtime).
active_metrics: tuple | None = None


def current() -> Mapping[str, Any]:
    return _values.get()


def _check(values: dict[str, Any]) -> None:
    attrs = values.get("attributes")
    if attrs is not None:
        if not isinstance(attrs, Mapping):
            raise TypeError(f"context(attributes=...) must be a mapping of str to str/bool/int/float, got {type(attrs).__name__}")
        for k, v in attrs.items():
            if not isinstance(k, str) or not isinstance(v, _ATTRIBUTE_TYPES):
                raise TypeError(
                    f"context(attributes=...): {k!r}={v!r} is not allowed; keys are str and values str, bool, int or float"
                )
    lang = values.get("expected_language")
    if lang is not None:
        from micrometrics.metrics.language import normalize_language  # lazily: the call path never imports the metrics package

        values["expected_language"] = normalize_language(lang, "context(expected_language=...)")
    conv = values.get("conversation_id")
    if conv is not None and not isinstance(conv, (str, int)):
        raise TypeError(f"context(conversation_id=...) must be a str, got {type(conv).__name__}")


def _warn_unread(values: Mapping[str, Any]) -> None:
    """Warn once per name on keys no active metric reads: a typo (``expected_languages``) is otherwise silently ignored."""
    metrics = active_metrics
    if metrics is None:
        return  # before instrument() (or offline) nothing says which keys are read
    unknown = [k for k in values if k not in CORE_KEYS and k not in _warned]
    if not unknown:
        return
    read = set(CORE_KEYS)
    for metric in metrics:
        read.update(getattr(metric, "context_keys", ()) or ())
    for key in unknown:
        if key not in read:
            _warned.add(key)
            warnings.warn(
                f"micrometrics.context({key}=...): no active metric reads {key!r} (read: {', '.join(sorted(read))}); "
                "a typo? A custom metric that reads it lists it in its context_keys",
                UserWarning,
                stacklevel=4,
            )


@contextmanager
def context(**values: Any) -> Iterator[Mapping[str, Any]]:
    """Attach values to every instrumented call made inside the block.

    Known keys: ``expected_language`` (for LanguageMatch), ``conversation_id``
    (-> ``gen_ai.conversation.id``), ``attributes`` (added to spans, never to metric
    dimensions), ``relevant_document_ids`` / ``relevance_grades`` (retrieval labels).
    Any other key is passed to the metrics as a context value.
    """
    _check(values)
    _warn_unread(values)
    parent = _values.get()
    merged = dict(parent)
    if "attributes" in values and parent.get("attributes"):
        values = dict(values)
        values["attributes"] = {**parent["attributes"], **values["attributes"]}
    merged.update(values)
    merged[RETRIEVED_KEY] = RetrievedDocuments()
    frozen = MappingProxyType(merged)
    token = _values.set(frozen)
    try:
        yield frozen
    finally:
        _values.reset(token)


def bind(**values: Any) -> contextvars.Token | None:
    """Add ``values`` to the current context until ``unbind`` (a framework's callbacks, where no ``with`` block fits:
    LangGraph's ``thread_id`` as the ``conversation_id`` of the calls inside a graph run). Checked as ``context()`` is."""
    _check(values)
    merged = dict(_values.get())
    merged.update(values)
    return _values.set(MappingProxyType(merged))


def unbind(token: contextvars.Token | None) -> None:
    """Undo ``bind``; a token from another context (the run ended in another task) is left alone."""
    if token is None:
        return
    try:
        _values.reset(token)
    except (ValueError, RuntimeError):
        pass
