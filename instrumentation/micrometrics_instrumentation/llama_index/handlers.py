"""The span and event handlers micrometrics puts on LlamaIndex's root instrumentation dispatcher.

LlamaIndex opens a dispatcher span for very many methods; only these become micrometrics spans, the others
pass their parent on (the tree stays readable):

* an LLM's ``chat`` / ``complete`` (sync, async, streamed) -> the call's one ``chat {model}`` span: the
  instrumented SDK call below takes it (operations.begin_inference), else the framework's span is reported
  from the LLM events after the fact; an LLM call inside another (``chat`` over ``complete``) is the same call;
* an embedding model's ``get_*_embedding*`` -> ``embeddings {model}`` likewise;
* a retriever's ``retrieve`` / ``aretrieve`` -> ``retrieval {collection or retriever}`` with the nodes as
  documents; an instrumented store query below it (Chroma, Qdrant) opens no second span (nesting.suppress_retrieval);
* a query engine's ``query`` / ``aquery`` -> ``invoke_workflow {engine}``; an agent's run (``FunctionAgent``,
  ``ReActAgent``, ``AgentWorkflow``) -> ``invoke_agent {name}``, another workflow's run -> ``invoke_workflow``;
* a tool's ``call`` / ``acall`` -> ``execute_tool {name}`` (the call id from the agent's ``ToolCall`` event).

Parents come from LlamaIndex's own span tree (its span ids mapped to our runs, ``parent=`` passed explicitly),
never from attaching across contexts: a span's context is attached on enter and detached on exit only where
both run in the same context (checked with a context variable's token), and never for a run whose exit may
come from a future's done-callback. Per-span state is bounded (``MAX_OPEN``): spans whose exit never comes are
evicted oldest first. Every handler method catches its own failures (internal_errors): the app never sees them.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any

from opentelemetry import context as otel_context

from micrometrics import internal_errors, nesting, operations
from micrometrics.records import EmbeddingsRecord, InferenceRecord
from micrometrics.spans import Spans, abandoned
from micrometrics_instrumentation.llama_index import translators as T
from micrometrics_semconv import values as V

#: Open LlamaIndex spans (and streams awaiting their end event) we keep state for; beyond it the oldest are evicted.
MAX_OPEN = 4096
_STAGE = "llama_index"

_CHAT_METHODS = frozenset({"chat", "achat", "stream_chat", "astream_chat"})
_COMPLETE_METHODS = frozenset({"complete", "acomplete", "stream_complete", "astream_complete"})
_EMBED_METHODS = frozenset({
    "get_query_embedding", "aget_query_embedding", "get_text_embedding", "aget_text_embedding",
    "get_text_embedding_batch", "aget_text_embedding_batch", "get_agg_embedding_from_queries", "aget_agg_embedding_from_queries",
})
_RETRIEVE_METHODS = frozenset({"retrieve", "aretrieve"})
_TOOL_METHODS = frozenset({"call", "acall", "__call__"})
_QUERY_METHODS = frozenset({"query", "aquery"})

LLM, EMBEDDING, RETRIEVER, TOOL, AGENT, WORKFLOW, QUERY = "llm", "embedding", "retriever", "tool", "agent", "workflow", "query"
#: Kinds whose nested span of the same kind is the same operation (a chat over a complete, a batch over its items).
_SAME_CALL = frozenset({LLM, EMBEDDING})

#: Set on enter where we attach: resetting its token at exit succeeds only in the same context (else: no detach).
_SAME_CONTEXT: ContextVar[str | None] = ContextVar("micrometrics.llama_index.span", default=None)


@functools.lru_cache(maxsize=1024)
def _bases(cls: type) -> frozenset[str]:
    """The LlamaIndex (and llama-index-workflows) base classes of a type, by name: no import needed to classify."""
    return frozenset(c.__name__ for c in cls.__mro__ if c.__module__.startswith(("llama_index", "workflows")))


def _method(span_id: str) -> str:
    """``{Class}.{method}-{uuid4}`` (or ``{qualname}-{uuid4}``) -> the method's name."""
    return span_id[:-37].rsplit(".", 1)[-1] if len(span_id) > 37 else ""


def classify(instance: Any, method: str) -> str | None:
    """What a LlamaIndex span of ``instance.method`` becomes (a kind), or None: it hands its parent on."""
    if instance is None:
        return None
    bases = _bases(type(instance))
    if "BaseLLM" in bases:
        return LLM if method in _CHAT_METHODS or method in _COMPLETE_METHODS else None
    if "BaseEmbedding" in bases:
        return EMBEDDING if method in _EMBED_METHODS else None
    if "BaseRetriever" in bases:
        return RETRIEVER if method in _RETRIEVE_METHODS else None
    if "BaseTool" in bases:
        return TOOL if method in _TOOL_METHODS else None
    if "BaseQueryEngine" in bases:
        return QUERY if method in _QUERY_METHODS else None
    if "Workflow" in bases and method == "run":
        return AGENT if "BaseWorkflowAgent" in bases or "AgentWorkflow" in bases else WORKFLOW
    return None


class _Entry:
    """One LlamaIndex span we saw enter: what it maps to, the context its children start in, what to undo at exit."""

    __slots__ = ("kind", "instance", "ctx", "within", "run", "pending", "record", "token", "marker", "tool_call", "streaming", "ended")

    def __init__(self, kind: str | None, instance: Any, ctx: Any, within: "_Entry | None") -> None:
        self.kind, self.instance, self.ctx, self.within = kind, instance, ctx, within
        self.run: Any = None
        self.pending: Any = None
        self.record: Any = None
        self.token: Any = None
        self.marker: Any = None
        self.tool_call: tuple[str, str] | None = None
        self.streaming = False
        self.ended = False


def _attach_safely(entry: _Entry, span_id: str, ctx: Any) -> None:
    entry.token = otel_context.attach(ctx)
    entry.marker = _SAME_CONTEXT.set(span_id)


def _detach_safely(entry: _Entry) -> None:
    """Detach what enter attached, only in the context it was attached in (a done-callback's context is another)."""
    if entry.token is None:
        return
    token, marker, entry.token, entry.marker = entry.token, entry.marker, None, None
    try:
        _SAME_CONTEXT.reset(marker)
    except ValueError:  # another context: its own copy of ours goes with it; never detach across contexts
        return
    Spans.detach(token)


def _tool_call_of(bound_args: Any) -> tuple[str, str] | None:
    """A step's ``ToolCall`` event (FunctionAgent's ``call_tool``): the tool's name and the model's call id."""
    arguments = getattr(bound_args, "arguments", None) or {}
    event = arguments.get("ev")
    name, call_id = getattr(event, "tool_name", None), getattr(event, "tool_id", None)
    return (name, call_id) if isinstance(name, str) and isinstance(call_id, str) else None


def _is_stream(result: Any) -> bool:
    return inspect.isgenerator(result) or inspect.isasyncgen(result) or hasattr(result, "__anext__") or (
        hasattr(result, "__next__") and hasattr(result, "__iter__") and not isinstance(result, (list, tuple, dict, str)))


class Tracker:
    """The LlamaIndex spans we keep state for, by LlamaIndex span id; bounded, thread-safe."""

    def __init__(self, limit: int = MAX_OPEN) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, span_id: Any) -> _Entry | None:
        if not isinstance(span_id, str):
            return None
        with self._lock:
            return self._entries.get(span_id)

    def put(self, span_id: str, entry: _Entry) -> None:
        evicted = []
        with self._lock:
            self._entries[span_id] = entry
            while len(self._entries) > self.limit:
                evicted.append(self._entries.popitem(last=False)[1])
                self.evicted += 1
        for old in evicted:
            _abandon(old)

    def pop(self, span_id: str) -> _Entry | None:
        with self._lock:
            return self._entries.pop(span_id, None)

    def clear(self) -> list[_Entry]:
        with self._lock:
            entries = list(self._entries.values())
            self._entries.clear()
        return entries


def _abandon(entry: _Entry) -> None:
    """A span whose exit (or a stream whose end) never came: its run ends with what it has; never left open."""
    try:
        if entry.run is not None:
            entry.run.end()
        elif entry.pending is not None and not entry.ended and entry.streaming:
            entry.ended = True
            _end_abandoned(entry.pending, entry.record)
    except Exception as exc:
        internal_errors.report(_STAGE, exc)


def _end_abandoned(pending: Any, record: Any) -> None:
    """A stream the app left before its end, with no SDK span below: the framework's span says so (streams.py's way)."""
    if pending.taken:
        return
    pending.pending.taken = True
    run = operations.begin(record, parent=pending.parent, start_time_ns=pending.start_time_ns)
    if run is not None:
        record.error_type = V.ERROR_TYPE_STREAM_ABANDONED
        abandoned(run.call)
        run.end()


class Handlers:
    """Enter/exit/drop of LlamaIndex spans and its events -> micrometrics runs. One per ``instrument()``."""

    def __init__(self, limit: int = MAX_OPEN) -> None:
        self.spans = Tracker(limit)

    # ---- spans --------------------------------------------------------------------------------

    def enter(self, span_id: str, bound_args: Any, instance: Any, parent_id: Any) -> None:
        parent = self.spans.get(parent_id)
        method = _method(span_id)
        kind = classify(instance, method)
        within = parent.within if parent is not None else None
        if kind in _SAME_CALL and within is not None and within.kind == kind:
            kind = None  # the same model call (CustomLLM.chat over complete, a batch over its items)
        elif kind in (RETRIEVER, TOOL) and within is not None and within.kind == kind and within.instance is instance:
            kind = None  # call over acall of the same tool, retrieve over its own _retrieve
        parent_ctx = parent.ctx if parent is not None else None
        if kind is None:
            entry = _Entry(None, instance, parent_ctx, within)
            entry.tool_call = _tool_call_of(bound_args) or (parent.tool_call if parent is not None else None)
            self.spans.put(span_id, entry)
            return
        base = parent_ctx if parent_ctx is not None else otel_context.get_current()
        entry = _Entry(kind, instance, None, None)
        entry.within = entry
        entry.tool_call = parent.tool_call if parent is not None else None
        if kind in (LLM, EMBEDDING):
            entry.pending = operations.begin_inference(InferenceRecord if kind == LLM else EmbeddingsRecord, parent=base)
            if entry.pending is None:
                return  # micrometrics not instrumented
            if kind == LLM:
                operation = V.OPERATION_TEXT_COMPLETION if method in _COMPLETE_METHODS else V.OPERATION_CHAT
                entry.record = T.inference(instance, operation, method.startswith(("stream", "astream")))
            else:
                entry.record = T.embeddings(instance)
            # A model call made while a stream is consumed here (CustomLLM.astream_chat runs stream_chat lazily) is that
            # stream's call: it takes the stream's pending call, as an SDK call would, and reports the one span.
            nesting.take(entry.record)
            entry.ctx = entry.pending.context
            _attach_safely(entry, span_id, entry.ctx)  # LLM and embedding methods are plain sync/async: exit comes here
        else:
            record = self._run_record(kind, instance, bound_args, entry.tool_call)
            entry.run = operations.begin(record, parent=base)
            if entry.run is None:
                return
            entry.ctx = nesting.suppress_retrieval(entry.run.context) if kind == RETRIEVER else entry.run.context
            if kind != AGENT and kind != WORKFLOW or _runs_inside(bound_args):
                _attach_safely(entry, span_id, entry.ctx)
        self.spans.put(span_id, entry)

    def _run_record(self, kind: str, instance: Any, bound_args: Any, tool_call: tuple[str, str] | None) -> Any:
        arguments = getattr(bound_args, "arguments", None) or {}
        if kind == RETRIEVER:
            return T.retrieval(instance, arguments.get("str_or_query_bundle"))
        if kind == TOOL:
            record = T.tool(instance, T.tool_arguments(bound_args), None)
            if tool_call is not None and tool_call[0] == record.tool_name:
                record.tool_call_id = tool_call[1]
            return record
        if kind == QUERY:
            return T.workflow(type(instance).__name__, T.query_messages(arguments.get("str_or_query_bundle")))
        start = arguments.get("start_event")
        if kind == AGENT:
            name = getattr(instance, "name", None) if "BaseWorkflowAgent" in _bases(type(instance)) else getattr(instance, "root_agent", None)
            return T.agent(instance, start, name if isinstance(name, str) and name else type(instance).__name__)
        return T.workflow(type(instance).__name__, T.start_messages(start))

    def exit(self, span_id: str, result: Any) -> None:
        entry = self.spans.pop(span_id)
        if entry is None:
            return
        _detach_safely(entry)
        if entry.kind is None or (entry.run is None and entry.pending is None):
            return
        if entry.kind == LLM:
            if not entry.ended and _is_stream(result):
                # The SDK call runs when the app consumes the stream, here: pending in this context too; ends at LLMChatEndEvent.
                entry.streaming = True
                entry.pending.defer()
                self.spans.put(span_id, entry)
                return
            self._end_inference(entry)
        elif entry.kind == EMBEDDING:
            if entry.record.inputs or entry.pending.taken:
                self._end_inference(entry)
            # else: nothing was embedded (an index inserting nodes that carry their vectors): no span
        else:
            self._end_run(entry.kind, entry.run, result)

    @staticmethod
    def _end_run(kind: str, run: Any, result: Any) -> None:
        """The run's result onto its record, then its end; a result we cannot read still ends the run."""
        failure: BaseException | None = None
        try:
            if kind == RETRIEVER:
                T.apply_nodes(run.record, result)
            elif kind == TOOL:
                run.record.result = T.tool_result(result)
                if T.tool_failed(result):
                    exc = getattr(result, "exception", None)
                    failure = exc if isinstance(exc, BaseException) else _ToolError("the tool returned an error")
            else:
                T.apply_answer(run.record, result)
        except Exception as exc:
            internal_errors.report(_STAGE, exc)
        if failure is not None:
            run.fail(failure)
        else:
            run.end()

    def drop(self, span_id: str, err: Any) -> None:
        entry = self.spans.pop(span_id)
        if entry is None:
            return
        _detach_safely(entry)
        exc = err if isinstance(err, BaseException) else RuntimeError("span dropped")
        if entry.run is not None:
            entry.run.fail(exc)
        elif entry.pending is not None and not entry.ended:
            entry.ended = True
            entry.pending.fail(entry.record, exc)

    @staticmethod
    def _end_inference(entry: _Entry) -> None:
        if not entry.ended:
            entry.ended = True
            entry.pending.end(entry.record)

    # ---- events -------------------------------------------------------------------------------

    def event(self, event: Any) -> None:
        name = type(event).__name__
        entry = self.spans.get(getattr(event, "span_id", None))
        target = entry.within if entry is not None else None
        if target is None or target.record is None:
            return
        record = target.record
        if name == "LLMChatStartEvent" and not record.input_messages and not record.system_instructions:
            T.apply_messages(record, getattr(event, "messages", None))
            self._model(record, getattr(event, "model_dict", None), "model")
        elif name == "LLMCompletionStartEvent" and not record.input_messages:
            prompt = getattr(event, "prompt", None)
            if isinstance(prompt, str):
                record.input_messages.append({"role": "user", "parts": [{"type": "text", "content": prompt}]})
            self._model(record, getattr(event, "model_dict", None), "model")
        elif name == "LLMChatEndEvent" and target.kind == LLM:
            T.apply_chat_response(record, getattr(event, "response", None))
            self._stream_ended(event.span_id, target, entry)
        elif name == "LLMCompletionEndEvent" and target.kind == LLM:
            T.apply_completion_response(record, getattr(event, "response", None))
            self._stream_ended(event.span_id, target, entry)
        elif name == "ExceptionEvent" and target.kind == LLM and target.streaming and not target.ended:
            exc = getattr(event, "exception", None)
            target.ended = True
            self.spans.pop(event.span_id)
            if isinstance(exc, GeneratorExit):  # the app closed the stream early
                _end_abandoned(target.pending, record)
            else:
                target.pending.fail(record, exc if isinstance(exc, BaseException) else RuntimeError("stream failed"))
        elif name == "EmbeddingStartEvent":
            self._model(record, getattr(event, "model_dict", None), "model_name")
        elif name == "EmbeddingEndEvent" and target.kind == EMBEDDING:
            T.apply_embeddings(record, getattr(event, "chunks", None), getattr(event, "embeddings", None))

    def _stream_ended(self, span_id: str, target: _Entry, entry: _Entry) -> None:
        """A stream's last chunk was read: its span now (after the SDK's, which took the call if there was one)."""
        if target.streaming and entry is target and not target.ended:
            self.spans.pop(span_id)
            target.ended = True
            target.pending.end(target.record)

    @staticmethod
    def _model(record: Any, model_dict: Any, key: str) -> None:
        if record.model is None and isinstance(model_dict, dict) and isinstance(model_dict.get(key), str) and model_dict[key]:
            record.model = model_dict[key]

    def close(self) -> None:
        """Uninstrumented: every run still open ends (never left open), the state is released."""
        for entry in self.spans.clear():
            _abandon(entry)


class _ToolError(Exception):
    """A tool's failure LlamaIndex returned as a ``ToolOutput(is_error=True)`` rather than raised."""


def _runs_inside(bound_args: Any) -> bool:
    """A workflow's run span entered inside its run coroutine (llama-index-workflows 2.x: ``run_workflow(init_state,
    start_event, tags)``), exited there too; older releases decorate ``Workflow.run``, which returns a future whose
    done-callback exits the span in another context: nothing attached for those."""
    params = getattr(getattr(bound_args, "signature", None), "parameters", None) or {}
    return "init_state" in params and "start_event" in params


def span_handler(handlers: Handlers) -> Any:
    """A LlamaIndex ``BaseSpanHandler`` over ``handlers`` (built when LlamaIndex is imported: its classes are needed)."""
    from llama_index.core.instrumentation.span_handlers import BaseSpanHandler

    class MicrometricsSpanHandler(BaseSpanHandler):
        """micrometrics: LlamaIndex spans -> agent, workflow, tool, retrieval and model call spans."""

        @classmethod
        def class_name(cls) -> str:
            return "MicrometricsSpanHandler"

        def span_enter(self, id_: str, bound_args: Any, instance: Any = None, parent_id: Any = None, tags: Any = None, **kwargs: Any) -> None:
            try:
                handlers.enter(id_, bound_args, instance, parent_id)
            except Exception as exc:
                internal_errors.report(_STAGE, exc)

        def span_exit(self, id_: str, bound_args: Any, instance: Any = None, result: Any = None, **kwargs: Any) -> None:
            try:
                handlers.exit(id_, result)
            except Exception as exc:
                internal_errors.report(_STAGE, exc)

        def span_drop(self, id_: str, bound_args: Any, instance: Any = None, err: Any = None, **kwargs: Any) -> None:
            try:
                handlers.drop(id_, err)
            except Exception as exc:
                internal_errors.report(_STAGE, exc)

        # Our state lives in ``handlers`` (bounded), not in BaseSpanHandler's open_spans: nothing to create here.
        def new_span(self, *args: Any, **kwargs: Any) -> None:
            return None

        def prepare_to_exit_span(self, *args: Any, **kwargs: Any) -> None:
            return None

        def prepare_to_drop_span(self, *args: Any, **kwargs: Any) -> None:
            return None

    return MicrometricsSpanHandler()


def event_handler(handlers: Handlers) -> Any:
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler

    class MicrometricsEventHandler(BaseEventHandler):
        """micrometrics: LlamaIndex LLM and embedding events -> the model call's messages, response and usage."""

        @classmethod
        def class_name(cls) -> str:
            return "MicrometricsEventHandler"

        def handle(self, event: Any, **kwargs: Any) -> None:
            try:
                handlers.event(event)
            except Exception as exc:
                internal_errors.report(_STAGE, exc)

    return MicrometricsEventHandler()
