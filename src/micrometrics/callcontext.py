"""``micrometrics.context(...)``: values that travel with the calls of a block of code.

A ContextVar holds an immutable mapping; nested blocks merge into their parent and
asyncio tasks inherit the values they were created with.
"""

from __future__ import annotations

import contextvars
import threading
import warnings
from collections import OrderedDict, deque
from types import MappingProxyType
from typing import Any, Iterator, Mapping
from contextlib import contextmanager

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_values: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("micrometrics_context", default=_EMPTY)

_ATTRIBUTE_TYPES = (str, bool, int, float)
#: Key under which a block keeps the documents retrieved inside it (ContextUtilization).
RETRIEVED_KEY = "_retrieved_documents"
MAX_REMEMBERED_DOCUMENTS = 64
#: Bytes of retrieved documents one ``context()`` block remembers (about one byte per character of
#: id, content and metadata): the oldest go first. A document larger than this is not remembered.
MAX_BLOCK_BYTES = 4 * 1024 * 1024
#: Bytes of retrieved documents remembered across all traces at once: the least recent traces go first.
MAX_REMEMBERED_BYTES = 8 * 1024 * 1024
#: What one remembered document costs beyond its text: the object, its slots, the bookkeeping.
_DOCUMENT_OVERHEAD = 200
#: Metadata entries counted per document: an estimate, not a walk of whatever a retriever attached.
_METADATA_ENTRIES = 64


def document_size(doc: Any) -> int:
    """About how many bytes remembering ``doc`` keeps alive."""
    size = _DOCUMENT_OVERHEAD
    for value in (getattr(doc, "content", None), getattr(doc, "id", None)):
        if isinstance(value, (str, bytes)):
            size += len(value)
    metadata = getattr(doc, "metadata", None)
    if isinstance(metadata, Mapping):
        for n, (k, v) in enumerate(metadata.items()):
            if n >= _METADATA_ENTRIES:
                break
            size += 16 + (len(k) if isinstance(k, str) else 16) + (len(v) if isinstance(v, (str, bytes)) else 16)
    return size


class _Documents:
    """Documents, oldest first, with their sizes: bounded by count and bytes."""

    __slots__ = ("docs", "sizes", "bytes")

    def __init__(self) -> None:
        self.docs: deque = deque()
        self.sizes: deque = deque()
        self.bytes = 0

    def add(self, documents: Any, max_bytes: int) -> None:
        for doc in documents:
            size = document_size(doc)
            self.docs.append(doc)
            self.sizes.append(size)
            self.bytes += size
        while self.docs and (len(self.docs) > MAX_REMEMBERED_DOCUMENTS or self.bytes > max_bytes):
            self.drop_oldest()

    def drop_oldest(self) -> None:
        self.docs.popleft()
        self.bytes -= self.sizes.popleft()


#: Keys the core itself reads; the rest are read by metrics (``MicroMetric.context_keys``).
CORE_KEYS = frozenset({"attributes", "conversation_id"})
_warned: set[str] = set()


class RetrievedDocuments:
    """Documents retrieved inside one ``context()`` block; bounded by count and bytes, forgotten at block exit."""

    __slots__ = ("_memory", "_lock")

    def __init__(self) -> None:
        self._memory = _Documents()
        self._lock = threading.Lock()

    def add(self, documents: Any) -> None:
        with self._lock:
            self._memory.add(documents, MAX_BLOCK_BYTES)

    @property
    def items(self) -> tuple:
        if not self._memory.docs:
            return ()
        with self._lock:
            return tuple(self._memory.docs)


#: Traces whose retrieved documents are remembered at once; the least recently used goes first.
MAX_REMEMBERED_TRACES = 1024


class TraceDocuments:
    """Documents retrieved per trace id, for the calls that follow in the same trace.

    Bounded: at most ``MAX_REMEMBERED_TRACES`` traces of ``MAX_REMEMBERED_DOCUMENTS``
    each, and ``max_bytes`` (``MAX_REMEMBERED_BYTES``) in all. No span processor tells us
    when a trace ends, so a trace is forgotten when newer traces push it out (LRU; within
    the newest trace alone, its oldest documents), or when ``uninstrument()`` drops the runtime.
    """

    __slots__ = ("_traces", "_lock", "max_traces", "max_bytes", "_bytes")

    def __init__(self, max_traces: int = MAX_REMEMBERED_TRACES, max_bytes: int = MAX_REMEMBERED_BYTES) -> None:
        self._traces: OrderedDict[int, _Documents] = OrderedDict()
        self._lock = threading.Lock()
        self.max_traces = max_traces
        self.max_bytes = max_bytes
        self._bytes = 0

    def remember(self, trace_id: int, documents: Any) -> None:
        traces = self._traces
        with self._lock:
            memory = traces.get(trace_id)
            if memory is None:
                memory = traces[trace_id] = _Documents()
            else:
                traces.move_to_end(trace_id)
            before = memory.bytes
            memory.add(documents, self.max_bytes)
            self._bytes += memory.bytes - before
            while len(traces) > self.max_traces or (self._bytes > self.max_bytes and len(traces) > 1):
                _, oldest = traces.popitem(last=False)
                self._bytes -= oldest.bytes
            if not memory.docs:
                traces.pop(trace_id, None)

    def recall(self, trace_id: int) -> tuple:
        # A plain dict read: no lock on the path of every call that has nothing to recall.
        memory = self._traces.get(trace_id)
        if memory is None or not memory.docs:
            return ()
        with self._lock:
            return tuple(memory.docs)

    @property
    def bytes(self) -> int:
        """About how many bytes of documents are remembered now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._traces)


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
    from micrometrics import core  # the active runtime; core imports this module

    runtime = core.current()
    if runtime is None:
        return  # before instrument() (or offline) nothing says which keys are read
    unknown = [k for k in values if k not in CORE_KEYS and k not in _warned]
    if not unknown:
        return
    read = set(CORE_KEYS)
    for metric in runtime.suite.metrics:
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
