"""Documents retrieved earlier in the trace or the ``context()`` block, remembered for ContextUtilization.

A retrieval call remembers its documents under its trace id and in its block; an inference
call that follows recalls them (``Call.retrieved_documents``). Bounded by count
and bytes everywhere.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from micrometrics.records import Call, RetrievalRecord

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




def remember(traces: TraceDocuments, call: "Call") -> None:
    """A retrieval's documents, for the calls that follow in its block and its trace."""
    record: RetrievalRecord = call.record  # type: ignore[assignment]
    if not record.documents:
        return
    memory = call.context.get(RETRIEVED_KEY)
    if memory is not None:
        memory.add(record.documents)
    span = call.span
    # A root retrieval span ends its own trace: nothing later can recall by its id.
    if getattr(span, "parent", True) is not None:
        trace_id = span.get_span_context().trace_id
        if trace_id:
            traces.remember(trace_id, record.documents)


def recall(traces: TraceDocuments, call: "Call") -> tuple:
    """What the context block and the trace retrieved so far, each document once."""
    memory = call.context.get(RETRIEVED_KEY)
    block = memory.items if memory is not None else ()
    found = block + traces.recall(call.span.get_span_context().trace_id)
    if not found:
        return ()
    seen: set = set()
    out = []
    for doc in found:
        key = doc.id if doc.id is not None else doc.content
        if key not in seen:
            seen.add(key)
            out.append(doc)
    return tuple(out)
